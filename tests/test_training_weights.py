"""Tests for fit's example weights, class weights, weight decay, schedules and best epoch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from chainrule import Tensor, gradcheck, nn
from chainrule.training import FitSettingError, LengthMismatchError, fit
from chainrule.training._objective import BatchLoss, resolve_objective


def _line_model(w: float = 0.5, b: float = -0.25) -> nn.MLP:
    model = nn.MLP([1, 1], seed=0)
    model.set_weights({"w1[1,1]": w, "w1[1,2]": b})
    return model


def _line_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.array([[-1.0], [0.0], [1.0], [2.0]])
    y = np.array([1.0, -2.0, 0.5, 3.0])
    weights = np.array([1.0, 3.0, 0.0, 2.0])
    return x, y, weights


def test_fit_sample_weight_loss_and_step_match_hand_computation() -> None:
    """The weighted square loss is Σ w·(y − ŷ)² / Σ w and one SGD step follows its gradient."""
    x, y, weights = _line_data()
    model = _line_model()
    history = fit(model, x, y, sample_weight=weights, lr=0.1, epochs=1, progress=False)
    prediction = 0.5 * x[:, 0] - 0.25
    share = weights / weights.sum()
    assert history.loss[0] == pytest.approx(float(np.sum(share * (y - prediction) ** 2)), rel=1e-15)
    slope_gradient = float(np.sum(share * 2 * (prediction - y) * x[:, 0]))
    bias_gradient = float(np.sum(share * 2 * (prediction - y)))
    kept = model.get_weights()
    assert kept["w1[1,1]"] == pytest.approx(0.5 - 0.1 * slope_gradient, rel=1e-14)
    assert kept["w1[1,2]"] == pytest.approx(-0.25 - 0.1 * bias_gradient, rel=1e-14)


def test_fit_integer_sample_weight_equals_repeated_rows() -> None:
    """Weight 2 on a row trains exactly like that row given twice (full batch)."""
    x, y, _ = _line_data()
    weights = np.array([1.0, 2.0, 1.0, 3.0])
    repeat = weights.astype(int)
    weighted, repeated = _line_model(), _line_model()
    h1 = fit(weighted, x, y, sample_weight=weights, lr=0.05, epochs=20, progress=False)
    h2 = fit(repeated, np.repeat(x, repeat, axis=0), np.repeat(y, repeat), lr=0.05, epochs=20,
             progress=False)  # fmt: skip
    np.testing.assert_allclose(h1.loss, h2.loss, rtol=1e-12)
    for key, value in weighted.state_dict().items():
        np.testing.assert_allclose(value, repeated.state_dict()[key], rtol=1e-12)


@pytest.mark.parametrize(
    ("sizes", "output", "targets"),
    [
        ([3, 2], None, np.array([[0.5, -1.0], [2.0, 0.0], [1.0, 1.0], [-0.5, 0.25]])),
        ([3, 1], "sigmoid", np.array([[1.0], [0.0], [0.0], [1.0]])),
        ([3, 3], "softmax", np.array([2, 0, 1, 2])),
    ],
)
def test_batch_loss_weighted_gradient_passes_gradcheck(
    sizes: list[int], output: str | None, targets: np.ndarray
) -> None:
    """The weighted batch loss of each built-in loss has the finite-difference gradient."""
    model = nn.MLP(sizes, output_activation=output, seed=1)
    objective = resolve_objective(model, "auto")
    loss = BatchLoss(objective, weighted=True, weight_decay=0.0, decayed=(), dtype=np.dtype(
        np.float64), max_rows=4)  # fmt: skip
    arrays = loss.arrays(targets, np.array([0.5, 2.0, 1.0, 0.0]))
    logits = np.random.default_rng(0).normal(size=(4, sizes[-1]))
    result = gradcheck(lambda z: loss(z, *arrays), Tensor(logits, requires_grad=True))
    assert result.ok, result.report


def test_batch_loss_weighted_value_matches_hand_computation_for_cross_entropy() -> None:
    """Weighted cross-entropy is Σ w·(−log softmax(z)[class]) / Σ w."""
    model = nn.MLP([2, 3], output_activation="softmax", seed=0)
    loss = BatchLoss(resolve_objective(model, "auto"), weighted=True, weight_decay=0.0,
                     decayed=(), dtype=np.dtype(np.float64), max_rows=3)  # fmt: skip
    z = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0]])
    classes = np.array([1, 2, 0])
    weights = np.array([1.0, 0.5, 2.5])
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    expected = float(np.sum(weights * -log_p[np.arange(3), classes]) / weights.sum())
    value = float(loss(Tensor(z), *loss.arrays(classes, weights)).data)
    assert value == pytest.approx(expected, rel=1e-14)


def _two_class_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = (np.arange(40) < 10).astype(float)  # 10 ones, 30 zeros
    return rng.normal(size=(40, 2)) + y[:, None], y


def _classifier() -> nn.MLP:
    return nn.MLP([2, 1], output_activation="sigmoid", seed=3)


def test_fit_class_weight_balanced_equals_hand_sample_weights() -> None:
    """'balanced' weighs each class n / (classes · count), like the same sample_weight."""
    X, y = _two_class_data()
    by_hand = np.where(y == 1, 40 / (2 * 10), 40 / (2 * 30))
    a, b, c = _classifier(), _classifier(), _classifier()
    ha = fit(a, X, y, class_weight="balanced", epochs=5, progress=False)
    hb = fit(b, X, y, sample_weight=by_hand, epochs=5, progress=False)
    hc = fit(c, X, y, class_weight={1: 2.0, 0: 2.0 / 3.0}, epochs=5, progress=False)
    assert ha.loss == hb.loss
    np.testing.assert_allclose(hc.loss, ha.loss, rtol=1e-12)
    for key in a.state_dict():
        np.testing.assert_array_equal(a.state_dict()[key], b.state_dict()[key])


def test_fit_weight_decay_adds_half_l2_of_weights_not_biases() -> None:
    """weight_decay adds wd/2·Σ‖W‖² to the loss and wd·W to the weights' gradient only."""
    x, y, _ = _line_data()
    model = _line_model()
    history = fit(model, x, y, weight_decay=0.2, lr=0.1, epochs=1, progress=False)
    prediction = 0.5 * x[:, 0] - 0.25
    data_loss = float(np.mean((y - prediction) ** 2))
    assert history.loss[0] == pytest.approx(data_loss + 0.1 * 0.5**2, rel=1e-15)
    slope_gradient = float(np.mean(2 * (prediction - y) * x[:, 0])) + 0.2 * 0.5
    bias_gradient = float(np.mean(2 * (prediction - y)))
    kept = model.get_weights()
    assert kept["w1[1,1]"] == pytest.approx(0.5 - 0.1 * slope_gradient, rel=1e-14)
    assert kept["w1[1,2]"] == pytest.approx(-0.25 - 0.1 * bias_gradient, rel=1e-14)


