"""Every primitive op, defined once: its forward and its partial per input, as data.

Each :class:`Op` is one row of a table. Backward (:func:`Op.vjp`), gradcheck, the
dataflow diagram (one edge = one :class:`Partial`), the path-sum explainer and the
symbolic derivative all read these rows; none of them knows any particular op.

Elementwise rules are written once against an array namespace ``xp``
(:mod:`chainrule._math`), so the same row serves :class:`~chainrule.Value` (Python
floats) and :class:`~chainrule.Tensor` (numpy arrays). A partial's ``local`` rule
receives ``(xp, out, *inputs, **params)`` and returns ∂out/∂input at that point.

Structural tensor ops (matmul, reductions, reshapes, indexing, softmax) do not
have an elementwise partial; their rows carry a vector-Jacobian product ``vjp``
``(adjoint, out, *inputs, **params) -> adjoint for the input`` instead.

Symbolic forms are strings over the input names ``a``, ``b`` and the op's
parameter names (``p`` for a constant exponent). For elementwise ops they are
expressions in chainrule's expression language (numbers, names, ``+ - * / **``,
and the functions in :data:`FUNCTIONS`); for structural ops they describe the
Jacobian in words and symbols for people to read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._math import numpy_semantics
from .errors import AnomalyError
from .graph import GradMode, Node

LocalRule = Callable[..., Any]
VjpRule = Callable[..., Any]


@dataclass(frozen=True)
class Partial:
    """∂out/∂input for one input of an op: one edge of a dataflow diagram.

    Exactly one of ``constant``, ``local`` and ``vjp`` is set.
    """

    symbol: str
    local: LocalRule | None = None
    constant: float | None = None
    vjp: VjpRule | None = None

    def value(self, xp: Any, out: Any, inputs: tuple[Any, ...], params: dict[str, Any]) -> Any:
        """The partial's numerical value at a point (elementwise ops only)."""
        if self.constant is not None:
            return self.constant
        if self.local is None:
            raise TypeError("a structural partial has no elementwise value; use its vjp")
        return self.local(xp, out, *inputs, **params)


@dataclass(frozen=True)
class Op:
    """A primitive: its name, forward rule, one :class:`Partial` per input, and symbol.

    ``symbol`` is the forward expression over the inputs ``a``, ``b`` (``"a*b"``,
    ``"sin(a)"``). ``elementwise`` ops work on Values and Tensors alike.
    """

    name: str
    forward: Callable[..., Any]
    partials: tuple[Partial, ...]
    symbol: str
    elementwise: bool = True
    param_names: tuple[str, ...] = field(default=())
    # The partials again, as ``(constant, local)`` per input, for the scalar backward
    # walk (:mod:`chainrule.value`): read straight from ``partials`` when the row is
    # made, so the walk unpacks one tuple per node and calls ``local(xp, out, a, b)``
    # with plain arguments. ``None`` where the walk calls :meth:`vjp` instead: ops
    # with parameters (passed as ``**params``) and structural ops.
    scalar_rules: tuple[tuple[float | None, LocalRule | None], ...] | None = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        rules = None
        if not self.param_names and all(p.vjp is None for p in self.partials):
            rules = tuple((p.constant, p.local) for p in self.partials)
        object.__setattr__(self, "scalar_rules", rules)  # frozen: set once, here

    @property
    def arity(self) -> int:
        return len(self.partials)

    def vjp(self, node: Node, adjoint: Any) -> list[Any]:
        """Adjoint contributions for each parent of ``node`` (``None`` where unneeded).

        This is the chain rule for one node: parent adjoint += adjoint · ∂node/∂parent.
        """
        # Written for speed: it runs once per node in every backward pass.
        parents = node.parents
        out = node.data
        params = node.params
        inputs: list[Any] | None = None  # read only by partials that need them
        contributions: list[Any] = []
        passed_adjoint_through = False
        for index, partial in enumerate(self.partials):
            parent = parents[index]
            if not parent._needs_grad():
                contributions.append(None)
                continue
            constant = partial.constant
            if constant is not None:
                # skip multiplying by one
                contribution = adjoint if constant == 1.0 else adjoint * constant
            else:
                if inputs is None:
                    inputs = [p.data for p in parents]
                if partial.vjp is not None:
                    contribution = partial.vjp(adjoint, out, *inputs, **params)
                else:
                    local = partial.local
                    assert local is not None  # a Partial sets exactly one rule
                    try:
                        contribution = adjoint * local(node._xp, out, *inputs, **params)
                    except ArithmeticError:  # a Value at a domain edge, e.g. d√x/dx at 0
                        slope = numpy_semantics(local, out, *inputs, **params)
                        contribution = adjoint * slope
            contribution = node._fit_adjoint(contribution, parent)
            if contribution is adjoint:
                # Two parents must never share one adjoint object: a later in-place
                # update of one leaf's grad would silently change the other's.
                if passed_adjoint_through:
                    contribution = node._copy_adjoint(contribution)
                passed_adjoint_through = True
            if GradMode.detect_anomaly:
                _check_backward(self, node, index, contribution)
            contributions.append(contribution)
        return contributions


