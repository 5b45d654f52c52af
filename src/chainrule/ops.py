"""Every primitive op, defined once: its forward and its partial per input, as data.

Each :class:`Op` is one row of a table. Backward (:func:`chainrule.graph.chain_rule`),
gradcheck, the dataflow diagram (one edge = one :class:`Partial`), the path-sum
explainer and the symbolic derivative all read these rows; none of them knows any
particular op.

Elementwise rules are written once against an array namespace ``xp``
(:mod:`chainrule._math`), so the same row serves :class:`~chainrule.Value` (Python
floats) and :class:`~chainrule.Tensor` (numpy arrays). A partial's ``local`` rule
receives ``(xp, out, *inputs, **params)`` and returns ∂out/∂input at that point.

Structural tensor ops (matmul, reductions, reshapes, indexing, softmax) do not
have an elementwise partial; their rows carry a vector-Jacobian product ``vjp``
``(adjoint, out, *inputs, **params) -> adjoint for the input`` instead.

Each row also carries what :func:`chainrule.compile` needs to replay it into
preallocated buffers, beside the rule it stands for: ``forward_into`` (the forward's
numpy calls with ``out=`` buffers) and, per partial, ``into`` (its vector-Jacobian
product written into a destination, with what it reads of the forward values). These
are the same numpy calls as the rule, so their results are the same to the bit; the
compiler checks that on every program it builds and falls back to the rule if not.

Symbolic forms are strings over the input names ``a``, ``b`` and the op's
parameter names (``p`` for a constant exponent). For elementwise ops they are
expressions in chainrule's expression language (numbers, names, ``+ - * / **``,
and the functions in :data:`FUNCTIONS`); for structural ops they describe the
Jacobian in words and symbols for people to read.

Adding an op is adding its row here (and its row in the gradient-check table of
``tests/test_ops_gradcheck.py``): every row made below is in :data:`OPS`, and a unary
elementwise row without parameters whose symbol is its own name applied to ``a``
(``"log1p(a)"``) is a function: it is in :data:`FUNCTIONS`, hence callable in
expressions, as ``chainrule.<name>``, ``Tensor.<name>()`` and ``Value.<name>()``, and
listed by ``chainrule explain --functions``. sympy gets such a function as the
row's :attr:`Op.definition` when it has one, else as sympy's own function of that
name.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._broadcast import leading_sum_steps, sum_leading
from ._math import ARRAY, numpy_semantics
from .errors import AnomalyError

LocalRule = Callable[..., Any]
VjpRule = Callable[..., Any]

#: One numpy call with all its arguments bound, run by a compiled program.
Instruction = Callable[[], Any]
#: ``forward_into(inputs, params, out)``: the instructions that write the op's forward
#: value into ``out``; an empty list declines (the compiler then calls the row).
ForwardInto = Callable[[Sequence[np.ndarray], dict[str, Any], np.ndarray], list[Instruction]]
#: ``scratch(like, dtype=None)``: a temporary buffer shaped like ``like``.
Scratch = Callable[..., np.ndarray]
#: What a partial's backward rule reads besides the adjoint: ``"out"`` and/or input
#: positions. It decides which forward values a compiled program keeps for backward.
Reads = tuple[str | int, ...]

_P = functools.partial


def _scratch(like: np.ndarray, dtype: Any = None) -> np.ndarray:
    """A fresh temporary shaped like ``like`` (the compiler passes one reusing buffers)."""
    return np.empty(like.shape, like.dtype if dtype is None else dtype)


@dataclass(frozen=True)
class Into:
    """A partial's vector-Jacobian product done in place, for compiled programs.

    ``build(adjoint, out, inputs, params, destination, scratch)`` returns the
    instructions writing the contribution ``adjoint · partial`` (or the row's ``vjp``)
    into ``destination``; an empty list declines. ``reads`` says which forward values
    the instructions read.
    """

    reads: Reads
    build: Callable[..., list[Instruction]]

    def __call__(
        self,
        adjoint: np.ndarray,
        out: np.ndarray,
        inputs: Sequence[np.ndarray],
        params: dict[str, Any],
        destination: np.ndarray,
        scratch: Scratch = _scratch,
    ) -> list[Instruction]:
        return self.build(adjoint, out, inputs, params, destination, scratch)


@dataclass(frozen=True)
class Partial:
    """∂out/∂input for one input of an op: one edge of a dataflow diagram.

    Exactly one of ``constant``, ``local`` and ``vjp`` is set. ``into`` is the same
    rule written into preallocated buffers (see :class:`Into`), for compiled steps.
    """

    symbol: str
    local: LocalRule | None = None
    constant: float | None = None
    vjp: VjpRule | None = None
    into: Into | None = None

    def value(self, xp: Any, out: Any, inputs: tuple[Any, ...], params: dict[str, Any]) -> Any:
        """The partial's numerical value at a point (elementwise ops only)."""
        if self.constant is not None:
            return self.constant
        if self.local is None:
            raise TypeError("a structural partial has no elementwise value; use its vjp")
        try:
            return self.local(xp, out, *inputs, **params)
        except ArithmeticError:  # a Value at a domain edge, e.g. d√x/dx at 0: numpy's inf
            return numpy_semantics(self.local, out, *inputs, **params)


@dataclass(frozen=True)
class Op:
    """A primitive: its name, forward rule, one :class:`Partial` per input, and symbol.

    ``symbol`` is the forward expression over the inputs ``a``, ``b`` (``"a*b"``,
    ``"sin(a)"``). ``elementwise`` ops work on Values and Tensors alike.
    ``forward_into`` is the forward written into a preallocated buffer (for compiled
    steps); an elementwise op that has one may write over one of its own inputs.
    ``definition`` is the forward written with other functions of the expression
    language (``"log(1 + a)"`` for log1p), for sympy, which has no function of the
    op's name; it is ``None`` where sympy has one (``exp``, ``tanh``).
    """

    name: str
    forward: Callable[..., Any]
    partials: tuple[Partial, ...]
    symbol: str
    elementwise: bool = True
    param_names: tuple[str, ...] = field(default=())
    forward_into: ForwardInto | None = None
    definition: str | None = None
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

    @property
    def in_place(self) -> bool:
        """Whether ``forward_into`` may write its result over one of its inputs."""
        return self.elementwise and self.forward_into is not None

    def reads(self, index: int) -> Reads:
        """What the partial for input ``index`` reads of the forward values (see :data:`Reads`).

        A constant partial reads nothing; one without an :class:`Into` is taken to
        read the output and every input.
        """
        partial = self.partials[index]
        if partial.constant is not None:
            return ()
        if partial.into is not None:
            return partial.into.reads
        return ("out", *range(self.arity))


def check_backward(op: Op, index: int, contribution: Any, inputs: Sequence[Any], out: Any) -> None:
    """Raise :class:`AnomalyError` if an adjoint contribution holds NaN or Inf.

    Args:
        op: the op whose partial was applied.
        index: the input the contribution is for.
        contribution: adjoint · ∂out/∂input.
        inputs: the op's input values (their shapes go into the message).
        out: its forward value.
    """
    if not bool(np.all(np.isfinite(contribution))):
        shapes = ", ".join(str(np.shape(x)) for x in inputs)
        raise AnomalyError(
            f"backward of {op.name} produced NaN or Inf in the adjoint of its input "
            f"{index} (input shapes: {shapes}); the forward value there was "
            f"{_summary(out)}"
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
        return repr(array.item())
    return f"an array of shape {array.shape}"


#: Every row, in the order made: :data:`OPS` and :data:`FUNCTIONS` are read from it, so
#: a new row needs no entry in any list.
_ROWS: list[Op] = []


def _elementwise(
    name: str,
    symbol: str,
    forward: Callable[..., Any],
    *partials: Partial,
    params: tuple[str, ...] = (),
    into: ForwardInto | None = None,
    definition: str | None = None,
) -> Op:
    op = Op(name, forward, tuple(partials), symbol, True, params, into, definition)
    _ROWS.append(op)
    return op


def _structural(
    name: str,
    symbol: str,
    forward: Callable[..., Any],
    *partials: Partial,
    params: tuple[str, ...] = (),
    into: ForwardInto | None = None,
) -> Op:
    op = Op(name, forward, tuple(partials), symbol, False, params, into)
    _ROWS.append(op)
    return op


# --- in-place building blocks for the rows' ``into`` --------------------------------------
#
# Each performs exactly the numpy calls of the rule beside which it is used, with
# ``out=`` buffers instead of fresh arrays.


def _ufunc_into(ufunc: np.ufunc) -> ForwardInto:
    """``forward_into`` for a row whose forward is the ufunc itself on its inputs."""
    return lambda ins, params, out: [_P(ufunc, *ins, out=out)]


#: The complex dtype whose two halves are two numbers of each real dtype.
_PAIRED: dict[np.dtype[Any], np.dtype[Any]] = {
    np.dtype(np.float32): np.dtype(np.complex64),
    np.dtype(np.float64): np.dtype(np.complex128),
}


def _as_pairs(ins: Sequence[np.ndarray], out: np.ndarray) -> list[np.ndarray] | None:
    """``ins`` and ``out`` seen as complex numbers, one per pair along the last axis of 2,
    when an input is a row broadcast down the other's rows; else None.

    numpy adds an (891, 2) array and a (2,) row in an inner loop 2 long (10x a copy);
    seen as 891 complex numbers plus one, the loop runs along the rows. Complex addition
    and subtraction are the real ones on each half, so the bits are those of the row.
    """
    paired = _PAIRED.get(out.dtype)
    if paired is None or out.ndim == 0 or out.shape[-1] != 2 or not out.flags.c_contiguous:
        return None
    arrays = [*ins, out]
    if any(
        type(a) is not np.ndarray or a.dtype != out.dtype or a.ndim == 0 or a.shape[-1] != 2
        for a in arrays
    ):
        return None
    if all(a.shape == out.shape for a in ins):  # nothing broadcast: numpy's loop is fast
        return None
    try:
        return [a.view(paired) for a in arrays]
    except ValueError:  # a last axis that is not contiguous
        return None


def _componentwise_into(ufunc: np.ufunc) -> ForwardInto:
    """``forward_into`` for add and subtract: :func:`_ufunc_into`, on pairs of numbers
    seen as complex ones where a narrow row is broadcast (see :func:`_as_pairs`)."""

    def build(ins: Sequence[np.ndarray], params: dict[str, Any], out: np.ndarray) -> list[Any]:
        pairs = _as_pairs(ins, out)
        if pairs is not None:
            *ins, out = pairs
        return [_P(ufunc, *ins, out=out)]

    return build


def _read(source: str | int, out: np.ndarray, ins: Sequence[np.ndarray]) -> np.ndarray:
    return out if source == "out" else ins[int(source)]


def _times(source: str | int) -> Into:
    """``into`` for a partial that is a forward value itself: adjoint · that value."""

    def build(
        adj: np.ndarray,
        out: np.ndarray,
        ins: Sequence[np.ndarray],
        params: dict[str, Any],
        dst: np.ndarray,
        scratch: Scratch,
    ) -> list[Instruction]:
        return [_P(np.multiply, adj, _read(source, out, ins), dst)]

    return Into((source,), build)


# ``steps(local, out, ins, params)`` -> the instructions computing the partial into
# ``local``, a temporary shaped like the forward value ``like`` names.
LocalSteps = Callable[[np.ndarray, np.ndarray, Sequence[np.ndarray], dict[str, Any]], list[Any]]


def _times_local(reads: Reads, like: str | int, steps: LocalSteps, dtype: Any = None) -> Into:
    """``into`` for a partial computed into a temporary, then adjoint · partial."""

    def build(
        adj: np.ndarray,
        out: np.ndarray,
        ins: Sequence[np.ndarray],
        params: dict[str, Any],
        dst: np.ndarray,
        scratch: Scratch,
    ) -> list[Instruction]:
        local = scratch(_read(like, out, ins), dtype)
        return [*steps(local, out, ins, params), _P(np.multiply, adj, local, dst)]

    return Into(reads, build)


# --- elementwise: one row per op, valid for Value and Tensor ---------------------------

ADD = _elementwise(
    "add",
    "a + b",
    lambda xp, a, b: a + b,
    Partial("1", constant=1.0),
    Partial("1", constant=1.0),
    into=_componentwise_into(np.add),
)
SUB = _elementwise(
    "sub",
    "a - b",
    lambda xp, a, b: a - b,
    Partial("1", constant=1.0),
    Partial("-1", constant=-1.0),
    into=_componentwise_into(np.subtract),
)
MUL = _elementwise(
    "mul",
    "a*b",
    lambda xp, a, b: a * b,
    Partial("b", lambda xp, out, a, b: b, into=_times(1)),
    Partial("a", lambda xp, out, a, b: a, into=_times(0)),
    into=_ufunc_into(np.multiply),
)
DIV = _elementwise(
    "div",
    "a/b",
    lambda xp, a, b: a / b,
    Partial(
        "1/b",
        lambda xp, out, a, b: 1.0 / b,
        into=_times_local((1,), 1, lambda local, out, ins, p: [_P(np.divide, 1.0, ins[1], local)]),
    ),
    Partial(
        "-a/b**2",
        lambda xp, out, a, b: -out / b,
        into=_times_local(
            ("out", 1),
            "out",
            lambda local, out, ins, p: [
                _P(np.negative, out, local),
                _P(np.divide, local, ins[1], local),
            ],
        ),
    ),
    into=_ufunc_into(np.divide),
)
NEG = _elementwise(
    "neg",
    "-a",
    lambda xp, a: -a,
    Partial("-1", constant=-1.0),
    into=_ufunc_into(np.negative),
)
# A constant exponent is a parameter, so x**2 draws one edge labelled 2·x.
POWC = _elementwise(
    "pow",
    "a**p",
    lambda xp, a, p: xp.power(a, p),
    Partial(
        "p*a**(p - 1)",
        lambda xp, out, a, p: p * xp.power(a, p - 1),
        into=_times_local(
            (0,),
            0,
            lambda local, out, ins, params: [
                _P(np.power, ins[0], params["p"] - 1, local),
                _P(np.multiply, params["p"], local, local),
            ],
        ),
    ),
    params=("p",),
    into=lambda ins, params, out: [_P(np.power, ins[0], params["p"], out)],
)
# An exponent that is itself a node has a partial of its own.
POW = _elementwise(
    "pow",
    "a**b",
    lambda xp, a, b: xp.power(a, b),
    Partial("b*a**(b - 1)", lambda xp, out, a, b: b * xp.power(a, b - 1)),
    Partial("a**b*log(a)", lambda xp, out, a, b: out * xp.log(a)),
    into=_ufunc_into(np.power),
)
EXP = _elementwise(
    "exp",
    "exp(a)",
    lambda xp, a: xp.exp(a),
    Partial("exp(a)", lambda xp, out, a: out, into=_times("out")),
    into=_ufunc_into(np.exp),
)
LOG = _elementwise(
    "log",
    "log(a)",
    lambda xp, a: xp.log(a),
    Partial(
        "1/a",
        lambda xp, out, a: 1.0 / a,
        into=_times_local((0,), 0, lambda local, out, ins, p: [_P(np.divide, 1.0, ins[0], local)]),
    ),
    into=_ufunc_into(np.log),
)
# NOTE: log1p(a) = log(1 + a) is its own op because 1 + a rounds away the digits of a
# small a; numpy's and math's log1p keep them.
LOG1P = _elementwise(
    "log1p",
    "log1p(a)",
    lambda xp, a: xp.log1p(a),
    Partial(
        "1/(1 + a)",
        lambda xp, out, a: 1.0 / (1.0 + a),
        into=_times_local(
            (0,),
            0,
            lambda local, out, ins, p: [
                _P(np.add, 1.0, ins[0], local),
                _P(np.divide, 1.0, local, local),
            ],
        ),
    ),
    into=_ufunc_into(np.log1p),
    definition="log(1 + a)",
)
# NOTE: expm1(a) = e^a − 1 is its own op because e^a − 1 rounds away the digits of a
# small a; numpy's and math's expm1 keep them.
EXPM1 = _elementwise(
    "expm1",
    "expm1(a)",
    lambda xp, a: xp.expm1(a),
    Partial(
        "exp(a)",
        lambda xp, out, a: xp.exp(a),
        into=_times_local((0,), 0, lambda local, out, ins, p: [_P(np.exp, ins[0], local)]),
    ),
    into=_ufunc_into(np.expm1),
    definition="exp(a) - 1",
)
SIN = _elementwise(
    "sin",
    "sin(a)",
    lambda xp, a: xp.sin(a),
    Partial("cos(a)", lambda xp, out, a: xp.cos(a)),
    into=_ufunc_into(np.sin),
)
COS = _elementwise(
    "cos",
    "cos(a)",
    lambda xp, a: xp.cos(a),
    Partial("-sin(a)", lambda xp, out, a: -xp.sin(a)),
    into=_ufunc_into(np.cos),
)
TAN = _elementwise(
    "tan",
    "tan(a)",
    lambda xp, a: xp.tan(a),
    Partial("1 + tan(a)**2", lambda xp, out, a: 1.0 + out * out),
    into=_ufunc_into(np.tan),
)
SQRT = _elementwise(
    "sqrt",
    "sqrt(a)",
    lambda xp, a: xp.sqrt(a),
    Partial(
        "1/(2*sqrt(a))",
        lambda xp, out, a: 0.5 / out,
        into=_times_local(
            ("out",), "out", lambda local, out, ins, p: [_P(np.divide, 0.5, out, local)]
        ),
    ),
    into=_ufunc_into(np.sqrt),
)
TANH = _elementwise(
    "tanh",
    "tanh(a)",
    lambda xp, a: xp.tanh(a),
    Partial(
        "1 - tanh(a)**2",
        lambda xp, out, a: 1.0 - out * out,
        into=_times_local(
            ("out",),
            "out",
            lambda local, out, ins, p: [
                _P(np.multiply, out, out, local),
                _P(np.subtract, 1.0, local, local),
            ],
        ),
    ),
    into=_ufunc_into(np.tanh),
)
SIGMOID = _elementwise(
    "sigmoid",
    "sigmoid(a)",
    lambda xp, a: xp.sigmoid(a),
    Partial(
        "sigmoid(a)*(1 - sigmoid(a))",
        lambda xp, out, a: out * (1.0 - out),
        into=_times_local(
            ("out",),
            "out",
            lambda local, out, ins, p: [
                _P(np.subtract, 1.0, out, local),
                _P(np.multiply, out, local, local),
            ],
        ),
    ),
    into=lambda ins, params, out: [_P(ARRAY.sigmoid_into, ins[0], out)],
    definition="1/(1 + exp(-a))",
)


#: Read-only zeros that the max(a, 0) kernels compare against, by dtype: one array per
#: process (kernels take views of its start), grown to the largest size asked for.
_SHARED_ZEROS: dict[np.dtype, np.ndarray] = {}
#: Up to this many elements the zeros have the output's whole shape (at most 256 KiB in
#: float32, shared); above it, one row of zeros broadcast over the leading axes.
_WHOLE_ZEROS_UP_TO = 1 << 16


def _zero_operand(out: np.ndarray) -> Any:
    """What the in-place kernels of max(a, 0) take the maximum against, for speed: numpy's
    float32 maximum against a scalar runs a loop without SIMD. Against zeros of the same
    shape it runs a SIMD one (128×256: 17 → 4–8 µs), and against one row of zeros
    broadcast over the rows one too (512×4096: 1.6 → 0.73 ms, where zeros of the whole
    shape would add their own 8 MB of reads); a narrow last axis stays with the scalar.
    The bits are the same: max is exact, and a NaN or −0 gives what it gives against 0."""
    if out.size <= _WHOLE_ZEROS_UP_TO:
        zeros = _SHARED_ZEROS.get(out.dtype)
        if zeros is None or zeros.size < out.size:
            zeros = np.zeros(out.size, out.dtype)
            zeros.flags.writeable = False
            _SHARED_ZEROS[out.dtype] = zeros
        return zeros[: out.size].reshape(out.shape)
    if out.shape[-1] >= 256:
        row = np.zeros(out.shape[-1], out.dtype)
        row.flags.writeable = False
        return row
    return 0.0


# NOTE: relu is a primitive rather than maximum(a, 0) so a diagram shows one edge
# labelled step(a); its partial at the kink a = 0 is 0, as in PyTorch.
RELU = _elementwise(
    "relu",
    "relu(a)",
    lambda xp, a: xp.maximum(a, 0.0),
    Partial(
        "step(a)",
        lambda xp, out, a: out > 0,
        into=_times_local(
            ("out",), "out", lambda mask, out, ins, p: [_P(np.greater, out, 0, mask)], np.bool_
        ),
    ),
    into=lambda ins, params, out: [_P(np.maximum, ins[0], _zero_operand(out), out=out)],
    definition="maximum(a, 0)",
)
ABS = _elementwise(
    "abs",
    "abs(a)",
    lambda xp, a: xp.abs(a),
    Partial("sign(a)", lambda xp, out, a: xp.sign(a)),
    into=_ufunc_into(np.abs),
)


# NOTE: softplus log(1 + e^a) is its own op because the composite overflows for
# large a; written as max(a, 0) + log1p(e^-|a|) it is exact for any a (log1p keeps
# the digits of e^-|a| that 1 + e^-|a| would round away, e.g. softplus(-40) ≈ 4e-18).
# np.logaddexp(a, 0) is the same formula in one ufunc, but a scalar libm loop: no
# faster than these six SIMD ufuncs, and it warns on NaN inputs.
def _softplus_into(ins: Sequence[np.ndarray], params: dict[str, Any], out: np.ndarray) -> list[Any]:
    """The row's six ufunc calls into ``out`` and one scratch buffer (allocated once, when
    the kernel is built). max(a, 0) is taken first: ``out`` may be ``a``'s own buffer."""
    a = ins[0]
    positive = np.empty(out.shape, out.dtype)
    return [
        _P(np.maximum, a, _zero_operand(out), out=positive),
        _P(np.abs, a, out),
        _P(np.negative, out, out),
        _P(np.exp, out, out),
        _P(np.log1p, out, out),
        _P(np.add, positive, out, out),
    ]


SOFTPLUS = _elementwise(
    "softplus",
    "softplus(a)",
    lambda xp, a: xp.maximum(a, 0.0) + xp.log1p(xp.exp(-xp.abs(a))),
    # NOTE: σ(a) = 1 − e^(−softplus(a)), from the forward value: three ufuncs instead of
    # the tanh form's four (half the time), and σ of a large negative a keeps its digits
    # (e^a, where ½(1 + tanh(a/2)) rounds to 0): within 2 ulp of a 200-bit reference.
    Partial(
        "sigmoid(a)",
        lambda xp, out, a: -xp.expm1(-out),
        into=_times_local(
            ("out",),
            "out",
            lambda local, out, ins, p: [
                _P(np.negative, out, local),
                _P(np.expm1, local, local),
                _P(np.negative, local, local),
            ],
        ),
    ),
    into=_softplus_into,
    definition="log(1 + exp(a))",
)
# Ties send the whole adjoint to the first input, so the partials sum to 1.
MAXIMUM = _elementwise(
    "maximum",
    "maximum(a, b)",
    lambda xp, a, b: xp.maximum(a, b),
    Partial("step(a - b)", lambda xp, out, a, b: a >= b),
    Partial("step(b - a)", lambda xp, out, a, b: a < b),
    into=_ufunc_into(np.maximum),
)
WHERE = _elementwise(
    "where",
    "where(c, a, b)",
    lambda xp, a, b, condition: xp.where(condition, a, b),
    Partial("c", lambda xp, out, a, b, condition: condition),
    Partial("1 - c", lambda xp, out, a, b, condition: xp.logical_not(condition)),
    params=("condition",),
)

# --- losses: the handouts' loss nodes, one row each ------------------------------------
#
# A loss is one op (input a = the prediction, b = the target y) so that a neuron-level
# network's diagram shows one loss node whose edge carries the handout's partial, and
# backward and gradcheck read that same row.


def _difference_times(scale: float) -> Into:
    """``into`` for the partial scale·(b − a): the difference, scaled, times the adjoint."""
    return _times_local(
        (0, 1),
        0,
        lambda local, out, ins, p: [
            _P(np.subtract, ins[1], ins[0], local),
            _P(np.multiply, scale, local, local),
        ],
    )


SQUARE_LOSS = _elementwise(
    "square_loss",
    "(b - a)**2",
    lambda xp, a, b: (b - a) ** 2,
    Partial("-2*(b - a)", lambda xp, out, a, b: -2.0 * (b - a), into=_difference_times(-2.0)),
    Partial("2*(b - a)", lambda xp, out, a, b: 2.0 * (b - a), into=_difference_times(2.0)),
    into=lambda ins, params, out: [
        _P(np.subtract, ins[1], ins[0], out),
        _P(np.square, out, out),
    ],
)

# NOTE: each log of the log loss is clamped at −100 (a ≥ e^−100 ≈ 3.7e−44), as
# PyTorch's BCELoss does: a probability that rounded to exactly 0 or 1 gives a large
# finite loss, never inf, and 0·log 0 never becomes NaN. The partials divide by the
# same clamped numbers, so they stay finite too (at most e^100); wherever the clamp
# is inactive (e^−100 < a < 1 − e^−100) both are exactly the handout's formulas.
SMALLEST_PROBABILITY = float(np.exp(-100.0))


def _clamped(xp: Any, p: Any) -> Any:
    return xp.maximum(p, SMALLEST_PROBABILITY)


LOG_LOSS = _elementwise(
    "log_loss",
    "-(b*log(a) + (1 - b)*log(1 - a))",
    lambda xp, a, b: -(b * xp.log(_clamped(xp, a)) + (1.0 - b) * xp.log(_clamped(xp, 1.0 - a))),
    Partial(
        "-b/a + (1 - b)/(1 - a)",
        lambda xp, out, a, b: -b / _clamped(xp, a) + (1.0 - b) / _clamped(xp, 1.0 - a),
    ),
    Partial(
        "log(1 - a) - log(a)",
        lambda xp, out, a, b: xp.log(_clamped(xp, 1.0 - a)) - xp.log(_clamped(xp, a)),
    ),
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


def _product_into(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> Instruction:
    """``out[...] = a @ b`` for 2-D arrays, as one call.

    np.dot where it may write ``out`` directly (C-ordered, of the inputs' dtype, not
    overlapping them): for 2-D arrays it calls the same BLAS product as np.matmul, same
    bits (tested), without the ufunc machinery, which on the small layers chainrule
    compiles for costs a third of the product. np.matmul otherwise.
    """
    if (
        out.flags.c_contiguous
        and a.dtype == b.dtype == out.dtype
        and not np.shares_memory(out, a)
        and not np.shares_memory(out, b)
    ):
        return _P(np.dot, a, b, out)
    return _P(np.matmul, a, b, out)


def _matmul_into(
    ins: Sequence[np.ndarray], params: dict[str, Any], out: np.ndarray
) -> list[Instruction]:
    if ins[0].ndim != 2 or ins[1].ndim != 2:
        return []
    return [_product_into(ins[0], ins[1], out)]


def _matmul_vjp_a_into(
    adj: np.ndarray,
    out: np.ndarray,
    ins: Sequence[np.ndarray],
    params: dict[str, Any],
    dst: np.ndarray,
    scratch: Scratch,
) -> list[Instruction]:
    a, b = ins
    if a.ndim != 2 or b.ndim != 2:
        return []
    return [_product_into(adj, _swap_last(b), dst)]


def _matmul_vjp_b_into(
    adj: np.ndarray,
    out: np.ndarray,
    ins: Sequence[np.ndarray],
    params: dict[str, Any],
    dst: np.ndarray,
    scratch: Scratch,
) -> list[Instruction]:
    a, b = ins
    if a.ndim != 2 or b.ndim != 2:
        return []
    # As _matmul_vjp_b: a destination laid out like a transposed b gets (adjointᵀ a)ᵀ,
    # the product written into the transpose of the destination.
    if dst.flags.f_contiguous and not dst.flags.c_contiguous:
        return [_product_into(_swap_last(adj), a, _swap_last(dst))]
    return [_product_into(_swap_last(a), adj, dst)]


def _reduce_into(ufunc: np.ufunc) -> ForwardInto:
    def into(ins: Sequence[np.ndarray], params: dict[str, Any], out: np.ndarray) -> list[Any]:
        # np.sum / np.max are ufunc.reduce behind a Python wrapper; call reduce directly.
        return [_P(ufunc.reduce, ins[0], axis=params["axis"], out=out, keepdims=params["keepdims"])]

    return into


def _keep_reduced_axes(x: Any, ndim: int, axis: Any, keepdims: bool) -> Any:
    """Put back the axes a reduction removed, so ``x`` broadcasts against its input."""
    if keepdims:
        return x
    if axis is None:
        return np.reshape(x, (1,) * ndim)
    return np.expand_dims(x, axis)


def _leading_axes(a: Any, axis: Any) -> int:
    """How many leading axes of float array ``a`` the ``axis`` of a sum names, if it
    names the first few and leaves some; else 0 (numpy's own sum then)."""
    if type(a) is not np.ndarray or a.dtype.kind != "f" or axis is None:
        return 0
    named = axis if isinstance(axis, tuple) else (axis,)
    if not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) and -a.ndim <= n < a.ndim
        for n in named
    ):
        return 0  # numpy's sum says what is wrong
    axes = sorted(int(n) % a.ndim for n in named)
    return len(axes) if axes == list(range(len(axes))) and len(axes) < a.ndim else 0


def _sum(xp: Any, a: Any, axis: Any, keepdims: bool) -> Any:
    """np.sum, with a sum over leading axes taken as undoing broadcasting takes it
    (:func:`chainrule._broadcast.sum_leading`: pairwise down narrow columns)."""
    count = _leading_axes(a, axis)
    if count:
        return sum_leading(a, count, keepdims)
    return np.sum(a, axis=axis, keepdims=keepdims)


def _sum_into(ins: Sequence[np.ndarray], params: dict[str, Any], out: np.ndarray) -> list[Any]:
    """``_sum`` into ``out``: the same steps for leading axes, else ufunc.reduce."""
    count = _leading_axes(ins[0], params["axis"])
    if count and out.flags.c_contiguous:
        return leading_sum_steps(ins[0], count, out)
    return _reduce_into(np.add)(ins, params, out)


def _sum_vjp(adjoint: Any, out: Any, a: np.ndarray, axis: Any, keepdims: bool) -> Any:
    return np.broadcast_to(_keep_reduced_axes(adjoint, a.ndim, axis, keepdims), a.shape)


def _max_vjp(adjoint: Any, out: Any, a: np.ndarray, axis: Any, keepdims: bool) -> Any:
    # Ties share the adjoint equally, so the partials over a reduced slice sum to 1.
    winners = a == _keep_reduced_axes(out, a.ndim, axis, keepdims)
    count = winners.sum(axis=axis, keepdims=True).astype(a.dtype)
    return winners * (_keep_reduced_axes(adjoint, a.ndim, axis, keepdims) / count)


def _peak(a: np.ndarray, axis: Any) -> np.ndarray:
    """The max over ``axis`` (kept as an axis), subtracted before exp so it cannot overflow.

    A slice whose max is not finite (all −inf) keeps a peak of 0, so its result is
    −inf rather than NaN.
    """
    peak = np.max(a, axis=axis, keepdims=True)
    return np.where(np.isfinite(peak), peak, 0.0).astype(a.dtype)


def _logsumexp(a: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    peak = _peak(a, axis)
    total = np.log(np.sum(np.exp(a - peak), axis=axis, keepdims=True)) + peak
    return total if keepdims else np.squeeze(total, axis=axis)


def _softmax(a: np.ndarray, axis: Any) -> np.ndarray:
    exponentials = np.exp(a - _peak(a, axis))
    return exponentials / np.sum(exponentials, axis=axis, keepdims=True)


def _logsumexp_vjp(adjoint: Any, out: Any, a: np.ndarray, axis: Any, keepdims: bool) -> Any:
    # NOTE: the partial is softmax(a), computed from the peak-shifted exponentials.
    # exp(a − out) would lose it: at a = [1e30, 1e30] the output 1e30 + log 2 rounds
    # to 1e30, and exp(a − out) = [1, 1] instead of [½, ½].
    return _keep_reduced_axes(adjoint, a.ndim, axis, keepdims) * _softmax(a, axis)


def _softmax_vjp(adjoint: Any, out: Any, a: np.ndarray, axis: int) -> Any:
    return out * (adjoint - np.sum(adjoint * out, axis=axis, keepdims=True))


def _log_softmax(a: np.ndarray, axis: int) -> np.ndarray:
    # NOTE: (a − peak) − log Σ exp(a − peak), the peak subtracted first. Written as
    # a − (log Σ + peak), the sum log Σ + peak rounds to the peak for large logits
    # (1e16 + log 2 == 1e16) and the log-probabilities of tied logits become 0.
    shifted = a - _peak(a, axis)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _log_softmax_vjp(adjoint: Any, out: Any, a: np.ndarray, axis: int) -> Any:
    return adjoint - np.exp(out) * np.sum(adjoint, axis=axis, keepdims=True)


def _reduced_shape(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    """``shape`` with ``axis`` reduced to 1 (the shape of a keepdims reduction)."""
    kept = list(shape)
    kept[axis] = 1
    return tuple(kept)


def _log_softmax_into(
    ins: Sequence[np.ndarray], params: dict[str, Any], out: np.ndarray
) -> list[Instruction]:
    """``_log_softmax`` (with ``_peak``) in place: the shifted logits are written into
    ``out``, the peak, its finiteness, the exponentials and their sum into buffers made
    here, once."""
    a = ins[0]
    if a.ndim == 0:
        return []
    axis = params["axis"]
    kept = _reduced_shape(a.shape, axis)
    peak = np.empty(kept, a.dtype)
    not_finite = np.empty(kept, np.bool_)
    total = np.empty(kept, a.dtype)
    exponentials = np.empty(a.shape, a.dtype)
    return [
        # _peak: np.max is this reduction; np.where(isfinite, peak, 0.0) keeps finite
        # peaks and zeroes the others, as copyto(where=not finite) does here.
        _P(np.maximum.reduce, a, axis=axis, out=peak, keepdims=True),
        _P(np.isfinite, peak, out=not_finite),
        _P(np.logical_not, not_finite, out=not_finite),
        _P(np.copyto, peak, 0.0, where=not_finite),
        _P(np.subtract, a, peak, out=out),
        _P(np.exp, out, out=exponentials),
        _P(np.add.reduce, exponentials, axis=axis, out=total, keepdims=True),
        _P(np.log, total, out=total),
        _P(np.subtract, out, total, out=out),
    ]


def _log_softmax_vjp_into(
    adj: np.ndarray,
    out: np.ndarray,
    ins: Sequence[np.ndarray],
    params: dict[str, Any],
    dst: np.ndarray,
    scratch: Scratch,
) -> list[Instruction]:
    """``_log_softmax_vjp`` into ``dst``: it reads the output, not the logits."""
    if out.ndim == 0:
        return []
    axis = params["axis"]
    exponentials = scratch(out)
    total = scratch(np.empty(_reduced_shape(adj.shape, axis), adj.dtype))
    return [
        _P(np.exp, out, out=exponentials),
        _P(np.add.reduce, adj, axis=axis, out=total, keepdims=True),
        _P(np.multiply, exponentials, total, out=exponentials),
        _P(np.subtract, adj, exponentials, out=dst),
    ]


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
    Partial("bᵀ", vjp=_matmul_vjp_a, into=Into((1,), _matmul_vjp_a_into)),
    Partial("aᵀ", vjp=_matmul_vjp_b, into=Into((0,), _matmul_vjp_b_into)),
    into=_matmul_into,
)
SUM = _structural(
    "sum",
    "sum(a)",
    _sum,
    Partial("1", vjp=_sum_vjp),
    params=("axis", "keepdims"),
    into=_sum_into,
)
MAX = _structural(
    "max",
    "max(a)",
    lambda xp, a, axis, keepdims: np.max(a, axis=axis, keepdims=keepdims),
    Partial("[a = max(a)] / ties", vjp=_max_vjp),
    params=("axis", "keepdims"),
    into=_reduce_into(np.maximum),
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
    lambda xp, a, axis: _log_softmax(a, axis),
    Partial(
        "I − softmax(a)",
        vjp=_log_softmax_vjp,
        into=Into(("out",), _log_softmax_vjp_into),
    ),
    params=("axis",),
    into=_log_softmax_into,
)

#: Every op, by name as it appears in diagrams and errors (the power with a node
#: exponent, which shares the name "pow" with the constant one, as "pow_node").
OPS: dict[str, Op] = {op.name if op is not POW else "pow_node": op for op in _ROWS}


def _is_function(op: Op) -> bool:
    """Whether a row is a function of one argument: written ``name(a)``, no parameters."""
    return op.elementwise and op.arity == 1 and not op.param_names and op.symbol == f"{op.name}(a)"


#: Unary elementwise ops callable by name in expressions (``chainrule draw "sin(x)"``)
#: and in symbolic forms, in the order of their rows. ``step`` and ``sign`` appear
#: only in partials.
FUNCTIONS: dict[str, Op] = {op.name: op for op in _ROWS if _is_function(op)}


def add_function_methods(cls: type, apply: Callable[[Op, Any], Any]) -> None:
    """Give ``cls`` a method ``x.<name>()`` for every row of :data:`FUNCTIONS` it lacks.

    Args:
        cls: the node class (:class:`~chainrule.Value`, :class:`~chainrule.Tensor`).
        apply: ``apply(op, node)`` records the one-input op on the node.

    Methods written out in the class (typed for mypy) are kept; a new function row gets
    its method here, so it needs no code in the class.
    """
    for op in FUNCTIONS.values():
        if not hasattr(cls, op.name):
            setattr(cls, op.name, _method_for(cls, op, apply))


def _method_for(cls: type, op: Op, apply: Callable[[Op, Any], Any]) -> Callable[[Any], Any]:
    def method(self: Any) -> Any:
        return apply(op, self)

    method.__name__ = op.name
    method.__qualname__ = f"{cls.__name__}.{op.name}"
    method.__doc__ = function_doc(op)
    return method


def function_doc(op: Op) -> str:
    """The docstring of a function made from its row alone: its symbol and derivative."""
    return f"{op.symbol}, elementwise; ∂/∂a = {op.partials[0].symbol} (from its op row)."
