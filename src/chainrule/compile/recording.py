"""Recording a step and serving its replay: the events, the recorder, the replayer.

While a step is recorded, :class:`_Recorder` is the grad mode's recorder (see
:func:`chainrule.graph.recording`): every Tensor op and ``backward()`` runs eagerly
and is logged as an event. While it replays, :class:`_Replayer` serves the same ops
from the planned events (see :mod:`chainrule.compile.planning`), checking each one
against the recording and handing the rest of the call back to eager mode if the
step takes another path.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ChainruleError
from ..graph import (
    Node,
    chain_rule,
    grad_mode,
    recording,
    stop_recording,
    topological_order,
    walk_backward,
)
from ..graph import backward as _eager_backward
from ..ops import Instruction, Op
from ..tensor import Tensor, _constant
from .straightline import Program, positional


class CompileError(ChainruleError, RuntimeError):
    """A step cannot be compiled as asked, or its replay disagreed with eager mode."""


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
    # The same buffers by input position (None where the recorded tensor must recur):
    # the replay checks every op's inputs on each call, so this is built once.
    free_slots: tuple[np.ndarray | None, ...] = ()
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
    # The root's topological order, computed once for the eager walk and the planner's.
    order: list[Node] = field(default_factory=list)
    # Each interior node's contributions to its parents (by the node's id) as the eager
    # walk computed them, when the recorder keeps them: the planner checks its kernels
    # against these instead of running the rows again, then drops them.
    contributions: dict[int, list[Any]] = field(default_factory=dict)
    # ``run`` as a Program (a generated function once it has run often), made on the
    # first replay.
    program: Program | None = None

    def replay(self) -> None:
        """Run the backward program and hand out gradients as eager backward would."""
        leaves = self.leaves
        for leaf, grad in leaves:
            if leaf.grad is grad:  # an earlier call's gradient, never zeroed: keep it
                leaf.grad = grad.copy()
        program = self.program
        if program is None:
            program = self.program = Program(self.run)
        program()
        for leaf, grad in leaves:
            previous = leaf.grad
            leaf.grad = grad if previous is None else previous + grad
        for node, adjoint in self.retained:
            node.grad = adjoint


Event = _OpEvent | _BackwardEvent


class _Recorder:
    """Runs ops eagerly while it is the grad mode's recorder, and logs them."""

    def __init__(self, keep_contributions: bool = False) -> None:
        self.events: list[Event] = []
        self.keep_contributions = keep_contributions

    def apply(self, op: Op, inputs: tuple[Tensor, ...], params: dict[str, Any]) -> Tensor:
        with recording(None):
            out = Tensor._apply(op, inputs, params)
        self.events.append(_OpEvent(op, inputs, params, out, grad_mode().enabled))
        return out

    def apply_number(self, op: Op, tensor: Tensor, number: float, reflected: bool) -> None:
        return None  # the number becomes a constant Tensor, recorded as a free input

    def backward(self, root: Node, seed: Any, retain_all: bool) -> None:
        if not isinstance(root, Tensor):  # a Value graph: never recorded, runs eagerly
            with recording(None):
                _eager_backward(root, seed, retain_all)
            return
        event = _BackwardEvent(root, np.array(seed, copy=True), retain_all)
        event.order = topological_order(root)
        with recording(None):
            if self.keep_contributions:
                kept = event.contributions

                def chain(node: Node, adjoint: Any) -> list[Any]:
                    contributions = kept[id(node)] = chain_rule(node, adjoint)
                    return contributions

                walk_backward(root, seed, retain_all, order=event.order, chain=chain)
            else:
                walk_backward(root, seed, retain_all, order=event.order)
        self.events.append(event)


def _array_of(argument: Any) -> Any:
    return argument.data if isinstance(argument, Tensor) else argument


def _identical(inputs: tuple[Tensor, ...], recorded: tuple[Tensor, ...]) -> bool:
    return len(inputs) == len(recorded) and all(map(operator.is_, inputs, recorded))


# Whether two tuples of tensors hold the same tensors. Tuples compare items by identity
# first and then by __eq__, which Tensor leaves to object (identity): == is then this
# check in one C call. Should Tensor ever compare by value, the loop takes over.
_same_tensors = operator.eq if Tensor.__eq__ is object.__eq__ else _identical


def _fits(tensor: Tensor, buffer: np.ndarray) -> bool:
    """Whether ``tensor`` may stand for a free input recorded into ``buffer``: a leaf
    not requiring grad, of the recorded shape and dtype."""
    data = tensor.data
    return (
        tensor.op is None
        and not tensor.requires_grad
        and data.shape == buffer.shape
        and data.dtype == buffer.dtype
    )