def test_fit_lr_schedules_set_each_epochs_rate() -> None:
    """'step' halves every quarter, 'cosine' follows a half cosine, a callable is a factor."""
    x, y, _ = _line_data()
    step = fit(_line_model(), x, y, lr=0.01, epochs=8, lr_schedule="step", progress=False)
    assert step.learning_rate == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025,
                                                0.00125, 0.00125])  # fmt: skip
    cosine = fit(_line_model(), x, y, lr=0.01, epochs=4, lr_schedule="cosine", progress=False)
    expected = [0.005 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]
    assert cosine.learning_rate == pytest.approx(expected)
    own = fit(_line_model(), x, y, lr=0.01, epochs=3, lr_schedule=lambda e: 1 / e, progress=False)
    assert own.learning_rate == pytest.approx([0.01, 0.005, 0.01 / 3])


def test_fit_early_stopping_restored_weights_have_the_reported_best_val_loss() -> None:
    """After early stopping, the validation loss of the model equals History.best_loss."""
    model = nn.MLP([1, 1], bias=False, seed=0)
    model.set_weights({"w1[1,1]": 0.0})
    x = np.linspace(-1.0, 1.0, 21).reshape(-1, 1)
    history = fit(model, x, 2.0 * x[:, 0], validation_data=(x, x[:, 0]), lr=0.5, epochs=100,
                  early_stopping=3, progress=False)  # fmt: skip
    assert history.restored and history.stop_reason == "early_stopping"
    assert history.best_loss == min(history.val_loss)
    measured = float(nn.mse_loss(model(x), x[:, 0]).data)
    assert measured == history.best_loss


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sample_weight": [1.0, -1.0, 1.0, 1.0]}, "negative, NaN or Inf"),
        ({"sample_weight": [0.0, 0.0, 0.0, 0.0]}, "all zeros"),
        ({"class_weight": "balanced"}, "class_weight is for classifiers"),
        ({"weight_decay": -1.0}, "weight_decay must be a number of at least 0"),
        ({"lr_schedule": "linear"}, "unknown lr_schedule 'linear'"),
        ({"lr_schedule": lambda epoch: 0.0}, r"lr_schedule\(1\) returned 0.0"),
        ({"sample_weight": [1.0] * 4, "loss": lambda p, t: ((p - t) ** 2).mean()}, "custom loss"),
    ],
)
def test_fit_rejects_bad_weights_and_schedules(options: dict[str, Any], message: str) -> None:
    """Bad weights, decay and schedules raise FitSettingError saying what is wrong."""
    x, y, _ = _line_data()
    with pytest.raises(FitSettingError, match=message):
        fit(_line_model(), x, y, epochs=2, progress=False, **options)


def test_fit_rejects_sample_weight_of_wrong_length() -> None:
    """A sample_weight with another number of rows than X is a LengthMismatchError."""
    x, y, _ = _line_data()
    with pytest.raises(LengthMismatchError, match="one weight per example"):
        fit(_line_model(), x, y, sample_weight=[1.0, 2.0], progress=False)


def test_fit_neuron_mlp_weighted_and_decayed_follows_tensor_mlp() -> None:
    """sample_weight, class_weight and weight_decay train the neuron-level network as the
    tensor-level one (the decay skips the bias weights in both)."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(12, 2))
    y = (X[:, 0] > 0).astype(float)
    mlp = nn.MLP([2, 3, 1], activation="tanh", output_activation="sigmoid", seed=4)
    neuron = nn.NeuronMLP.from_mlp(mlp)
    options: dict[str, Any] = {
        "loss": "log_loss",
        "lr": 0.5,
        "epochs": 4,
        "batch_size": 5,
        "seed": 1,
        "progress": False,
        "sample_weight": np.linspace(0.2, 2.0, 12),
        "class_weight": "balanced",
        "weight_decay": 0.1,
    }
    tensor_history = fit(mlp, X, y, **options)
    neuron_history = fit(neuron, X, y, **options)
    np.testing.assert_allclose(neuron_history.loss, tensor_history.loss, rtol=1e-12)
    for key, value in mlp.state_dict().items():
        np.testing.assert_allclose(neuron.state_dict()[key], value, rtol=1e-12)
