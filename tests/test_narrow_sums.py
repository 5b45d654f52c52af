"""Summing an adjoint back to its input's shape: one definition (chainrule._broadcast)
for eager and compiled backward, transposing narrow arrays so numpy sums them pairwise."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import chainrule as cr
from chainrule import ops
from chainrule._broadcast import leading_sum_steps, sum_leading, sums_through_transpose, unbroadcast
from chainrule._math import ARRAY

DTYPES = (np.float32, np.float64)
#: (rows, columns): narrow ones take the transposed path, the others numpy's reduce.
SHAPES = [(891, 2), (891, 1), (16, 64), (128, 256), (128, 10), (64, 16), (63, 2), (0, 2)]


def _pairwise(array: np.ndarray) -> np.ndarray:
    """The rows of a 2-D array summed as numpy sums each contiguous column: pairwise."""
    return np.add.reduce(np.ascontiguousarray(array.T), axis=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_sum_leading_matches_numpy_sum(shape: tuple[int, int], dtype: Any) -> None:
    """The sum over the rows equals numpy's to rounding, for narrow and wide shapes."""
    array = np.random.default_rng(0).normal(size=shape).astype(dtype)
    got = sum_leading(array, 1)
    assert got.shape == (shape[1],) and got.dtype == dtype
    exact = array.astype(np.float64).sum(axis=0)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, exact, rtol=tolerance, atol=tolerance * np.sqrt(shape[0]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_leading_sums_narrow_columns_pairwise(dtype: Any) -> None:
    """A narrow (891, 2) adjoint is summed through a transposed copy, pairwise: not with
    numpy's row-by-row reduce, whose bits differ on these numbers."""
    array = np.random.default_rng(1).normal(size=(891, 2)).astype(dtype) * 1e3
    assert sums_through_transpose(891, 2)
    assert len(leading_sum_steps(array, 1, np.empty(2, dtype))) == 2
    got = sum_leading(array, 1)
    assert got.tobytes() == _pairwise(array).tobytes()
    assert got.tobytes() != np.add.reduce(array, axis=0).tobytes()


@pytest.mark.parametrize("shape", [(16, 64), (128, 256), (891, 1), (63, 2)])
def test_sum_leading_keeps_numpy_reduce_where_it_is_faster(shape: tuple[int, int]) -> None:
    """Short or wide arrays are summed by numpy's own reduce, to its bits."""
    array = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    assert not sums_through_transpose(*shape)
    assert sum_leading(array, 1).tobytes() == np.add.reduce(array, axis=0).tobytes()


def test_sum_leading_over_several_axes_and_kept_axes() -> None:
    """Several leading axes are summed as one, and kept as 1s when asked."""
    array = np.random.default_rng(3).normal(size=(4, 50, 3))
    np.testing.assert_allclose(sum_leading(array, 2), array.sum(axis=(0, 1)), rtol=1e-12)
    kept = sum_leading(array, 2, keepdims=True)
    assert kept.shape == (1, 1, 3)
    assert kept.tobytes() == _pairwise(array.reshape(200, 3)).tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_leading_propagates_nan_and_inf(dtype: Any) -> None:
    """NaN and infinities reach the sum of their column as numpy's sum takes them."""
    array = np.ones((300, 3), dtype)
    array[5, 0] = np.nan
    array[7, 1] = np.inf
    array[[9, 11], 2] = [np.inf, -np.inf]
    with np.errstate(invalid="ignore"):  # inf - inf, as numpy's own sum warns of it
        got = sum_leading(array, 1)
        expected = array.sum(axis=0)
    assert np.isnan(got[0]) and got[1] == np.inf and np.isnan(got[2])
    np.testing.assert_array_equal(got, expected)


def test_sum_leading_is_the_same_at_every_alignment_and_thread_count() -> None:
    """The bits do not depend on where the array sits in memory or on BLAS threads."""
    rng = np.random.default_rng(4)
    for dtype in DTYPES:
        array = rng.normal(size=(5000, 3)).astype(dtype)
        reference = sum_leading(array, 1).tobytes()
        for threads in (1, 2):
            with threadpool_limits(threads):
                for offset in range(4):
                    storage = np.empty(array.size + 4, dtype)
                    view = storage[offset : offset + array.size].reshape(array.shape)
                    view[...] = array
                    assert sum_leading(view, 1).tobytes() == reference
                    transposed = np.asfortranarray(array)
                    assert sum_leading(transposed, 1).tobytes() == reference


@pytest.mark.parametrize(
    ("shape", "target"), [((891, 2), (2,)), ((891, 2), (1, 2)), ((3, 300, 4), (300, 1))]
)
def test_unbroadcast_sums_narrow_adjoints_pairwise(
    shape: tuple[int, ...], target: tuple[int, ...]
) -> None:
    """Undoing broadcasting of a narrow row vector (leading axis or a kept 1) is that sum."""
    adjoint = np.random.default_rng(5).normal(size=shape).astype(np.float32)
    got = unbroadcast(adjoint, target)
    assert got.shape == target
    exact = adjoint.astype(np.float64)
    if len(shape) == 2:
        assert got.reshape(-1).tobytes() == _pairwise(adjoint).tobytes()
        exact = exact.sum(axis=0)
    else:
        exact = exact.sum(axis=(0, 2))
    np.testing.assert_allclose(got.reshape(-1), exact, rtol=1e-4, atol=1e-3)


def _bias_step(params: list[cr.Tensor], bias_shape: tuple[int, ...]) -> Any:
    weight, bias = params

    def step(x: Any, y: Any) -> cr.Tensor:
        for p in params:
            p.grad = None
        d = (cr.tensor(x) @ weight + bias.reshape(bias_shape)).tanh() - y
        loss = (d * d).mean()
        loss.backward()
        for p in params:
            p.data -= 0.1 * p.grad
        return loss

    return step


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("rows", "units"), [(891, 2), (891, 1), (16, 64), (128, 10), (128, 256)])
@pytest.mark.parametrize("bias_shape", ["row", "kept"])
def test_compiled_bias_gradient_is_bit_identical_to_eager(
    rows: int, units: int, bias_shape: str, dtype: Any
) -> None:
    """A bias broadcast down a batch gets the same gradient bits compiled as eager."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(rows, 3)).astype(dtype)
    y = rng.normal(size=(rows, units)).astype(dtype)
    start = [rng.normal(size=(3, units)).astype(dtype), rng.normal(size=(units,)).astype(dtype)]
    shape = (units,) if bias_shape == "row" else (1, units)
    eager_params = [cr.tensor(a.copy(), requires_grad=True) for a in start]
    params = [cr.tensor(a.copy(), requires_grad=True) for a in start]
    eager = _bias_step(eager_params, shape)
    compiled = cr.compile(_bias_step(params, shape))
    for _ in range(3):
        assert compiled(x, y).data.tobytes() == eager(x, y).data.tobytes()
        for p, q in zip(params, eager_params):
            assert p.grad.tobytes() == q.grad.tobytes() and p.data.tobytes() == q.data.tobytes()
    assert compiled.stats.replays == 2
    expected = unbroadcast(np.asarray(eager_params[1].grad), (units,))
    assert eager_params[1].grad.tobytes() == expected.tobytes()


def test_bias_gradient_passes_the_gradient_check() -> None:
    """The bias gradient of a narrow layer agrees with finite differences in float64."""
    rng = np.random.default_rng(7)
    x = cr.tensor(rng.normal(size=(100, 3)))
    weight = cr.tensor(rng.normal(size=(3, 2)), requires_grad=True)
    bias = cr.tensor(rng.normal(size=(2,)), requires_grad=True)
    report = cr.gradcheck(lambda w, b: ((x @ w + b).tanh() ** 2).sum(), weight, bias)
    assert report.ok, report


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("shape", "axis", "count"),
    [((891, 2), 0, 1), ((891, 2), -2, 1), ((3, 300, 2), (1, 0), 2), ((128, 10), (0,), 1)],
)
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_over_leading_axes_is_the_adjoint_sum(
    shape: tuple[int, ...], axis: Any, count: int, keepdims: bool, dtype: Any
) -> None:
    """x.sum(axis=0) is the sum that undoes broadcasting, eager and compiled kernel alike."""
    array = np.random.default_rng(8).normal(size=shape).astype(dtype) * 1e3
    expected = sum_leading(array, count, keepdims)
    got = cr.tensor(array).sum(axis=axis, keepdims=keepdims).data
    assert got.shape == expected.shape and got.tobytes() == expected.tobytes()
    assert got.reshape(-1).tobytes() == _pairwise(array.reshape(-1, shape[-1])).tobytes()
    params = {"axis": axis, "keepdims": keepdims}
    assert ops.SUM.forward_into is not None
    out = np.empty(expected.shape, dtype)
    for step in ops.SUM.forward_into([array], params, out):
        step()
    assert out.tobytes() == expected.tobytes()


@pytest.mark.parametrize(
    ("shape", "axis", "dtype"),
    [
        ((891, 2), 1, np.float32),
        ((891, 2), None, np.float32),
        ((891, 2), (0, 1), np.float64),
        ((891, 2), 0, np.int32),
        ((4, 891, 2), 1, np.float32),
    ],
)
def test_other_sums_stay_numpy_sums(shape: tuple[int, ...], axis: Any, dtype: Any) -> None:
    """Sums over trailing, all or middle axes, and of integers, are numpy's own."""
    array = (np.random.default_rng(9).normal(size=shape) * 100).astype(dtype)
    got = ops.SUM.forward(ARRAY, array, axis=axis, keepdims=False)
    expected = np.sum(array, axis=axis)
    assert np.asarray(got).dtype == expected.dtype
    assert np.asarray(got).tobytes() == np.asarray(expected).tobytes()


def test_sum_leading_steps_read_the_array_itself_on_every_run() -> None:
    """The steps of a compiled program see new values of a non-contiguous array."""
    storage = np.random.default_rng(10).normal(size=(2, 100, 3, 4))
    array = storage.transpose(1, 0, 2, 3)[:, :, :, :2]  # (100, 2, 3, 2), no reshape view
    out = np.empty((3, 2))
    steps = leading_sum_steps(array, 2, out)
    assert sums_through_transpose(200, 6)
    storage *= 2.0
    for step in steps:
        step()
    np.testing.assert_allclose(out, array.sum(axis=(0, 1)), rtol=1e-12)
