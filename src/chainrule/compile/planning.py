"""Planning: turning a recording into buffers and in-place numpy instructions.

Forward ops get a buffer each and the instructions of their row's ``forward_into``;
``backward()`` is planned by walking the recorded graph (the walk of
:mod:`chainrule.graph`) with each partial's ``into``. Every instruction list is run
once while planning and compared bit for bit with what eager mode computed; a kernel
that disagrees is replaced by a call of the row itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._broadcast import broadcast_axes, unbroadcast
from .._math import ARRAY
from ..graph import Node, adjoints, topological_order
from ..ops import Instruction, Op, Scratch
from ..tensor import Tensor
from .recording import (
    Event,
    _array_of,
    _BackwardEvent,
    _OpEvent,
    _run,
    _same_bits,
    _Uncompilable,
)

_P = functools.partial


@dataclass
class _Adjoint:
    """An adjoint during planning: its array, and whether the plan may write into it."""

    array: np.ndarray
    owned: bool


def _has_array(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return True
    return isinstance(value, tuple) and any(isinstance(v, np.ndarray) for v in value)


def _analyse(
    events: list[Event], arguments: Sequence[Any]
) -> tuple[list[str], dict[int, int], set[int]]:
    """Before planning: the arrays a flat trace would freeze, how often each tensor is
    used as an op input, and which tensors' values backward (or the caller) reads."""
    argument_arrays = [_array_of(a) for a in arguments]
    produced = {id(e.out) for e in events if isinstance(e, _OpEvent)}
    frozen: list[str] = []
    uses: dict[int, int] = {}
    seen: set[int] = set()

    def bound(array: np.ndarray) -> bool:
        return any(array is candidate for candidate in argument_arrays)

    for number, event in enumerate(events):
        if not isinstance(event, _OpEvent):
            continue
        where = f"op {number} ({event.op.name})"
        for tensor in event.inputs:
            uses[id(tensor)] = uses.get(id(tensor), 0) + 1
            if id(tensor) in produced or id(tensor) in seen or tensor.requires_grad:
                continue
            seen.add(id(tensor))
            if tensor.op is None and tensor.data.size > 1 and not bound(tensor.data):
                frozen.append(f"{where}: an array of shape {tensor.data.shape}")
        for value in event.params.values():
            for part in value if isinstance(value, tuple) else (value,):
                if isinstance(part, np.ndarray) and part.size > 1 and not bound(part):
                    frozen.append(f"{where}: an index array of shape {part.shape}")
    reads: set[int] = set()
    for event in events:
        if isinstance(event, _BackwardEvent):
            reads.add(id(event.root))  # its value is handed back
            for node in topological_order(event.root):
                if node.op is None:
                    continue
                for index, parent in enumerate(node.parents):
                    if parent._needs_grad():
                        for read in node.op.reads(index):
                            reads.add(id(node.parents[read]) if isinstance(read, int) else id(node))
    return frozen, uses, reads


