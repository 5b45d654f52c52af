"""Record a training step once, replay it as a flat list of numpy calls.

A training step on a fixed architecture applies the same ops to arrays of the same
shapes every time. :func:`compile` runs the step once in eager mode while a recorder
watches every :meth:`Tensor._apply <chainrule.Tensor>` and ``backward()``; from that
recording it builds a *program*: one preallocated buffer per value, and for every op
the numpy calls that recompute it in place (``out=`` arithmetic, views made once,
matrix products written straight into the gradient buffers). Replaying the program
builds no graph objects, allocates (almost) nothing and runs exactly the arithmetic
eager mode runs, so the results are the same to the last bit.

Two ways to use it::

    # 1. Wrap any eager step. It is called again every time, but each Tensor op and
    #    each backward() inside it is served from the recording.
    def train_step(xb, yb):
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    step = chainrule.compile(train_step)

    # 2. Give the loss and the optimizer: fn is traced once and not called again
    #    (the fastest form; fn must be a pure function of its arguments and the
    #    parameters). Each call does zero_grad, forward, backward and opt.step().
    step = chainrule.compile(lambda xb, yb: loss_fn(model(xb), yb), optimizer=opt)

    for xb, yb in batches:
        loss = step(xb, yb)

Re-tracing rules:

- A call whose array arguments have new shapes or dtypes records a new program (up
  to ``max_traces`` programs are kept, least recently used dropped first). With
  ``optimizer=`` the values of non-array arguments are part of the key too.
- Python control flow is not recorded, only the ops it leads to. In the first form
  every op is checked against the recording as the step runs (same op, same
  parameters, same input tensors); a step that takes another path finishes that call
  in eager mode and is recorded again on the next call. After ``max_divergences``
  such calls the step runs eagerly for good (with a :class:`RuntimeWarning`).
- In the second form ``fn`` is not run again, so the flat replay is used only when
  every input of the recording is accounted for: the arguments (by identity of their
  arrays: pass arrays of the model's dtype, which ``fn`` then uses as they are), the
  parameters (leaf tensors that require grad, read in place) and scalar constants.
  Any other array (labels converted to another dtype inside ``fn``, an index made
  with ``np.arange``) makes that trace replay in the first form, calling ``fn``
  again, which is always correct. The first replay of every flat trace also runs
  ``fn`` eagerly and compares the losses bit for bit, catching a scalar constant
  that changes between calls; if they differ, the trace replays in the first form.

What is reused between calls: intermediate tensors of the step and the ``grad``
arrays of the parameters are the same buffers on every call (values the step
returns are copied). Optimizers must therefore not keep a parameter's ``grad`` array
from one step to the next (chainrule's optimizers don't). Parameters must be updated
in place (``p.data -= ...``); a parameter whose ``data`` is replaced by a new array
is noticed and the step is recorded again. ``detect_anomaly()`` runs the step eagerly.

Threads: the recording switch lives in the running context like ``no_grad()``, so
steps compiled for different models train at once in different threads, each as it
would alone. One compiled step called from several threads at once runs its calls
one after another (its buffers are shared), never interleaved.
"""

from __future__ import annotations

import functools
import operator
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._broadcast import broadcast_axes, unbroadcast
from ._math import ARRAY
from .errors import ChainruleError
from .graph import Node, grad_mode, grad_mode_set, recording, stop_recording, topological_order
from .graph import backward as _eager_backward
from .ops import Instruction, Op, Scratch
from .tensor import Tensor

__all__ = ["CompileError", "CompiledStep", "compile"]

_P = functools.partial


class CompileError(ChainruleError, RuntimeError):
    """A step cannot be compiled as asked, or its replay disagreed with eager mode."""


def _same_bits(a: Any, b: Any) -> bool:
    """Whether two results are identical: shape, dtype and every bit (NaNs alike)."""
    a = np.asarray(a)
    b = np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _run(instructions: Sequence[Instruction]) -> None:
    for instruction in instructions:
        instruction()


# --- the recording ------------------------------------------------------------------------


