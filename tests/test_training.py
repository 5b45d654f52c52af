"""Tests for chainrule.fit and History: the training loop, its checks, and its stops."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

import chainrule
from chainrule import nn, optim
from chainrule.training import (
    FitError,
    FitSettingError,
    History,
    LabelError,
    LengthMismatchError,
    NonFiniteInputError,
    TrainingDivergedWarning,
    fit,
)

# --- data and helpers ---------------------------------------------------------------------


def _separable(n: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs a clear margin apart: a linearly separable binary problem."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    centres = np.where(labels[:, None] == 1, 2.0, -2.0)
    return centres + rng.normal(scale=0.5, size=(n, 2)), labels.astype(float)


def _three_classes(n: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    centres = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])[labels]
    return centres + rng.normal(scale=0.6, size=(n, 2)), labels


def _classifier(seed: int = 0, **options: Any) -> nn.MLP:
    return nn.MLP([2, 4, 1], activation="tanh", output_activation="sigmoid", seed=seed, **options)


def _state_bytes(model: Any) -> dict[str, bytes]:
    return {key: value.tobytes() for key, value in model.state_dict().items()}


class _Snapshots:
    """A callback that keeps the weights at the end of every epoch."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.states: dict[int, dict[str, bytes]] = {}

    def __call__(self, epoch: int, logs: dict[str, float]) -> None:
        self.states[epoch] = _state_bytes(self.model)


def _drifting_slope() -> tuple[nn.MLP, tuple[np.ndarray, ...]]:
    """A 1→1 linear model starting at w = 0, trained towards y = 2x but validated on y = x:
    the validation loss falls until w passes 1, then rises (a deterministic overfit)."""
    model = nn.MLP([1, 1], bias=False, seed=0)
    model.set_weights({"w1[1,1]": 0.0})
    x = np.linspace(-1.0, 1.0, 21).reshape(-1, 1)
    return model, (x, 2.0 * x[:, 0], x, x[:, 0])


# --- learning -------------------------------------------------------------------------------


def test_fit_loss_decreases_on_separable_problem() -> None:
    """Full-batch gradient descent lowers the loss every epoch and separates the classes."""
    X, y = _separable()
    model = _classifier()
    history = fit(model, X, y, lr=0.5, epochs=60, progress=False)
    assert history.epoch == list(range(1, 61))
    assert all(later < earlier for earlier, later in zip(history.loss, history.loss[1:]))
    assert history.loss[-1] < 0.2 * history.loss[0]
    assert history.accuracy[-1] == 1.0
    assert history.val_loss == [] and history.val_accuracy == []


def test_fit_minibatch_adam_loss_decreases() -> None:
    """Shuffled minibatches with Adam also drive the loss down on a separable problem."""
    X, y = _separable(n=120)
    history = fit(
        _classifier(),
        X,
        y,
        optimizer="adam",
        lr=0.05,
        batch_size=16,
        epochs=20,
        seed=3,
        progress=False,
    )
    assert history.loss[-1] < 0.25 * history.loss[0]
    assert history.accuracy[-1] == 1.0


def test_fit_learns_xor_with_plain_gradient_descent() -> None:
    """A 2→2→1 sigmoid MLP learns XOR to 100 % by full-batch gradient descent through fit."""
    model = nn.MLP([2, 2, 1], activation="sigmoid", output_activation="sigmoid", seed=3)
    history = fit(
        model, [[0, 0], [0, 1], [1, 0], [1, 1]], [0, 1, 1, 0], lr=2.0, epochs=3000, progress=False
    )
    assert history.accuracy[-1] == 1.0
    predictions = model([[0, 0], [0, 1], [1, 0], [1, 1]]).data[:, 0]
    assert list(predictions > 0.5) == [False, True, True, False]


def test_fit_softmax_classifier_uses_cross_entropy_and_argmax_accuracy() -> None:
    """A softmax output trains with cross-entropy; accuracy is the argmax hit rate."""
    X, y = _three_classes()
    model = nn.MLP([2, 8, 3], activation="tanh", output_activation="softmax", seed=0)
    history = fit(model, X, y, lr=0.5, epochs=80, progress=False)
    assert history.loss[-1] < 0.2 * history.loss[0]
    by_hand = float(np.mean(model(X).data.argmax(axis=1) == y))
    assert history.accuracy[-1] == by_hand > 0.95


