"""The compiled add and subtract of a narrow row broadcast down a batch: pairs of numbers
seen as complex ones, bit for bit what the op rows compute."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from chainrule import ops
from chainrule._math import ARRAY

DTYPES = (np.float32, np.float64)
ROWS = (ops.ADD, ops.SUB)
#: (full, row): the row is broadcast on the leading axes of the full-shaped input.
PAIRED_SHAPES = [
    ((891, 2), (2,)),
    ((891, 2), (1, 2)),
    ((3, 5, 2), (2,)),
    ((3, 5, 2), (5, 2)),
    ((1, 2), (2,)),
    ((0, 2), (2,)),
    ((1, 1, 2), (1, 2)),
]


def _numbers(shape: tuple[int, ...], dtype: Any, rng: np.random.Generator) -> np.ndarray:
    """Random numbers with NaN, infinities and zeros of both signs among them."""
    array = rng.normal(size=shape).astype(dtype)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], dtype)
    flat = array.reshape(-1)
    flat[: min(flat.size, special.size)] = special[: flat.size]
    return array


def _kernel(op: ops.Op, ins: list[np.ndarray], out: np.ndarray) -> Any:
    assert op.forward_into is not None
    (instruction,) = op.forward_into(ins, {}, out)
    instruction()
    return instruction


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ROWS, ids=lambda op: op.name)
@pytest.mark.parametrize("row_first", [False, True])
@pytest.mark.parametrize(("full", "row"), PAIRED_SHAPES)
def test_narrow_row_kernel_is_bit_identical_to_the_row(
    full: tuple[int, ...], row: tuple[int, ...], row_first: bool, op: ops.Op, dtype: Any
) -> None:
    """A row of 2 broadcast on leading axes is added as complex pairs, to the row's bits."""
    rng = np.random.default_rng(0)
    ins = [_numbers(full, dtype, rng), _numbers(row, dtype, rng)[::-1].copy()]
    if row_first:
        ins.reverse()
    with np.errstate(invalid="ignore"):  # inf - inf among the numbers
        reference = np.asarray(op.forward(ARRAY, *ins))
        out = np.full(reference.shape, 7, dtype)
        instruction = _kernel(op, ins, out)
    assert instruction.keywords["out"].dtype.kind == "c"  # the paired path was taken
    assert out.tobytes() == reference.tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_narrow_row_kernel_may_write_over_its_input(dtype: Any) -> None:
    """Written into the full-shaped input itself (an in-place forward), the bits stay."""
    rng = np.random.default_rng(1)
    full, row = _numbers((300, 2), dtype, rng), _numbers((2,), dtype, rng)
    with np.errstate(invalid="ignore"):
        reference = full + row
        _kernel(ops.ADD, [full, row], full)
    assert full.tobytes() == reference.tobytes()


@pytest.mark.parametrize(
    ("shapes", "out_shape"),
    [
        (((891, 3), (3,)), (891, 3)),  # not pairs
        (((891, 2), (891, 2)), (891, 2)),  # nothing broadcast
        (((891, 1), (2,)), (891, 2)),  # a column stretched along the pairs
        (((891, 2), ()), (891, 2)),  # a 0-d number
        (((), ()), ()),
    ],
)
def test_other_shapes_keep_numpy_add(
    shapes: tuple[tuple[int, ...], ...], out_shape: tuple[int, ...]
) -> None:
    """Where pairs do not line up the kernel is the plain ufunc call, to the row's bits."""
    rng = np.random.default_rng(2)
    ins = [rng.normal(size=shape) for shape in shapes]
    out = np.empty(out_shape)
    instruction = _kernel(ops.ADD, ins, out)
    assert instruction.keywords["out"] is out
    assert out.tobytes() == np.asarray(ops.ADD.forward(ARRAY, *ins)).tobytes()


def test_narrow_row_kernel_declines_mixed_dtypes_and_strided_pairs() -> None:
    """Mixed dtypes and pairs that are not contiguous go to numpy's own add."""
    rng = np.random.default_rng(3)
    full = rng.normal(size=(100, 2)).astype(np.float32)
    out = np.empty((100, 2), np.float32)
    assert _kernel(ops.ADD, [full, rng.normal(size=2)], out).keywords["out"] is out
    strided = rng.normal(size=(2, 100)).astype(np.float32).T
    row = rng.normal(size=2).astype(np.float32)
    assert _kernel(ops.ADD, [strided, row], out).keywords["out"] is out
    assert out.tobytes() == (strided + row).tobytes()
