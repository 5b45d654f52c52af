"""The graph core: nodes, an iterative topological order, and the backward walk.

Nothing here knows any particular op. The chain rule (:func:`chain_rule`) reads the
partials of a node's op row (see :mod:`chainrule.ops`) generically; the walk decides
the order in which nodes pass their adjoints on and where the adjoints go.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ._math import numpy_semantics
from .ops import Op, check_backward


class Recorder(Protocol):
    """What takes over ops and backward() while a compiled step records or replays.

    :mod:`chainrule.compile` installs one in the grad mode (see :func:`recording`);
    :meth:`Tensor._apply <chainrule.Tensor>` and :func:`backward` then hand it their
    work instead of doing it, so eager mode pays one ``is None`` check for it.
    """

    def apply(self, op: Op, inputs: tuple[Any, ...], params: dict[str, Any]) -> Any:
        """Apply ``op`` to the tensors ``inputs`` (recording it, or serving it from a recording)."""
        ...

    def apply_number(self, op: Op, tensor: Any, number: float, reflected: bool) -> Any:
        """Serve ``op(tensor, number)`` (``op(number, tensor)`` if ``reflected``) without
        making a Tensor of the number first, or return None to have the caller make it
        and call :meth:`apply` (what recording does)."""
        ...

    def backward(self, root: Node, seed: Any, retain_all: bool) -> None:
        """Run backward from ``root`` (recording it, or replaying it)."""
        ...


@dataclass(frozen=True, slots=True)
class GradMode:
    """The switches every op reads: recording on/off, anomaly detection, a recorder.

    They belong to the running context (a :class:`contextvars.ContextVar`), not to
    the process: each thread starts with the defaults, and a switch set in one
    thread (or asyncio task) never changes another's. Read with :func:`grad_mode`;
    change only through the context managers (``no_grad()``, ``detect_anomaly()``,
    :func:`recording`), which put the previous mode back on the way out.
    """

    enabled: bool = True
    detect_anomaly: bool = False
    recorder: Recorder | None = None


# A frozen GradMode is never mutated, only replaced, so one default serves every context.
_MODE: ContextVar[GradMode] = ContextVar("chainrule_grad_mode", default=GradMode())  # noqa: B039

#: The grad mode of the running context (one C call: ops read it on every call).
grad_mode = _MODE.get


@contextmanager
def grad_mode_set(
    *, enabled: bool | None = None, detect_anomaly: bool | None = None
) -> Iterator[GradMode]:
    """Within this block the running context's grad mode has the switches given."""
    mode = _MODE.get()
    changes: dict[str, Any] = {}
    if enabled is not None:
        changes["enabled"] = enabled
    if detect_anomaly is not None:
        changes["detect_anomaly"] = detect_anomaly
    token = _MODE.set(replace(mode, **changes))
    try:
        yield _MODE.get()
    finally:
        _MODE.reset(token)


class recording:  # lower case: used like the function-style context managers beside it
    """Within this block ``recorder`` takes the ops and backward() calls (None: nobody).

    A class rather than a ``@contextmanager`` generator, building the mode directly
    rather than with ``dataclasses.replace``: a compiled step enters it on every call
    and its recorder on every op, where the generator's cost showed in profiles.

    Args:
        recorder: the recorder to install, or None to let ops run eagerly inside.
    """

    __slots__ = ("_mode", "_outer", "_recorder", "_token")

    def __init__(self, recorder: Recorder | None) -> None:
        self._recorder = recorder
        self._outer: GradMode | None = None
        self._mode: GradMode | None = None

    def __enter__(self) -> None:
        mode = _MODE.get()
        inner = self._mode
        if inner is None or mode is not self._outer:
            # A block entered again from the same mode (a compiled step keeps one per
            # replayer) reuses the mode it built: modes are frozen.
            inner = self._mode = GradMode(mode.enabled, mode.detect_anomaly, self._recorder)
            self._outer = mode
        self._token = _MODE.set(inner)

    def __exit__(self, *exc_info: object) -> None:
        _MODE.reset(self._token)


