"""fit's best weights, kept without a copy after every improving epoch.

When every epoch is one optimizer step (full-batch training, chainrule's own optimizer,
no user callbacks), the loop learns the epoch's loss before the step changes the
weights. It then copies the best weights only when an epoch is about to make them
worse, and holds Ctrl-C back from the moment it skips a copy until the epoch is
recorded. These tests pin that the results are bit for bit those of the loop that
copies after every improving epoch (the one run when a callback is given), and that
Ctrl-C, errors, threads and a program's own SIGINT handler are handled.
"""

from __future__ import annotations

import itertools
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

from chainrule import nn, optim
from chainrule.training import BestWeights, History, TrainingDivergedWarning, fit


def _data(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return X, (X[:, 0] * X[:, 1] > 0).astype(float)  # XOR-like: the loss does not fall evenly


def _model() -> nn.MLP:
    return nn.MLP([2, 6, 1], activation="tanh", output_activation="sigmoid", seed=1)


def _state(model: Any) -> dict[str, bytes]:
    return {key: value.tobytes() for key, value in model.state_dict().items()}


def _improving(history: History) -> list[bool]:
    """Whether each epoch's loss was a new low."""
    best = np.inf
    flags = []
    for value in history.loss:
        flags.append(value < best)
        best = min(best, value)
    return flags


@contextmanager
def _counted_saves(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the copies of the weights into a BestWeights (its save())."""
    calls = [0]
    original = BestWeights.save

    def save(self: BestWeights) -> None:
        calls[0] += 1
        original(self)

    monkeypatch.setattr(BestWeights, "save", save)
    yield calls
    monkeypatch.setattr(BestWeights, "save", original)


def _train(copy_every_time: bool, epochs: int = 80, **options: Any) -> tuple[nn.MLP, History]:
    """A full-batch fit; ``copy_every_time``: with a callback, which turns the deferral off."""
    model = _model()
    X, y = _data()
    callbacks = [lambda epoch, logs: None] if copy_every_time else []
    options.setdefault("lr", 3.0)
    history = fit(
        model, X, y, epochs=epochs, callbacks=callbacks, progress=False, seed=0, **options
    )
    return model, history


def _same(first: tuple[nn.MLP, History], second: tuple[nn.MLP, History]) -> None:
    (model_a, history_a), (model_b, history_b) = first, second
    assert history_a.loss == history_b.loss
    assert history_a.accuracy == history_b.accuracy
    assert history_a.best_epoch == history_b.best_epoch
    assert history_a.best_loss == history_b.best_loss
    assert history_a.stop_reason == history_b.stop_reason
    assert history_a.restored == history_b.restored
    assert _state(model_a) == _state(model_b)


def test_copies_only_before_an_epoch_that_does_not_improve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _counted_saves(monkeypatch) as deferred_saves:
        deferred = _train(copy_every_time=False)
    with _counted_saves(monkeypatch) as eager_saves:
        eager = _train(copy_every_time=True)
    _same(deferred, eager)
    improving = _improving(deferred[1])
    # The copy is made before an epoch that does not improve, when the one before did.
    expected = sum(1 for before, now in itertools.pairwise(improving) if before and not now)
    assert expected >= 1  # the run has a setback to copy before
    assert deferred_saves[0] == expected
    assert eager_saves[0] == sum(improving) > 10 * expected


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_early_stopping_restores_the_same_weights(optimizer: str) -> None:
    lr = 3.0 if optimizer == "sgd" else 1.5
    deferred = _train(False, optimizer=optimizer, lr=lr, early_stopping=3)
    eager = _train(True, optimizer=optimizer, lr=lr, early_stopping=3)
    _same(deferred, eager)
    assert deferred[1].stop_reason == "early_stopping" and deferred[1].restored


def test_divergence_restores_the_same_weights() -> None:
    with pytest.warns(TrainingDivergedWarning):
        deferred = _train(False, lr=16.0)
    with pytest.warns(TrainingDivergedWarning):
        eager = _train(True, lr=16.0)
    _same(deferred, eager)
    # The start was better than every epoch: the weights went back to it.
    assert deferred[1].diverged and deferred[1].restored and deferred[1].best_epoch == 0


def test_eager_steps_defer_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    with _counted_saves(monkeypatch) as saves:
        deferred = _train(False, compiled=False)
    _same(deferred, _train(True, compiled=False))
    assert saves[0] < sum(_improving(deferred[1])) // 4


def _interrupting_step(monkeypatch: pytest.MonkeyPatch, at_call: int) -> None:
    """Make SGD.step send this process SIGINT (as Ctrl-C does) at its ``at_call``-th call,
    before it changes any weight."""
    original = optim.SGD.step
    calls = [0]

    def step(self: optim.SGD) -> None:
        calls[0] += 1
        if calls[0] == at_call:
            signal.raise_signal(signal.SIGINT)
        original(self)

    monkeypatch.setattr(optim.SGD, "step", step)


def test_ctrl_c_in_an_improving_epoch_is_held_until_the_epoch_is_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reference = _train(False, epochs=80)
    improving = _improving(reference[1])
    epoch = next(k for k in range(20, 80) if improving[k - 1] and improving[k - 2])
    _interrupting_step(monkeypatch, at_call=epoch)
    model, history = _train(False, epochs=80)
    assert history.interrupted and history.stop_reason == "interrupted"
    # The step that was running finished and its epoch counts: its weights are kept whole.
    assert history.epoch == list(range(1, epoch + 1))
    assert history.best_epoch == epoch
    monkeypatch.undo()
    assert _state(model) == _state(_train(False, epochs=epoch)[0])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_in_an_epoch_that_does_not_improve_restores_the_best(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reference = _train(False, epochs=80)
    improving = _improving(reference[1])
    epoch = next(k for k in range(2, 80) if improving[k - 2] and not improving[k - 1])
    _interrupting_step(monkeypatch, at_call=epoch)
    model, history = _train(False, epochs=80)
    assert history.interrupted and history.epoch == list(range(1, epoch))
    assert history.best_epoch == epoch - 1
    monkeypatch.undo()
    assert _state(model) == _state(_train(False, epochs=epoch - 1)[0])


def test_an_error_in_the_step_leaves_the_sigint_handler_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = optim.SGD.step
    calls = [0]

    def failing_step(self: optim.SGD) -> None:
        calls[0] += 1
        if calls[0] == 5:
            raise ValueError("a step that fails")
        original(self)

    monkeypatch.setattr(optim.SGD, "step", failing_step)
    with pytest.raises(ValueError, match="a step that fails"):
        _train(False)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_programs_own_sigint_handler_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    original = optim.SGD.step

    def watching_step(self: optim.SGD) -> None:
        seen.append(signal.getsignal(signal.SIGINT))
        original(self)

    def own_handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, own_handler)
    try:
        monkeypatch.setattr(optim.SGD, "step", watching_step)
        with _counted_saves(monkeypatch) as saves:
            model, history = _train(False)
        assert set(seen) == {own_handler}
        assert saves[0] == sum(_improving(history))  # copied after every improving epoch
        assert signal.getsignal(signal.SIGINT) is own_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.undo()
    _same((model, history), _train(True))


def test_a_fit_in_another_thread_copies_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    results: list[tuple[nn.MLP, History]] = []
    with _counted_saves(monkeypatch) as saves:
        thread = threading.Thread(target=lambda: results.append(_train(False)))
        thread.start()
        thread.join()
    assert saves[0] == sum(_improving(results[0][1]))
    _same(results[0], _train(False))


def test_the_hook_is_removed_after_fit() -> None:
    """A model's compiled step, kept for its next fit, calls no hook of the last one."""
    model = _model()
    X, y = _data()
    fit(model, X, y, epochs=3, progress=False)
    from chainrule.training import _reuse

    kept = _reuse._take(model)
    assert kept is not None
    step = kept.step
    assert step._before_update is None and step._replay.before_update is None
    _reuse._keep(model, kept)


def test_a_handler_the_program_sets_during_fit_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    original = optim.SGD.step
    calls = [0]
    replaced: list[Any] = []

    def own_handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    def step(self: optim.SGD) -> None:
        calls[0] += 1
        if calls[0] == 3:
            replaced.append(signal.signal(signal.SIGINT, own_handler))
        original(self)

    monkeypatch.setattr(optim.SGD, "step", step)
    try:
        _train(False, epochs=5)
        # The handler replaced was fit's own (so fit had one to put back), and fit left
        # the program's in place.
        assert replaced and replaced[0] is not signal.default_int_handler
        assert signal.getsignal(signal.SIGINT) is own_handler
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