def _check_backward(op: Op, node: Node, index: int, contribution: Any) -> None:
    if not bool(np.all(np.isfinite(contribution))):
        shapes = ", ".join(str(np.shape(parent.data)) for parent in node.parents)
        raise AnomalyError(
            f"backward of {op.name} produced NaN or Inf in the adjoint of its input "
            f"{index} (input shapes: {shapes}); the forward value there was "
            f"{_summary(node.data)}"
        )


def check_forward(op: Op, inputs: tuple[Any, ...], out: Any) -> None:
    """Raise :class:`AnomalyError` if ``out`` holds NaN or Inf (``detect_anomaly`` on)."""
    if bool(np.all(np.isfinite(out))):
        return
    shapes = ", ".join(str(np.shape(x)) for x in inputs)
    bad_inputs = [i for i, x in enumerate(inputs) if not bool(np.all(np.isfinite(x)))]
    origin = (
        f"its inputs {bad_inputs} already held NaN or Inf"
        if bad_inputs
        else "all its inputs were finite"
    )
    raise AnomalyError(
        f"forward of {op.name} produced NaN or Inf (input shapes: {shapes}); {origin}"
    )


def _summary(data: Any) -> str:
    array = np.asarray(data)
    if array.size == 1:
        return repr(float(array))
    return f"an array of shape {array.shape}"


def _elementwise(
    name: str,
    symbol: str,
    forward: Callable[..., Any],
    *partials: Partial,
    params: tuple[str, ...] = (),
) -> Op:
    return Op(name, forward, tuple(partials), symbol, True, params)


def _structural(
    name: str,
    symbol: str,
    forward: Callable[..., Any],
    *partials: Partial,
    params: tuple[str, ...] = (),
) -> Op:
    return Op(name, forward, tuple(partials), symbol, False, params)


# --- elementwise: one row per op, valid for Value and Tensor ---------------------------