def stop_recording() -> None:
    """Take the recorder out of the running context's grad mode until its block ends."""
    mode = _MODE.get()
    if mode.recorder is not None:
        _MODE.set(GradMode(mode.enabled, mode.detect_anomaly, None))


class Node:
    """One value in a computation graph.

    ``data`` is the value, ``grad`` the adjoint ∂output/∂node after backward,
    ``parents`` the inputs of the op that made it, ``op`` that op (``None`` for a
    leaf) and ``params`` the op's non-differentiable arguments (an exponent, an axis).
    """

    # ``parents`` is stored by each kind of node: a slot on Tensor, two on Value.
    __slots__ = ("__weakref__", "data", "grad", "label", "op", "params")

    # Whether backward stores the adjoint of an interior node in ``grad``.
    _retains_grad_default: bool = True

    data: Any
    grad: Any
    parents: tuple[Node, ...]
    op: Op | None
    params: dict[str, Any]
    label: str | None

    # The array namespace the op rules get for this kind of node (see chainrule._math).
    _xp: Any

    def _needs_grad(self) -> bool:
        return True

    def _fit_adjoint(self, contribution: Any, parent: Node) -> Any:
        """Shape an adjoint contribution for ``parent`` (undo broadcasting, keep dtype)."""
        return contribution

    def _copy_adjoint(self, adjoint: Any) -> Any:
        return adjoint

    def _retains_grad(self) -> bool:
        return self._retains_grad_default

    def _accumulate_leaf_grad(self, adjoint: Any) -> None:
        self.grad = adjoint if self.grad is None else self.grad + adjoint

    def _walk_backward(self, seed: Any, retain_all: bool) -> None:
        """Run the backward walk of a graph rooted at this node (see :func:`backward`).

        The generic walk; a kind of node whose graphs allow a cheaper walk (Value,
        whose adjoints are Python floats) overrides this with one of its own.
        """
        walk_backward(self, seed, retain_all)


def topological_order(
    root: Node, *, every_node: bool = False, limit: int | None = None
) -> list[Node]:
    """Every node that ``root`` depends on, parents first.

    Iterative (an explicit stack), so a chain of any length works.

    Args:
        root: the output node.
        every_node: also include nodes that need no gradient (constants, tensors
            without ``requires_grad``); backward leaves them out, diagrams show them.
        limit: raise :class:`GraphTooLargeError` once more than this many nodes are
            reached, before walking the rest of a huge graph.
    """
    order: list[Node] = []
    visited: set[int] = {id(root)}
    # Each stack entry is (node, iterator over its parents not yet explored).
    stack: list[tuple[Node, Iterator[Node]]] = [(root, iter(root.parents))]
    while stack:
        node, pending = stack[-1]
        for parent in pending:
            if id(parent) not in visited and (every_node or parent._needs_grad()):
                visited.add(id(parent))
                if limit is not None and len(visited) > limit:
                    raise GraphTooLargeError(limit)
                stack.append((parent, iter(parent.parents)))
                break
        else:
            stack.pop()
            order.append(node)
    return order


