"""grad / value_and_grad over plain numbers and arrays, and the module-level functions."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr


def test_grad_of_a_float_function_returns_a_float() -> None:
    """grad(f)(x) for a number x is a float equal to f'(x)."""
    df = cr.grad(lambda x: cr.sin(x) * x)
    result = df(1.3)
    assert isinstance(result, float)
    assert math.isclose(result, math.cos(1.3) * 1.3 + math.sin(1.3), rel_tol=1e-14)


def test_grad_over_arrays_and_several_argnums() -> None:
    """Arrays in, arrays of the same shape out; a tuple of argnums gives a tuple."""

    def f(w: cr.Tensor, x: cr.Tensor, scale: float) -> cr.Tensor:
        return ((w @ x) ** 2).sum() * scale

    w0, x0 = np.arange(6.0).reshape(2, 3), np.array([1.0, -1.0, 0.5])
    gw, gx = cr.grad(f, argnums=(0, 1))(w0, x0, 0.5)
    assert gw.shape == (2, 3) and gx.shape == (3,)
    np.testing.assert_allclose(gw, np.outer(w0 @ x0, x0))
    np.testing.assert_allclose(gx, w0.T @ (w0 @ x0))


def test_value_and_grad_returns_both() -> None:
    """value_and_grad gives f(x) as a float together with the gradient."""
    value, g = cr.value_and_grad(lambda x: cr.exp(x).sum())(np.zeros(3))
    assert value == 3.0
    np.testing.assert_array_equal(g, np.ones(3))


def test_grad_rejects_non_scalar_outputs() -> None:
    """A vector-valued function needs reducing first, and the error says so."""
    with pytest.raises(TypeError, match="single-number output"):
        cr.grad(lambda x: x * 2)(np.ones(3))


def test_grad_of_a_constant_function_is_zero() -> None:
    """A function that ignores its argument has a zero gradient."""
    assert cr.grad(lambda x: cr.tensor(5.0))(2.0) == 0.0


def test_module_functions_accept_values_tensors_numbers_and_arrays() -> None:
    """chainrule.exp works on a Value, a Tensor, a float and an array, with one rule."""
    assert isinstance(cr.exp(cr.Value(1.0)), cr.Value)
    assert isinstance(cr.exp(cr.tensor(1.0)), cr.Tensor)
    assert cr.exp(1.0) == math.exp(1.0)
    np.testing.assert_allclose(cr.sigmoid(np.array([0.0, 100.0])), [0.5, 1.0])
    assert cr.sigmoid(-800.0) == 0.0 and cr.sigmoid(800.0) == 1.0
    with pytest.raises(TypeError, match="str"):
        cr.exp("x")


def test_sigmoid_is_stable_and_symmetric() -> None:
    """σ(x) never overflows and σ(−x) = 1 − σ(x) on Values and Tensors."""
    xs = np.array([-700.0, -30.0, -1.0, 0.0, 2.5, 700.0])
    s = cr.sigmoid(cr.tensor(xs)).data
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s + cr.sigmoid(cr.tensor(-xs)).data, 1.0, atol=1e-15)
    for x in xs:
        assert math.isclose(
            cr.sigmoid(cr.Value(x)).data, 1 / (1 + math.exp(-x)) if x > -700 else 0.0, abs_tol=1e-15
        )


def test_softplus_and_logsumexp_are_exact_at_extremes() -> None:
    """softplus and logsumexp stay finite and correct far from 0."""
    assert cr.softplus(1e4) == 1e4
    assert cr.softplus(-1e4) == 0.0
    big = cr.tensor([1e4, 1e4])
    assert math.isclose(float(cr.logsumexp(big).data), 1e4 + math.log(2))
    np.testing.assert_allclose(cr.softmax(big).data, [0.5, 0.5])
