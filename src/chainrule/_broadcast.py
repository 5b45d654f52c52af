"""The one place broadcasting is undone, and the one way an adjoint is summed back."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

#: Summing the leading axes of an array whose trailing part has between
#: ``NARROW_COLUMNS[0]`` and ``NARROW_COLUMNS[1]`` entries, over at least ``NARROW_ROWS``
#: rows, goes through a transposed copy (see :func:`leading_sum_steps`). Measured by
#: benchmarks/bench_narrow.py: below 64 rows numpy's own reduce is as fast, and past 16
#: columns its row-by-row loop wins over the copy.
NARROW_ROWS = 64
NARROW_COLUMNS = (2, 16)

#: A numpy call with its arguments bound: one step of a summation.
SumStep = Callable[[], Any]


def sums_through_transpose(rows: int, columns: int) -> bool:
    """Whether summing the ``rows`` of a (rows, columns) array transposes it first.

    numpy's ``np.add.reduce(a, axis=0)`` runs its inner loop along the last axis: for a
    narrow array (a bias gradient of 2 units over 891 examples) that loop is 2 long and
    the sum costs 10x a copy. A transposed copy makes each column contiguous, and numpy
    then sums it pairwise (faster, and more accurate than the row-by-row sum).
    """
    return rows >= NARROW_ROWS and NARROW_COLUMNS[0] <= columns <= NARROW_COLUMNS[1]


def leading_sum_steps(
    array: np.ndarray,
    count: int,
    out: np.ndarray,
    make_scratch: Callable[[tuple[int, int], np.dtype[Any]], np.ndarray] = np.empty,
) -> list[SumStep]:
    """The numpy calls that write the sum of ``array`` over its first ``count`` axes
    into ``out`` (shaped like those axes dropped, or kept as 1s; C-contiguous).

    The one definition of this sum: eager backward runs these steps at once
    (:func:`sum_leading`), the compiled backward keeps them in its program, so both give
    the same bits. The strategy depends only on the shape (:func:`sums_through_transpose`);
    when it transposes, ``make_scratch((columns, rows), dtype)`` gives the C-contiguous
    buffer the transposed copy goes to (a planner passes its pool's).

    Args:
        array: the adjoint to sum.
        count: how many leading axes to sum away.
        out: where the sum goes (its size is that of ``array.shape[count:]``).
        make_scratch: makes the buffer for the transposed copy, if the strategy needs one.
    """
    if not out.flags.c_contiguous:  # its reshapes below must be views of it
        raise ValueError(f"leading_sum_steps writes into a C-contiguous out, not {out.strides}")
    rows = math.prod(array.shape[:count])
    columns = math.prod(array.shape[count:])
    if not sums_through_transpose(rows, columns):
        summed = out.reshape(array.shape[count:])
        return [functools.partial(np.add.reduce, array, tuple(range(count)), None, summed)]
    scratch = make_scratch((columns, rows), array.dtype)
    # Views only (a reshape of ``array`` might copy it, and a compiled program would
    # then read that stale copy): the summed axes moved last, into scratch seen alike.
    ndim = array.ndim
    moved = array.transpose((*range(count, ndim), *range(count)))
    return [
        functools.partial(np.copyto, scratch.reshape(moved.shape), moved),
        functools.partial(np.add.reduce, scratch, 1, None, out.reshape(columns)),
    ]


def sum_leading(array: np.ndarray, count: int, keepdims: bool = False) -> np.ndarray:
    """``array`` summed over its first ``count`` axes, by :func:`leading_sum_steps`.

    Args:
        array: the array to sum.
        count: how many leading axes to sum away.
        keepdims: keep the summed axes as axes of length 1.
    """
    kept = array.shape[count:]
    shape = (1,) * count + kept if keepdims else kept
    out = np.empty(shape, array.dtype)
    for step in leading_sum_steps(array, count, out):
        step()
    return out


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
        adjoint = sum_leading(adjoint, len(leading))
    if stretched:
        prefix = stretched_prefix(stretched)
        if prefix:  # a (1, k) row broadcast down the rows: the same sum, axes kept
            adjoint = sum_leading(adjoint, prefix, keepdims=True)
        else:
            adjoint = adjoint.sum(axis=stretched, keepdims=True)
    if adjoint.shape != shape:
        # A partial that is constant across the input (a 0-d adjoint) spreads over it.
        adjoint = np.broadcast_to(adjoint, shape)
    return adjoint


def stretched_prefix(stretched: tuple[int, ...]) -> int:
    """How many leading axes ``stretched`` is, if it is exactly the first few; else 0."""
    return len(stretched) if stretched == tuple(range(len(stretched))) else 0


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
