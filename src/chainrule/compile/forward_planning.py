"""Forward planning: a buffer for every value the step computes, and the in-place
instructions of each op row's ``forward_into`` that refill it on replay."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._math import ARRAY
from ..tensor import Tensor
from .analysis import StepAnalysis
from .checking import _checked, _run, _same_bits
from .recording import _array_of, _OpEvent, _Uncompilable


def _has_array(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return True
    return isinstance(value, tuple) and any(isinstance(v, np.ndarray) for v in value)


class ForwardPlanner:
    """Gives each recorded op a buffer and the instructions that recompute it there.

    Forward values live in buffers of their own, except that a flat program computes an
    elementwise op into its input's buffer when nothing else reads that input (the
    matmul → +bias → activation chain of a layer shares one buffer). Inputs that are
    leaves get buffers too: parameters are read in place, the batch and constants are
    copied into buffers of their own (refilled from the arguments on a flat replay).
    """

    def __init__(
        self,
        arguments: Sequence[Any],
        bind_arguments: bool,
        in_place: bool,
        analysis: StepAnalysis,
        recorded_values_current: bool = False,
    ) -> None:
        #: The buffer standing for each tensor of the recording, by id.
        self.storage: dict[int, np.ndarray] = {}
        #: The event that computed each op output, by the output's id.
        self.produced: dict[int, _OpEvent] = {}
        self.parameters: list[tuple[Tensor, np.ndarray]] = []
        self.argument_arrays = [_array_of(a) for a in arguments]
        self.bind_arguments = bind_arguments
        # For the flat form: argument index -> buffers to refresh from it.
        self.argument_bindings: list[tuple[int, np.ndarray]] = []
        self.in_place = in_place
        self.uses = analysis.uses
        self.reads = analysis.reads
        self.forward_buffers: set[int] = set()  # buffers made for op outputs
        # Whether the values recorded in eager mode are what the rows would compute on
        # the buffers now (the parameters were not updated since).
        self.recorded_values_current = recorded_values_current
        # What eager mode computed for each op output, by the output's id (its Tensor's
        # data is pointed at the buffer once planned).
        self.eager_values: dict[int, np.ndarray] = {}

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

    def _reusable_input(self, event: _OpEvent, like: np.ndarray) -> Tensor | None:
        """An input whose buffer the op may overwrite with its result, if there is one."""
        if not self.in_place or not event.op.in_place or like.ndim == 0:
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
                    and buffer.shape == like.shape
                    and buffer.dtype == like.dtype
                ):
                    return tensor
        return None

    def plan(self, event: _OpEvent, number: int) -> None:
        """Plan the op of ``event`` (the recording's ``number``-th event)."""
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
        eager = event.out.data
        self.eager_values[id(event.out)] = eager
        self.produced[id(event.out)] = event
        output = None
        if self.recorded_values_current:
            output = self._kernel_into_buffer(event, arrays, eager)
        if output is None:
            output = self._checked_against_row(event, arrays)
        self.storage[id(event.out)] = output
        event.out.data = output

    def _kernel_into_buffer(
        self, event: _OpEvent, arrays: list[np.ndarray], eager: np.ndarray
    ) -> np.ndarray | None:
        """The common case: the row's ``forward_into`` writes a buffer, checked bit for bit
        against the value eager mode computed while recording (no second forward)."""
        kernel = event.op.forward_into
        if kernel is None:
            return None
        reused = self._reusable_input(event, eager)
        output = np.empty(eager.shape, eager.dtype) if reused is None else self.storage[id(reused)]
        instructions = kernel(arrays, event.bound_params, output)
        if not instructions:
            return None
        _run(instructions)
        if _same_bits(output, eager):
            event.run = instructions
            self.forward_buffers.add(id(output))
            return output
        if reused is not None:  # the kernel wrote over the input: give the row its value
            np.copyto(output, self.eager_values[id(reused)])
        return None

    def _checked_against_row(self, event: _OpEvent, arrays: list[np.ndarray]) -> np.ndarray:
        """The row's forward on the buffers: a view stays a view, anything else gets a
        buffer filled by the kernel if it agrees with the row there, else by the row.

        Never writes over an input: this path is for ops without a kernel (which are
        never computed in place) and kernels that declined or disagreed.
        """
        op = event.op
        params = event.bound_params
        reference = op.forward(ARRAY, *arrays, **params)
        if type(reference) is not np.ndarray:
            reference = np.asarray(reference)
        sources = [*arrays, *(buffer for _, _, buffer in event.param_arrays)]
        if any(np.may_share_memory(reference, source) for source in sources):
            # A view (transpose, reshape, basic indexing) of persistent buffers stays
            # valid as they are refilled: nothing to redo on replay.
            event.run = []
            return reference
        # A buffer of its own: the kernel (if any) declined, or disagreed with eager mode
        # and is tried once more against the row on these buffers.
        output = np.empty(reference.shape, reference.dtype)
        self.forward_buffers.add(id(output))
        event.run = _checked(
            op.forward_into,
            (arrays, params, output),
            output,
            reference,
            lambda: np.copyto(output, op.forward(ARRAY, *arrays, **params)),
        )
        return output