def _refill(
    inputs: tuple[Tensor, ...],
    recorded: tuple[Tensor, ...],
    slots: tuple[np.ndarray | None, ...],
    out: Tensor,
) -> bool:
    """Whether ``inputs`` fit an event with free inputs; if so, copy their data in.

    Recorded tensors must recur; a free input (the batch, a constant) may be a new
    leaf each call, of the recorded shape and dtype, not requiring grad.
    """
    if len(inputs) != len(recorded):
        return False
    for tensor, expected, buffer in zip(inputs, recorded, slots):
        if buffer is None:
            if tensor is not expected:
                return False
        elif not _fits(tensor, buffer):
            return False
    for tensor, buffer in zip(inputs, slots):
        if buffer is not None:
            np.copyto(buffer, tensor.data)
    if out.op is not None:
        out.parents = inputs  # keep the graph true for an eager fallback
    return True


def _number_leaf(event: Event) -> Tensor | None:
    """For a binary op with a free 0-d input (a number's constant, or a 0-d batch) and
    no params: a leaf Tensor whose data is that input's buffer, else None."""
    if not isinstance(event, _OpEvent) or len(event.inputs) != 2 or event.params:
        return None
    for position in (1, 0):
        buffer = event.free_slots[position] if event.free else None
        if buffer is not None and buffer.ndim == 0:
            return _constant(buffer)
    return None


def _one_call(run: Sequence[Instruction]) -> Instruction | None:
    """The event's instructions as one callable (None when there are none)."""
    if not run:
        return None
    if len(run) == 1:
        return positional(run[0])
    return Program(run)


class _Replayer:
    """Serves the ops and backward() calls of a running step from a program's events.

    Made once per program and reset before each call (:meth:`start`). Every op event
    is condensed into one tuple up front, so serving an op is one comparison of op
    and inputs (identity, the inputs as one tuple unless some are refilled), one
    check of params (identity first) and one call of its instructions.
    """

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.count = len(events)
        self.rows: list[tuple[Any, ...]] = [self._row(event) for event in events]
        # For a binary op whose operand was a Python number, by event: a leaf standing
        # for the number in the served graph (its data is the buffer the number goes to).
        self.numbers: list[Tensor | None] = [_number_leaf(event) for event in events]
        self.cursor = 0
        self.diverged = False
        # The block a call of the step runs in (one per replayer: it keeps its mode).
        self.block = recording(self)

    @staticmethod
    def _row(event: Event) -> tuple[Any, ...]:
        if isinstance(event, _BackwardEvent):  # never matches an op: None is no op
            return (None, (), None, None, None, None, None, event)
        slots = event.free_slots if event.free else None
        return (
            event.op,
            event.inputs,
            event.params,
            event.grad_enabled,
            _one_call(event.run),
            event.out,
            slots,
            event,
        )

    def start(self) -> None:
        """Serve from the first event again (a new call of the step)."""
        self.cursor = 0
        self.diverged = False

    def _leave(self) -> None:
        """Stop serving: the rest of this call runs eagerly."""
        self.diverged = True
        stop_recording()

    def apply(self, op: Op, inputs: tuple[Tensor, ...], params: dict[str, Any]) -> Tensor:
        cursor = self.cursor
        if cursor < self.count:
            (recorded_op, recorded, recorded_params, enabled, run, out, slots, event) = self.rows[
                cursor
            ]
            if (
                recorded_op is op
                and enabled is grad_mode().enabled
                and (
                    _same_tensors(inputs, recorded)
                    if slots is None
                    else _refill(inputs, recorded, slots, out)
                )
                and (params is recorded_params or self._same_params(event, params))
            ):
                if run is not None:
                    run()
                self.cursor = cursor + 1
                return out
        self._leave()
        return Tensor._apply(op, inputs, params)

    def apply_number(self, op: Op, tensor: Tensor, number: float, reflected: bool) -> Tensor | None:
        cursor = self.cursor
        if cursor >= self.count:
            return None
        constant = self.numbers[cursor]
        if constant is None:
            return None
        recorded_op, recorded, _, enabled, run, out, slots, _ = self.rows[cursor]
        at = 1 if reflected else 0  # the tensor's position; the number takes the other
        buffer = slots[at]
        if not (
            recorded_op is op
            and slots[1 - at] is constant.data
            and enabled is grad_mode().enabled
            and (recorded[at] is tensor if buffer is None else _fits(tensor, buffer))
            and constant.data.dtype == tensor.data.dtype  # the dtype the Tensor would get
        ):
            return None  # the general path decides (and leaves if the step diverged)
        if buffer is not None:
            np.copyto(buffer, tensor.data)
        # The same conversion as np.asarray(number, dtype), bit for bit.
        constant.data[()] = number
        if out.op is not None:  # keep the graph true for an eager fallback
            out.parents = (constant, tensor) if reflected else (tensor, constant)
        if run is not None:
            run()
        self.cursor = cursor + 1
        return out

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
                and (seed.shape if type(seed) is np.ndarray else np.shape(seed))
                == event.seed_buffer.shape
            ):
                np.copyto(event.seed_buffer, seed)
                event.replay()
                self.cursor = cursor + 1
                return
        self._leave()
        _eager_backward(root, seed, retain_all)
