"""``Value``: a scalar node over a Python float, for neuron-level graphs.

Thin over :mod:`chainrule.ops`: every method applies an op row; no maths lives here.
Backward reads the same rows (:attr:`Op.scalar_rules <chainrule.ops.Op.scalar_rules>`)
in a walk of its own (:func:`_walk`), cheaper than the generic one because a Value's
adjoint is a Python float that can live on the node itself.

Written for speed where it runs once per node (building a node, the backward walk):
a Value keeps its op's one or two inputs in two slots rather than in a ``parents``
tuple. On graphs of 10⁵ nodes and more, most of the cost of building them is the
cyclic garbage collector going over every tracked object again and again; one
object per node instead of two halves it. ``parents`` still gives the tuple.
"""

from __future__ import annotations

import numbers
from typing import Any

from . import ops
from ._math import SCALAR, numpy_semantics
from .graph import Node, backward, chain_rule, grad_mode
from .ops import Op

_NO_PARAMS: dict[str, Any] = {}
_new = object.__new__


def _unary(op: Op, a: Value) -> Value:
    """``op`` applied to one Value, for ops without parameters (most of them)."""
    try:
        data = op.forward(SCALAR, a.data)
    except ArithmeticError:  # an overflow: give numpy's inf or NaN instead
        data = numpy_semantics(op.forward, a.data)
    mode = grad_mode()
    if mode.detect_anomaly:
        ops.check_forward(op, (a.data,), data)
    out = _new(Value)
    out.data = data
    out.grad = 0.0
    out.label = None
    out.params = _NO_PARAMS
    out._second = None
    if mode.enabled:
        out._first = a
        out.op = op
    else:
        out._first = None
        out.op = None
    return out


def _binary(op: Op, a: Value, b: Value) -> Value:
    """``op`` applied to two Values, for ops without parameters (most of them)."""
    try:
        data = op.forward(SCALAR, a.data, b.data)
    except ArithmeticError:  # 1/0 or an overflow: give numpy's inf or NaN instead
        data = numpy_semantics(op.forward, a.data, b.data)
    mode = grad_mode()
    if mode.detect_anomaly:
        ops.check_forward(op, (a.data, b.data), data)
    out = _new(Value)
    out.data = data
    out.grad = 0.0
    out.label = None
    out.params = _NO_PARAMS
    if mode.enabled:
        out._first = a
        out._second = b
        out.op = op
    else:
        out._first = None
        out._second = None
        out.op = None
    return out


def _apply(op: Op, inputs: tuple[Value, ...], params: dict[str, Any] = _NO_PARAMS) -> Value:
    """``op`` applied to ``inputs`` with ``params``: a new Value, recorded unless grad is off."""
    if not params:
        if len(inputs) == 2:
            return _binary(op, inputs[0], inputs[1])
        if len(inputs) == 1:
            return _unary(op, inputs[0])
    arguments = [v.data for v in inputs]
    try:
        data = op.forward(SCALAR, *arguments, **params)
    except ArithmeticError:
        data = numpy_semantics(op.forward, *arguments, **params)
    mode = grad_mode()
    if mode.detect_anomaly:
        ops.check_forward(op, tuple(arguments), data)
    out = _new(Value)
    out.data = data
    out.grad = 0.0
    out.label = None
    if mode.enabled:
        out.parents = inputs
        out.op = op
        out.params = params
    else:
        out.parents = ()
        out.op = None
        out.params = _NO_PARAMS
    return out


