"""Every op gradient-checked in float64 against central differences.

One table row per op. Elementwise rows run for Value and for Tensor over scalar,
vector, matrix and broadcast shapes; structural rows run for Tensor. Inputs come
from hypothesis and are kept inside each op's domain and away from its kinks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import chainrule as cr
from chainrule import ops
from chainrule.nn.losses import loss_node


@dataclass(frozen=True)
class Row:
    """How to exercise one op: the function, and how to draw each input."""

    op: ops.Op
    fn: Callable[..., Any]
    low: tuple[float, ...]
    high: tuple[float, ...]
    # keep |input| (or |a − b| for binary kinks) at least this far from 0
    avoid_zero: float = 0.0


UNARY = [
    Row(ops.NEG, lambda a: -a, (-3,), (3,)),
    Row(ops.EXP, lambda a: cr.exp(a), (-3,), (3,)),
    Row(ops.LOG, lambda a: cr.log(a), (0.2,), (5,)),
    Row(ops.LOG1P, lambda a: cr.log1p(a), (-0.8,), (5,)),
    Row(ops.EXPM1, lambda a: cr.expm1(a), (-3,), (3,)),
    Row(ops.SIN, lambda a: cr.sin(a), (-3,), (3,)),
    Row(ops.COS, lambda a: cr.cos(a), (-3,), (3,)),
    Row(ops.TAN, lambda a: cr.tan(a), (-1.2,), (1.2,)),
    Row(ops.SQRT, lambda a: cr.sqrt(a), (0.2,), (5,)),
    Row(ops.TANH, lambda a: cr.tanh(a), (-3,), (3,)),
    Row(ops.SIGMOID, lambda a: cr.sigmoid(a), (-6,), (6,)),
    Row(ops.RELU, lambda a: cr.relu(a), (-3,), (3,), avoid_zero=0.05),
    Row(ops.ABS, lambda a: cr.abs(a), (-3,), (3,), avoid_zero=0.05),
    Row(ops.SOFTPLUS, lambda a: cr.softplus(a), (-6,), (6,)),
    Row(ops.POWC, lambda a: a**3, (-2,), (2,)),
    Row(ops.POWC, lambda a: a**0.5, (0.2,), (4,)),
    Row(ops.POWC, lambda a: a**-2, (0.3,), (3,)),
]
BINARY = [
    Row(ops.ADD, lambda a, b: a + b, (-3, -3), (3, 3)),
    Row(ops.SUB, lambda a, b: a - b, (-3, -3), (3, 3)),
    Row(ops.MUL, lambda a, b: a * b, (-3, -3), (3, 3)),
    Row(ops.DIV, lambda a, b: a / b, (-3, 0.5), (3, 3)),
    Row(ops.POW, lambda a, b: a**b, (0.3, -2), (3, 2)),
    Row(ops.MAXIMUM, lambda a, b: cr.maximum(a, b), (-3, -3), (3, 3), avoid_zero=0.05),
    Row(ops.SQUARE_LOSS, lambda a, b: loss_node(ops.SQUARE_LOSS, a, b), (-3, -3), (3, 3)),
    # Probabilities inside the clamp, soft targets too (the partial in y is checked).
    Row(ops.LOG_LOSS, lambda a, b: loss_node(ops.LOG_LOSS, a, b), (0.05, 0), (0.95, 1)),
]
ELEMENTWISE = UNARY + BINARY


def _row_id(row: Row) -> str:
    return f"{row.op.name}-{row.op.arity}-{row.fn.__code__.co_firstlineno}"


def _draw(data: st.DataObject, row: Row, shape: tuple[int, ...], index: int) -> np.ndarray:
    size = int(np.prod(shape)) if shape else 1
    values = data.draw(
        st.lists(
            st.floats(row.low[index], row.high[index], allow_nan=False),
            min_size=size,
            max_size=size,
        )
    )
    array = np.array(values, dtype=np.float64).reshape(shape)
    if row.avoid_zero and row.op.arity == 1:
        array = np.where(np.abs(array) < row.avoid_zero, row.avoid_zero + 0.5, array)
    return array


def _separate(a: np.ndarray, b: np.ndarray, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Move b away from a where they are closer than ``gap`` (the kink of maximum)."""
    a_b, b_b = np.broadcast_arrays(a, b)
    if b.shape == b_b.shape:
        return a, np.where(np.abs(a_b - b) < gap, b + 3 * gap, b)
    return np.where(np.abs(a - b_b) < gap, a + 3 * gap, a), b


BROADCAST_SHAPES = [((), ()), ((4,), (4,)), ((3, 2), (3, 2)), ((3, 2), (2,)), ((1, 3), (2, 1))]


@pytest.mark.parametrize("row", ELEMENTWISE, ids=_row_id)
@given(data=st.data())
def test_elementwise_value_gradients_match_finite_differences(
    row: Row, data: st.DataObject
) -> None:
    """Each elementwise op on scalar Values agrees with central differences."""
    inputs = [cr.Value(float(_draw(data, row, (), i))) for i in range(row.op.arity)]
    if row.avoid_zero and row.op.arity == 2:
        a, b = _separate(np.array(inputs[0].data), np.array(inputs[1].data), row.avoid_zero)
        inputs = [cr.Value(float(a)), cr.Value(float(b))]
    result = cr.gradcheck(row.fn, *inputs)
    assert result.ok, result.report


