"""Tests for fit's compiled steps kept between fit calls on the same model."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import numpy as np
import pytest

from chainrule import nn
from chainrule.tensor import Tensor
from chainrule.training import _reuse as reuse
from chainrule.training import fit


def _data(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, (X[:, 0] - X[:, 1] > 0).astype(float)


def _traces(model: Any) -> int:
    """How many programs the model's kept step has recorded (0: none kept)."""
    entry = reuse._kept.get(id(model))
    return 0 if entry is None else entry.step._replay.stats.traces


def _same_run(first: Any, second: Any) -> bool:
    """Whether two fits gave bit-identical histories."""
    return first.as_dict() == second.as_dict()


def _weights(model: Any) -> list[bytes]:
    return [p.data.tobytes() for p in model.parameters()]


def _twin(model: nn.MLP, **kwargs: Any) -> nn.MLP:
    """A fresh MLP of the same shape holding ``model``'s current weights."""
    twin = nn.MLP(model.sizes, **kwargs)
    twin.load_state_dict(model.state_dict())
    return twin


@pytest.mark.parametrize(
    "settings",
    [
        {"optimizer": "sgd", "lr": 0.5},
        {"optimizer": "adam", "lr": 0.05, "batch_size": 16, "seed": 3},
        {"optimizer": "sgd", "lr": 0.3, "weight_decay": 0.01, "class_weight": "balanced"},
        {"optimizer": "sgd", "lr": 0.3, "validation_split": 0.25, "seed": 1},
    ],
)
def test_fit_again_reuses_the_step_bit_for_bit(settings: dict[str, Any]) -> None:
    """A second fit on the same model records nothing and trains exactly as a fresh fit
    of a new model holding the same weights."""
    X, y = _data()
    model = nn.MLP([3, 4, 1], activation="tanh", output_activation="sigmoid", seed=0)
    fit(model, X, y, epochs=4, progress=False, **settings)
    traces = _traces(model)
    assert traces >= 1
    twin = _twin(model, activation="tanh", output_activation="sigmoid")
    again = fit(model, X, y, epochs=6, progress=False, **settings)
    assert _traces(model) == traces  # replayed the kept programs: nothing recorded
    fresh = fit(twin, X, y, epochs=6, progress=False, **settings)
    assert _traces(twin) == traces  # the fresh fit did record
    assert _same_run(again, fresh)
    assert _weights(model) == _weights(twin)


def test_fit_again_records_afresh_when_a_parameter_is_replaced() -> None:
    """Replacing a layer's weight tensor makes the next fit record a new program that
    trains the new tensor (as a fresh model would)."""
    X, y = _data()
    model = nn.MLP([3, 4, 1], output_activation="sigmoid", seed=0)
    fit(model, X, y, epochs=3, lr=0.5, progress=False)
    old_step = reuse._kept[id(model)].step
    weight = model.layers[0].weight
    model.layers[0].weight = Tensor(weight.data * 0.5, requires_grad=True)
    twin = _twin(model, output_activation="sigmoid")
    again = fit(model, X, y, epochs=3, lr=0.5, progress=False)
    assert reuse._kept[id(model)].step is not old_step
    assert _same_run(again, fit(twin, X, y, epochs=3, lr=0.5, progress=False))
    assert _weights(model) == _weights(twin)


def test_fit_again_records_afresh_for_another_loss_or_weight_decay() -> None:
    """Another loss or another weight decay is another program: each fit matches a fresh
    model's fit from the same weights."""
    X, y = _data()
    model = nn.MLP([3, 4, 1], output_activation="sigmoid", seed=0)
    runs = [
        {"loss": "log_loss"},
        {"loss": "mse"},
        {"loss": "mse", "weight_decay": 0.1},
        {"loss": "log_loss"},
    ]
    steps = []
    for settings in runs:
        twin = _twin(model, output_activation="sigmoid")
        history = fit(model, X, y, epochs=3, lr=0.5, progress=False, **settings)
        steps.append(reuse._kept[id(model)].step)
        assert _same_run(history, fit(twin, X, y, epochs=3, lr=0.5, progress=False, **settings))
        assert _weights(model) == _weights(twin)
    assert len({id(step) for step in steps}) == len(steps)


class _Stack(nn.Module):
    """Linear layers with tanh between them, in a list one can append to."""

    def __init__(self, layers: list[nn.Linear]) -> None:
        self.layers = layers

    def forward(self, x: Any) -> Tensor:
        h = Tensor(np.asarray(x, dtype=float))
        for k, layer in enumerate(self.layers):
            h = layer(h)
            if k < len(self.layers) - 1:
                h = h.tanh()
        return h


