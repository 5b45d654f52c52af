"""Module-level maths: ``chainrule.exp(x)`` and friends.

Each function accepts a :class:`Value`, a :class:`Tensor`, or a plain number or
array. Values and Tensors record the op in their graph; plain inputs are simply
evaluated with the op's own forward rule (a float for a number, an array for an
array), so there is still exactly one definition of the maths.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import ops
from ._math import ARRAY, SCALAR
from .ops import Op
from .tensor import Tensor, _as_float_array, tensor
from .value import Value

__all__ = [
    "abs",
    "cos",
    "exp",
    "log",
    "log_softmax",
    "logsumexp",
    "matmul",
    "maximum",
    "mean",
    "relu",
    "sigmoid",
    "sin",
    "softmax",
    "softplus",
    "sqrt",
    "sum",
    "tan",
    "tanh",
    "where",
]


def _unary(op: Op, x: Any) -> Any:
    if isinstance(x, Value):
        return Value._apply(op, (x,))
    if isinstance(x, Tensor):
        return Tensor._apply(op, (x,))
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return float(op.forward(SCALAR, float(x)))
    if isinstance(x, (np.ndarray, list, tuple)):
        return op.forward(ARRAY, _as_float_array(x))
    raise TypeError(
        f"chainrule.{op.name} takes a Value, a Tensor, a number or an array, not {type(x).__name__}"
    )


def exp(x: Any) -> Any:
    """eˣ, elementwise."""
    return _unary(ops.EXP, x)


def log(x: Any) -> Any:
    """Natural logarithm, elementwise (NaN below 0 and −inf at 0, as numpy)."""
    return _unary(ops.LOG, x)


def sin(x: Any) -> Any:
    """Sine, elementwise."""
    return _unary(ops.SIN, x)


def cos(x: Any) -> Any:
    """Cosine, elementwise."""
    return _unary(ops.COS, x)


def tan(x: Any) -> Any:
    """Tangent, elementwise."""
    return _unary(ops.TAN, x)


def sqrt(x: Any) -> Any:
    """Square root, elementwise (NaN below 0, as numpy)."""
    return _unary(ops.SQRT, x)


def tanh(x: Any) -> Any:
    """Hyperbolic tangent, elementwise."""
    return _unary(ops.TANH, x)


def sigmoid(x: Any) -> Any:
    """The logistic function σ(x) = 1/(1 + e⁻ˣ), elementwise."""
    return _unary(ops.SIGMOID, x)


def relu(x: Any) -> Any:
    """max(x, 0), elementwise."""
    return _unary(ops.RELU, x)


def abs(x: Any) -> Any:
    """|x|, elementwise."""
    return _unary(ops.ABS, x)


def softplus(x: Any) -> Any:
    """log(1 + eˣ), elementwise, exact for large |x|."""
    return _unary(ops.SOFTPLUS, x)


def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else tensor(x)


def maximum(a: Any, b: Any) -> Any:
    """Elementwise maximum; at ties the whole gradient goes to ``a``."""
    if isinstance(a, Value) or isinstance(b, Value):
        from .value import _as_value

        return Value._apply(ops.MAXIMUM, (_as_value(a, "maximum"), _as_value(b, "maximum")))
    if isinstance(a, Tensor):
        return a.maximum(b)
    if isinstance(b, Tensor):
        return b._binary(ops.MAXIMUM, a, "maximum", reflected=True)
    return ops.MAXIMUM.forward(ARRAY, _as_float_array(a), _as_float_array(b))


def where(condition: Any, x: Any, y: Any) -> Tensor:
    """Elementwise ``x`` where ``condition`` holds, else ``y`` (gradients flow the same way)."""
    condition = np.asarray(getattr(condition, "data", condition), dtype=bool)
    first = _as_tensor(x)
    second = first._operand(y, "where")
    return Tensor._apply(ops.WHERE, (first, second), {"condition": condition})


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product ``a @ b`` with numpy's rules for 1-d and batched operands."""
    return _as_tensor(a) @ b


def sum(x: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (all axes by default)."""
    return _as_tensor(x).sum(axis, keepdims)


def mean(x: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (all axes by default)."""
    return _as_tensor(x).mean(axis, keepdims)


def logsumexp(x: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
    """log Σ eˣ over ``axis``, computed without overflow."""
    return _as_tensor(x).logsumexp(axis, keepdims)


def softmax(x: Any, axis: int = -1) -> Tensor:
    """eˣ / Σ eˣ along ``axis``, computed without overflow."""
    return _as_tensor(x).softmax(axis)


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """x − logsumexp(x) along ``axis``, computed without overflow."""
    return _as_tensor(x).log_softmax(axis)


def _function_for(op: Op) -> Any:
    """The module-level function for a unary op row: ``chainrule.<name>(x)``."""

    def function(x: Any) -> Any:
        return _unary(op, x)

    function.__name__ = function.__qualname__ = op.name
    function.__doc__ = ops.function_doc(op)
    return function


# Every other function in ops.FUNCTIONS gets its chainrule.<name> from its row alone,
# so adding an elementwise op needs no code here.
for _name, _op in ops.FUNCTIONS.items():
    if _name not in globals():
        globals()[_name] = _function_for(_op)
        __all__.append(_name)


def __getattr__(name: str) -> Callable[[Any], Any]:
    # Only reached for a name that is not here. Typed so that mypy accepts the functions
    # made above from their rows (chainrule.functions.<name>), which it cannot see.
    raise AttributeError(f"module 'chainrule.functions' has no attribute {name!r}")