@pytest.mark.parametrize("row", ELEMENTWISE, ids=_row_id)
@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=str)
@given(data=st.data())
def test_elementwise_tensor_gradients_match_finite_differences(
    row: Row, shapes: tuple[tuple[int, ...], ...], data: st.DataObject
) -> None:
    """Each elementwise op on Tensors (scalar, vector, matrix, broadcast) agrees with
    central differences."""
    arrays = [_draw(data, row, shapes[i], i) for i in range(row.op.arity)]
    if row.avoid_zero and row.op.arity == 2:
        arrays = list(_separate(arrays[0], arrays[1], row.avoid_zero))
    result = cr.gradcheck(row.fn, *arrays)
    assert result.ok, result.report


def _ints(*shape: int) -> np.ndarray:
    return np.random.default_rng(sum(shape)).standard_normal(shape)


STRUCTURAL: list[tuple[str, Callable[..., Any], tuple[np.ndarray, ...]]] = [
    ("matmul 2d", lambda a, b: a @ b, (_ints(3, 4), _ints(4, 2))),
    ("matmul vec-mat", lambda a, b: a @ b, (_ints(4), _ints(4, 2))),
    ("matmul mat-vec", lambda a, b: a @ b, (_ints(3, 4), _ints(4))),
    ("matmul vec-vec", lambda a, b: a @ b, (_ints(4), _ints(4))),
    ("matmul batched", lambda a, b: a @ b, (_ints(2, 3, 4), _ints(4, 2))),
    ("sum all", lambda a: a.sum(), (_ints(3, 4),)),
    ("sum axis", lambda a: a.sum(axis=0), (_ints(3, 4),)),
    ("sum keepdims", lambda a: a.sum(axis=(0, 2), keepdims=True), (_ints(2, 3, 4),)),
    ("mean", lambda a: a.mean(axis=1), (_ints(3, 4),)),
    ("max all", lambda a: a.max(), (_ints(3, 4),)),
    ("max axis", lambda a: a.max(axis=-1, keepdims=True), (_ints(3, 4),)),
    ("reshape", lambda a: a.reshape(4, 3) * _ints(4, 3), (_ints(3, 4),)),
    ("transpose", lambda a: a.T * _ints(4, 3), (_ints(3, 4),)),
    ("transpose axes", lambda a: a.transpose(2, 0, 1) * _ints(4, 2, 3), (_ints(2, 3, 4),)),
    ("getitem int", lambda a: a[1], (_ints(3, 4),)),
    ("getitem slice", lambda a: a[:, 1:3], (_ints(3, 4),)),
    ("getitem int array repeated", lambda a: a[[0, 2, 0]], (_ints(3, 4),)),
    ("where", lambda a, b: cr.where(_ints(3, 4) > 0, a, b), (_ints(3, 4), _ints(4))),
    ("logsumexp", lambda a: cr.logsumexp(a, axis=1), (_ints(3, 4),)),
    ("logsumexp all", lambda a: cr.logsumexp(a), (_ints(3, 4),)),
    ("softmax", lambda a: cr.softmax(a, axis=-1), (_ints(3, 4),)),
    ("softmax axis 0", lambda a: cr.softmax(a, axis=0), (_ints(3, 4),)),
    ("log_softmax", lambda a: cr.log_softmax(a), (_ints(3, 4),)),
]


@pytest.mark.parametrize(("name", "fn", "inputs"), STRUCTURAL, ids=[row[0] for row in STRUCTURAL])
def test_structural_tensor_gradients_match_finite_differences(
    name: str, fn: Callable[..., Any], inputs: tuple[np.ndarray, ...]
) -> None:
    """Each structural tensor op's vector-Jacobian product agrees with central differences."""
    result = cr.gradcheck(fn, *inputs)
    assert result.ok, result.report


def test_every_op_has_a_row_in_the_table() -> None:
    """Adding an op without a gradient-check row fails here."""
    tested = {row.op.name for row in ELEMENTWISE}
    tested |= {"matmul", "sum", "max", "reshape", "transpose", "getitem", "where"}
    tested |= {"logsumexp", "softmax", "log_softmax"}
    assert set(ops.OPS) - {"pow_node"} <= tested


def test_every_elementwise_partial_symbol_parses_as_an_expression() -> None:
    """Each elementwise partial's symbolic form is written over the op's inputs and params only."""
    import re

    for op in ops.OPS.values():
        if not op.elementwise:
            continue
        allowed = {"a", "b", "c", *op.param_names}
        for partial in op.partials:
            names = set(re.findall(r"[A-Za-z_]\w*", partial.symbol))
            names -= set(ops.FUNCTIONS) | {"step", "sign"}
            assert names <= allowed, (op.name, partial.symbol)


def test_log1p_made_from_its_row_keeps_small_digits_everywhere() -> None:
    """cr.log1p, made from its op row alone, keeps the digits of a small a for numbers,
    Values and Tensors, with numpy's answer at -1, and its gradient is 1/(1 + a)."""
    tiny = 1e-12
    assert cr.log1p(tiny) == np.log1p(tiny) != np.log(1 + tiny)
    assert cr.log1p(cr.Value(-1.0)).data == -np.inf
    t = cr.tensor([tiny, 0.5], requires_grad=True)
    cr.log1p(t).sum().backward()
    np.testing.assert_array_equal(t.grad, 1 / (1 + np.array([tiny, 0.5])))
    x = cr.Value(0.5, "x")
    assert str(cr.symbolic(cr.log1p(x), "x")) == "1/(x + 1)"