class _Planner:
    """Turns a recording into buffers and instructions (see :class:`_Program`).

    Forward values live in buffers of their own, except that a flat program computes an
    elementwise op into its input's buffer when nothing else reads that input (the
    matmul → +bias → activation chain of a layer shares one buffer). Backward buffers
    (adjoints, temporaries) are reference-counted while planning and go back to a pool
    when their last reader is planned, so later ones reuse them.
    """

    def __init__(
        self,
        events: list[Event],
        arguments: Sequence[Any],
        bind_arguments: bool,
        in_place: bool,
        uses: dict[int, int],
        reads: set[int],
    ) -> None:
        self.events = events
        self.storage: dict[int, np.ndarray] = {}
        self.produced: dict[int, _OpEvent] = {}
        self.parameters: list[tuple[Tensor, np.ndarray]] = []
        self.argument_arrays = [_array_of(a) for a in arguments]
        self.bind_arguments = bind_arguments
        # For the flat form: argument index -> buffers to refresh from it.
        self.argument_bindings: list[tuple[int, np.ndarray]] = []
        self.in_place = in_place
        self.uses = uses
        self.reads = reads
        self.forward_buffers: set[int] = set()  # buffers made for op outputs
        self.private: dict[int, np.ndarray] = {}  # backward buffers, by id
        self.holders: dict[int, int] = {}
        self.pool: dict[tuple[Any, ...], list[np.ndarray]] = {}

    # -- forward --

    def _argument_index(self, array: np.ndarray) -> int | None:
        for index, candidate in enumerate(self.argument_arrays):
            if candidate is array:
                return index
        return None

    def _input_storage(self, tensor: Tensor, where: str) -> tuple[np.ndarray, bool]:
        """The persistent array standing for an input, and whether it is free."""
        known = self.storage.get(id(tensor))
        if known is not None:
            return known, id(tensor) not in self.produced and not tensor.requires_grad
        if tensor.op is not None:
            raise _Uncompilable(
                f"{where} uses a tensor computed before the step started (a graph carried "
                "over from an earlier call); compile the whole computation or detach() it"
            )
        if tensor.requires_grad:
            self.storage[id(tensor)] = tensor.data
            self.parameters.append((tensor, tensor.data))
            return tensor.data, False
        buffer = np.array(tensor.data, copy=True, order="C")
        self.storage[id(tensor)] = buffer
        if self.bind_arguments:
            index = self._argument_index(tensor.data)
            if index is not None:
                self.argument_bindings.append((index, buffer))
        return buffer, True

    def _bind_params(self, event: _OpEvent) -> None:
        if not any(_has_array(v) for v in event.params.values()):
            event.bound_params = event.params
            return
        bound: dict[str, Any] = {}
        arrays: list[tuple[str, int, np.ndarray]] = []
        for key, value in event.params.items():
            parts = value if isinstance(value, tuple) else (value,)
            new_parts = []
            for position, part in enumerate(parts):
                if isinstance(part, np.ndarray):
                    buffer = np.array(part, copy=True, order="C")
                    arrays.append((key, position if isinstance(value, tuple) else -1, buffer))
                    if self.bind_arguments:
                        index = self._argument_index(part)
                        if index is not None:
                            self.argument_bindings.append((index, buffer))
                    new_parts.append(buffer)
                else:
                    new_parts.append(part)
            bound[key] = tuple(new_parts) if isinstance(value, tuple) else new_parts[0]
        event.bound_params = bound
        event.param_arrays = tuple(arrays)

    def _reusable_input(self, event: _OpEvent, reference: np.ndarray) -> np.ndarray | None:
        """An input buffer the op may overwrite with its result, if there is one."""
        op = event.op
        if not self.in_place or not op.in_place or reference.ndim == 0:
            return None
        for tensor in event.inputs:
            key = id(tensor)
            if (
                key in self.produced
                and key not in self.reads
                and self.uses.get(key) == sum(t is tensor for t in event.inputs)
            ):
                buffer = self.storage[key]
                if (
                    id(buffer) in self.forward_buffers
                    and buffer.shape == reference.shape
                    and buffer.dtype == reference.dtype
                ):
                    return buffer
        return None

    def plan_forward(self, event: _OpEvent, number: int) -> None:
        op = event.op
        where = f"op {number} ({op.name})"
        arrays = []
        free = []
        for position, tensor in enumerate(event.inputs):
            array, is_free = self._input_storage(tensor, where)
            arrays.append(array)
            if is_free:
                free.append((position, array))
        event.free = tuple(free)
        slots: list[np.ndarray | None] = [None] * len(event.inputs)
        for position, buffer in free:
            slots[position] = buffer
        event.free_slots = tuple(slots)
        self._bind_params(event)
        params = event.bound_params
        reference = op.forward(ARRAY, *arrays, **params)
        if type(reference) is not np.ndarray:
            reference = np.asarray(reference)
        self.produced[id(event.out)] = event
        sources = [*arrays, *(buffer for _, _, buffer in event.param_arrays)]
        if any(np.may_share_memory(reference, source) for source in sources):
            # A view (transpose, reshape, basic indexing) of persistent buffers stays
            # valid as they are refilled: nothing to redo on replay.
            event.run = []
            output = reference
        else:
            reused = self._reusable_input(event, reference)
            output = np.empty(reference.shape, reference.dtype) if reused is None else reused
            self.forward_buffers.add(id(output))
            event.run = _checked(
                op.forward_into,
                (arrays, params, output),
                output,
                reference,
                lambda: np.copyto(output, op.forward(ARRAY, *arrays, **params)),
            )
        self.storage[id(event.out)] = output
        event.out.data = output

    # -- backward buffers --

    def _new(self, like: np.ndarray, dtype: Any = None) -> np.ndarray:
        """A backward buffer shaped (and laid out) like ``like``, from the pool if free."""
        kind = np.dtype(like.dtype if dtype is None else dtype)
        fortran = like.ndim > 1 and like.flags.f_contiguous and not like.flags.c_contiguous
        key = (like.shape, kind.str, fortran)
        free = self.pool.get(key)
        if free:
            buffer = free.pop()
        else:
            buffer = np.empty(like.shape, kind, order="F" if fortran else "C")
            self.private[id(buffer)] = buffer
        self.holders[id(buffer)] = 0
        return buffer

    def _base(self, array: np.ndarray) -> int | None:
        if id(array) in self.private:
            return id(array)
        base = array.base
        return id(base) if base is not None and id(base) in self.private else None

    def _hold(self, adjoint: _Adjoint) -> _Adjoint:
        base = self._base(adjoint.array)
        if base is not None:
            self.holders[base] += 1
        return adjoint

    def _release(self, array: np.ndarray) -> None:
        base = self._base(array)
        if base is None:
            return
        self.holders[base] -= 1
        if self.holders[base] == 0:
            self._recycle(self.private[base])

    def _recycle(self, buffer: np.ndarray) -> None:
        fortran = buffer.ndim > 1 and buffer.flags.f_contiguous and not buffer.flags.c_contiguous
        self.pool.setdefault((buffer.shape, buffer.dtype.str, fortran), []).append(buffer)

    def _expose(self, array: np.ndarray) -> None:
        """The array is handed to the user (a grad): its buffer is never reused."""
        base = self._base(array)
        if base is not None:
            self.holders[base] += 1 << 40

    def _temporaries(self) -> tuple[Scratch, list[np.ndarray]]:
        made: list[np.ndarray] = []

        def scratch(like: np.ndarray, dtype: Any = None) -> np.ndarray:
            buffer = self._new(like, dtype)
            made.append(buffer)
            return buffer

        return scratch, made

    # -- backward --

    def plan_backward(self, event: _BackwardEvent) -> None:
        """Plan one ``backward()`` over the walk of :func:`chainrule.graph.adjoints`."""
        root = event.root
        if id(root) not in self.produced:
            raise _Uncompilable("backward() was called on a tensor the step did not compute")
        event.seed_buffer = np.array(event.seed, copy=True)
        run: list[Instruction] = []

        def chain(node: Node, adjoint: _Adjoint) -> list[_Adjoint | None]:
            return self._plan_node(node, adjoint, event.retain_all, run)

        def add(previous: _Adjoint, contribution: _Adjoint) -> _Adjoint:
            return self._accumulate(previous, contribution, run)

        seed = _Adjoint(event.seed_buffer, owned=False)
        passed_on: _Adjoint | None = None  # the adjoint of the node planned last
        for node, adjoint in adjoints(root, seed, chain=chain, add=add):
            if passed_on is not None:  # its contributions are summed: its buffer is free
                self._release(passed_on.array)
                passed_on = None
            if node.op is None:
                event.leaves.append(self._leaf_gradient(node, adjoint, run))  # type: ignore[arg-type]
                continue
            if event.retain_all or node._retains_grad():
                event.retained.append((node, adjoint.array))
                self._expose(adjoint.array)
            passed_on = adjoint
        if passed_on is not None:
            self._release(passed_on.array)
        event.run = run

    def _plan_node(
        self, node: Node, adjoint: _Adjoint, retain_all: bool, run: list[Instruction]
    ) -> list[_Adjoint | None]:
        """The planned contribution of ``node``'s adjoint to each parent (the chain rule)."""
        op = node.op
        assert op is not None
        producer = self.produced.get(id(node))
        if producer is None:
            raise _Uncompilable(f"the graph reaches a {op.name} node made outside the step")
        params = producer.bound_params
        out = self.storage[id(node)]
        inputs = [self.storage[id(parent)] for parent in node.parents]
        wanting = [parent for parent in node.parents if parent._needs_grad()]
        retains = retain_all or node._retains_grad()
        # The adjoint may be handed on in place only to a single consumer.
        transferable = adjoint.owned and not retains and len(wanting) == 1
        contributions: list[_Adjoint | None] = []
        for index, (parent, partial) in enumerate(zip(node.parents, op.partials)):
            if not parent._needs_grad():
                contributions.append(None)
                continue
            contribution = self._hold(
                self._contribution(
                    op, index, partial, adjoint, out, inputs, params, transferable, run
                )
            )
            contributions.append(self._fit(contribution, self.storage[id(parent)].shape, run))
        return contributions

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
            destination = self._new(np.asarray(adj * constant))
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
        destination = self._new(reference)
        scratch, temporaries = self._temporaries()
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
            self._recycle(temporary)
        return _Adjoint(destination, owned=True)

    def _fit(
        self, contribution: _Adjoint, shape: tuple[int, ...], run: list[Instruction]
    ) -> _Adjoint:
        """Undo broadcasting exactly as chainrule._broadcast.unbroadcast does."""
        array = contribution.array
        if array.shape == shape:
            return contribution
        reference = unbroadcast(array, shape)
        result = contribution
        leading, stretched = broadcast_axes(array.shape, shape)
        if leading:
            summed = self._new(np.empty(array.shape[len(leading) :], array.dtype))
            step = _P(np.add.reduce, result.array, axis=leading, out=summed)
            step()
            run.append(step)
            self._release(result.array)
            result = self._hold(_Adjoint(summed, owned=True))
        if stretched:
            kept = tuple(1 if axis in stretched else n for axis, n in enumerate(result.array.shape))
            summed = self._new(np.empty(kept, array.dtype))
            step = _P(np.add.reduce, result.array, axis=stretched, out=summed, keepdims=True)
            step()
            run.append(step)
            self._release(result.array)
            result = self._hold(_Adjoint(summed, owned=True))
        if result.array.shape != shape:
            result = _Adjoint(np.broadcast_to(result.array, shape), owned=False)
        if not _same_bits(result.array, reference):
            raise _Uncompilable(f"undoing broadcasting to {shape} did not match eager mode")
        return result

    def _accumulate(
        self, previous: _Adjoint, contribution: _Adjoint, run: list[Instruction]
    ) -> _Adjoint:
        reference = np.asarray(previous.array + contribution.array)
        target = previous.array
        in_place = (
            previous.owned and target.shape == reference.shape and target.dtype == reference.dtype
        )
        if not in_place:
            target = self._new(reference)
        step = _P(np.add, previous.array, contribution.array, target)
        step()
        run.append(step)
        self._release(contribution.array)
        if in_place:
            return previous
        self._release(previous.array)
        return self._hold(_Adjoint(target, owned=True))

    def _leaf_gradient(
        self, leaf: Tensor, adjoint: _Adjoint, run: list[Instruction]
    ) -> tuple[Tensor, np.ndarray]:
        dtype = leaf.data.dtype
        array = adjoint.array
        if adjoint.owned and array.dtype == dtype and array.flags.writeable:
            self._expose(array)
            return leaf, array
        # Eager backward copies (and casts) an adjoint the leaf does not own; so do we.
        grad = np.empty(leaf.data.shape, dtype)
        step = _P(np.copyto, grad, array, "unsafe")
        step()
        run.append(step)
        self._release(array)
        return leaf, grad