ADD = _elementwise(
    "add",
    "a + b",
    lambda xp, a, b: a + b,
    Partial("1", constant=1.0),
    Partial("1", constant=1.0),
)
SUB = _elementwise(
    "sub",
    "a - b",
    lambda xp, a, b: a - b,
    Partial("1", constant=1.0),
    Partial("-1", constant=-1.0),
)
MUL = _elementwise(
    "mul",
    "a*b",
    lambda xp, a, b: a * b,
    Partial("b", lambda xp, out, a, b: b),
    Partial("a", lambda xp, out, a, b: a),
)
DIV = _elementwise(
    "div",
    "a/b",
    lambda xp, a, b: a / b,
    Partial("1/b", lambda xp, out, a, b: 1.0 / b),
    Partial("-a/b**2", lambda xp, out, a, b: -out / b),
)
NEG = _elementwise(
    "neg",
    "-a",
    lambda xp, a: -a,
    Partial("-1", constant=-1.0),
)
# A constant exponent is a parameter, so x**2 draws one edge labelled 2·x.
POWC = _elementwise(
    "pow",
    "a**p",
    lambda xp, a, p: xp.power(a, p),
    Partial("p*a**(p - 1)", lambda xp, out, a, p: p * xp.power(a, p - 1)),
    params=("p",),
)
# An exponent that is itself a node has a partial of its own.
POW = _elementwise(
    "pow",
    "a**b",
    lambda xp, a, b: xp.power(a, b),
    Partial("b*a**(b - 1)", lambda xp, out, a, b: b * xp.power(a, b - 1)),
    Partial("a**b*log(a)", lambda xp, out, a, b: out * xp.log(a)),
)
EXP = _elementwise(
    "exp",
    "exp(a)",
    lambda xp, a: xp.exp(a),
    Partial("exp(a)", lambda xp, out, a: out),
)
LOG = _elementwise(
    "log",
    "log(a)",
    lambda xp, a: xp.log(a),
    Partial("1/a", lambda xp, out, a: 1.0 / a),
)
SIN = _elementwise(
    "sin",
    "sin(a)",
    lambda xp, a: xp.sin(a),
    Partial("cos(a)", lambda xp, out, a: xp.cos(a)),
)
COS = _elementwise(
    "cos",
    "cos(a)",
    lambda xp, a: xp.cos(a),
    Partial("-sin(a)", lambda xp, out, a: -xp.sin(a)),
)
TAN = _elementwise(
    "tan",
    "tan(a)",
    lambda xp, a: xp.tan(a),
    Partial("1 + tan(a)**2", lambda xp, out, a: 1.0 + out * out),
)
SQRT = _elementwise(
    "sqrt",
    "sqrt(a)",
    lambda xp, a: xp.sqrt(a),
    Partial("1/(2*sqrt(a))", lambda xp, out, a: 0.5 / out),
)
TANH = _elementwise(
    "tanh",
    "tanh(a)",
    lambda xp, a: xp.tanh(a),
    Partial("1 - tanh(a)**2", lambda xp, out, a: 1.0 - out * out),
)
SIGMOID = _elementwise(
    "sigmoid",
    "sigmoid(a)",
    lambda xp, a: xp.sigmoid(a),
    Partial("sigmoid(a)*(1 - sigmoid(a))", lambda xp, out, a: out * (1.0 - out)),
)
# NOTE: relu is a primitive rather than maximum(a, 0) so a diagram shows one edge
# labelled step(a); its partial at the kink a = 0 is 0, as in PyTorch.
RELU = _elementwise(
    "relu",
    "relu(a)",
    lambda xp, a: xp.maximum(a, 0.0),
    Partial("step(a)", lambda xp, out, a: out > 0),
)
ABS = _elementwise(
    "abs",
    "abs(a)",
    lambda xp, a: xp.abs(a),
    Partial("sign(a)", lambda xp, out, a: xp.sign(a)),
)
# NOTE: softplus log(1 + e^a) is its own op because the composite overflows for
# large a; written as max(a, 0) + log(1 + e^-|a|) it is exact for any a.
SOFTPLUS = _elementwise(
    "softplus",
    "softplus(a)",
    lambda xp, a: xp.maximum(a, 0.0) + xp.log(1.0 + xp.exp(-xp.abs(a))),
    Partial("sigmoid(a)", lambda xp, out, a: xp.sigmoid(a)),
)
# Ties send the whole adjoint to the first input, so the partials sum to 1.
MAXIMUM = _elementwise(
    "maximum",
    "maximum(a, b)",
    lambda xp, a, b: xp.maximum(a, b),
    Partial("step(a - b)", lambda xp, out, a, b: a >= b),
    Partial("step(b - a)", lambda xp, out, a, b: a < b),
)
WHERE = _elementwise(
    "where",
    "where(c, a, b)",
    lambda xp, a, b, condition: xp.where(condition, a, b),
    Partial("c", lambda xp, out, a, b, condition: condition),
    Partial("1 - c", lambda xp, out, a, b, condition: xp.logical_not(condition)),
    params=("condition",),
)

