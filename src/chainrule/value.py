"""``Value``: a scalar node over a Python float, for neuron-level graphs.

Thin over :mod:`chainrule.ops`: every method applies an op row; no maths lives here.
"""

from __future__ import annotations

import numbers
from typing import Any

from . import ops
from ._math import SCALAR, numpy_semantics
from .graph import GradMode, Node, backward
from .ops import Op

_NO_PARAMS: dict[str, Any] = {}


class Value(Node):
    """A scalar in a computation graph, with its adjoint ``grad`` after backward.

    Args:
        data: the number this node holds.
        label: a name to show in diagrams, path sums and symbolic derivatives.

    Every Value records the op that made it, so ``backward()`` sets ``grad`` on it
    and on everything it depends on: leaves accumulate across calls, interior
    nodes hold the adjoint of the latest call.
    """

    __slots__ = ()
    _xp = SCALAR

    def __init__(self, data: float, label: str | None = None) -> None:
        if isinstance(data, Value):
            raise TypeError("Value(data) takes a number; this is already a Value")
        try:
            self.data = float(data)
        except (TypeError, ValueError):
            raise TypeError(
                f"Value(data) takes a real number, got {type(data).__name__}: {data!r}"
            ) from None
        self.grad = 0.0
        self.label = label
        self.parents = ()
        self.op = None
        self.params = _NO_PARAMS

    @staticmethod
    def _apply(op: Op, inputs: tuple[Value, ...], params: dict[str, Any] = _NO_PARAMS) -> Value:
        try:
            data = op.forward(SCALAR, *[v.data for v in inputs], **params)
        except ArithmeticError:  # 1/0 or an overflow: give numpy's inf or NaN instead
            data = numpy_semantics(op.forward, *[v.data for v in inputs], **params)
        if GradMode.detect_anomaly:
            ops.check_forward(op, tuple(v.data for v in inputs), data)
        out = Value.__new__(Value)
        out.data = data
        out.grad = 0.0
        out.label = None
        if GradMode.enabled:
            out.parents = inputs
            out.op = op
            out.params = params
        else:
            out.parents = ()
            out.op = None
            out.params = _NO_PARAMS
        return out

    # --- operators ------------------------------------------------------------------

    def __add__(self, other: Any) -> Value:
        return Value._apply(ops.ADD, (self, _as_value(other, "+")))

    def __radd__(self, other: Any) -> Value:
        return Value._apply(ops.ADD, (_as_value(other, "+"), self))

    def __sub__(self, other: Any) -> Value:
        return Value._apply(ops.SUB, (self, _as_value(other, "-")))

    def __rsub__(self, other: Any) -> Value:
        return Value._apply(ops.SUB, (_as_value(other, "-"), self))

    def __mul__(self, other: Any) -> Value:
        return Value._apply(ops.MUL, (self, _as_value(other, "*")))

    def __rmul__(self, other: Any) -> Value:
        return Value._apply(ops.MUL, (_as_value(other, "*"), self))

    def __truediv__(self, other: Any) -> Value:
        return Value._apply(ops.DIV, (self, _as_value(other, "/")))

    def __rtruediv__(self, other: Any) -> Value:
        return Value._apply(ops.DIV, (_as_value(other, "/"), self))

    def __pow__(self, other: Any) -> Value:
        if isinstance(other, Value):
            return Value._apply(ops.POW, (self, other))
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            return Value._apply(ops.POWC, (self,), {"p": float(other)})
        raise TypeError(
            f"unsupported exponent for Value ** x: {type(other).__name__} (use a number or a Value)"
        )

    def __rpow__(self, other: Any) -> Value:
        return Value._apply(ops.POW, (_as_value(other, "**"), self))

    def __neg__(self) -> Value:
        return Value._apply(ops.NEG, (self,))

    def __abs__(self) -> Value:
        return Value._apply(ops.ABS, (self,))

    # --- functions --------------------------------------------------------------------

    def exp(self) -> Value:
        return Value._apply(ops.EXP, (self,))

    def log(self) -> Value:
        return Value._apply(ops.LOG, (self,))

    def sin(self) -> Value:
        return Value._apply(ops.SIN, (self,))

    def cos(self) -> Value:
        return Value._apply(ops.COS, (self,))

    def tan(self) -> Value:
        return Value._apply(ops.TAN, (self,))

    def sqrt(self) -> Value:
        return Value._apply(ops.SQRT, (self,))

    def tanh(self) -> Value:
        return Value._apply(ops.TANH, (self,))

    def sigmoid(self) -> Value:
        return Value._apply(ops.SIGMOID, (self,))

    def relu(self) -> Value:
        return Value._apply(ops.RELU, (self,))

    def abs(self) -> Value:
        return Value._apply(ops.ABS, (self,))

    def softplus(self) -> Value:
        return Value._apply(ops.SOFTPLUS, (self,))

    # --- gradients --------------------------------------------------------------------

    def backward(self, grad: float = 1.0) -> None:
        """Set ``grad`` = ∂self/∂node on every node this Value depends on."""
        backward(self, float(grad))

    def zero_grad(self) -> None:
        """Reset this node's ``grad`` to 0 (leaf gradients otherwise accumulate)."""
        self.grad = 0.0

    def detach(self) -> Value:
        """A new leaf with the same number and label, cut off from this graph."""
        return Value(self.data, self.label)

    def _accumulate_leaf_grad(self, adjoint: Any) -> None:
        self.grad += adjoint

    def __float__(self) -> float:
        return self.data

    def __repr__(self) -> str:
        name = f"{self.label}: " if self.label else ""
        return f"Value({name}data={self.data:.6g}, grad={self.grad:.6g})"


def _as_value(x: Any, symbol: str) -> Value:
    if isinstance(x, Value):
        return x
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return Value(float(x))
    raise TypeError(
        f"unsupported operand for {symbol} with a Value: {type(x).__name__} "
        "(Values combine with numbers and other Values; use chainrule.tensor for arrays)"
    )