def test_fit_regressor_reports_no_accuracy() -> None:
    """A linear output trains with square loss, finds the line, and reports no accuracy."""
    X = np.random.default_rng(0).normal(size=(50, 2))
    y = X @ np.array([1.5, -2.0]) + 0.5
    model = nn.MLP([2, 1], seed=0)
    history = fit(model, X, y, lr=0.2, epochs=300, progress=False)
    assert history.accuracy == [] and history.val_accuracy == []
    np.testing.assert_allclose(model.layers[0].weight.data, [[1.5, -2.0]], atol=1e-6)
    np.testing.assert_allclose(model.layers[0].bias.data, [0.5], atol=1e-6)


def test_fit_neuron_mlp_matches_tensor_mlp() -> None:
    """The neuron-level network trained by fit follows the tensor-level one step for step."""
    X, y = _separable(n=12)
    mlp = _classifier(seed=4)
    neuron = nn.NeuronMLP.from_mlp(mlp)
    options: dict[str, Any] = {
        "lr": 0.5,
        "epochs": 5,
        "batch_size": 5,
        "seed": 7,
        "progress": False,
    }
    tensor_history = fit(mlp, X, y, loss="log_loss", **options)
    neuron_history = fit(neuron, X, y, loss="log_loss", **options)
    np.testing.assert_allclose(neuron_history.loss, tensor_history.loss, rtol=1e-12)
    assert neuron_history.accuracy == tensor_history.accuracy
    for key, value in mlp.state_dict().items():
        np.testing.assert_allclose(neuron.state_dict()[key], value, rtol=1e-12, atol=1e-15)


def test_fit_log_loss_after_sigmoid_is_computed_from_logits() -> None:
    """With saturated outputs, fit's log loss is exactly mean(softplus(z) − y·z), not clamped."""
    model = nn.MLP([1, 1], output_activation="sigmoid", seed=0)
    model.set_weights({"w1[1,1]": 1000.0, "w1[1,2]": 0.0})
    X = np.array([[1.0], [-1.0]])
    y = np.array([0.0, 1.0])  # both confidently wrong: logits ±1000
    history = fit(model, X, y, loss="log_loss", lr=1e-9, epochs=1, progress=False)
    z = np.array([1000.0, -1000.0])
    exact = float(np.mean(np.logaddexp(0.0, z) - y * z))
    assert history.loss[0] == pytest.approx(exact, rel=1e-12)
    assert exact == pytest.approx(1000.0)


def test_fit_epoch_loss_is_mean_over_examples_with_uneven_batches() -> None:
    """With a last batch smaller than the others, the epoch loss is still the mean over
    examples: equal to the full-data loss when the weights do not move."""

    class Frozen:
        """An optimizer that never changes the weights."""

        def __init__(self, params: list[Any]) -> None:
            self.params = params
            self.lr = 1.0

        def zero_grad(self) -> None:
            for parameter in self.params:
                parameter.zero_grad()

        def step(self) -> None:
            pass

    X = np.random.default_rng(1).normal(size=(10, 2))
    y = X[:, 0] - X[:, 1]
    model = nn.MLP([2, 3, 1], seed=0)
    history = fit(
        model,
        X,
        y,
        optimizer=Frozen(model.parameters()),
        batch_size=4,
        epochs=2,
        seed=0,
        progress=False,
    )
    full = float(nn.mse_loss(model(X), y).data)
    np.testing.assert_allclose(history.loss, [full, full], rtol=1e-12)


# --- reproducibility ------------------------------------------------------------------------


