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
    leading, stretched = broadcast_axes(adjoint.shape, shape)
    if leading:
        adjoint = adjoint.sum(axis=leading)
    if stretched:
        adjoint = adjoint.sum(axis=stretched, keepdims=True)
    if adjoint.shape != shape:
        # A partial that is constant across the input (a 0-d adjoint) spreads over it.
        adjoint = np.broadcast_to(adjoint, shape)
    return adjoint


def broadcast_axes(
    broadcast: tuple[int, ...], shape: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The axes to sum to bring an array of shape ``broadcast`` back to ``shape``.

    First the ``leading`` axes numpy added in front (summed away), then, on what is
    left, the ``stretched`` axes where ``shape`` has 1 (summed keeping the axis).
    """
    extra = len(broadcast) - len(shape)
    leading = tuple(range(extra)) if extra > 0 else ()
    rest = broadcast[extra:] if extra > 0 else broadcast
    stretched = tuple(
        axis for axis, n in enumerate(shape) if n == 1 and axis < len(rest) and rest[axis] != 1
    )
    return leading, stretched
