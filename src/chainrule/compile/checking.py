"""Checking a kernel against its op row: every planned instruction list is run once and
kept only if it reproduces, bit for bit, what the row computes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..ops import Instruction

# Unsigned integers by item size: an array viewed as these compares bit for bit.
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
# Below this many elements copying both to bytes is cheaper than one comparison ufunc.
_SMALL = 2048


def _same_bits(a: Any, b: Any) -> bool:
    """Whether two results are identical: shape, dtype and every bit (NaNs alike)."""
    if type(a) is not np.ndarray:
        a = np.asarray(a)
    if type(b) is not np.ndarray:
        b = np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    unsigned = _UNSIGNED.get(a.dtype.itemsize)
    if a.size < _SMALL or unsigned is None or a.dtype.hasobject:
        return a.tobytes() == b.tobytes()
    # Large results (a layer's activations, a weight gradient): compared in place, as
    # unsigned integers of the same width, rather than copied twice into bytes.
    return bool(np.array_equal(a.view(unsigned), b.view(unsigned)))


def _run(instructions: Sequence[Instruction]) -> None:
    for instruction in instructions:
        instruction()


def _checked(
    kernel: Any,
    arguments: tuple[Any, ...],
    output: np.ndarray,
    reference: np.ndarray,
    fallback: Instruction,
) -> list[Instruction]:
    """The kernel's instructions if they reproduce ``reference`` bit for bit, else the row.

    Args:
        kernel: a row's ``forward_into`` or a partial's ``into`` (None: there is none).
        arguments: what the kernel is called with; it writes into ``output``.
        output: the buffer the instructions fill.
        reference: what the row computed, to compare ``output`` with.
        fallback: one instruction that fills ``output`` by calling the row itself.
    """
    if kernel is not None:
        instructions: list[Instruction] = kernel(*arguments)
        if instructions:
            _run(instructions)
            if _same_bits(output, reference):
                return instructions
    fallback()
    return [fallback]