class _Uncompilable(Exception):
    """The recording cannot be turned into a program (the reason is the message)."""


@dataclass(eq=False)
class _OpEvent:
    """One op the step applied, and the instructions that redo it in place."""

    op: Op
    inputs: tuple[Tensor, ...]
    params: dict[str, Any]
    out: Tensor
    grad_enabled: bool
    run: list[Instruction] = field(default_factory=list)
    # Positions of inputs that are leaves not requiring grad ("free" inputs: the batch,
    # constants); their data is copied into these buffers on every replay.
    free: tuple[tuple[int, np.ndarray], ...] = ()
    # Array-valued params (integer indexes): (key, position in a tuple or -1, buffer).
    param_arrays: tuple[tuple[str, int, np.ndarray], ...] = ()
    bound_params: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class _BackwardEvent:
    """One backward() call of the step and the flat program that redoes it."""

    root: Tensor
    seed: np.ndarray
    retain_all: bool
    seed_buffer: np.ndarray = field(default_factory=lambda: np.empty(0))
    run: list[Instruction] = field(default_factory=list)
    leaves: list[tuple[Tensor, np.ndarray]] = field(default_factory=list)
    retained: list[tuple[Node, np.ndarray]] = field(default_factory=list)

    def replay(self) -> None:
        """Run the backward program and hand out gradients as eager backward would."""
        leaves = self.leaves
        for leaf, grad in leaves:
            if leaf.grad is grad:  # an earlier call's gradient, never zeroed: keep it
                leaf.grad = grad.copy()
        for instruction in self.run:
            instruction()
        for leaf, grad in leaves:
            previous = leaf.grad
            leaf.grad = grad if previous is None else previous + grad
        for node, adjoint in self.retained:
            node.grad = adjoint


Event = _OpEvent | _BackwardEvent