class Value(Node):
    """A scalar in a computation graph, with its adjoint ``grad`` after backward.

    Args:
        data: the number this node holds.
        label: a name to show in diagrams, path sums and symbolic derivatives.

    Every Value records the op that made it, so ``backward()`` sets ``grad`` on it
    and on everything it depends on: leaves accumulate across calls, interior
    nodes hold the adjoint of the latest call.
    """

    # The op's inputs: (None, None) for a leaf, (a, None) or (a, b); see ``parents``.
    __slots__ = ("_first", "_second")
    _xp = SCALAR

    _first: Value | None
    _second: Value | None

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
        self._first = None
        self._second = None
        self.op = None
        self.params = _NO_PARAMS

    @property  # Node.parents, rebuilt from the two slots
    def parents(self) -> tuple[Node, ...]:
        """The inputs of the op that made this Value (``()`` for a leaf)."""
        first, second = self._first, self._second
        if first is None:
            return ()
        return (first,) if second is None else (first, second)

    @parents.setter
    def parents(self, inputs: tuple[Node, ...]) -> None:
        if len(inputs) > 2 or not all(isinstance(v, Value) for v in inputs):
            raise TypeError(
                "a Value's op takes one or two Value inputs, got "
                f"({', '.join(type(v).__name__ for v in inputs)}); ops with more inputs "
                "need a third slot in Value (see chainrule.value)"
            )
        self._first = inputs[0] if inputs else None  # type: ignore[assignment]
        self._second = inputs[1] if len(inputs) == 2 else None  # type: ignore[assignment]

    _apply = staticmethod(_apply)

    # --- operators ------------------------------------------------------------------
    # A Value operand skips the _as_value call: the common case, once per node.

    def __add__(self, other: Any) -> Value:
        return _binary(ops.ADD, self, other if type(other) is Value else _as_value(other, "+"))

    def __radd__(self, other: Any) -> Value:
        return _binary(ops.ADD, _as_value(other, "+"), self)

    def __sub__(self, other: Any) -> Value:
        return _binary(ops.SUB, self, other if type(other) is Value else _as_value(other, "-"))

    def __rsub__(self, other: Any) -> Value:
        return _binary(ops.SUB, _as_value(other, "-"), self)

    def __mul__(self, other: Any) -> Value:
        return _binary(ops.MUL, self, other if type(other) is Value else _as_value(other, "*"))

    def __rmul__(self, other: Any) -> Value:
        return _binary(ops.MUL, _as_value(other, "*"), self)

    def __truediv__(self, other: Any) -> Value:
        return _binary(ops.DIV, self, other if type(other) is Value else _as_value(other, "/"))

    def __rtruediv__(self, other: Any) -> Value:
        return _binary(ops.DIV, _as_value(other, "/"), self)

    def __pow__(self, other: Any) -> Value:
        if isinstance(other, Value):
            return _binary(ops.POW, self, other)
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            return _apply(ops.POWC, (self,), {"p": float(other)})
        raise TypeError(
            f"unsupported exponent for Value ** x: {type(other).__name__} (use a number or a Value)"
        )

    def __rpow__(self, other: Any) -> Value:
        return _binary(ops.POW, _as_value(other, "**"), self)

    def __neg__(self) -> Value:
        return _unary(ops.NEG, self)

    def __abs__(self) -> Value:
        return _unary(ops.ABS, self)

    # --- functions --------------------------------------------------------------------

    def exp(self) -> Value:
        return _unary(ops.EXP, self)

    def log(self) -> Value:
        return _unary(ops.LOG, self)

    def sin(self) -> Value:
        return _unary(ops.SIN, self)

    def cos(self) -> Value:
        return _unary(ops.COS, self)

    def tan(self) -> Value:
        return _unary(ops.TAN, self)

    def sqrt(self) -> Value:
        return _unary(ops.SQRT, self)

    def tanh(self) -> Value:
        return _unary(ops.TANH, self)

    def sigmoid(self) -> Value:
        return _unary(ops.SIGMOID, self)

    def relu(self) -> Value:
        return _unary(ops.RELU, self)

    def abs(self) -> Value:
        return _unary(ops.ABS, self)

    def softplus(self) -> Value:
        return _unary(ops.SOFTPLUS, self)

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

    def _walk_backward(self, seed: Any, retain_all: bool) -> None:
        # Every Value keeps its adjoint, so retain_all changes nothing here.
        if grad_mode().detect_anomaly:  # the generic walk checks every contribution
            Node._walk_backward(self, seed, retain_all)
        else:
            _walk(self, seed)

    def __float__(self) -> float:
        return self.data

    def __repr__(self) -> str:
        name = f"{self.label}: " if self.label else ""
        return f"Value({name}data={self.data:.6g}, grad={self.grad:.6g})"


def _as_value(x: Any, symbol: str) -> Value:
    if isinstance(x, Value):
        return x
    if type(x) is float:  # a constant in an expression: built directly, as in _binary
        constant = _new(Value)
        constant.data = x
        constant.grad = 0.0
        constant.label = None
        constant.params = _NO_PARAMS
        constant._first = None
        constant._second = None
        constant.op = None
        return constant
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return Value(float(x))
    raise TypeError(
        f"unsupported operand for {symbol} with a Value: {type(x).__name__} "
        "(Values combine with numbers and other Values; use chainrule.tensor for arrays)"
    )


# --- the scalar backward walk ------------------------------------------------------