class GraphTooLargeError(ValueError):
    """:func:`topological_order` reached more nodes than its ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the graph has more than {limit} nodes")
        self.limit = limit


def backward(root: Node, seed: Any, retain_all: bool = False) -> None:
    """Propagate ``seed`` = ∂output/∂root back to every node ``root`` depends on.

    Leaf gradients accumulate across calls (as in PyTorch); interior adjoints are
    summed for this call only, so an earlier call never leaks into a later one.
    Interior nodes get ``grad`` set (not accumulated) when they retain it.

    The walk is the root's own (``Node._walk_backward``): :func:`walk_backward` for
    tensors, a specialised one with the same results for Values (:mod:`chainrule.value`).
    """
    recorder = _MODE.get().recorder
    if recorder is not None:  # a chainrule.compile step is being recorded or replayed
        recorder.backward(root, seed, retain_all)
        return
    root._walk_backward(seed, retain_all)


def chain_rule(node: Node, adjoint: Any) -> list[Any]:
    """Adjoint contributions for each parent of ``node`` (``None`` where unneeded).

    This is the chain rule for one node: parent adjoint += adjoint · ∂node/∂parent,
    with each ∂node/∂parent read from the :class:`~chainrule.ops.Partial` of the
    node's op row (a constant, a local rule, or a vector-Jacobian product).

    Args:
        node: an interior node (one with an op).
        adjoint: ∂output/∂node.
    """
    # Written for speed: it runs once per node in every backward pass.
    op = node.op
    assert op is not None  # only interior nodes pass adjoints on
    parents = node.parents
    out = node.data
    params = node.params
    inputs: list[Any] | None = None  # read only by partials that need them
    contributions: list[Any] = []
    passed_adjoint_through = False
    detect_anomaly = _MODE.get().detect_anomaly
    for index, partial in enumerate(op.partials):
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
        if detect_anomaly:
            check_backward(op, index, contribution, [p.data for p in parents], out)
        contributions.append(contribution)
    return contributions


def walk_backward(
    root: Node,
    seed: Any,
    retain_all: bool = False,
    *,
    order: list[Node] | None = None,
    chain: Callable[[Node, Any], Iterable[Any]] = chain_rule,
) -> None:
    """The generic backward walk behind :func:`backward`, for any kind of node.

    Takes each node's adjoint from :func:`adjoints` and stores it: leaves accumulate
    it in ``grad``, interior nodes that retain their gradient get it set.

    Args:
        root: the node to differentiate.
        seed: ∂output/∂root, shaped like ``root.data``.
        retain_all: store the adjoint of every interior node in its ``grad``.
        order: ``topological_order(root)``, if the caller has it already.
        chain: the chain rule per node, as in :func:`adjoints` (a recorder passes one
            that also keeps the contributions).
    """
    for node, adjoint in adjoints(root, seed, order=order, chain=chain):
        if node.op is None:
            node._accumulate_leaf_grad(adjoint)
        elif retain_all or node._retains_grad():
            node.grad = adjoint


def _add(previous: Any, contribution: Any) -> Any:
    return previous + contribution


def adjoints(
    root: Node,
    seed: Any,
    *,
    order: list[Node] | None = None,
    chain: Callable[[Node, Any], Iterable[Any]] = chain_rule,
    add: Callable[[Any, Any], Any] = _add,
) -> Iterator[tuple[Node, Any]]:
    """Every node reached from ``root``, children first, with its adjoint ∂root/∂node.

    The one backward walk: :func:`backward`, the path-sum explainer and the planner of
    :func:`chainrule.compile` all take their adjoints from it. It changes no node; a
    generator, so each adjoint can be used and dropped as the walk goes on. A node is
    yielded once its adjoint is complete, before it passes that adjoint on.

    Args:
        root: the output node.
        seed: ∂output/∂root.
        order: ``topological_order(root)``, if the caller has it already.
        chain: ``chain(node, adjoint)`` gives one contribution per parent (``None``
            where a parent needs none): by default :func:`chain_rule`, which reads
            each op row's partials.
        add: sums two contributions to one node's adjoint.
    """
    if order is None:
        order = topological_order(root)
    pending: dict[int, Any] = {id(root): seed}
    for node in reversed(order):
        adjoint = pending.pop(id(node), None)
        if adjoint is None:
            continue
        yield node, adjoint
        if node.op is None:
            continue
        # apply the chain rule: each parent receives adjoint · ∂node/∂parent
        for parent, contribution in zip(node.parents, chain(node, adjoint)):
            if contribution is None:
                continue
            key = id(parent)
            previous = pending.get(key)
            pending[key] = contribution if previous is None else add(previous, contribution)