class _Recorder:
    """Runs ops eagerly while it is the grad mode's recorder, and logs them."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def apply(self, op: Op, inputs: tuple[Tensor, ...], params: dict[str, Any]) -> Tensor:
        with recording(None):
            out = Tensor._apply(op, inputs, params)
        self.events.append(_OpEvent(op, inputs, params, out, grad_mode().enabled))
        return out

    def backward(self, root: Node, seed: Any, retain_all: bool) -> None:
        with recording(None):
            _eager_backward(root, seed, retain_all)
        if isinstance(root, Tensor):
            self.events.append(_BackwardEvent(root, np.array(seed, copy=True), retain_all))


# --- building a program from a recording ------------------------------------------------


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
        root = event.root
        if id(root) not in self.produced:
            raise _Uncompilable("backward() was called on a tensor the step did not compute")
        event.seed_buffer = np.array(event.seed, copy=True)
        adjoints: dict[int, _Adjoint] = {id(root): _Adjoint(event.seed_buffer, owned=False)}
        run: list[Instruction] = []
        for node in reversed(topological_order(root)):
            adjoint = adjoints.pop(id(node), None)
            if adjoint is None:
                continue
            if node.op is None:
                event.leaves.append(self._leaf_gradient(node, adjoint, run))  # type: ignore[arg-type]
                continue
            retains = event.retain_all or node._retains_grad()
            if retains:
                event.retained.append((node, adjoint.array))
                self._expose(adjoint.array)
            self._plan_node(node, adjoint, retains, adjoints, run)
            self._release(adjoint.array)
        event.run = run

    def _plan_node(
        self,
        node: Node,
        adjoint: _Adjoint,
        retains: bool,
        adjoints: dict[int, _Adjoint],
        run: list[Instruction],
    ) -> None:
        op = node.op
        assert op is not None
        producer = self.produced.get(id(node))
        if producer is None:
            raise _Uncompilable(f"the graph reaches a {op.name} node made outside the step")
        params = producer.bound_params
        out = self.storage[id(node)]
        inputs = [self.storage[id(parent)] for parent in node.parents]
        wanting = [parent for parent in node.parents if parent._needs_grad()]
        # The adjoint may be handed on in place only to a single consumer.
        transferable = adjoint.owned and not retains and len(wanting) == 1
        for index, (parent, partial) in enumerate(zip(node.parents, op.partials)):
            if not parent._needs_grad():
                continue
            contribution = self._hold(
                self._contribution(
                    op, index, partial, adjoint, out, inputs, params, transferable, run
                )
            )
            contribution = self._fit(contribution, self.storage[id(parent)].shape, run)
            previous = adjoints.get(id(parent))
            adjoints[id(parent)] = (
                contribution if previous is None else self._accumulate(previous, contribution, run)
            )

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
            destination = self._new(reference)
            scratch, temporaries = self._temporaries()
            run.extend(
                _checked(
                    kernel,
                    (adj, out, inputs, params, destination, scratch),
                    destination,
                    reference,
                    lambda: np.copyto(destination, vjp(adj, out, *inputs, **params)),
                )
            )
            for temporary in temporaries:
                self._recycle(temporary)
            return _Adjoint(destination, owned=True)
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
        reference = np.asarray(adj * local(ARRAY, out, *inputs, **params))
        destination = self._new(reference)
        scratch, temporaries = self._temporaries()
        run.extend(
            _checked(
                kernel,
                (adj, out, inputs, params, destination, scratch),
                destination,
                reference,
                lambda: np.multiply(adj, local(ARRAY, out, *inputs, **params), destination),
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


def _array_of(argument: Any) -> Any:
    return argument.data if isinstance(argument, Tensor) else argument


# --- programs and their replay ----------------------------------------------------------


class _Diverged(Exception):
    pass


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


class _Replayer:
    """Serves the ops and backward() calls of a running step from a program."""

    def __init__(self, program: _Program) -> None:
        self.events = program.events
        self.count = len(program.events)
        self.cursor = 0
        self.diverged = False

    def _leave(self) -> None:
        """Stop serving: the rest of this call runs eagerly."""
        self.diverged = True
        stop_recording()

    def apply(self, op: Op, inputs: tuple[Tensor, ...], params: dict[str, Any]) -> Tensor:
        cursor = self.cursor
        if cursor < self.count:
            event = self.events[cursor]
            if (
                type(event) is _OpEvent
                and event.op is op
                and event.grad_enabled is grad_mode().enabled
                and self._same_inputs(event, inputs)
                and self._same_params(event, params)
            ):
                for instruction in event.run:
                    instruction()
                self.cursor = cursor + 1
                return event.out
        self._leave()
        return Tensor._apply(op, inputs, params)

    @staticmethod
    def _same_inputs(event: _OpEvent, inputs: tuple[Tensor, ...]) -> bool:
        recorded = event.inputs
        if not event.free:
            return len(inputs) == len(recorded) and all(map(operator.is_, inputs, recorded))
        if len(inputs) != len(recorded):
            return False
        free = dict(event.free)
        for position, (tensor, expected) in enumerate(zip(inputs, recorded)):
            buffer = free.get(position)
            if buffer is None:
                if tensor is not expected:
                    return False
                continue
            data = tensor.data
            if (
                tensor.op is not None
                or tensor.requires_grad
                or data.shape != buffer.shape
                or data.dtype != buffer.dtype
            ):
                return False
            np.copyto(buffer, data)
        if event.out.op is not None:
            event.out.parents = inputs  # keep the graph true for an eager fallback
        return True

    @staticmethod
    def _same_params(event: _OpEvent, params: dict[str, Any]) -> bool:
        recorded = event.params
        if params is recorded:
            return True
        if not event.param_arrays:
            return params == recorded
        if params.keys() != recorded.keys():
            return False
        arrays = {(key, position): buffer for key, position, buffer in event.param_arrays}
        pending = []
        for key, value in params.items():
            old = recorded[key]
            parts = value if isinstance(value, tuple) else (value,)
            old_parts = old if isinstance(old, tuple) else (old,)
            if len(parts) != len(old_parts) or isinstance(value, tuple) != isinstance(old, tuple):
                return False
            for position, (part, old_part) in enumerate(zip(parts, old_parts)):
                buffer = arrays.get((key, position if isinstance(value, tuple) else -1))
                if buffer is None:
                    if isinstance(part, np.ndarray) or part != old_part:
                        return False
                elif not (
                    isinstance(part, np.ndarray)
                    and part.shape == buffer.shape
                    and part.dtype == buffer.dtype
                ):
                    return False
                else:
                    pending.append((buffer, part))
        for buffer, part in pending:
            np.copyto(buffer, part)
        return True

    def backward(self, root: Node, seed: Any, retain_all: bool) -> None:
        if not isinstance(root, Tensor):  # a Value graph: never recorded, runs eagerly
            with recording(None):
                _eager_backward(root, seed, retain_all)
            return
        cursor = self.cursor
        if cursor < self.count:
            event = self.events[cursor]
            if (
                type(event) is _BackwardEvent
                and root is event.root
                and retain_all == event.retain_all
                and np.shape(seed) == event.seed_buffer.shape
            ):
                np.copyto(event.seed_buffer, seed)
                event.replay()
                self.cursor = cursor + 1
                return
        self._leave()
        _eager_backward(root, seed, retain_all)


# --- the public API -------------------------------------------------------------------------

_EAGER = "eager"


def _signature(arguments: tuple[Any, ...], with_values: bool) -> tuple[Any, ...]:
    key: list[Any] = []
    for argument in arguments:
        if type(argument) is np.ndarray:  # the common case first: it runs on every call
            key.append((argument.shape, argument.dtype))
            continue
        array = _array_of(argument)
        if isinstance(array, np.ndarray):
            key.append((type(argument), array.shape, array.dtype))
        elif with_values:
            if not isinstance(argument, (int, float, bool, str, type(None))):
                raise TypeError(
                    "chainrule.compile(fn, optimizer=...) takes numpy arrays, Tensors and "
                    f"plain numbers/strings as arguments, not {type(argument).__name__}; "
                    "convert it to a numpy array (or compile without optimizer=)"
                )
            key.append((type(argument), argument))
        else:
            key.append(type(argument))
    return tuple(key)


def _leaf_copy(data: np.ndarray) -> Tensor:
    """A new leaf Tensor holding a copy of ``data`` (built directly: it runs every call)."""
    leaf = Tensor.__new__(Tensor)
    leaf.data = data.copy()
    leaf.grad = None
    leaf.label = None
    leaf.parents = ()
    leaf.op = None
    leaf.params = {}
    leaf.requires_grad = False
    leaf._retain = False
    return leaf


def _detached(value: Any) -> Any:
    """Returned tensors are copies: the step's own tensors are overwritten next call."""
    if isinstance(value, Tensor):
        return _leaf_copy(value.data)
    if isinstance(value, tuple):
        return tuple(_detached(v) for v in value)
    if isinstance(value, list):
        return [_detached(v) for v in value]
    return value


