"""Planning: turning a recording into buffers and in-place numpy instructions.

The work is split by job: :mod:`~chainrule.compile.analysis` walks the recording once
(what a flat trace would freeze, how often each value is used, what backward reads);
:mod:`~chainrule.compile.forward_planning` gives forward ops a buffer each and the
instructions of their row's ``forward_into``; :mod:`~chainrule.compile.backward_planning`
plans ``backward()`` by walking the recorded graph (the walk of :mod:`chainrule.graph`)
with each partial's ``into``, its buffers pooled by :mod:`~chainrule.compile.buffers`.
Every instruction list is run once while planning and compared bit for bit with what
eager mode computed (:mod:`~chainrule.compile.checking`); a kernel that disagrees is
replaced by a call of the row itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..ops import Instruction
from .analysis import analyse
from .backward_planning import BackwardPlanner
from .forward_planning import ForwardPlanner
from .recording import Event, _BackwardEvent, _OpEvent


class _Program:
    """A recorded step: its events with instructions, ready to replay."""

    def __init__(
        self,
        events: list[Event],
        arguments: Sequence[Any],
        flat_candidate: bool,
        recorded_values_current: bool = False,
    ) -> None:
        """Plan ``events``, the recording of a step called with ``arguments``.

        Args:
            events: the recording.
            arguments: the step's arguments (their arrays are bound, not frozen).
            flat_candidate: plan for the flat replay (``optimizer=``) if it allows.
            recorded_values_current: the parameters still hold what the recorded ops
                read, so kernels are checked against the recorded values (else against
                the rows run again on the buffers).
        """
        backward_events = sum(type(event) is _BackwardEvent for event in events)
        ends_in_backward = backward_events == 1 and type(events[-1]) is _BackwardEvent
        analysis = analyse(events, arguments)
        frozen = analysis.frozen
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
        forward = ForwardPlanner(
            arguments, flat_candidate, self.flat, analysis, recorded_values_current
        )
        backward = BackwardPlanner(forward)
        for number, event in enumerate(events):
            if type(event) is _OpEvent:
                forward.plan(event, number)
            else:
                backward.plan(event)  # type: ignore[arg-type]
        self.events = events
        self.parameters = forward.parameters
        self.argument_bindings = forward.argument_bindings
        self.flat_forward: list[Instruction] = [
            instruction for event in events if type(event) is _OpEvent for instruction in event.run
        ]
        self.verified = False

    def parameters_in_place(self) -> bool:
        """Whether every parameter still holds the array the program was built on."""
        for tensor, array in self.parameters:  # noqa: SIM110 (a loop beats all() here)
            if tensor.data is not array:
                return False
        return True
