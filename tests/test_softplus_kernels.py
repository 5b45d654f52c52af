"""Tests for softplus (the log loss on logits: softplus(z) − y·z) and its in-place kernels."""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np
import pytest

import chainrule as cr
from chainrule import ops
from chainrule._math import ARRAY
from chainrule.compile.checking import _run
from chainrule.training import _reuse as reuse

#: Logits from tiny to huge, both signs, the float64 limits and the non-finite values.
EXTREMES = [0.0, -0.0, 1e-300, -1e-300, 1e-8, -1e-8, 36.7, -36.7, 709.0, -745.0, 1e4, -1e4,
            np.inf, -np.inf, np.nan]  # fmt: skip


def _logits(dtype: Any) -> np.ndarray:
    rng = np.random.default_rng(0)
    spread = np.concatenate(
        [rng.normal(0.0, 3.0, 300), rng.uniform(-60.0, 60.0, 300), rng.uniform(-900, 900, 85)]
    )
    with np.errstate(over="ignore"):
        return np.concatenate([spread, EXTREMES]).astype(dtype).reshape(-1, 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softplus_forward_kernel_equals_its_row_bit_for_bit(dtype: Any) -> None:
    """softplus's forward_into writes exactly the row's bits, extremes and NaN included."""
    z = _logits(dtype)
    reference = ops.SOFTPLUS.forward(ARRAY, z)
    out = np.empty_like(z)
    assert ops.SOFTPLUS.forward_into is not None
    _run(ops.SOFTPLUS.forward_into([z], {}, out))
    assert reference.dtype == np.dtype(dtype)
    assert out.tobytes() == reference.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softplus_vjp_kernel_equals_eager_backward_bit_for_bit(dtype: Any) -> None:
    """softplus's in-place vjp writes adjoint·σ(z) exactly as eager backward does."""
    z = _logits(dtype)
    adjoint = np.random.default_rng(1).normal(size=z.shape).astype(dtype)
    partial = ops.SOFTPLUS.partials[0]
    assert partial.into is not None and partial.local is not None
    out = ops.SOFTPLUS.forward(ARRAY, z)
    reference = adjoint * partial.local(ARRAY, out, z)
    destination = np.empty_like(z)
    _run(partial.into(adjoint, out, [z], {}, destination))
    assert destination.tobytes() == reference.tobytes()


def test_softplus_row_is_within_one_ulp_of_a_high_precision_reference() -> None:
    """In float64 softplus is within two units in the last place of log(1+e^z)
    computed with 200 bits, for logits from 1e-300 to ±900."""
    mpmath.mp.prec = 200
    z = _logits(np.float64).ravel()
    z = z[np.isfinite(z)]
    values = ops.SOFTPLUS.forward(ARRAY, z)
    for logit, value in zip(z.tolist(), values.tolist()):
        exact = mpmath.log1p(mpmath.exp(mpmath.mpf(logit)))
        if exact < mpmath.mpf(np.finfo(np.float64).tiny):
            assert value == float(exact) or value < 1e-300  # rounds into the subnormals
            continue
        ulp = np.spacing(float(exact))
        assert abs(mpmath.mpf(value) - exact) <= 2 * ulp, logit


def test_softplus_partial_is_within_two_ulp_of_the_sigmoid() -> None:
    """softplus's partial 1 − e^(−softplus(a)) is within two units in the last place of
    σ(a) computed with 200 bits, large negative logits (σ ≈ e^a, not 0) included."""
    mpmath.mp.prec = 200
    z = _logits(np.float64).ravel()
    z = z[np.isfinite(z)]
    partial = ops.SOFTPLUS.partials[0]
    assert partial.local is not None
    values = partial.local(ARRAY, ops.SOFTPLUS.forward(ARRAY, z), z)
    for logit, value in zip(z.tolist(), values.tolist()):
        exact = 1 / (1 + mpmath.exp(-mpmath.mpf(logit)))
        if exact < mpmath.mpf(np.finfo(np.float64).tiny):
            assert abs(mpmath.mpf(value) - exact) < 1e-300  # in the subnormals
            continue
        assert abs(mpmath.mpf(value) - exact) <= 2 * np.spacing(float(exact)), logit
    assert values[(z < -40) & (z > -700)].min() > 0


def test_softplus_of_a_value_equals_the_tensor_bit_for_bit() -> None:
    """The scalar row (Value) gives the same bits as the array row (Tensor), NaN for NaN."""
    z = _logits(np.float64).ravel()
    tensor = cr.Tensor(z).softplus().data
    scalars = np.array([cr.Value(logit).softplus().data for logit in z.tolist()])
    numbers = ~np.isnan(z)
    assert scalars[numbers].tobytes() == tensor[numbers].tobytes()
    assert np.isnan(scalars[~numbers]).all() and np.isnan(tensor[~numbers]).all()


def test_compiled_log_loss_on_logits_uses_the_kernels_and_matches_eager() -> None:
    """A compiled 3→2→1 fit (log loss on logits) keeps softplus's kernels and trains
    bit for bit as the eager step."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(float)
    models = [
        cr.nn.MLP([3, 2, 1], activation="sigmoid", output_activation="sigmoid", seed=0)
        for _ in range(2)
    ]
    histories = [
        cr.fit(model, X, y, lr=0.5, epochs=5, compiled=compiled, progress=False)
        for model, compiled in zip(models, (True, False))
    ]
    assert histories[0].as_dict() == histories[1].as_dict()
    for compiled, eager in zip(models[0].parameters(), models[1].parameters()):
        assert compiled.data.tobytes() == eager.data.tobytes()
    programs = reuse._kept[id(models[0])].step._replay._programs.values()
    runs = [
        event.run
        for program in programs
        for event in program.events
        if getattr(event, "op", None) is ops.SOFTPLUS
    ]
    # The kernel's own six calls, not the row run again and copied into a buffer.
    assert runs and all([call.func for call in run][:2] == [np.maximum, np.abs] for run in runs)