@dataclass
class CompileStats:
    """What a compiled step has done so far (for tests, benchmarks and curiosity).

    Attributes:
        traces: programs recorded (one per new signature, plus re-recordings).
        replays: calls served from a recording.
        flat_replays: calls that did not run the Python step at all (``optimizer=`` form).
        eager_calls: calls that ran eagerly (recordings excluded).
        divergences: calls that left the recording midway (another path through the step).
        notes: why a trace could not be used as asked, newest last.
    """

    traces: int = 0
    replays: int = 0
    flat_replays: int = 0
    eager_calls: int = 0
    divergences: int = 0
    notes: list[str] = field(default_factory=list)


class CompiledStep:
    """A step function that records itself once per signature and replays after that.

    Made by :func:`compile`; call it with the arguments the wrapped function takes.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        optimizer: Any = None,
        max_traces: int = 8,
        max_divergences: int = 3,
        verify: bool = True,
    ) -> None:
        self.fn = fn
        self.optimizer = optimizer
        self.max_traces = max_traces
        self.max_divergences = max_divergences
        self.verify = verify
        self.stats = CompileStats()
        self._programs: OrderedDict[tuple[Any, ...], _Program | str] = OrderedDict()
        self._divergences: dict[tuple[Any, ...], int] = {}
        self._not_flat: set[tuple[Any, ...]] = set()  # signatures whose flat check failed
        self._lock = threading.RLock()
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        form = "with optimizer" if self.optimizer is not None else "step"
        return f"<chainrule.compile {form} {name}: {self.stats.traces} trace(s)>"

    # -- eager forms --

    def _eager(self, arguments: tuple[Any, ...]) -> Any:
        if self.optimizer is None:
            return self.fn(*arguments)
        self.optimizer.zero_grad()
        loss = self.fn(*arguments)
        _check_loss(loss)
        loss.backward()
        self.optimizer.step()
        return loss

    def _note(self, message: str) -> None:
        self.stats.notes.append(message)
        del self.stats.notes[:-20]

    # -- the call --

    def __call__(self, *arguments: Any) -> Any:
        # The programs' buffers are shared by every call: a call from another thread
        # waits for the running one to finish (re-entry from the same thread passes).
        with self._lock:
            return self._call(arguments)

    def _call(self, arguments: tuple[Any, ...]) -> Any:
        mode = grad_mode()
        if mode.recorder is not None or mode.detect_anomaly:
            # Inside another recording (its recorder sees these ops) or while debugging.
            self.stats.eager_calls += 1
            return _detached(self._eager(arguments))
        key = _signature(arguments, with_values=self.optimizer is not None)
        program = self._programs.get(key)
        if program is _EAGER:
            self.stats.eager_calls += 1
            return _detached(self._eager(arguments))
        if isinstance(program, _Program) and not program.parameters_in_place():
            self._note("a parameter's data array was replaced; recording again")
            program = None
        if not isinstance(program, _Program):
            return self._record(key, arguments)
        self._programs.move_to_end(key)
        if program.flat:
            result = self._replay_flat(key, program, arguments)
            if result is None:  # the first-replay check failed: record without the flat form
                return self._record(key, arguments)
            return result
        return self._replay(key, program, arguments)

    def _record(self, key: tuple[Any, ...], arguments: tuple[Any, ...]) -> Any:
        recorder = _Recorder()
        self.stats.traces += 1
        with recording(recorder):
            if self.optimizer is None:
                result = self.fn(*arguments)
            else:
                self.optimizer.zero_grad()
                result = self.fn(*arguments)
                _check_loss(result)
                result.backward()
        if self.optimizer is not None:
            self.optimizer.step()
        result = _detached(result)
        try:
            flat_candidate = self.optimizer is not None and key not in self._not_flat
            program = _Program(recorder.events, arguments, flat_candidate)
        except _Uncompilable as reason:
            self._note(f"runs eagerly: {reason}")
            self._store(key, _EAGER)
            return result
        if flat_candidate and not program.flat:
            self._note(f"replays by calling fn again: {program.fallback_reason}")
        self._store(key, program)
        return result

    def _store(self, key: tuple[Any, ...], program: _Program | str) -> None:
        self._programs[key] = program
        self._programs.move_to_end(key)
        while len(self._programs) > self.max_traces:
            self._programs.popitem(last=False)

    def _replay(self, key: tuple[Any, ...], program: _Program, arguments: tuple[Any, ...]) -> Any:
        replayer = _Replayer(program)
        if self.optimizer is not None:
            self.optimizer.zero_grad()
        try:
            with recording(replayer):
                result = self.fn(*arguments)
                if self.optimizer is not None:
                    _check_loss(result)
                    result.backward()
        except BaseException:
            self._programs.pop(key, None)  # state unknown: record again next time
            raise
        if self.optimizer is not None:
            self.optimizer.step()
        if replayer.diverged or replayer.cursor != replayer.count:
            self._diverged(key, program)
        else:
            self.stats.replays += 1
        return _detached(result)

    def _diverged(self, key: tuple[Any, ...], program: _Program) -> None:
        self.stats.divergences += 1
        count = self._divergences[key] = self._divergences.get(key, 0) + 1
        if count > self.max_divergences:
            name = getattr(self.fn, "__qualname__", "the step")
            warnings.warn(
                f"chainrule.compile: {name} applied different ops on "
                f"{count} calls with the same argument shapes (Python "
                "control flow that depends on data?); running it eagerly from now on",
                RuntimeWarning,
                stacklevel=3,
            )
            self._store(key, _EAGER)
        else:
            self._programs.pop(key, None)  # record the new path on the next call

    def _replay_flat(
        self, key: tuple[Any, ...], program: _Program, arguments: tuple[Any, ...]
    ) -> Any:
        for index, buffer in program.argument_bindings:
            np.copyto(buffer, _array_of(arguments[index]))
        for instruction in program.flat_forward:
            instruction()
        backward_event = program.events[-1]
        assert isinstance(backward_event, _BackwardEvent)
        root = backward_event.root
        if self.verify and not program.verified:
            with grad_mode_set(enabled=False):
                eager_loss = self.fn(*arguments)
            if not _same_bits(_array_of(eager_loss), root.data):
                # Its buffers were planned for the flat form; record afresh without it.
                self._not_flat.add(key)
                self._programs.pop(key, None)
                self._note(
                    "replays by calling fn again: the traced loss differed from fn's "
                    "(fn depends on numbers other than its arguments and the parameters)"
                )
                return None
            program.verified = True
        assert self.optimizer is not None
        self.optimizer.zero_grad()
        backward_event.replay()
        result = _leaf_copy(root.data)
        self.optimizer.step()
        self.stats.replays += 1
        self.stats.flat_replays += 1
        return result


def _check_loss(loss: Any) -> None:
    if not isinstance(loss, Tensor):
        raise CompileError(
            "with optimizer=, the compiled function must return the loss as a chainrule "
            f"Tensor, not {type(loss).__name__}"
        )
    if not loss.requires_grad:
        raise CompileError(
            "the loss returned to chainrule.compile does not depend on any tensor that "
            "requires grad: are the model's parameters made with requires_grad=True?"
        )


def compile(
    fn: Callable[..., Any],
    *,
    optimizer: Any = None,
    max_traces: int = 8,
    max_divergences: int = 3,
    verify: bool = True,
) -> CompiledStep:
    """Compile an eager training step: record it once, replay it into preallocated buffers.

    Args:
        fn: without ``optimizer``, any function of arrays/Tensors that applies Tensor ops
            and calls ``backward()`` (a whole training step). It is called on every call;
            its ops are served from the recording. With ``optimizer``, a function
            returning the loss Tensor, pure in its arguments and the parameters: it is
            traced once per signature and then not called again.
        optimizer: an optimizer (``zero_grad()``, ``step()``) whose step follows
            ``backward()``. Each call then is ``zero_grad(); loss = fn(*args);
            loss.backward(); optimizer.step()`` and returns a copy of the loss.
        max_traces: how many signatures (shapes, dtypes) keep a program.
        max_divergences: calls that may leave their recording before the step is run
            eagerly for good (with a RuntimeWarning).
        verify: with ``optimizer``, check the first replay of each trace against an eager
            call of ``fn`` bit for bit (falling back to calling ``fn`` if they differ).

    Returns:
        A :class:`CompiledStep`, called like ``fn``. Its ``stats`` say what it did.
    """
    if not callable(fn):
        raise TypeError(f"chainrule.compile needs a function, not {type(fn).__name__}")
    if optimizer is not None and not (
        callable(getattr(optimizer, "step", None))
        and callable(getattr(optimizer, "zero_grad", None))
    ):
        raise TypeError(
            "optimizer= needs an object with step() and zero_grad() methods (a "
            f"chainrule.optim optimizer), not {type(optimizer).__name__}"
        )
    if max_traces < 1 or max_divergences < 0:
        raise ValueError("max_traces must be at least 1 and max_divergences at least 0")
    return CompiledStep(fn, optimizer, max_traces, max_divergences, verify)
