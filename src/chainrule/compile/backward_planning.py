"""Backward planning: one ``backward()`` of the recording turned into in-place numpy
calls, by walking the recorded graph (the walk of :func:`chainrule.graph.adjoints`)
with each partial's ``into`` (checked against the partial's rule bit for bit)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from .._broadcast import broadcast_axes, leading_sum_steps, stretched_prefix, unbroadcast
from .._math import ARRAY
from ..graph import Node, adjoints, topological_order
from ..ops import Instruction, Op
from ..tensor import Tensor
from .buffers import BackwardBuffers, _Adjoint
from .checking import _checked, _run, _same_bits
from .forward_planning import ForwardPlanner
from .recording import _BackwardEvent, _Uncompilable

_P = functools.partial


class BackwardPlanner:
    """Plans the ``backward()`` events of a recording whose forward ops are planned.

    Adjoints and temporaries live in :class:`~chainrule.compile.buffers.BackwardBuffers`;
    an adjoint with a single consumer is handed on without a copy, broadcasting is undone
    by the summation steps eager mode takes, and leaves receive their gradient buffers.
    """

    def __init__(self, forward: ForwardPlanner) -> None:
        self.storage = forward.storage
        self.produced = forward.produced
        self.buffers = BackwardBuffers()
        self.recorded_values_current = forward.recorded_values_current

    def plan(self, event: _BackwardEvent) -> None:
        """Plan one ``backward()`` over the walk of :func:`chainrule.graph.adjoints`."""
        root = event.root
        if id(root) not in self.produced:
            raise _Uncompilable("backward() was called on a tensor the step did not compute")
        event.seed_buffer = np.array(event.seed, copy=True)
        run: list[Instruction] = []
        buffers = self.buffers
        recorded = event.contributions if self.recorded_values_current else {}

        def chain(node: Node, adjoint: _Adjoint) -> list[_Adjoint | None]:
            return self._plan_node(node, adjoint, event.retain_all, run, recorded.get(id(node)))

        def add(previous: _Adjoint, contribution: _Adjoint) -> _Adjoint:
            return self._accumulate(previous, contribution, run)

        seed = _Adjoint(event.seed_buffer, owned=False)
        order = event.order or topological_order(root)
        passed_on: _Adjoint | None = None  # the adjoint of the node planned last
        for node, adjoint in adjoints(root, seed, order=order, chain=chain, add=add):
            if passed_on is not None:  # its contributions are summed: its buffer is free
                buffers.release(passed_on.array)
                passed_on = None
            if node.op is None:
                event.leaves.append(self._leaf_gradient(node, adjoint, run))  # type: ignore[arg-type]
                continue
            if event.retain_all or node._retains_grad():
                event.retained.append((node, adjoint.array))
                buffers.expose(adjoint.array)
            passed_on = adjoint
        if passed_on is not None:
            buffers.release(passed_on.array)
        event.run = run
        event.contributions = {}  # eager mode's arrays: not kept past planning

    def _plan_node(
        self,
        node: Node,
        adjoint: _Adjoint,
        retain_all: bool,
        run: list[Instruction],
        recorded: list[Any] | None,
    ) -> list[_Adjoint | None]:
        """The planned contribution of ``node``'s adjoint to each parent (the chain rule).

        ``recorded`` holds the contributions eager backward computed for this node, if
        they may stand for the rows' results here (see :meth:`_recorded_into`).
        """
        op = node.op
        assert op is not None
        producer = self.produced.get(id(node))
        if producer is None:
            raise _Uncompilable(f"the graph reaches a {op.name} node made outside the step")
        params = producer.bound_params
        storage = self.storage
        out = storage[id(node)]
        parents = node.parents
        inputs = [storage[id(parent)] for parent in parents]
        needs = [parent._needs_grad() for parent in parents]
        retains = retain_all or node._retains_grad()
        # The adjoint may be handed on in place only to a single consumer.
        transferable = adjoint.owned and not retains and sum(needs) == 1
        contributions: list[_Adjoint | None] = []
        for index, partial in enumerate(op.partials):
            if not needs[index]:
                contributions.append(None)
                continue
            planned = None
            if recorded is not None and partial.into is not None:
                planned = self._recorded_into(
                    partial, recorded[index], adjoint.array, out, inputs, index, params, run
                )
            if planned is None:
                planned = self._contribution(
                    op, index, partial, adjoint, out, inputs, params, transferable, run
                )
            contribution = self.buffers.hold(planned)
            contributions.append(self._fit(contribution, inputs[index].shape, run))
        return contributions

    def _recorded_into(
        self,
        partial: Any,
        reference: Any,
        adj: np.ndarray,
        out: np.ndarray,
        inputs: list[np.ndarray],
        index: int,
        params: dict[str, Any],
        run: list[Instruction],
    ) -> _Adjoint | None:
        """The common case: the partial's ``into`` writes a new backward buffer, checked
        bit for bit against the contribution eager backward computed (no second run of
        the row). None where that contribution was reshaped (broadcasting undone) or the
        kernel disagrees: the caller then checks the kernel against the row."""
        if isinstance(reference, np.generic):  # a 0-d result, as numpy returns it
            reference = np.asarray(reference)
        if type(reference) is not np.ndarray or reference.shape != inputs[index].shape:
            return None
        if partial.vjp is None and reference.shape != adj.shape:
            return None
        buffers = self.buffers
        destination = buffers.new(reference)
        scratch, temporaries = buffers.temporaries()
        try:
            instructions = partial.into(adj, out, inputs, params, destination, scratch)
            _run(instructions)
        except ValueError:  # a vjp whose result was reshaped to fit: shapes disagree
            instructions = []
        for temporary in temporaries:
            buffers.recycle(temporary)
        if instructions and _same_bits(destination, reference):
            run.extend(instructions)
            return _Adjoint(destination, owned=True)
        buffers.recycle(destination)
        return None

    def _contribution(
        self,
        op: Op,
        index: int,
        partial: Any,
        adjoint: _Adjoint,
        out: np.ndarray,
        inputs: list[np.ndarray],
        params: dict[str, Any],
        transferable: bool,
        run: list[Instruction],
    ) -> _Adjoint:
        adj = adjoint.array
        kernel = partial.into
        if partial.vjp is not None:
            reference = np.asarray(partial.vjp(adj, out, *inputs, **params))
            if np.may_share_memory(reference, adj):
                # A view of the adjoint (transpose, reshape, broadcast): nothing to compute.
                return _Adjoint(reference, transferable and reference.flags.writeable)
            if any(np.may_share_memory(reference, source) for source in (out, *inputs)):
                return _Adjoint(reference, owned=False)
            vjp = partial.vjp
            return self._into(
                kernel,
                reference,
                (adj, out, inputs, params),
                lambda destination: np.copyto(destination, vjp(adj, out, *inputs, **params)),
                run,
            )
        if partial.constant is not None:
            if partial.constant == 1.0:
                return _Adjoint(adj, transferable)
            constant = partial.constant
            destination = self.buffers.new(adj)
            instruction = _P(np.multiply, adj, constant, destination)
            instruction()
            run.append(instruction)
            return _Adjoint(destination, owned=True)
        local = partial.local
        return self._into(
            kernel,
            np.asarray(adj * local(ARRAY, out, *inputs, **params)),
            (adj, out, inputs, params),
            lambda destination: np.multiply(adj, local(ARRAY, out, *inputs, **params), destination),
            run,
        )

    def _into(
        self,
        kernel: Any,
        reference: np.ndarray,
        arguments: tuple[Any, ...],
        fallback: Callable[[np.ndarray], Any],
        run: list[Instruction],
    ) -> _Adjoint:
        """A contribution written into a new backward buffer by the partial's ``into``
        (its temporaries recycled at once), or by ``fallback`` if that disagrees."""
        buffers = self.buffers
        destination = buffers.new(reference)
        scratch, temporaries = buffers.temporaries()
        run.extend(
            _checked(
                kernel,
                (*arguments, destination, scratch),
                destination,
                reference,
                functools.partial(fallback, destination),
            )
        )
        for temporary in temporaries:
            buffers.recycle(temporary)
        return _Adjoint(destination, owned=True)

    def _fit(
        self, contribution: _Adjoint, shape: tuple[int, ...], run: list[Instruction]
    ) -> _Adjoint:
        """Undo broadcasting exactly as chainrule._broadcast.unbroadcast does."""
        array = contribution.array
        if array.shape == shape:
            return contribution
        buffers = self.buffers
        reference = unbroadcast(array, shape)
        result = contribution
        leading, stretched = broadcast_axes(array.shape, shape)
        if leading:
            kept = array.shape[len(leading) :]
            result = self._sum_leading(result, len(leading), kept, run)
        if stretched:
            prefix = stretched_prefix(stretched)
            kept = tuple(1 if axis in stretched else n for axis, n in enumerate(result.array.shape))
            if prefix:
                result = self._sum_leading(result, prefix, kept, run)
            else:
                summed = buffers.new_shaped(kept, array.dtype)
                step = _P(np.add.reduce, result.array, axis=stretched, out=summed, keepdims=True)
                step()
                run.append(step)
                buffers.release(result.array)
                result = buffers.hold(_Adjoint(summed, owned=True))
        if result.array.shape != shape:
            result = _Adjoint(np.broadcast_to(result.array, shape), owned=False)
        if not _same_bits(result.array, reference):
            raise _Uncompilable(f"undoing broadcasting to {shape} did not match eager mode")
        return result

    def _sum_leading(
        self, adjoint: _Adjoint, count: int, shape: tuple[int, ...], run: list[Instruction]
    ) -> _Adjoint:
        """``adjoint`` summed over its first ``count`` axes into a new buffer of ``shape``,
        by the steps eager mode takes (:func:`chainrule._broadcast.leading_sum_steps`)."""
        buffers = self.buffers
        array = adjoint.array
        summed = buffers.new_shaped(shape, array.dtype)
        scratch: list[np.ndarray] = []  # the transposed copy's buffer, if the sum makes one

        def make_scratch(scratch_shape: tuple[int, int], dtype: np.dtype[Any]) -> np.ndarray:
            scratch.append(buffers.new_shaped(scratch_shape, dtype))
            return scratch[-1]

        steps = leading_sum_steps(array, count, summed, make_scratch)
        for step in steps:
            step()
        run.extend(steps)
        for buffer in scratch:  # read by the last step only: free for later ones
            buffers.recycle(buffer)
        buffers.release(array)
        return buffers.hold(_Adjoint(summed, owned=True))

    def _accumulate(
        self, previous: _Adjoint, contribution: _Adjoint, run: list[Instruction]
    ) -> _Adjoint:
        buffers = self.buffers
        reference = np.asarray(previous.array + contribution.array)
        target = previous.array
        in_place = (
            previous.owned and target.shape == reference.shape and target.dtype == reference.dtype
        )
        if not in_place:
            target = buffers.new(reference)
        step = _P(np.add, previous.array, contribution.array, target)
        step()
        run.append(step)
        buffers.release(contribution.array)
        if in_place:
            return previous
        buffers.release(previous.array)
        return buffers.hold(_Adjoint(target, owned=True))

    def _leaf_gradient(
        self, leaf: Tensor, adjoint: _Adjoint, run: list[Instruction]
    ) -> tuple[Tensor, np.ndarray]:
        dtype = leaf.data.dtype
        array = adjoint.array
        if adjoint.owned and array.dtype == dtype and array.flags.writeable:
            self.buffers.expose(array)
            return leaf, array
        # Eager backward copies (and casts) an adjoint the leaf does not own; so do we.
        grad = np.empty(leaf.data.shape, dtype)
        step = _P(np.copyto, grad, array, "unsafe")
        step()
        run.append(step)
        self.buffers.release(array)
        return leaf, grad