def test_fit_same_seed_reproduces_losses_and_weights_bit_for_bit() -> None:
    """Two runs with the same seed (shuffle, split, minibatches, Adam) are bit-identical;
    another seed gives a different run."""
    X, y = _separable(n=64)

    def run(seed: int) -> tuple[History, dict[str, bytes]]:
        model = _classifier(seed=11)
        history = fit(
            model,
            X,
            y,
            optimizer="adam",
            lr=0.01,
            batch_size=8,
            epochs=6,
            validation_split=0.25,
            seed=seed,
            progress=False,
        )
        return history, _state_bytes(model)

    first, first_weights = run(seed=5)
    second, second_weights = run(seed=5)
    assert first.as_dict() == second.as_dict()
    assert first_weights == second_weights
    other, other_weights = run(seed=6)
    assert other.loss != first.loss
    assert other_weights != first_weights


# --- validation and accuracy ------------------------------------------------------------------


def test_fit_validation_data_reports_loss_and_accuracy() -> None:
    """val_loss and val_accuracy are the final model's loss and hit rate on the given data."""
    X, y = _separable(n=60, seed=0)
    X_val, y_val = _separable(n=30, seed=1)
    y_val[:3] = 1.0 - y_val[:3]  # some validation labels no model can get right
    model = _classifier()
    history = fit(model, X, y, validation_data=(X_val, y_val), lr=0.5, epochs=15, progress=False)
    assert len(history.val_loss) == len(history.val_accuracy) == 15
    assert history.monitor == "val_loss"
    logits = model.forward_logits(X_val)
    by_hand = float(nn.binary_cross_entropy_with_logits(logits, y_val).data)
    assert history.val_loss[-1] == pytest.approx(by_hand, rel=1e-12)
    assert history.val_accuracy[-1] == float(np.mean((logits.data[:, 0] >= 0) == (y_val == 1)))
    assert history.val_accuracy[-1] == pytest.approx(27 / 30)
    assert history.accuracy[-1] == float(np.mean((model(X).data[:, 0] >= 0.5) == (y == 1)))


def test_fit_validation_split_holds_out_that_fraction() -> None:
    """validation_split=0.25 of 100 examples trains on 75: a batch of 76 no longer fits."""
    X, y = _separable(n=100)
    history = fit(
        _classifier(),
        X,
        y,
        validation_split=0.25,
        batch_size=75,
        lr=0.5,
        epochs=5,
        seed=0,
        progress=False,
    )
    assert len(history.val_loss) == len(history.val_accuracy) == 5
    assert history.val_loss[-1] < history.val_loss[0]
    with pytest.raises(FitSettingError, match="75 training examples"):
        fit(_classifier(), X, y, validation_split=0.25, batch_size=76, progress=False)


def test_history_as_dict_is_plain_json() -> None:
    """History.as_dict() holds plain lists and numbers that json can write."""
    X, y = _separable(n=20)
    history = fit(_classifier(), X, y, validation_split=0.2, epochs=3, seed=0, progress=False)
    data = json.loads(json.dumps(history.as_dict()))
    assert data["epoch"] == [1, 2, 3]
    assert set(data) >= {
        "loss",
        "val_loss",
        "accuracy",
        "val_accuracy",
        "best_epoch",
        "stopped_early",
        "interrupted",
    }


# --- stopping -------------------------------------------------------------------------------


def test_fit_early_stopping_restores_best_weights() -> None:
    """Training stops `patience` epochs after the lowest validation loss and ends with the
    weights of that best epoch, not the last one."""
    model, (x, y, x_val, y_val) = _drifting_slope()
    snapshots = _Snapshots(model)
    history = fit(
        model,
        x,
        y,
        validation_data=(x_val, y_val),
        lr=0.5,
        epochs=100,
        early_stopping=3,
        callbacks=[snapshots],
        progress=False,
    )
    best = history.best_epoch
    assert best is not None and history.stopped_early
    assert history.val_loss[best - 1] == min(history.val_loss)
    assert history.epoch[-1] == best + 3 < 100
    assert _state_bytes(model) == snapshots.states[best]
    assert _state_bytes(model) != snapshots.states[history.epoch[-1]]


