"""Before planning: what a recording freezes, how often each value is used, and which
values backward reads (the liveness facts the planner's buffer sharing rests on)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..graph import topological_order
from .recording import Event, _array_of, _BackwardEvent, _OpEvent


@dataclass
class StepAnalysis:
    """What the planner needs to know about a whole recording before planning it.

    Attributes:
        frozen: arrays a flat trace would freeze (inputs that are neither arguments,
            parameters nor scalars), described for the fallback note.
        uses: how often each tensor (by id) is an op input.
        reads: the tensors (by id) whose values backward, or the caller, reads.
    """

    frozen: list[str]
    uses: dict[int, int]
    reads: set[int]


def analyse(events: list[Event], arguments: Sequence[Any]) -> StepAnalysis:
    """Walk the recording once for the facts of :class:`StepAnalysis`.

    Each backward event's topological order (``order``, kept on the event by the
    recorder's eager walk) is reused here and by the planner's walk.

    Args:
        events: the recording, in the order the step applied its ops.
        arguments: the step's arguments (their arrays are bound, not frozen).
    """
    argument_ids = {id(array) for array in map(_array_of, arguments)}
    produced = {id(e.out) for e in events if type(e) is _OpEvent}
    frozen: list[str] = []
    uses: dict[int, int] = {}
    seen: set[int] = set()
    for number, event in enumerate(events):
        if type(event) is not _OpEvent:
            continue
        for tensor in event.inputs:
            key = id(tensor)
            uses[key] = uses.get(key, 0) + 1
            if key in produced or key in seen or tensor.requires_grad:
                continue
            seen.add(key)
            data = tensor.data
            if tensor.op is None and data.size > 1 and id(data) not in argument_ids:
                frozen.append(f"op {number} ({event.op.name}): an array of shape {data.shape}")
        for value in event.params.values():
            for part in value if isinstance(value, tuple) else (value,):
                if isinstance(part, np.ndarray) and part.size > 1 and id(part) not in argument_ids:
                    frozen.append(
                        f"op {number} ({event.op.name}): an index array of shape {part.shape}"
                    )
    reads: set[int] = set()
    for event in events:
        if type(event) is not _BackwardEvent:
            continue
        reads.add(id(event.root))  # its value is handed back
        if not event.order:  # the recorder keeps the order its eager walk used
            event.order = topological_order(event.root)
        for node in event.order:
            op = node.op
            if op is None:
                continue
            parents = node.parents
            for index, parent in enumerate(parents):
                if parent._needs_grad():
                    for read in op.reads(index):
                        reads.add(id(parents[read]) if type(read) is int else id(node))
    return StepAnalysis(frozen, uses, reads)