def _checked(
    kernel: Any,
    arguments: tuple[Any, ...],
    output: np.ndarray,
    reference: np.ndarray,
    fallback: Instruction,
) -> list[Instruction]:
    """The kernel's instructions if they reproduce ``reference`` bit for bit, else the row."""
    if kernel is not None:
        instructions: list[Instruction] = kernel(*arguments)
        if instructions:
            _run(instructions)
            if _same_bits(output, reference):
                return instructions
    fallback()
    return [fallback]


class _Program:
    """A recorded step: its events with instructions, ready to replay."""

    def __init__(self, events: list[Event], arguments: Sequence[Any], flat_candidate: bool):
        backward_events = sum(isinstance(event, _BackwardEvent) for event in events)
        ends_in_backward = backward_events == 1 and isinstance(events[-1], _BackwardEvent)
        frozen, uses, reads = _analyse(events, arguments)
        self.flat = flat_candidate and ends_in_backward and not frozen
        self.fallback_reason = ""
        if flat_candidate and not ends_in_backward:
            self.fallback_reason = "the step must call backward() exactly once, last"
        elif flat_candidate and frozen:
            # An array fn made from something other than its arguments (labels converted
            # to another dtype, an index built from the batch size) may change from call
            # to call, and only running fn tells: the flat form would freeze it.
            self.fallback_reason = "fn uses arrays that are not its arguments: " + "; ".join(frozen)
        # Only a flat program may compute into dead inputs' buffers: when fn runs, its
        # code may still look at any intermediate tensor.
        planner = _Planner(events, arguments, flat_candidate, self.flat, uses, reads)
        for number, event in enumerate(events):
            if isinstance(event, _OpEvent):
                planner.plan_forward(event, number)
            else:
                planner.plan_backward(event)
        self.events = events
        self.parameters = planner.parameters
        self.argument_bindings = planner.argument_bindings
        self.flat_forward: list[Instruction] = [
            instruction
            for event in events
            if isinstance(event, _OpEvent)
            for instruction in event.run
        ]
        self.verified = False

    def parameters_in_place(self) -> bool:
        """Whether every parameter still holds the array the program was built on."""
        for tensor, array in self.parameters:  # noqa: SIM110 (a loop beats all() here)
            if tensor.data is not array:
                return False
        return True