class _Pending:
    """What ``grad`` holds while backward runs, on a node reached but not yet summed."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<adjoint pending>"


_PENDING: Any = _Pending()


def _walk(root: Value, seed: float) -> None:
    """Backward over a Value graph, each node's adjoint summed in its own ``grad``.

    The chain rule, order and sums of :func:`chainrule.graph.walk_backward`, so the
    numbers are the same to the last bit, without its per-node costs: no dict of
    adjoints keyed by ``id``, no visited set, no call of the generic ``chain_rule``.

    Interior adjoints are still set per call, never carried over from an earlier
    one: the sort marks every node it reaches by putting :data:`_PENDING` in its
    ``grad``, and the first contribution a node receives replaces the mark. Leaves
    are marked too, so their contributions are summed on their own first, and get
    their earlier ``grad`` added back at the end: leaf gradients accumulate across
    calls exactly as ``grad += adjoint`` would. If anything fails midway, every leaf
    gets its earlier ``grad`` back and no node is left marked. As with ``grad +=``,
    two threads must not run backward through the same nodes at the same time.
    """
    interior: list[Value] = []
    leaves: list[Value] = []
    earlier: list[float] = []
    try:
        _mark(root, interior, leaves, earlier)
        root.grad = seed
        _propagate(interior)
    except BaseException:
        for leaf, grad in zip(leaves, earlier):
            leaf.grad = grad
        _clear_marks(root)
        raise
    for leaf, grad in zip(leaves, earlier):
        leaf.grad = grad + leaf.grad


def _mark(root: Value, interior: list[Value], leaves: list[Value], earlier: list[float]) -> None:
    """Mark every node ``root`` depends on; list interior nodes parents first, and leaves.

    The depth-first order of :func:`chainrule.graph.topological_order` (iterative: an
    explicit stack of nodes whose second input is still to visit), leaves set aside.
    """
    pending = _PENDING
    if root.op is None:
        leaves.append(root)
        earlier.append(root.grad)
        root.grad = pending
        return
    root.grad = pending
    # Pairs (node, its input still to visit or None), pushed flat: a tuple per entry
    # would be an object for the garbage collector to track, and a deep graph's
    # stack holds enough of them to set off full collections of the whole graph.
    stack: list[Any] = []
    push = stack.append
    pop = stack.pop
    node = root
    while True:
        first: Any = node._first  # an interior Value has one or two inputs
        second = node._second
        if first.grad is not pending:
            if first.op is None:
                leaves.append(first)
                earlier.append(first.grad)
                first.grad = pending
            else:
                first.grad = pending
                push(node)
                push(second)
                node = first
                continue  # visit the first input's inputs before the second input
        while True:
            if second is not None and second.grad is not pending:
                if second.op is None:
                    leaves.append(second)
                    earlier.append(second.grad)
                    second.grad = pending
                else:
                    second.grad = pending
                    push(node)
                    push(None)
                    node = second
                    break
            interior.append(node)  # all its inputs are listed: now the node
            if not stack:
                return
            second = pop()
            node = pop()


def _propagate(interior: list[Value]) -> None:
    """Pass each node's adjoint on to its inputs, children before parents."""
    # Written for speed: its body runs once per node. Paramless unary and binary ops,
    # nearly all nodes, unpack their op's rules and call them with plain arguments.
    pending = _PENDING
    xp = SCALAR
    for node in reversed(interior):
        adjoint = node.grad
        op: Any = node.op
        rules = op.scalar_rules
        a: Any = node._first
        b: Any = node._second
        if rules is None:  # an op with parameters: the generic rule passes **params
            for parent, contribution in zip(node.parents, chain_rule(node, adjoint)):
                grad = parent.grad
                parent.grad = contribution if grad is pending else grad + contribution
        elif b is not None:
            (constant_a, local_a), (constant_b, local_b) = rules
            # apply the chain rule: each input receives adjoint · ∂node/∂input
            # (a constant partial of 1 passes the adjoint on, as chain_rule does)
            if local_a is None:
                grad_a = adjoint if constant_a == 1.0 else adjoint * constant_a
            else:
                try:
                    grad_a = adjoint * local_a(xp, node.data, a.data, b.data)
                except ArithmeticError:  # a domain edge, e.g. d(a**b)/db at a = 0
                    grad_a = adjoint * numpy_semantics(local_a, node.data, a.data, b.data)
            if local_b is None:
                grad_b = adjoint if constant_b == 1.0 else adjoint * constant_b
            else:
                try:
                    grad_b = adjoint * local_b(xp, node.data, a.data, b.data)
                except ArithmeticError:
                    grad_b = adjoint * numpy_semantics(local_b, node.data, a.data, b.data)
            grad = a.grad
            a.grad = grad_a if grad is pending else grad + grad_a
            grad = b.grad
            b.grad = grad_b if grad is pending else grad + grad_b
        else:
            ((constant_a, local_a),) = rules
            if local_a is None:
                grad_a = adjoint if constant_a == 1.0 else adjoint * constant_a
            else:
                try:
                    grad_a = adjoint * local_a(xp, node.data, a.data)
                except ArithmeticError:  # a domain edge, e.g. d√a/da at a = 0
                    grad_a = adjoint * numpy_semantics(local_a, node.data, a.data)
            grad = a.grad
            a.grad = grad_a if grad is pending else grad + grad_a


def _clear_marks(root: Value) -> None:
    """After a failed backward: set every node still marked pending to 0."""
    seen = {id(root)}
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        if node.grad is _PENDING:
            node.grad = 0.0
        for parent in node.parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)


# --- generated: Value.<name>() for every function row without a method above ------------

ops.add_function_methods(Value, _unary)
