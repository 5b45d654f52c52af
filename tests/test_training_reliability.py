"""Tests for fit's divergence handling (issue 13 items 4 and 12), its History repr and
plot, its notebook progress bar and its no-progress warning (issue 11 items 4 and 5)."""

from __future__ import annotations

import importlib.util
import sys
import types
import warnings
from typing import Any

import numpy as np
import pytest

from chainrule import nn
from chainrule.training import History, NoProgressWarning, TrainingDivergedWarning, fit
from chainrule.training._progress import Progress


def _regression() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    return X, X @ np.array([1.0, -2.0, 0.5]) + 0.1


def test_fit_item4_lr_1e9_stops_with_a_divergence_warning_naming_the_epoch() -> None:
    """fit(..., lr=1e9) does not end silently at a huge loss: it stops, warns with the
    epoch and a smaller learning rate, and keeps weights with the starting loss."""
    X, y = _regression()
    model = nn.MLP([3, 8, 1], activation="tanh", seed=0)
    with pytest.warns(TrainingDivergedWarning, match=r"diverged at epoch \d+.*lr=1e\+08"):
        history = fit(model, X, y, lr=1e9, epochs=50, progress=False)
    assert history.diverged and history.stop_reason == "diverged"
    assert history.diverged_epoch == history.epoch[-1] < 50
    measured = float(nn.mse_loss(model(X), y).data)
    assert measured == pytest.approx(history.best_loss, rel=1e-12)
    assert measured <= history.loss[0]


def test_fit_item4_lets_no_numpy_runtime_warning_escape() -> None:
    """Overflowing arithmetic inside fit reaches the user as one TrainingDivergedWarning."""
    X, y = _regression()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(nn.MLP([3, 4, 1], seed=0), X * 1e3, y, lr=1e6, epochs=30, progress=False)
    assert [w.category for w in caught] == [TrainingDivergedWarning]


def test_fit_item12_best_weights_are_chosen_by_a_loss_measured_on_them() -> None:
    """After a minibatch run blows up, the weights kept are those with the lowest loss
    measured on them (here the initial ones), not the epoch with the best running mean."""
    X, y = _regression()
    model = nn.MLP([3, 1], seed=0)
    with pytest.warns(TrainingDivergedWarning, match="initial weights were kept"):
        history = fit(model, X * 3, y, lr=0.15, epochs=30, batch_size=50, progress=False)
    # Epoch 1's running mean was the lowest, but its end weights were already worse.
    assert history.loss[0] == min(history.loss)
    assert history.best_epoch == 0 and history.restored
    measured = float(nn.mse_loss(model(X * 3), y).data)
    assert measured == pytest.approx(history.best_loss, rel=1e-12)
    assert measured < history.loss[0]


def test_fit_no_progress_on_unscaled_inputs_warns_to_scale_or_use_adam() -> None:
    """A classifier whose loss stays flat and predicts one class warns with what to do."""
    rng = np.random.default_rng(0)
    age, fare = rng.uniform(20, 80, size=300), rng.uniform(100, 500, size=300)
    y = ((age < 35) | (fare > 400)).astype(float)
    X = np.c_[age * 10, fare * 10]
    model = nn.MLP([2, 3, 1], activation="sigmoid", output_activation="sigmoid", seed=0)
    with pytest.warns(NoProgressWarning, match="standardise each column.*optimizer='adam'"):
        fit(model, X, y, epochs=20, progress=False)
    scaled = (X - X.mean(axis=0)) / X.std(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoProgressWarning)
        fit(nn.MLP([2, 3, 1], output_activation="sigmoid", seed=0), scaled, y, lr=1.0,
            epochs=20, progress=False)  # fmt: skip


def test_history_repr_is_one_short_line() -> None:
    """repr(History) names the epochs, the losses, the best epoch and why it stopped."""
    history = History(monitor="val_loss", best_epoch=2, best_loss=0.25, restored=True,
                      stop_reason="early_stopping", stopped_early=True)  # fmt: skip
    for epoch, (loss, val) in enumerate([(0.9, 0.5), (0.5, 0.25), (0.3, 0.4)], start=1):
        history.record(epoch, {"loss": loss, "val_loss": val, "accuracy": 0.75})
    assert repr(history) == (
        "History(3 epochs, loss 0.9 → 0.3, val_loss 0.4, accuracy 0.750, best val_loss "
        "0.25 at epoch 2, restored, stopped: early stopping)"
    )
    assert repr(History()) == "History(no epochs, completed)"


def test_history_plot_draws_loss_and_accuracy_curves() -> None:
    """History.plot returns matplotlib Axes with the loss curves and a twin accuracy axis."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = History(best_epoch=2)
    for epoch in (1, 2, 3):
        history.record(epoch, {"loss": 1.0 / epoch, "val_loss": 1.5 / epoch,
                               "accuracy": 0.5 + 0.1 * epoch})  # fmt: skip
    ax = history.plot()
    try:
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == ["loss", "val_loss", "best epoch"]
        assert list(ax.get_lines()[0].get_ydata()) == history.loss
        twin = [other for other in ax.figure.axes if other is not ax]
        assert [line.get_label() for line in twin[0].get_lines()] == ["accuracy"]
    finally:
        plt.close(ax.figure)


def test_progress_uses_tqdm_auto_in_a_jupyter_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a Jupyter kernel the bar comes from tqdm.auto (a notebook widget), even though
    standard error is not a terminal."""
    made: list[dict[str, Any]] = []

    class FakeBar:
        def __init__(self, **options: Any) -> None:
            made.append(options)

        def set_postfix_str(self, text: str, refresh: bool) -> None:
            made[-1]["text"] = text

        def update(self, count: int) -> None:
            made[-1]["updates"] = made[-1].get("updates", 0) + count

        def close(self) -> None:
            made[-1]["closed"] = True

    class ZMQInteractiveShell:  # the class name Jupyter's kernel shell has
        pass

    ipython = types.ModuleType("IPython")
    ipython.get_ipython = ZMQInteractiveShell  # type: ignore[attr-defined]
    auto = types.ModuleType("tqdm.auto")
    auto.tqdm = FakeBar  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(  # ipywidgets, which the widget needs, counts as installed
        importlib.util,
        "find_spec",
        lambda name, *rest: object() if name == "ipywidgets" else real_find_spec(name, *rest),
    )
    X, y = _regression()
    fit(nn.MLP([3, 1], seed=0), X, y, lr=0.1, epochs=3)
    assert len(made) == 1 and made[0]["total"] == 3 and made[0]["unit"] == "epoch"
    assert made[0]["updates"] == 3 and made[0]["closed"]
    assert made[0]["text"].startswith("loss=")
    assert not Progress(3, "epoch", enabled=False).shown


def test_progress_in_a_notebook_without_ipywidgets_draws_a_text_bar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without ipywidgets a notebook gets tqdm's text bar, not tqdm.auto's warning."""
    pytest.importorskip("tqdm")

    class ZMQInteractiveShell:
        pass

    ipython = types.ModuleType("IPython")
    ipython.get_ipython = ZMQInteractiveShell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *rest: None if name == "ipywidgets" else real_find_spec(name, *rest),
    )
    with Progress(2, "epoch") as bar:
        assert bar.shown and type(bar._bar).__module__ == "tqdm.std"
        bar.update("loss=1")
