"""The handouts' closed-form gradients, asserted at random points."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import chainrule as cr

finite = st.floats(-2.0, 2.0, allow_nan=False)
positive = st.floats(0.1, 4.0, allow_nan=False)


def _sigmoid(s: float) -> float:
    return 1.0 / (1.0 + math.exp(-s))


@given(x=finite, y=finite, z=positive)
def test_assignment_eqs_3_to_5_partials_of_f_xyz(x: float, y: float, z: float) -> None:
    """∂f/∂x, ∂f/∂y, ∂f/∂z of f = cos(x²y) + x²√z equal eqs. (3)–(5)."""
    xv, yv, zv = cr.Value(x, "x"), cr.Value(y, "y"), cr.Value(z, "z")
    f = cr.cos(xv**2 * yv) + xv**2 * cr.sqrt(zv)
    f.backward()
    assert math.isclose(
        xv.grad,
        -2 * x * y * math.sin(x * x * y) + 2 * x * math.sqrt(z),
        rel_tol=1e-12,
        abs_tol=1e-12,
    )
    assert math.isclose(yv.grad, -(x * x) * math.sin(x * x * y), rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(zv.grad, x * x / (2 * math.sqrt(z)), rel_tol=1e-12, abs_tol=1e-12)


@given(seed=st.integers(0, 10_000), n=st.integers(1, 6))
def test_assignment_eq_6_gradient_of_squared_dot_product(seed: int, n: int) -> None:
    """∇ₓ(cᵀx)² = 2(cᵀx)c with a vector leaf, as in exercise 3(b)."""
    rng = np.random.default_rng(seed)
    c, x0 = rng.standard_normal(n), rng.standard_normal(n)
    x = cr.tensor(x0, requires_grad=True, label="x")
    ((cr.tensor(c) @ x) ** 2).backward()
    np.testing.assert_allclose(x.grad, 2 * (c @ x0) * c, rtol=1e-12, atol=1e-12)


@given(seed=st.integers(0, 10_000), y=st.sampled_from([0.0, 1.0]))
def test_assignment_eq_8_log_loss_gradient_of_logistic_regression(seed: int, y: float) -> None:
    """∇_w of the log loss of σ(wᵀx) is −x·y(1 − σ) + x(1 − y)σ (eq. 8)."""
    rng = np.random.default_rng(seed)
    w0, x = rng.standard_normal(3), rng.standard_normal(3)
    w = cr.tensor(w0, requires_grad=True)
    z = cr.sigmoid(w @ cr.tensor(x))
    loss = -y * cr.log(z) - (1 - y) * cr.log(1 - z)
    loss.backward()
    s = _sigmoid(float(w0 @ x))
    np.testing.assert_allclose(w.grad, -x * y * (1 - s) + x * (1 - y) * s, rtol=1e-10, atol=1e-12)


@given(
    w=st.lists(finite, min_size=3, max_size=3),
    x=st.lists(finite, min_size=2, max_size=2),
    y=st.sampled_from([0.0, 1.0]),
)
def test_quiz_exercise_1_sigmoid_neuron_and_square_loss(
    w: list[float], x: list[float], y: float
) -> None:
    """Quiz 1.2–1.3: ∂f/∂w_j = x_j e^{-s}/(1 + e^{-s})² and ∂L/∂w_j = −2(y − f)·∂f/∂w_j."""
    ws = [cr.Value(v, f"w{j}") for j, v in enumerate(w)]
    s_value = w[0] + w[1] * x[0] + w[2] * x[1]
    f = cr.sigmoid(ws[0] + ws[1] * x[0] + ws[2] * x[1])
    f.backward()
    features = [1.0, x[0], x[1]]
    e = math.exp(-s_value)
    df = [xj * e / (1 + e) ** 2 for xj in features]
    for wj, expected in zip(ws, df):
        assert math.isclose(wj.grad, expected, rel_tol=1e-10, abs_tol=1e-12)

    ws = [cr.Value(v) for v in w]
    f = cr.sigmoid(ws[0] + ws[1] * x[0] + ws[2] * x[1])
    loss = (y - f) ** 2
    loss.backward()
    for wj, dfj in zip(ws, df):
        assert math.isclose(wj.grad, -2 * (y - f.data) * dfj, rel_tol=1e-10, abs_tol=1e-12)


def test_quiz_exercise_1_4_one_gradient_descent_step() -> None:
    """Quiz 1.4: w ← w − η ∂L/∂w, computed from chainrule's gradients."""
    w, x, y, eta = [0.5, -1.0, 2.0], [1.5, -0.5], 1.0, 0.1
    ws = [cr.Value(v) for v in w]
    f = cr.sigmoid(ws[0] + ws[1] * x[0] + ws[2] * x[1])
    ((y - f) ** 2).backward()
    stepped = [v.data - eta * v.grad for v in ws]
    s = w[0] + w[1] * x[0] + w[2] * x[1]
    fs = _sigmoid(s)
    grads = [-2 * (y - fs) * fs * (1 - fs) * xj for xj in (1.0, *x)]
    np.testing.assert_allclose(stepped, [wj - eta * gj for wj, gj in zip(w, grads)], rtol=1e-14)


@given(seed=st.integers(0, 10_000))
def test_quiz_exercise_2_every_gradient_of_the_4_2_3_1_network(seed: int) -> None:
    """Quiz 2.3–2.6: every gradient of the 4→2→3→1 net (g = tanh, h = sigmoid, C = (y − ŷ)²)
    equals the layer-by-layer formulas."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(4)
    y = float(rng.standard_normal())
    arrays = {
        "W1": rng.standard_normal((2, 4)),
        "b1": rng.standard_normal(2),
        "W2": rng.standard_normal((3, 2)),
        "b2": rng.standard_normal(3),
        "W3": rng.standard_normal(3),
        "b3": rng.standard_normal(()),
    }
    p = {k: cr.tensor(v, requires_grad=True) for k, v in arrays.items()}
    z2 = p["W1"] @ cr.tensor(x) + p["b1"]
    v2 = cr.tanh(z2)
    z3 = p["W2"] @ v2 + p["b2"]
    v3 = cr.sigmoid(z3)
    y_hat = p["W3"] @ v3 + p["b3"]
    ((y - y_hat) ** 2).backward()

    # The quiz's formulas, by hand, layer by layer.
    a = arrays
    Z2 = a["W1"] @ x + a["b1"]
    V2 = np.tanh(Z2)
    Z3 = a["W2"] @ V2 + a["b2"]
    V3 = 1 / (1 + np.exp(-Z3))
    Y = a["W3"] @ V3 + a["b3"]
    dC_dy = -2 * (y - Y)
    dC_dW3 = dC_dy * V3  # 2.3
    dC_db3 = dC_dy
    dC_dZ3 = dC_dy * a["W3"] * V3 * (1 - V3)  # 2.4: ∂C/∂ŷ·W3_j·h'(Z3_j)
    dC_dW2 = np.outer(dC_dZ3, V2)  # 2.5
    dC_db2 = dC_dZ3
    dC_dZ2 = (a["W2"].T @ dC_dZ3) * (1 - V2**2)
    dC_dW1 = np.outer(dC_dZ2, x)  # 2.6
    dC_db1 = dC_dZ2
    expected = {"W1": dC_dW1, "b1": dC_db1, "W2": dC_dW2, "b2": dC_db2, "W3": dC_dW3, "b3": dC_db3}
    for name, value in expected.items():
        np.testing.assert_allclose(p[name].grad, value, rtol=1e-10, atol=1e-12, err_msg=name)
