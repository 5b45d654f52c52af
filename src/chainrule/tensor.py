"""``Tensor``: a numpy-backed node of any shape, float32 or float64.

Thin over :mod:`chainrule.ops`: every method applies an op row; no maths lives here.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import ops
from ._broadcast import unbroadcast
from ._math import ARRAY
from .errors import DTypeError, ShapeError
from .graph import Node, backward, grad_mode
from .ops import Op

_NO_PARAMS: dict[str, Any] = {}
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

DTypeLike = Any


def resolve_dtype(dtype: DTypeLike, where: str = "tensor") -> np.dtype:
    """``dtype`` as numpy's float32 or float64, or a :class:`DTypeError` naming ``where``.

    Args:
        dtype: anything numpy reads as a dtype (``"float32"``, ``np.float64``, ...).
        where: what was given the dtype, for the message (``"MLP"``).
    """
    try:
        resolved: np.dtype | None = np.dtype(dtype)
    except (TypeError, ValueError):  # a misspelling: "flaot32"
        resolved = None
    # NOTE: compared one by one, after the None check: numpy holds float64 == None true.
    if resolved is None or not any(resolved == known for known in _FLOAT_DTYPES):
        raise DTypeError(
            f"{where}: dtype {dtype!r} is not float32 or float64, the two dtypes chainrule "
            "computes in; pass dtype='float32' or dtype='float64'"
        )
    return resolved


def _as_float_array(data: Any, dtype: DTypeLike = None) -> np.ndarray:
    if dtype is not None:
        return np.asarray(data, dtype=resolve_dtype(dtype))
    array = np.asarray(data)
    if array.dtype in _FLOAT_DTYPES:
        return array
    if array.dtype.kind in "biuf":
        return array.astype(np.float64)
    raise TypeError(
        f"cannot make a tensor from {type(data).__name__} with dtype {array.dtype}; "
        "give numbers, nested lists of numbers, or a numeric numpy array"
    )


class Tensor(Node):
    """An n-dimensional array in a computation graph.

    Make one with :func:`chainrule.tensor`. ``grad`` is filled by ``backward()`` on
    tensors with ``requires_grad=True`` (leaf gradients accumulate across calls);
    interior tensors keep their adjoint only after :meth:`retain_grad` or with
    ``backward(retain_grads=True)``.
    """

    __slots__ = ("_retain", "parents", "requires_grad")
    _xp = ARRAY
    # ndarray <op> Tensor must defer to Tensor's reflected operator, not broadcast
    # the Tensor as an object array.
    __array_ufunc__ = None

    def __init__(
        self,
        data: Any,
        requires_grad: bool = False,
        dtype: DTypeLike = None,
        label: str | None = None,
    ) -> None:
        self.data = _as_float_array(data, dtype)
        self.grad = None
        self.label = label
        self.parents = ()
        self.op = None
        self.params = _NO_PARAMS
        self.requires_grad = bool(requires_grad)
        self._retain = False

    @staticmethod
    def _apply(op: Op, inputs: tuple[Tensor, ...], params: dict[str, Any] = _NO_PARAMS) -> Tensor:
        mode = grad_mode()
        recorder = mode.recorder
        if recorder is not None:  # a chainrule.compile step is being recorded or replayed
            return recorder.apply(op, inputs, params)
        arrays = [t.data for t in inputs]
        try:
            data = op.forward(ARRAY, *arrays, **params)
        except ValueError as error:
            raise _shape_error(op, arrays, params, error) from None
        if type(data) is not np.ndarray:
            data = np.asarray(data)  # numpy gives scalars, not 0-d arrays, for 0-d results
        if mode.detect_anomaly:
            ops.check_forward(op, tuple(arrays), data)
        out = Tensor.__new__(Tensor)
        out.data = data
        out.grad = None
        out.label = None
        out._retain = False
        if mode.enabled and _any_requires_grad(inputs):
            out.requires_grad = True
            out.parents = inputs
            out.op = op
            out.params = params
        else:
            out.requires_grad = False
            out.parents = ()
            out.op = None
            out.params = _NO_PARAMS
        return out

    # --- node hooks read by the graph core -----------------------------------------

    def _needs_grad(self) -> bool:
        return self.requires_grad

    def _retains_grad(self) -> bool:
        return self._retain

    def _fit_adjoint(self, contribution: Any, parent: Node) -> Any:
        shape = parent.data.shape
        if getattr(contribution, "shape", None) != shape:
            contribution = unbroadcast(contribution, shape)
        return contribution

    def _copy_adjoint(self, adjoint: Any) -> Any:
        return np.array(adjoint, copy=True)

    def _accumulate_leaf_grad(self, adjoint: Any) -> None:
        if (
            self.grad is None
            and type(adjoint) is np.ndarray
            and adjoint.dtype == self.data.dtype
            and adjoint.flags.owndata
            and adjoint.flags.writeable
        ):
            self.grad = adjoint  # the common case, decided without a copy or a cast
            return
        adjoint = np.asarray(adjoint)
        if adjoint.dtype != self.data.dtype:
            adjoint = adjoint.astype(self.data.dtype)
        if self.grad is None:
            # A leaf owns its grad: never keep a view or a read-only broadcast.
            owned = adjoint.flags.owndata and adjoint.flags.writeable
            self.grad = adjoint if owned else adjoint.copy()
        else:
            self.grad = self.grad + adjoint

    # --- properties -----------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def T(self) -> Tensor:
        return Tensor._apply(ops.TRANSPOSE, (self,), _ALL_AXES_REVERSED)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def numpy(self) -> np.ndarray:
        """The data as a numpy array (the same array, not a copy)."""
        return self.data

    def item(self) -> float:
        """The single number in a one-element tensor."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a one-element tensor, this one has shape {self.shape}")
        return float(self.data.reshape(()))

    def __float__(self) -> float:
        return self.item()

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", threshold=20)
        extras = []
        if self.data.dtype != np.float64:
            extras.append(f"dtype={self.data.dtype}")
        if self.requires_grad:
            extras.append("requires_grad=True")
        if self.label:
            extras.append(f"label={self.label!r}")
        suffix = "".join(", " + e for e in extras)
        return f"tensor({body}{suffix})"

    # --- operand conversion ---------------------------------------------------------

    def _operand(self, other: Any, symbol: str) -> Tensor:
        if isinstance(other, Tensor):
            return other
        if type(other) is float or type(other) is int:  # before the slower ABC check
            return _constant(np.asarray(other, dtype=self.data.dtype))
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            return _constant(np.asarray(other, dtype=self.data.dtype))
        if isinstance(other, (np.ndarray, list, tuple)):
            array = np.asarray(other)
            if array.dtype.kind in "biu":
                array = array.astype(self.data.dtype)
            return Tensor(array)
        raise TypeError(
            f"unsupported operand for {symbol} with a Tensor: {type(other).__name__} "
            "(Tensors combine with numbers, numpy arrays and other Tensors)"
        )

    def _binary(self, op: Op, other: Any, symbol: str, reflected: bool = False) -> Tensor:
        kind = type(other)
        if kind is Tensor:
            operand = other
        else:
            if kind is float or kind is int:
                recorder = grad_mode().recorder
                if recorder is not None:  # a compiled step's replay serves it number and all
                    served = recorder.apply_number(op, self, other, reflected)
                    if served is not None:
                        return served
            operand = self._operand(other, symbol)
        return Tensor._apply(op, (operand, self) if reflected else (self, operand))

    # --- operators ------------------------------------------------------------------

    def __add__(self, other: Any) -> Tensor:
        return self._binary(ops.ADD, other, "+")

    def __radd__(self, other: Any) -> Tensor:
        return self._binary(ops.ADD, other, "+", reflected=True)

    def __sub__(self, other: Any) -> Tensor:
        return self._binary(ops.SUB, other, "-")

    def __rsub__(self, other: Any) -> Tensor:
        return self._binary(ops.SUB, other, "-", reflected=True)

    def __mul__(self, other: Any) -> Tensor:
        return self._binary(ops.MUL, other, "*")

    def __rmul__(self, other: Any) -> Tensor:
        return self._binary(ops.MUL, other, "*", reflected=True)

    def __truediv__(self, other: Any) -> Tensor:
        return self._binary(ops.DIV, other, "/")

    def __rtruediv__(self, other: Any) -> Tensor:
        return self._binary(ops.DIV, other, "/", reflected=True)

    def __matmul__(self, other: Any) -> Tensor:
        return self._binary(ops.MATMUL, other, "@")

    def __rmatmul__(self, other: Any) -> Tensor:
        return self._binary(ops.MATMUL, other, "@", reflected=True)

    def __pow__(self, other: Any) -> Tensor:
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            return Tensor._apply(ops.POWC, (self,), {"p": float(other)})
        return self._binary(ops.POW, other, "**")

    def __rpow__(self, other: Any) -> Tensor:
        return self._binary(ops.POW, other, "**", reflected=True)

    def __neg__(self) -> Tensor:
        return Tensor._apply(ops.NEG, (self,))

    def __abs__(self) -> Tensor:
        return Tensor._apply(ops.ABS, (self,))

    def __getitem__(self, index: Any) -> Tensor:
        return Tensor._apply(ops.GETITEM, (self,), {"index": _plain_index(index)})

    # --- elementwise functions ------------------------------------------------------

    def exp(self) -> Tensor:
        return Tensor._apply(ops.EXP, (self,))

    def log(self) -> Tensor:
        return Tensor._apply(ops.LOG, (self,))

    def sin(self) -> Tensor:
        return Tensor._apply(ops.SIN, (self,))

    def cos(self) -> Tensor:
        return Tensor._apply(ops.COS, (self,))

    def tan(self) -> Tensor:
        return Tensor._apply(ops.TAN, (self,))

    def sqrt(self) -> Tensor:
        return Tensor._apply(ops.SQRT, (self,))

    def tanh(self) -> Tensor:
        return Tensor._apply(ops.TANH, (self,))

    def sigmoid(self) -> Tensor:
        return Tensor._apply(ops.SIGMOID, (self,))

    def relu(self) -> Tensor:
        return Tensor._apply(ops.RELU, (self,))

    def abs(self) -> Tensor:
        return Tensor._apply(ops.ABS, (self,))

    def softplus(self) -> Tensor:
        return Tensor._apply(ops.SOFTPLUS, (self,))

    def maximum(self, other: Any) -> Tensor:
        return self._binary(ops.MAXIMUM, other, "maximum")

    # --- structural -----------------------------------------------------------------

    def matmul(self, other: Any) -> Tensor:
        return self._binary(ops.MATMUL, other, "@")

    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return Tensor._apply(ops.SUM, (self,), _reduction_params(axis, keepdims))

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        total = self.sum(axis, keepdims)
        count = self.data.size // max(total.data.size, 1) if self.data.size else 0
        return total * (1.0 / count) if count else total * float("nan")

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return Tensor._apply(ops.MAX, (self,), _reduction_params(axis, keepdims))

    def logsumexp(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return Tensor._apply(ops.LOGSUMEXP, (self,), _reduction_params(axis, keepdims))

    def softmax(self, axis: int = -1) -> Tensor:
        return Tensor._apply(ops.SOFTMAX, (self,), {"axis": axis})

    def log_softmax(self, axis: int = -1) -> Tensor:
        return Tensor._apply(ops.LOG_SOFTMAX, (self,), {"axis": axis})

    def reshape(self, *shape: Any) -> Tensor:
        target = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], Sequence) else shape
        return Tensor._apply(ops.RESHAPE, (self,), {"shape": target})

    def transpose(self, *axes: Any) -> Tensor:
        order = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], Sequence) else axes
        return Tensor._apply(
            ops.TRANSPOSE, (self,), {"axes": order} if order else _ALL_AXES_REVERSED
        )

    # --- gradients ------------------------------------------------------------------

    def backward(self, grad: Any = None, retain_grads: bool = False) -> None:
        """Backpropagate from this tensor.

        Args:
            grad: ∂(final output)/∂self, same shape as self. Needed unless self holds
                one element, where it defaults to 1.
            retain_grads: also keep the adjoint of every interior tensor in ``grad``
                (diagrams use this); leaves always get theirs.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: make the inputs "
                "with chainrule.tensor(..., requires_grad=True) (and not under no_grad())"
            )
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() on a tensor of shape {self.shape} needs grad= (an array of "
                    "that shape holding ∂output/∂this tensor); or reduce it first, e.g. "
                    ".sum() or .mean()"
                )
            data = self.data
            # A 0-d loss is the common case: np.array is one C call, np.ones_like several.
            seed = np.array(1, dtype=data.dtype) if data.ndim == 0 else np.ones_like(data)
        else:
            seed = np.array(getattr(grad, "data", grad), dtype=self.data.dtype, copy=True)
            if seed.shape != self.shape:
                raise ShapeError(
                    f"backward(grad=...): grad has shape {seed.shape}, the tensor {self.shape}"
                )
        backward(self, seed, retain_all=retain_grads)

    def retain_grad(self) -> Tensor:
        """Keep this interior tensor's adjoint in ``grad`` after backward."""
        self._retain = True
        return self

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``grad`` becomes None)."""
        self.grad = None

    def detach(self) -> Tensor:
        """The same data as a new leaf that does not require grad."""
        return Tensor(self.data, label=self.label)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Switch gradient tracking for this leaf in place; returns self."""
        if self.op is not None:
            raise RuntimeError("requires_grad_ applies to leaf tensors; use detach() first")
        self.requires_grad = requires_grad
        return self