def test_fit_early_stopping_without_validation_watches_training_loss() -> None:
    """Without validation data the training loss is watched; a diverging run stops early and
    keeps the weights after its best epoch."""
    X = np.linspace(-3.0, 3.0, 20).reshape(-1, 1)
    model = nn.MLP([1, 1], seed=0)
    snapshots = _Snapshots(model)
    history = fit(
        model,
        X,
        3.0 * X[:, 0],
        lr=0.5,
        epochs=50,
        early_stopping=2,
        callbacks=[snapshots],
        progress=False,
    )  # lr too large: the loss grows
    assert history.monitor == "loss"
    assert history.stopped_early and history.best_epoch is not None
    assert history.epoch[-1] == history.best_epoch + 2
    assert _state_bytes(model) == snapshots.states[history.best_epoch]


def test_fit_keyboard_interrupt_keeps_best_weights_and_returns_history() -> None:
    """Ctrl-C (a callback raising KeyboardInterrupt) stops cleanly with the best weights."""
    model, (x, y, x_val, y_val) = _drifting_slope()
    snapshots = _Snapshots(model)

    def interrupt_at_epoch_12(epoch: int, logs: dict[str, float]) -> None:
        if epoch == 12:
            raise KeyboardInterrupt

    history = fit(
        model,
        x,
        y,
        validation_data=(x_val, y_val),
        lr=0.5,
        epochs=100,
        callbacks=[snapshots, interrupt_at_epoch_12],
        progress=False,
    )
    assert history.interrupted and not history.stopped_early
    assert history.epoch == list(range(1, 13))
    best = history.best_epoch
    assert best is not None and best < 12
    assert _state_bytes(model) == snapshots.states[best]


def test_fit_keyboard_interrupt_mid_step_restores_best_weights() -> None:
    """Ctrl-C inside an optimizer step (weights half-updated) restores the best epoch's."""
    X, y = _separable(n=40)
    model = _classifier()
    snapshots = _Snapshots(model)

    class InterruptedSGD(optim.SGD):
        calls = 0

        def step(self) -> None:
            InterruptedSGD.calls += 1
            if InterruptedSGD.calls == 23:  # in epoch 5 of 5 batches each, mid-epoch
                self.params[0].data += 100.0  # a half-done update
                raise KeyboardInterrupt
            super().step()

    history = fit(
        model,
        X,
        y,
        optimizer=InterruptedSGD(model.parameters(), lr=0.1),
        batch_size=8,
        epochs=10,
        seed=0,
        callbacks=[snapshots],
        progress=False,
    )
    assert history.interrupted
    assert history.epoch == [1, 2, 3, 4]
    assert history.best_epoch is not None
    assert _state_bytes(model) == snapshots.states[history.best_epoch]


def test_fit_interrupt_before_first_epoch_restores_initial_weights() -> None:
    """Ctrl-C during the very first epoch leaves the model exactly as it was."""
    X, y = _separable(n=20)
    model = _classifier()
    before = _state_bytes(model)

    class InterruptAtOnce(optim.SGD):
        def step(self) -> None:
            super().step()
            raise KeyboardInterrupt

    history = fit(
        model, X, y, optimizer=InterruptAtOnce(model.parameters(), lr=0.1), progress=False
    )
    assert history.interrupted and history.epoch == [] and history.best_epoch is None
    assert _state_bytes(model) == before