# --- structural: tensor-only, with vector-Jacobian products -----------------------------


def _swap_last(x: np.ndarray) -> np.ndarray:
    return x.swapaxes(-1, -2)  # the method: np.swapaxes adds a slow Python-level dispatch


def _matmul_vjp_a(adjoint: Any, out: Any, a: np.ndarray, b: np.ndarray) -> Any:
    if b.ndim == 1:
        return adjoint * b if a.ndim == 1 else np.expand_dims(adjoint, -1) * b
    if a.ndim == 1:
        return (b @ np.expand_dims(adjoint, -1))[..., 0]
    return adjoint @ _swap_last(b)


def _matmul_vjp_b(adjoint: Any, out: Any, a: np.ndarray, b: np.ndarray) -> Any:
    if a.ndim == 1:
        if b.ndim == 1:
            return adjoint * a
        return np.expand_dims(a, -1) * np.expand_dims(adjoint, -2)
    if b.ndim == 1:
        return (_swap_last(a) @ np.expand_dims(adjoint, -1))[..., 0]
    if b.ndim == 2 and b.flags.f_contiguous and not b.flags.c_contiguous:
        # NOTE: b is a transposed array, as W.T in a linear layer's x @ W.T. Computing
        # (adjointᵀ a)ᵀ gives its adjoint b's own layout, so the transpose's backward
        # hands W a C-ordered gradient: no transposing copy, which on large layers costs
        # more than the product itself. The same dot products, though BLAS may add them in
        # another order (equal to float32 rounding, tested).
        return _swap_last(_swap_last(adjoint) @ a)
    return _swap_last(a) @ adjoint


def _keep_reduced_axes(x: Any, ndim: int, axis: Any, keepdims: bool) -> Any:
    """Put back the axes a reduction removed, so ``x`` broadcasts against its input."""
    if keepdims:
        return x
    if axis is None:
        return np.reshape(x, (1,) * ndim)
    return np.expand_dims(x, axis)


def _sum_vjp(adjoint: Any, out: Any, a: np.ndarray, axis: Any, keepdims: bool) -> Any:
    return np.broadcast_to(_keep_reduced_axes(adjoint, a.ndim, axis, keepdims), a.shape)


def _max_vjp(adjoint: Any, out: Any, a: np.ndarray, axis: Any, keepdims: bool) -> Any:
    # Ties share the adjoint equally, so the partials over a reduced slice sum to 1.
    winners = a == _keep_reduced_axes(out, a.ndim, axis, keepdims)
    count = winners.sum(axis=axis, keepdims=True).astype(a.dtype)
    return winners * (_keep_reduced_axes(adjoint, a.ndim, axis, keepdims) / count)


