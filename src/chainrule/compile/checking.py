"""Checking a kernel against its op row: every planned instruction list is run once and
kept only if it reproduces, bit for bit, what the row computes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..ops import Instruction


def _same_bits(a: Any, b: Any) -> bool:
    """Whether two results are identical: shape, dtype and every bit (NaNs alike)."""
    if type(a) is not np.ndarray:
        a = np.asarray(a)
    if type(b) is not np.ndarray:
        b = np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


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