def test_fit_callback_returning_true_stops_training() -> None:
    """A callback returning True ends training after that epoch; it sees every log."""
    X, y = _separable(n=20)
    seen: list[tuple[int, dict[str, float]]] = []

    def stop_at_three(epoch: int, logs: dict[str, float]) -> bool:
        seen.append((epoch, dict(logs)))
        return epoch == 3

    history = fit(
        _classifier(),
        X,
        y,
        validation_split=0.2,
        epochs=10,
        seed=0,
        callbacks=[stop_at_three],
        progress=False,
    )
    assert history.epoch == [1, 2, 3] and history.stopped_early
    assert [epoch for epoch, _ in seen] == [1, 2, 3]
    assert set(seen[0][1]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert seen[-1][1]["loss"] == history.loss[-1]


def test_fit_diverging_loss_stops_and_restores_finite_weights() -> None:
    """A learning rate so large that the loss overflows stops training with the best weights."""
    X = np.linspace(-100.0, 100.0, 11).reshape(-1, 1)
    model = nn.MLP([1, 1], seed=0)
    with pytest.warns(TrainingDivergedWarning, match="smaller learning rate"):
        history = fit(model, X, X[:, 0], lr=10.0, epochs=500, progress=False)
    assert history.diverged and history.stopped_early
    assert len(history.epoch) < 500
    assert not history.loss[-1] < 10 * history.loss[0]  # NaN, Inf, or far above the start
    assert all(np.isfinite(value).all() for value in model.state_dict().values())


# --- inputs ---------------------------------------------------------------------------------


def test_fit_accepts_lists_and_pandas_with_identical_results() -> None:
    """numpy arrays, nested lists and a pandas DataFrame/Series give bit-identical runs."""
    pandas = pytest.importorskip("pandas")
    X, y = _separable(n=30)
    frame = pandas.DataFrame(X, columns=["height", "weight"])
    inputs = {
        "numpy": (X, y),
        "lists": (X.tolist(), y.tolist()),
        "pandas": (frame, pandas.Series(y, name="label")),
        "pandas int labels": (frame, pandas.Series(y.astype(int))),
    }
    results = []
    for X_in, y_in in inputs.values():
        model = _classifier(seed=2)
        history = fit(
            model, X_in, y_in, batch_size=10, epochs=4, validation_split=0.2, seed=1, progress=False
        )
        results.append((history.as_dict(), _state_bytes(model)))
    assert all(result == results[0] for result in results[1:])


def test_fit_does_not_import_pandas_for_numpy_input() -> None:
    """pandas is optional: training on numpy arrays and lists never imports it."""
    code = (
        "import sys, numpy as np, chainrule as cr\n"
        "model = cr.nn.MLP([2, 1], output_activation='sigmoid', seed=0)\n"
        "cr.fit(model, np.eye(2), [0, 1], epochs=2)\n"
        "cr.fit(model, [[0, 1], [1, 0]], [1, 0], epochs=2)\n"
        "assert 'pandas' not in sys.modules, 'pandas was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)


def test_fit_accepts_single_feature_column_and_float32_model() -> None:
    """A 1-D X is one feature per example, and float64 data trains a float32 model."""
    x = np.linspace(-1.0, 1.0, 30)
    model = nn.MLP([1, 1], dtype="float32", seed=0)
    history = fit(model, x, 3.0 * x, lr=0.5, epochs=100, progress=False)
    assert history.loss[-1] < 1e-6
    assert model.layers[0].weight.data.dtype == np.float32


def test_fit_with_optimizer_instance_and_lr_override() -> None:
    """An optimizer instance is used as given, and lr= replaces its learning rate."""
    X, y = _separable(n=20)
    model = _classifier()
    sgd = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    fit(model, X, y, optimizer=sgd, lr=0.3, epochs=2, progress=False)
    assert sgd.lr == 0.3


def test_fit_with_loss_module_and_callable() -> None:
    """A chainrule loss module and a plain callable are both accepted as the loss."""
    X = np.random.default_rng(0).normal(size=(30, 2))
    y = X.sum(axis=1)
    by_module = fit(nn.MLP([2, 1], seed=0), X, y, loss=nn.MSELoss(), epochs=5, progress=False)
    by_callable = fit(
        nn.MLP([2, 1], seed=0), X, y, loss=lambda p, t: nn.mse_loss(p, t), epochs=5, progress=False
    )
    by_name = fit(nn.MLP([2, 1], seed=0), X, y, loss="mse", epochs=5, progress=False)
    assert by_module.loss == by_callable.loss == by_name.loss
    assert by_name.loss[-1] < by_name.loss[0]


def _bad_input_cases() -> list[Any]:
    X, y = _separable(n=20)
    with_nan = X.copy()
    with_nan[[1, 4], 1] = np.nan
    with_inf = X.copy()
    with_inf[2, 0] = np.inf
    return [
        pytest.param(
            {"X": with_nan}, NonFiniteInputError, r"2 NaN and 0 Inf.*column 1: 2 NaN", id="nan-in-X"
        ),
        pytest.param({"X": with_inf}, NonFiniteInputError, r"column 0: 1 Inf", id="inf-in-X"),
        pytest.param(
            {"y": np.where(y == 1, 1.0, -1.0)},
            LabelError,
            r"6 labels outside \{0, 1\} \(values such as -1\)",
            id="labels-minus-one",
        ),
        pytest.param(
            {"y": y * 2, "loss": "bce_with_logits"},
            LabelError,
            r"outside \{0, 1\}",
            id="labels-two-logits-loss",
        ),
        pytest.param(
            {"y": np.append(y, 1.0)},
            LengthMismatchError,
            "X has 20 rows but y has 21",
            id="length-mismatch",
        ),
        pytest.param({"batch_size": 0}, FitSettingError, "batch_size", id="batch-size-zero"),
        pytest.param(
            {"batch_size": 21},
            FitSettingError,
            "from 1 to the 20 training examples",
            id="batch-size-too-large",
        ),
        pytest.param({"batch_size": 2.5}, FitSettingError, "batch_size", id="batch-size-float"),
        pytest.param({"lr": 0.0}, FitSettingError, "positive", id="lr-zero"),
        pytest.param({"lr": -0.1}, FitSettingError, "positive", id="lr-negative"),
        pytest.param({"lr": float("nan")}, FitSettingError, "positive", id="lr-nan"),
        pytest.param({"epochs": 0}, FitSettingError, "epochs", id="epochs-zero"),
        pytest.param({"epochs": 2.5}, FitSettingError, "epochs", id="epochs-float"),
        pytest.param({"early_stopping": 0}, FitSettingError, "early_stopping", id="patience-zero"),
        pytest.param(
            {"validation_split": 1.0}, FitSettingError, "validation_split", id="split-one"
        ),
        pytest.param(
            {"validation_split": 0.01}, FitSettingError, "both need at least one", id="split-empty"
        ),
        pytest.param(
            {"validation_split": 0.2, "validation_data": (X, y)},
            FitSettingError,
            "not both",
            id="split-and-data",
        ),
        pytest.param(
            {"validation_data": (with_nan, y)},
            NonFiniteInputError,
            "validation X",
            id="nan-in-validation",
        ),
        pytest.param(
            {"validation_data": (X, y[:5])},
            LengthMismatchError,
            "validation",
            id="validation-length",
        ),
        pytest.param({"X": X[:, :1]}, FitError, "takes 2 inputs", id="too-few-columns"),
        pytest.param({"X": X.reshape(20, 2, 1)}, FitError, "2-D", id="three-d-X"),
        pytest.param({"X": [["a", "b"]] * 20}, FitError, "numbers", id="text-X"),
        pytest.param({"loss": "hinge"}, FitSettingError, "unknown loss", id="unknown-loss"),
        pytest.param(
            {"optimizer": "rmsprop"}, FitSettingError, "unknown optimizer", id="unknown-optimizer"
        ),
        pytest.param({"callbacks": [42]}, FitSettingError, "callback", id="callback-not-callable"),
        pytest.param(
            {"optimizer": optim.SGD(_classifier().parameters(), lr=0.1)},
            FitSettingError,
            "other parameters",
            id="optimizer-of-another-model",
        ),
    ]


@pytest.mark.parametrize(("changes", "error", "message"), _bad_input_cases())
def test_fit_rejects_bad_input_before_training(
    changes: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Each bad input raises its own error, a ChainruleError and ValueError naming the
    problem, before any weight changes."""
    X, y = _separable(n=20)
    arguments: dict[str, Any] = {"X": X, "y": y, "lr": 0.5, "epochs": 3, "progress": False}
    arguments.update(changes)
    model = _classifier()
    before = _state_bytes(model)
    with pytest.raises(error, match=message) as caught:
        fit(model, **arguments)
    assert isinstance(caught.value, chainrule.ChainruleError)
    assert isinstance(caught.value, ValueError)
    assert _state_bytes(model) == before


def test_fit_cross_entropy_rejects_non_integer_and_out_of_range_classes() -> None:
    """Class labels for cross-entropy must be whole numbers from 0 to classes − 1."""
    X, y = _three_classes(n=12)
    model = nn.MLP([2, 3], output_activation="softmax", seed=0)
    before = _state_bytes(model)
    fractional = y.astype(float)
    fractional[5] = 1.5
    with pytest.raises(LabelError, match=r"non-integer class labels \(row 5 is 1.5\)"):
        fit(model, X, fractional, progress=False)
    with pytest.raises(LabelError, match="outside 0 to 2"):
        fit(model, X, y + 1, progress=False)
    assert _state_bytes(model) == before
    one_hot = np.eye(3)[y]
    history = fit(model, X, one_hot, lr=0.5, epochs=20, progress=False)  # one-hot rows work
    assert history.loss[-1] < history.loss[0]


def test_fit_reports_pandas_column_names_for_missing_values() -> None:
    """NaN (and pandas' NA) are counted per named DataFrame column."""
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(
        {
            "age": pandas.array([22, None, 30, None], dtype="Int64"),
            "fare": [7.25, 71.3, float("nan"), 8.05],
            "sex": [0, 1, 1, 0],
        }
    )
    model = nn.MLP([3, 1], output_activation="sigmoid", seed=0)
    with pytest.raises(NonFiniteInputError, match=r"3 NaN.*column 'age': 2 NaN; column 'fare': 1"):
        fit(model, frame, [0, 1, 1, 0], progress=False)


def test_fit_rejects_non_numeric_pandas_columns() -> None:
    """A text column in a DataFrame is named in the error."""
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"age": [22.0, 38.0], "name": ["Braund", "Cumings"]})
    with pytest.raises(FitError, match=r"non-numeric columns \['name'\]"):
        fit(nn.MLP([2, 1], seed=0), frame, [0.0, 1.0], progress=False)


def test_fit_rejects_values_too_large_for_float32() -> None:
    """Values that overflow a float32 model are reported, not silently turned into Inf."""
    X = np.array([[1.0], [1e300]])
    with pytest.raises(NonFiniteInputError, match="too large for float32"):
        fit(nn.MLP([1, 1], dtype="float32", seed=0), X, [0.0, 1.0], progress=False)


# --- progress bar -----------------------------------------------------------------------------


class _Terminal(io.StringIO):
    """A standard-error stand-in that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_fit_shows_progress_bar_with_loss_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal, fit draws a tqdm bar over the epochs showing the current loss."""
    pytest.importorskip("tqdm")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    X, y = _separable(n=20)
    fit(_classifier(), X, y, epochs=7, progress=True)
    output = terminal.getvalue()
    assert "7/7" in output and "loss=" in output


def test_fit_is_silent_off_a_terminal_or_when_asked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No bar when standard error is not a terminal, nor with progress=False."""
    X, y = _separable(n=20)
    fit(_classifier(), X, y, epochs=3, progress=True)
    assert capsys.readouterr().err == ""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    fit(_classifier(), X, y, epochs=3, progress=False)
    assert terminal.getvalue() == ""


def test_fit_trains_silently_without_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without tqdm installed, fit still trains (and prints nothing) on a terminal."""
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm` fail
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    X, y = _separable(n=20)
    history = fit(_classifier(), X, y, lr=0.5, epochs=5, progress=True)
    assert len(history.loss) == 5 and history.loss[-1] < history.loss[0]
    assert terminal.getvalue() == ""


def test_fit_is_exported_at_top_level() -> None:
    """chainrule.fit and chainrule.History are the training module's."""
    assert chainrule.fit is fit
    assert chainrule.History is History


def test_fit_compiled_step_matches_eager_bit_for_bit() -> None:
    """fit's default compiled step gives exactly the eager step's losses and weights."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((120, 4))
    y = (X[:, 0] - X[:, 2] > 0).astype(float)
    runs = []
    for compiled in (True, False):
        model = nn.MLP([4, 6, 1], activation="tanh", output_activation="sigmoid", seed=5)
        history = chainrule.fit(
            model,
            X,
            y,
            optimizer="adam",
            lr=0.05,
            epochs=15,
            batch_size=32,
            seed=0,
            validation_split=0.2,
            progress=False,
            compiled=compiled,
        )
        runs.append((history.loss, history.val_loss, model.state_dict()))
    (loss_c, val_c, state_c), (loss_e, val_e, state_e) = runs
    assert loss_c == loss_e and val_c == val_e
    for key in state_e:
        np.testing.assert_array_equal(state_c[key], state_e[key])