def _constant(data: np.ndarray) -> Tensor:
    """A leaf not requiring grad around a float array (built directly: numbers combined
    with tensors make one per op)."""
    leaf = Tensor.__new__(Tensor)
    leaf.data = data
    leaf.grad = None
    leaf.label = None
    leaf.parents = ()
    leaf.op = None
    leaf.params = _NO_PARAMS
    leaf.requires_grad = False
    leaf._retain = False
    return leaf


def _any_requires_grad(inputs: tuple[Tensor, ...]) -> bool:
    # A plain loop: any() over a generator costs more than the op on small arrays.
    for t in inputs:  # noqa: SIM110
        if t.requires_grad:
            return True
    return False


def tensor(
    data: Any,
    requires_grad: bool = False,
    dtype: DTypeLike = None,
    label: str | None = None,
) -> Tensor:
    """Make a leaf :class:`Tensor`.

    Args:
        data: a number, nested lists of numbers, or a numpy array (any shape, 0-d too).
        requires_grad: whether backward should fill this tensor's ``grad``.
        dtype: ``"float32"`` or ``"float64"``; by default float arrays keep their
            dtype and everything else (Python numbers, lists, integers) is float64.
        label: a name to show in diagrams and explanations.
    """
    if isinstance(data, Tensor):
        data = data.data
    elif (
        type(data) is np.ndarray
        and dtype is None
        and not requires_grad
        and label is None
        and (data.dtype is _FLOAT_DTYPES[0] or data.dtype is _FLOAT_DTYPES[1])
    ):
        return _constant(data)  # a float batch, made into a tensor on every step: kept as is
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, label=label)


