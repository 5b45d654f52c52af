"""check_grad and numerical_grad: a student's own gradient code against central differences."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


def _sigmoid(s: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-s))


def _mlp_loss(weights: list[np.ndarray], inputs: np.ndarray, labels: np.ndarray) -> float:
    """Summed log loss of a sigmoid MLP; row i of weights[k] is w_i^(k), last column the bias."""
    x = inputs
    for w in weights:
        x = _sigmoid(np.column_stack([x, np.ones(len(x))]) @ w.T)
    y = labels[:, None]
    return float(np.sum(-y * np.log(x) - (1 - y) * np.log(1 - x)))


def _mlp_backprop(
    weights: list[np.ndarray], inputs: np.ndarray, labels: np.ndarray, sigma_prime: bool = True
) -> list[np.ndarray]:
    """A hand-written backprop (eqs. (9), (11), 5(c)); sigma_prime=False forgets hidden σ′."""
    units, sums, x = [], [], inputs
    for w in weights:
        x = np.column_stack([x, np.ones(len(x))])
        units.append(x)
        sums.append(x @ w.T)
        x = _sigmoid(sums[-1])
    y = labels[:, None]
    dl_dx = -y / x + (1 - y) / (1 - x)
    gradients: list[np.ndarray] = []
    for k in reversed(range(len(weights))):
        keep = sigma_prime or k == len(weights) - 1
        delta = (_sigmoid(sums[k]) * (1 - _sigmoid(sums[k])) if keep else 1.0) * dl_dx
        gradients.insert(0, delta.T @ units[k])
        dl_dx = delta @ weights[k][:, :-1]
    return gradients


def _mlp_problem() -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    weights = [rng.normal(size=(3, 3)), rng.normal(size=(2, 4)), rng.normal(size=(1, 3))]
    return weights, rng.normal(size=(8, 2)), (rng.uniform(size=8) < 0.5).astype(float)


def test_check_grad_passes_a_correct_hand_written_mlp_backprop() -> None:
    """A correct numpy backprop of a 2→3→2→1 MLP agrees with central differences everywhere."""
    weights, inputs, labels = _mlp_problem()
    result = cr.check_grad(_mlp_loss, _mlp_backprop, weights, inputs, labels)
    assert result.ok, result.report
    assert result.report.startswith("check_grad passed")
    assert [a.shape for a in result.analytic] == [w.shape for w in weights]


def test_check_grad_catches_a_missing_sigma_prime_and_names_the_worst_element() -> None:
    """Forgetting σ′(s) in the hidden layers fails, and the report names a hidden-layer weight."""
    weights, inputs, labels = _mlp_problem()

    def forgetful(ws: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        return _mlp_backprop(ws, x, y, sigma_prime=False)

    result = cr.check_grad(_mlp_loss, forgetful, weights, inputs, labels)
    assert not result.ok
    assert result.worst_input in (0, 1)  # the output layer's gradient is still right
    assert "x[2]: shape (1, 3), 0 of 3 elements out of tolerance" in result.report
    i, j = result.worst_index
    assert f"worst: x[{result.worst_input}][{i}, {j}]: grad_f" in result.report
    worst = result.analytic[result.worst_input][i, j], result.numeric[result.worst_input][i, j]
    assert f"grad_f {worst[0]:.10g}, finite differences {worst[1]:.10g}" in result.report
    with pytest.raises(cr.GradcheckError, match="check_grad FAILED"):
        cr.check_grad(_mlp_loss, forgetful, weights, inputs, labels, raise_on_failure=True)


def test_numerical_grad_keeps_the_form_of_its_point() -> None:
    """A number gives a float, an array an array, a dict a dict; the values are the derivative."""
    assert cr.numerical_grad(lambda t: t**3, 2.0) == pytest.approx(12.0, rel=1e-8)
    point = np.array([[0.5, -1.0], [2.0, 0.1]])
    np.testing.assert_allclose(cr.numerical_grad(lambda a: np.sum(np.sin(a)), point), np.cos(point))
    named = cr.numerical_grad(lambda p: p["w"] @ p["x"], {"w": np.ones(2), "x": np.arange(2.0)})
    assert set(named) == {"w", "x"}
    np.testing.assert_allclose(named["w"], [0.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(named["x"], [1.0, 1.0], atol=1e-9)
    assert point[0, 0] == 0.5  # the caller's array is left alone


def test_check_grad_names_a_transposed_gradient() -> None:
    """A gradient of the wrong shape is refused with both shapes and a hint, not compared."""
    with pytest.raises(
        cr.ShapeError, match=r"shape \(3, 2\) for x, which has shape \(2, 3\).*transposed"
    ):
        cr.check_grad(lambda a: np.sum(a), lambda a: np.ones((3, 2)), np.ones((2, 3)))
    with pytest.raises(cr.ShapeError, match="one number"):
        cr.check_grad(lambda a: a * 2, lambda a: 2 * np.ones(3), np.ones(3))


def test_gradcheck_on_numpy_functions_of_tensors_says_what_to_do() -> None:
    """np.tanh or np.sum on a Tensor inside gradcheck raises a chainrule error naming the fix."""
    for f in (lambda a: np.tanh(a).sum(), lambda a: np.sum(a * a), lambda a: np.where(True, a, 0)):
        with pytest.raises(cr.NumpyOnTensorError, match=r"cr\.tanh\(x\).*check_grad"):
            cr.gradcheck(f, np.ones(3))
    assert issubclass(cr.NumpyOnTensorError, TypeError)
