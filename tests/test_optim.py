"""Tests for chainrule.optim: SGD (plain, momentum, weight decay) and Adam."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim


def _loss_and_backward(model: nn.MLP, x: np.ndarray, y: np.ndarray) -> None:
    model.zero_grad()
    nn.mse_loss(model(x), y).backward()


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 3)), rng.normal(size=(8, 1))


def test_sgd_step_is_exactly_w_minus_lr_times_gradient() -> None:
    """With momentum 0 one step gives w − η·∇L bit for bit, for every parameter."""
    model = nn.MLP([3, 4, 1], activation="tanh", seed=0)
    x, y = _data()
    _loss_and_backward(model, x, y)
    before = {name: (p.data.copy(), p.grad.copy()) for name, p in model.named_parameters()}
    optim.SGD(model.parameters(), lr=0.1).step()
    for name, parameter in model.named_parameters():
        weight, gradient = before[name]
        assert np.array_equal(parameter.data, weight - 0.1 * gradient), name


def test_sgd_step_matches_the_quiz_gradient_descent_update_by_hand() -> None:
    """Quiz ex. 1 part 4: w_j ← w_j − η·(−2(y − f)·f(1 − f)·x_j), computed by hand."""
    x1, x2, y, eta = 1.5, -0.5, 0.0, 0.3
    w = [cr.Value(0.1), cr.Value(0.2), cr.Value(-0.3)]
    start = [v.data for v in w]
    f = (w[0] + w[1] * x1 + w[2] * x2).sigmoid()
    nn.square_loss(f, y).backward()
    optim.SGD(w, lr=eta).step()
    s = start[0] + start[1] * x1 + start[2] * x2
    f_value = 1 / (1 + math.exp(-s))
    for weight, w_start, x_j in zip(w, start, (1.0, x1, x2)):
        by_hand = w_start - eta * (-2 * (y - f_value) * f_value * (1 - f_value) * x_j)
        assert weight.data == pytest.approx(by_hand, rel=1e-14)
        assert isinstance(weight.data, float)


def test_sgd_skips_parameters_without_gradient() -> None:
    """A Tensor whose grad is None is left unchanged."""
    used = cr.tensor([1.0, 2.0], requires_grad=True)
    unused = cr.tensor([3.0], requires_grad=True)
    (used * used).sum().backward()
    optim.SGD([used, unused], lr=0.5).step()
    np.testing.assert_array_equal(used.data, [0.0, 0.0])
    np.testing.assert_array_equal(unused.data, [3.0])


def test_sgd_updates_in_place_and_never_writes_into_grad() -> None:
    """step changes the same data array and leaves grad untouched."""
    w = cr.tensor([1.0, -2.0], requires_grad=True)
    data = w.data
    (w * w).sum().backward()
    grad = w.grad
    grad_before = grad.copy()
    optimizer = optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=0.01)
    optimizer.step()
    optimizer.step()
    assert w.data is data
    assert w.grad is grad
    np.testing.assert_array_equal(w.grad, grad_before)


def test_sgd_momentum_and_weight_decay_follow_their_recurrence() -> None:
    """v ← μv + (g + λw), w ← w − ηv, with v starting at the first gradient."""
    w = cr.tensor([0.5, -1.5, 2.0], requires_grad=True)
    optimizer = optim.SGD([w], lr=0.05, momentum=0.8, weight_decay=0.1)
    w_ref, v_ref = w.data.copy(), None
    for _ in range(5):
        optimizer.zero_grad()
        (w.sin() * w).sum().backward()
        g = np.sin(w_ref) + w_ref * np.cos(w_ref) + 0.1 * w_ref
        v_ref = g if v_ref is None else 0.8 * v_ref + g
        w_ref = w_ref - 0.05 * v_ref
        optimizer.step()
        np.testing.assert_allclose(w.data, w_ref, rtol=1e-14)


def _numpy_adam(
    w: np.ndarray,
    gradient: Callable[[np.ndarray], np.ndarray],
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    steps: int,
) -> np.ndarray:
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t in range(1, steps + 1):
        g = gradient(w)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w


def test_adam_matches_a_hand_written_numpy_adam() -> None:
    """Five Adam steps on a Tensor equal the textbook update written in numpy."""
    start = np.array([[0.5, -1.0], [2.0, 0.1]])
    w = cr.tensor(start.copy(), requires_grad=True)
    optimizer = optim.Adam([w], lr=0.05, betas=(0.8, 0.95), eps=1e-6)
    for _ in range(5):
        optimizer.zero_grad()
        ((w * w).sum() + w.sin().sum()).backward()
        optimizer.step()
    expected = _numpy_adam(start, lambda a: 2 * a + np.cos(a), 0.05, 0.8, 0.95, 1e-6, 5)
    np.testing.assert_allclose(w.data, expected, rtol=1e-13)


def test_adam_on_values_matches_adam_on_tensors() -> None:
    """Adam on neuron-level Values takes the same steps as on a Tensor."""
    values = [cr.Value(0.5), cr.Value(-1.0)]
    tensor = cr.tensor([0.5, -1.0], requires_grad=True)
    value_optimizer, tensor_optimizer = optim.Adam(values, lr=0.1), optim.Adam([tensor], lr=0.1)
    for _ in range(4):
        value_optimizer.zero_grad()
        (values[0] * values[0] * values[1]).backward()
        value_optimizer.step()
        tensor_optimizer.zero_grad()
        (tensor[0] * tensor[0] * tensor[1]).backward()
        tensor_optimizer.step()
    np.testing.assert_allclose([v.data for v in values], tensor.data, rtol=1e-14)
    assert all(isinstance(v.data, float) for v in values)


def test_adam_lowers_the_loss_of_an_mlp() -> None:
    """A few hundred Adam steps fit a small regression much better than the start."""
    x, y = _data()
    model = nn.MLP([3, 8, 1], activation="tanh", seed=1)
    optimizer = optim.Adam(model, lr=0.01)
    start = nn.mse_loss(model(x), y).item()
    for _ in range(300):
        _loss_and_backward(model, x, y)
        optimizer.step()
    assert nn.mse_loss(model(x), y).item() < 0.2 * start


def test_float32_parameters_stay_float32() -> None:
    """Updates keep a float32 model in float32 for SGD and Adam."""
    model = nn.MLP([3, 4, 1], dtype="float32", seed=0)
    x, y = _data()
    for optimizer in (optim.SGD(model, lr=0.1, momentum=0.5), optim.Adam(model)):
        _loss_and_backward(model, x, y)
        optimizer.step()
    assert all(p.data.dtype == np.float32 for p in model.parameters())


def test_optimizers_refuse_bad_hyperparameters() -> None:
    """lr ≤ 0, momentum or betas outside [0, 1) and eps ≤ 0 raise ValueError."""
    w = [cr.tensor([1.0], requires_grad=True)]
    for lr in (0.0, -0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lr"):
            optim.SGD(w, lr=lr)
    with pytest.raises(TypeError, match="lr"):
        optim.SGD(w, lr="0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="momentum"):
        optim.SGD(w, lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        optim.SGD(w, lr=0.1, weight_decay=-1.0)
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        optim.Adam(w, betas=(0.9, 1.5))
    with pytest.raises(ValueError, match="eps"):
        optim.Adam(w, eps=0.0)


def test_lr_can_be_changed_and_is_checked() -> None:
    """Setting optimizer.lr changes the next step; a bad value is refused."""
    w = cr.tensor([1.0], requires_grad=True)
    optimizer = optim.SGD([w], lr=0.1)
    optimizer.lr = 0.5
    (w * 2.0).sum().backward()
    optimizer.step()
    np.testing.assert_array_equal(w.data, [0.0])
    with pytest.raises(ValueError, match="lr"):
        optimizer.lr = 0.0
    assert optimizer.lr == 0.5


def test_optimizers_refuse_bad_parameter_lists() -> None:
    """Empty lists, duplicates, non-leaves and non-parameters are refused."""
    w = cr.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([w, w], lr=0.1)
    with pytest.raises(ValueError, match="not a leaf"):
        optim.SGD([w * 2.0], lr=0.1)
    with pytest.raises(TypeError, match="parameter 1 is a ndarray"):
        optim.SGD([w, np.ones(2)], lr=0.1)
    with pytest.raises(TypeError, match="wrap it in a list"):
        optim.SGD(w, lr=0.1)


def test_zero_grad_resets_tensor_and_value_gradients() -> None:
    """zero_grad sets Tensor grads to None and Value grads to 0."""
    t, v = cr.tensor([1.0], requires_grad=True), cr.Value(2.0)
    (t.sum() * 3.0).backward()
    (v * 3.0).backward()
    optimizer = optim.SGD([t, v], lr=0.1)
    optimizer.zero_grad()
    assert t.grad is None and v.grad == 0.0
    assert repr(optimizer) == "SGD(2 parameters, lr=0.1)"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "make",
    [
        lambda p: optim.SGD(p, lr=0.1),
        lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
        lambda p: optim.SGD(p, lr=0.1, momentum=0.5, weight_decay=0.01),
        lambda p: optim.SGD(p, lr=0.1, weight_decay=0.2),
        lambda p: optim.Adam(p, lr=0.05),
        lambda p: optim.Adam(p, lr=0.05, betas=(0.8, 0.9), weight_decay=0.1),
    ],
)
def test_in_place_update_equals_the_step_size_formula_bit_for_bit(
    make: Callable[[list[cr.Tensor]], optim.Optimizer], dtype: type
) -> None:
    """The in-place update of a Tensor gives exactly data − _step_size(grad, data, state)."""
    rng = np.random.default_rng(3)
    shapes = [(4, 3), (3,), ()]
    params = [cr.tensor(rng.normal(size=s).astype(dtype), requires_grad=True) for s in shapes]
    expected = [p.data.copy() for p in params]
    optimizer, formula = make(params), make([cr.tensor(e, requires_grad=True) for e in expected])
    for _ in range(4):
        for param, reference, state in zip(params, expected, formula.state):
            param.grad = rng.normal(size=param.data.shape).astype(dtype)
            reference -= formula._step_size(param.grad.copy(), reference, state)
        optimizer.step()
        for param, reference in zip(params, expected):
            assert param.data.dtype == dtype
            assert param.data.tobytes() == reference.tobytes()


def test_in_place_update_leaves_grad_alone_and_falls_back_for_read_only_data() -> None:
    """grad is never written; a read-only data array is replaced, as before."""
    w = cr.tensor(np.array([1.0, -2.0]), requires_grad=True)
    w.data.flags.writeable = False
    w.grad = np.array([0.5, 0.25])
    optimizer = optim.Adam([w], lr=0.1, weight_decay=0.1)
    optimizer.step()
    assert w.data.flags.writeable
    np.testing.assert_array_equal(w.grad, [0.5, 0.25])
    data = w.data
    optimizer.step()
    assert w.data is data
    np.testing.assert_array_equal(w.grad, [0.5, 0.25])
