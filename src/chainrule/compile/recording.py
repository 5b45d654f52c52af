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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ChainruleError
from ..graph import Node, grad_mode, recording, stop_recording, topological_order, walk_backward
from ..graph import backward as _eager_backward
from ..ops import Instruction, Op
from ..tensor import Tensor


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
        if not isinstance(root, Tensor):  # a Value graph: never recorded, runs eagerly
            with recording(None):
                _eager_backward(root, seed, retain_all)
            return
        event = _BackwardEvent(root, np.array(seed, copy=True), retain_all)
        event.order = topological_order(root)
        with recording(None):
            walk_backward(root, seed, retain_all, order=event.order)
        self.events.append(event)


def _array_of(argument: Any) -> Any:
    return argument.data if isinstance(argument, Tensor) else argument


class _Replayer:
    """Serves the ops and backward() calls of a running step from a program's events."""

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.count = len(events)
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
        for tensor, expected, buffer in zip(inputs, recorded, event.free_slots):
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
