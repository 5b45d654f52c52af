"""The one place broadcasting is undone."""

from __future__ import annotations

from typing import Any

import numpy as np


def unbroadcast(adjoint: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``adjoint`` over the axes numpy broadcast an input of ``shape`` along.

    If ``a`` of shape (3, 1) was broadcast to (2, 3, 4) by an op, the adjoint for
    ``a`` is the op's adjoint summed over the leading axis and over the last one.
    """
    adjoint = np.asarray(adjoint)
    if adjoint.shape == shape:
        return adjoint
    extra = adjoint.ndim - len(shape)
    if extra > 0:
        adjoint = adjoint.sum(axis=tuple(range(extra)))
    stretched = tuple(axis for axis, n in enumerate(shape) if n == 1 and adjoint.shape[axis] != 1)
    if stretched:
        adjoint = adjoint.sum(axis=stretched, keepdims=True)
    if adjoint.shape != shape:
        # A partial that is constant across the input (a 0-d adjoint) spreads over it.
        adjoint = np.broadcast_to(adjoint, shape)
    return adjoint
