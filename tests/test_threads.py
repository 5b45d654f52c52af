"""Grad state belongs to the running context: threads train models at once as they would alone."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

import chainrule as cr
from chainrule import nn

SEEDS = (0, 1, 2, 3)


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(100 + seed)
    X = rng.normal(size=(64, 3))
    y = (X[:, 0] - X[:, 1] > 0).astype(np.float64)
    return X, y


def _train_with_fit(seed: int) -> list[np.ndarray]:
    """fit (which compiles its step) on one model; the losses and final weights."""
    model = nn.MLP([3, 4, 1], activation="tanh", output_activation="sigmoid", seed=seed)
    X, y = _data(seed)
    history = cr.fit(model, X, y, epochs=15, batch_size=16, seed=seed, progress=False)
    return [np.asarray(history.loss), *(p.data.copy() for p in model.parameters())]


def _train_with_compile_and_no_grad(seed: int) -> list[np.ndarray]:
    """A compiled step plus an evaluation under no_grad after every step."""
    model = nn.MLP([3, 5, 1], activation="relu", seed=seed)
    X, y = _data(seed)
    opt = cr.optim.SGD(model.parameters(), lr=0.05)
    step = cr.compile(lambda xb, yb: ((model(xb) - yb) ** 2).mean(), optimizer=opt)
    losses = []
    for _ in range(20):
        losses.append(step(X, y[:, None]).item())
        with cr.no_grad():
            prediction = model(X)
        assert not prediction.requires_grad  # another thread's switch never leaks here
    return [np.asarray(losses), *(p.data.copy() for p in model.parameters())]


def _at_once(train: Callable[[int], list[np.ndarray]]) -> dict[int, Any]:
    """Run ``train`` for every seed in its own thread, all at once, switching threads often."""
    results: dict[int, Any] = {}
    start = threading.Barrier(len(SEEDS))

    def run(seed: int) -> None:
        start.wait()
        try:
            results[seed] = train(seed)
        except BaseException as error:  # reported by the assertion below
            results[seed] = error

    threads = [threading.Thread(target=run, args=(seed,)) for seed in SEEDS]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave the threads' steps as much as possible
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    return results


def _assert_same_bits(threaded: dict[int, Any], sequential: dict[int, Any]) -> None:
    for seed in SEEDS:
        assert not isinstance(threaded[seed], BaseException), threaded[seed]
        for got, expected in zip(threaded[seed], sequential[seed], strict=True):
            assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()


def test_threads_train_four_models_at_once_like_sequential() -> None:
    """Issue 13 item 5: four models fitted in four threads at once equal sequential training."""
    sequential = {seed: _train_with_fit(seed) for seed in SEEDS}
    _assert_same_bits(_at_once(_train_with_fit), sequential)


def test_threads_compiled_steps_and_no_grad_do_not_leak_between_threads() -> None:
    """Compiled steps and no_grad() blocks in four threads at once give the sequential results."""
    sequential = {seed: _train_with_compile_and_no_grad(seed) for seed in SEEDS}
    _assert_same_bits(_at_once(_train_with_compile_and_no_grad), sequential)


def test_threads_share_one_compiled_step_safely() -> None:
    """One compiled step called from four threads at once runs its calls one at a time."""
    model = nn.MLP([3, 4, 1], activation="tanh", seed=0)
    X, y = _data(0)
    opt = cr.optim.SGD(model.parameters(), lr=0.01)
    step = cr.compile(lambda xb, yb: ((model(xb) - yb) ** 2).mean(), optimizer=opt)
    reference_model = nn.MLP([3, 4, 1], activation="tanh", seed=0)
    reference_opt = cr.optim.SGD(reference_model.parameters(), lr=0.01)
    losses: list[float] = []
    guard = threading.Lock()

    def run() -> None:
        for _ in range(10):
            loss = step(X, y[:, None]).item()
            with guard:
                losses.append(loss)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = []
    for _ in range(40):  # the same 40 steps one after another
        reference_opt.zero_grad()
        loss = ((reference_model(X) - y[:, None]) ** 2).mean()
        loss.backward()
        reference_opt.step()
        expected.append(loss.item())
    assert sorted(losses) == sorted(expected)
    for got, want in zip(model.parameters(), reference_model.parameters(), strict=True):
        assert got.data.tobytes() == want.data.tobytes()