def test_fit_again_records_afresh_when_a_layer_is_added() -> None:
    """A layer appended to a model's list of layers is trained by the next fit, as a fresh
    model with those layers would be."""
    X, y = _data()
    target = y * 2.0 - 1.0
    model = _Stack([nn.Linear(3, 4, seed=0), nn.Linear(4, 1, seed=1)])
    fit(model, X, target, epochs=3, lr=0.1, progress=False)
    model.layers.append(nn.Linear(1, 1, seed=2))
    twin = _Stack([nn.Linear(3, 4), nn.Linear(4, 1), nn.Linear(1, 1)])
    twin.load_state_dict(model.state_dict())
    again = fit(model, X, target, epochs=3, lr=0.1, progress=False)
    assert _same_run(again, fit(twin, X, target, epochs=3, lr=0.1, progress=False))
    assert _weights(model) == _weights(twin)


class _Scaled(nn.Module):
    """A linear layer whose output is multiplied by a plain Python number it holds."""

    def __init__(self) -> None:
        self.linear = nn.Linear(3, 1, seed=0)
        self.factor = 1.0

    def forward(self, x: Any) -> Tensor:
        return self.linear(Tensor(np.asarray(x, dtype=float))) * self.factor


def test_fit_again_notices_a_number_the_forward_reads_changing() -> None:
    """A model whose forward reads a number besides its parameters has its kept programs
    checked again: after the number changes, fit trains exactly as eager steps do."""
    X, y = _data()
    model = _Scaled()
    fit(model, X, y, epochs=3, lr=0.1, progress=False)
    model.factor = 3.0
    twin = _Scaled()
    twin.load_state_dict(model.state_dict())
    twin.factor = 3.0
    again = fit(model, X, y, epochs=4, lr=0.1, progress=False)
    eager = fit(twin, X, y, epochs=4, lr=0.1, progress=False, compiled=False)
    assert _same_run(again, eager)
    assert _weights(model) == _weights(twin)


def test_fit_keeps_no_model_alive() -> None:
    """The kept step holds its model weakly: a model nobody else holds is freed, and its
    step with it."""
    X, y = _data()
    model = nn.MLP([3, 4, 1], output_activation="sigmoid", seed=0)
    fit(model, X, y, epochs=2, progress=False)
    key, alive = id(model), weakref.ref(model)
    assert key in reuse._kept
    del model
    gc.collect()
    assert alive() is None
    assert key not in reuse._kept


def test_fit_keeps_steps_for_a_bounded_number_of_models() -> None:
    """At most KEPT_MODELS models keep a step; the least recently trained goes first."""
    X, y = _data(n=20)
    models = [nn.MLP([3, 2, 1], output_activation="sigmoid", seed=k) for k in range(10)]
    for model in models:
        fit(model, X, y, epochs=1, progress=False)
    kept = [id(model) in reuse._kept for model in models]
    assert kept == [False] * (10 - reuse.KEPT_MODELS) + [True] * reuse.KEPT_MODELS


def test_fit_called_from_its_own_callback_records_its_own_step() -> None:
    """A fit started by a callback of a fit on the same model (its step is in use)
    records a step of its own, and both train as they would alone."""
    X, y = _data()
    model = nn.MLP([3, 4, 1], output_activation="sigmoid", seed=0)
    inner: list[Any] = []

    def nested(epoch: int, logs: dict[str, float]) -> None:
        if epoch == 2:
            inner.append(fit(model, X, y, epochs=2, lr=0.5, progress=False))

    twin = _twin(model, output_activation="sigmoid")
    outer = fit(model, X, y, epochs=3, lr=0.5, progress=False, callbacks=[nested])
    expected_outer = fit(twin, X, y, epochs=2, lr=0.5, progress=False)
    expected_inner = fit(twin, X, y, epochs=2, lr=0.5, progress=False)
    assert inner[0].loss == expected_inner.loss
    assert outer.loss[:2] == expected_outer.loss


def test_fit_again_with_another_batch_size_matches_a_fresh_fit() -> None:
    """A new batch size records the new batch shapes in the kept step; training still
    matches a fresh model's fit from the same weights bit for bit."""
    X, y = _data()
    model = nn.MLP([3, 4, 1], output_activation="sigmoid", seed=0)
    fit(model, X, y, epochs=2, lr=0.5, progress=False)
    traces = _traces(model)
    twin = _twin(model, output_activation="sigmoid")
    again = fit(model, X, y, epochs=2, lr=0.5, batch_size=25, seed=0, progress=False)
    assert _traces(model) > traces  # batches of 25 and of 10: new shapes, recorded
    expected = fit(twin, X, y, epochs=2, lr=0.5, batch_size=25, seed=0, progress=False)
    assert _same_run(again, expected)
    assert _weights(model) == _weights(twin)