def _logsumexp(a: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    # NOTE: subtracting the max keeps exp from overflowing; an all −inf slice keeps
    # its max at 0 so the result is −inf rather than NaN.
    peak = np.max(a, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0).astype(a.dtype)
    total = np.log(np.sum(np.exp(a - peak), axis=axis, keepdims=True)) + peak
    return total if keepdims else np.squeeze(total, axis=axis)


def _logsumexp_vjp(adjoint: Any, out: Any, a: np.ndarray, axis: Any, keepdims: bool) -> Any:
    expanded = _keep_reduced_axes(out, a.ndim, axis, keepdims)
    return _keep_reduced_axes(adjoint, a.ndim, axis, keepdims) * np.exp(a - expanded)


def _softmax(a: np.ndarray, axis: int) -> np.ndarray:
    shifted = np.exp(a - np.max(a, axis=axis, keepdims=True))
    return shifted / np.sum(shifted, axis=axis, keepdims=True)


def _softmax_vjp(adjoint: Any, out: Any, a: np.ndarray, axis: int) -> Any:
    return out * (adjoint - np.sum(adjoint * out, axis=axis, keepdims=True))


def _log_softmax_vjp(adjoint: Any, out: Any, a: np.ndarray, axis: int) -> Any:
    return adjoint - np.exp(out) * np.sum(adjoint, axis=axis, keepdims=True)


def _is_basic_index(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(
        isinstance(part, (int, np.integer, slice)) or part is None or part is Ellipsis
        for part in parts
    )


def _getitem_vjp(adjoint: Any, out: Any, a: np.ndarray, index: Any) -> Any:
    spread = np.zeros_like(a)
    if _is_basic_index(index):
        spread[index] = adjoint
    else:
        # Integer arrays may repeat an element; add.at sums the repeats.
        np.add.at(spread, index, adjoint)
    return spread


MATMUL = _structural(
    "matmul",
    "a @ b",
    lambda xp, a, b: np.matmul(a, b),
    Partial("bᵀ", vjp=_matmul_vjp_a),
    Partial("aᵀ", vjp=_matmul_vjp_b),
)
SUM = _structural(
    "sum",
    "sum(a)",
    lambda xp, a, axis, keepdims: np.sum(a, axis=axis, keepdims=keepdims),
    Partial("1", vjp=_sum_vjp),
    params=("axis", "keepdims"),
)
MAX = _structural(
    "max",
    "max(a)",
    lambda xp, a, axis, keepdims: np.max(a, axis=axis, keepdims=keepdims),
    Partial("[a = max(a)] / ties", vjp=_max_vjp),
    params=("axis", "keepdims"),
)
RESHAPE = _structural(
    "reshape",
    "reshape(a)",
    lambda xp, a, shape: np.reshape(a, shape),
    Partial("1", vjp=lambda adjoint, out, a, shape: np.reshape(adjoint, a.shape)),
    params=("shape",),
)
TRANSPOSE = _structural(
    "transpose",
    "aᵀ",
    lambda xp, a, axes: np.transpose(a, axes),
    Partial(
        "1",
        vjp=lambda adjoint, out, a, axes: np.transpose(
            adjoint, None if axes is None else np.argsort(axes)
        ),
    ),
    params=("axes",),
)
GETITEM = _structural(
    "getitem",
    "a[index]",
    lambda xp, a, index: a[index],
    Partial("1 at index", vjp=_getitem_vjp),
    params=("index",),
)
LOGSUMEXP = _structural(
    "logsumexp",
    "logsumexp(a)",
    lambda xp, a, axis, keepdims: _logsumexp(a, axis, keepdims),
    Partial("softmax(a)", vjp=_logsumexp_vjp),
    params=("axis", "keepdims"),
)
SOFTMAX = _structural(
    "softmax",
    "softmax(a)",
    lambda xp, a, axis: _softmax(a, axis),
    Partial("diag(s) − s sᵀ", vjp=_softmax_vjp),
    params=("axis",),
)
LOG_SOFTMAX = _structural(
    "log_softmax",
    "log_softmax(a)",
    lambda xp, a, axis: a - _logsumexp(a, axis, keepdims=True),
    Partial("I − softmax(a)", vjp=_log_softmax_vjp),
    params=("axis",),
)

#: Every op, by name as it appears in diagrams and errors.
OPS: dict[str, Op] = {
    op.name if op is not POW else "pow_node": op
    for op in (
        ADD,
        SUB,
        MUL,
        DIV,
        NEG,
        POWC,
        POW,
        EXP,
        LOG,
        SIN,
        COS,
        TAN,
        SQRT,
        TANH,
        SIGMOID,
        RELU,
        ABS,
        SOFTPLUS,
        MAXIMUM,
        WHERE,
        MATMUL,
        SUM,
        MAX,
        RESHAPE,
        TRANSPOSE,
        GETITEM,
        LOGSUMEXP,
        SOFTMAX,
        LOG_SOFTMAX,
    )
}

#: Unary elementwise ops callable by name in expressions (``chainrule draw "sin(x)"``)
#: and in symbolic forms. ``step`` and ``sign`` appear only in partials.
FUNCTIONS: dict[str, Op] = {
    op.name: op for op in (EXP, LOG, SIN, COS, TAN, SQRT, TANH, SIGMOID, RELU, ABS, SOFTPLUS)
}
