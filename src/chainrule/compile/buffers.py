"""Backward buffers: adjoints and temporaries, reference-counted while a program is
planned, so that a buffer whose last reader has been planned is reused by later ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ops import Scratch


@dataclass
class _Adjoint:
    """An adjoint during planning: its array, and whether the plan may write into it."""

    array: np.ndarray
    owned: bool


def _layout_key(shape: tuple[int, ...], dtype: np.dtype, fortran: bool) -> tuple[Any, ...]:
    return (shape, dtype.str, fortran)


def _is_fortran(array: np.ndarray) -> bool:
    flags = array.flags
    return array.ndim > 1 and flags.f_contiguous and not flags.c_contiguous


class BackwardBuffers:
    """The pool of backward buffers of one program being planned.

    A buffer made by :meth:`new` has a holder count: :meth:`hold` adds a reader (an
    adjoint or a view of it), :meth:`release` drops one, and at zero the buffer goes
    back to the pool for a later :meth:`new` of the same shape, dtype and layout.
    """

    def __init__(self) -> None:
        self.private: dict[int, np.ndarray] = {}  # every buffer made here, by id
        self.holders: dict[int, int] = {}
        self.pool: dict[tuple[Any, ...], list[np.ndarray]] = {}

    def new(self, like: np.ndarray, dtype: Any = None) -> np.ndarray:
        """A buffer shaped (and laid out) like ``like``, from the pool if one is free."""
        kind = like.dtype if dtype is None else np.dtype(dtype)
        fortran = _is_fortran(like)
        free = self.pool.get(_layout_key(like.shape, kind, fortran))
        if free:
            buffer = free.pop()
        else:
            buffer = np.empty(like.shape, kind, order="F" if fortran else "C")
            self.private[id(buffer)] = buffer
        self.holders[id(buffer)] = 0
        return buffer

    def new_shaped(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A C-ordered buffer of ``shape`` and ``dtype``, from the pool if one is free."""
        free = self.pool.get(_layout_key(shape, dtype, False))
        if free:
            buffer = free.pop()
        else:
            buffer = np.empty(shape, dtype)
            self.private[id(buffer)] = buffer
        self.holders[id(buffer)] = 0
        return buffer

    def _base(self, array: np.ndarray) -> int | None:
        if id(array) in self.private:
            return id(array)
        base = array.base
        return id(base) if base is not None and id(base) in self.private else None

    def hold(self, adjoint: _Adjoint) -> _Adjoint:
        """Count ``adjoint`` as a reader of its buffer (if the pool made it)."""
        base = self._base(adjoint.array)
        if base is not None:
            self.holders[base] += 1
        return adjoint

    def release(self, array: np.ndarray) -> None:
        """One reader of ``array``'s buffer is done; the last one frees it."""
        base = self._base(array)
        if base is None:
            return
        self.holders[base] -= 1
        if self.holders[base] == 0:
            self.recycle(self.private[base])

    def recycle(self, buffer: np.ndarray) -> None:
        """Put ``buffer`` back in the pool at once (a temporary whose reader is planned)."""
        key = _layout_key(buffer.shape, buffer.dtype, _is_fortran(buffer))
        self.pool.setdefault(key, []).append(buffer)

    def expose(self, array: np.ndarray) -> None:
        """The array is handed to the user (a grad): its buffer is never reused."""
        base = self._base(array)
        if base is not None:
            self.holders[base] += 1 << 40

    def temporaries(self) -> tuple[Scratch, list[np.ndarray]]:
        """A ``scratch`` for a partial's ``into``, and the list of buffers it made."""
        made: list[np.ndarray] = []

        def scratch(like: np.ndarray, dtype: Any = None) -> np.ndarray:
            buffer = self.new(like, dtype)
            made.append(buffer)
            return buffer

        return scratch, made