def _axis(axis: Any) -> Any:
    if axis is None or isinstance(axis, (int, np.integer)):
        return axis
    return tuple(int(a) for a in axis)


# A step applies its reductions and transposes with the same few parameters every time.
# Handing out one shared dict per parameter set (never mutated: ops only read params)
# lets a replayed step (chainrule.compile) match an op's params to its recording by
# identity instead of comparing dicts.
_ALL_AXES_REVERSED: dict[str, Any] = {"axes": None}
_REDUCTION_PARAMS: dict[tuple[Any, bool], dict[str, Any]] = {}


def _reduction_params(axis: Any, keepdims: bool) -> dict[str, Any]:
    """The params of a reduction over ``axis`` (shared dicts for the common sets)."""
    axis = _axis(axis)
    key = (axis, bool(keepdims))
    params = _REDUCTION_PARAMS.get(key)
    if params is None:
        params = {"axis": axis, "keepdims": key[1]}
        if len(_REDUCTION_PARAMS) < 64:  # a handful in practice; never grows unbounded
            _REDUCTION_PARAMS[key] = params
    return params


def _plain_index(index: Any) -> Any:
    """Indexes made of Tensors or lists become numpy arrays (basic parts stay as they are)."""
    if isinstance(index, tuple):
        return tuple(_plain_index(part) for part in index)
    if isinstance(index, Tensor):
        return index.data.astype(np.intp) if index.data.dtype.kind == "f" else index.data
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _shape_error(op: Op, arrays: list[Any], params: dict[str, Any], error: Exception) -> ShapeError:
    shapes = " and ".join(str(np.shape(a)) for a in arrays)
    hint = {
        "matmul": "the last axis of the left operand must equal the second-to-last of the "
        "right one (transpose or reshape an operand)",
        "reshape": f"the new shape {params.get('shape')} must hold the same number of elements",
    }.get(op.name, "numpy broadcasting needs trailing dimensions that match or are 1")
    return ShapeError(f"{op.name}: shapes {shapes} do not fit: {hint} ({error})")


# --- generated: Tensor.<name>() for every function row without a method above -----------


def _apply_unary(op: Op, operand: Tensor) -> Tensor:
    return Tensor._apply(op, (operand,))


ops.add_function_methods(Tensor, _apply_unary)
