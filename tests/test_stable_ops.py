"""The numerically stable ops at extreme inputs, against mpmath at 80 digits.

Issue 13 item 2: every stable op (logsumexp, log_softmax, softmax, cross_entropy,
binary_cross_entropy_with_logits, softplus, log σ = −softplus(−z)) at ±1e4, ±1e15 and
±1e30, with tied logits, values and gradients. The references are exact (mpmath has no
overflow); float64 results must round to them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import mpmath
import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn

mpmath.mp.dps = 80

MAGNITUDES = (1e4, 1e15, 1e30)
# Rows of logits: ties at the peak, ties below it, and mixed signs.
ROW_SHAPES = (
    lambda z: [z, z],
    lambda z: [-z, -z],
    lambda z: [z, z, -z],
    lambda z: [z, -z, z, 0.0],
    lambda z: [-z, -z, -z / 2],
)
ROWS = [shape(z) for z in MAGNITUDES for shape in ROW_SHAPES]


def _lse(row: Sequence[float]) -> mpmath.mpf:
    return mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(x)) for x in row))


def _softmax(row: Sequence[float]) -> list[mpmath.mpf]:
    total = _lse(row)
    return [mpmath.exp(mpmath.mpf(x) - total) for x in row]


def _softplus(z: float) -> mpmath.mpf:
    return mpmath.log1p(mpmath.exp(mpmath.mpf(z)))


def _sigmoid(z: float) -> mpmath.mpf:
    return 1 / (1 + mpmath.exp(-mpmath.mpf(z)))


def _close(actual: object, expected: Sequence[mpmath.mpf] | mpmath.mpf) -> None:
    want = np.array([float(x) for x in np.ravel(np.array(expected, dtype=object))])
    np.testing.assert_allclose(np.ravel(np.asarray(actual)), want, rtol=1e-13, atol=0)


def _weights(count: int) -> np.ndarray:
    return np.linspace(0.5, 2.0, count)  # an adjoint that is not all ones


@pytest.mark.parametrize("row", ROWS, ids=repr)
def test_logsumexp_large_tied_logits_value_and_gradient(row: list[float]) -> None:
    """logsumexp rounds to log Σ e^x, and its gradient is softmax (½, ½ for two ties)."""
    x = cr.tensor(row, requires_grad=True)
    out = cr.logsumexp(x)
    out.backward()
    _close(out.data, _lse(row))
    _close(x.grad, _softmax(row))


@pytest.mark.parametrize("row", ROWS, ids=repr)
def test_log_softmax_large_tied_logits_value_and_gradient(row: list[float]) -> None:
    """log_softmax keeps log Σ at any peak; the gradient of Σ wᵢ·log pᵢ is w − p·Σw."""
    x = cr.tensor([row], requires_grad=True)
    w = _weights(len(row))
    out = cr.log_softmax(x, axis=-1)
    (out * cr.tensor([w])).sum().backward()
    p = _softmax(row)
    _close(out.data, [mpmath.mpf(v) - _lse(row) for v in row])
    _close(x.grad, [w[i] - p[i] * mpmath.fsum(w) for i in range(len(row))])


@pytest.mark.parametrize("row", ROWS, ids=repr)
def test_softmax_large_tied_logits_value_and_gradient(row: list[float]) -> None:
    """softmax shares ties equally; the gradient of Σ wᵢ·pᵢ is pⱼ(wⱼ − Σ wᵢpᵢ)."""
    x = cr.tensor([row], requires_grad=True)
    w = _weights(len(row))
    out = cr.softmax(x, axis=-1)
    (out * cr.tensor([w])).sum().backward()
    p = _softmax(row)
    mean = mpmath.fsum(w[i] * p[i] for i in range(len(row)))
    _close(out.data, p)
    # Entries whose softmax underflows to 0 have gradient 0 in both; compare the rest.
    _close(x.grad, [p[j] * (w[j] - mean) for j in range(len(row))])


@pytest.mark.parametrize("row", ROWS, ids=repr)
@pytest.mark.parametrize("target", [0, 1])
def test_cross_entropy_large_tied_logits_value_and_gradient(row: list[float], target: int) -> None:
    """cross_entropy is −log pₜ (log 2 for two tied logits at 1e30), its gradient p − onehot."""
    x = cr.tensor([row], requires_grad=True)
    loss = nn.cross_entropy(x, [target])
    loss.backward()
    p = _softmax(row)
    _close(loss.data, _lse(row) - mpmath.mpf(row[target]))
    _close(x.grad, [p[i] - (1 if i == target else 0) for i in range(len(row))])


def test_cross_entropy_tied_logits_issue_example() -> None:
    """The reported case: logits [[z, z]], target 0, gives log 2 and [−½, ½] at every z."""
    for z in (1e4, 1e15, 1e16, 1e30):
        x = cr.tensor([[z, z]], requires_grad=True)
        loss = nn.cross_entropy(x, [0])
        loss.backward()
        assert float(loss.data) == pytest.approx(np.log(2.0), rel=1e-15)
        np.testing.assert_allclose(x.grad, [[-0.5, 0.5]], rtol=1e-15)


LOGITS = [sign * z for z in MAGNITUDES for sign in (1.0, -1.0)] + [-40.0, 0.0, 40.0]


def _tensor_and_value(
    function: Callable[[object], object], z: float
) -> list[tuple[object, object, Callable[[], object]]]:
    """``(output data, input, its grad)`` through a Tensor and through a Value."""
    results: list[tuple[object, object, Callable[[], object]]] = []
    tensor = cr.tensor([z], requires_grad=True)
    out = function(tensor)
    out.sum().backward()  # type: ignore[attr-defined]
    results.append((out.data, tensor, lambda t=tensor: t.grad))  # type: ignore[attr-defined]
    value = cr.Value(z)
    scalar = function(value)
    scalar.backward()  # type: ignore[attr-defined]
    results.append((scalar.data, value, lambda v=value: v.grad))  # type: ignore[attr-defined]
    return results


@pytest.mark.parametrize("z", LOGITS, ids=repr)
def test_softplus_extreme_logits_value_and_gradient(z: float) -> None:
    """softplus(z) = log(1 + e^z) to the last bit (e^−40 included); its slope is σ(z)."""
    for data, _, grad in _tensor_and_value(cr.softplus, z):
        _close(data, _softplus(z))
        # σ below ~1e-16 may round to 0 through tanh; allow that absolute slack.
        np.testing.assert_allclose(np.ravel(grad()), [float(_sigmoid(z))], rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("z", LOGITS, ids=repr)
def test_log_sigmoid_extreme_logits_value_and_gradient(z: float) -> None:
    """log σ(z) written −softplus(−z) is exact at ±1e30; its slope is σ(−z)."""
    for data, _, grad in _tensor_and_value(lambda x: -cr.softplus(-x), z):
        _close(data, -_softplus(-z))
        np.testing.assert_allclose(np.ravel(grad()), [float(_sigmoid(-z))], rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("z", LOGITS, ids=repr)
@pytest.mark.parametrize("target", [0.0, 1.0])
def test_bce_with_logits_extreme_logits_value_and_gradient(z: float, target: float) -> None:
    """softplus(z) − y·z matches −[y log σ + (1−y) log(1−σ)]; its gradient is σ(z) − y."""
    loss = lambda x: nn.binary_cross_entropy_with_logits(x, target)  # noqa: E731
    expected = _softplus(z) - target * mpmath.mpf(z)
    for data, _, grad in _tensor_and_value(loss, z):
        # softplus(40) − 40 cancels to 0 where the exact loss is e^−40: absolute slack.
        np.testing.assert_allclose(
            np.ravel(data), [float(expected)], rtol=1e-13, atol=1e-16 * max(1.0, abs(z))
        )
        np.testing.assert_allclose(
            np.ravel(grad()), [float(_sigmoid(z) - target)], rtol=1e-13, atol=1e-16
        )


def test_value_pow_overflow_keeps_numpys_sign() -> None:
    """Issue 13 item 13: Value(−10)**309 is −inf as numpy gives, and the even power +inf."""
    with np.errstate(over="ignore", divide="ignore"):
        for base, exponent in ((-10.0, 309), (-10.0, 310), (10.0, 309), (-0.0, -1), (0.0, -1)):
            expected = float(np.power(np.float64(base), np.float64(exponent)))
            assert (cr.Value(base) ** exponent).data == expected
            assert (cr.Value(base) ** cr.Value(float(exponent))).data == expected


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_keeps_its_digits_everywhere_and_its_limits_without_warnings(dtype: type) -> None:
    """σ on Tensors is within 4 ulp of the exact value from −745 to 40 down to the
    smallest normal number (tiny values keep their digits), is exactly 0 and 1 far out
    and at ±inf, passes NaN on, and warns of nothing (the expected overflow of e^−x is
    silenced), eager and compiled alike."""
    z = np.concatenate([np.linspace(-745.0, 40.0, 4001), [-1e4, 1e4, -np.inf, np.inf, np.nan]])
    z = z.astype(dtype)
    exact = [_sigmoid(float(v)) for v in z[:-5]]
    eager = cr.tensor(z).sigmoid().data
    tiny = np.finfo(dtype).smallest_normal
    for value, want, got in zip(z[:-5], exact, eager[:-5]):
        rounded = dtype(float(want))
        if rounded >= tiny:
            assert abs(float(got) - float(want)) <= 4 * float(np.spacing(rounded)), value
        else:  # below the smallest normal number σ may be 0 (e^−x overflowed)
            assert abs(float(got) - float(want)) <= float(tiny), value
    assert eager[-5:-1].tolist() == [0.0, 1.0, 0.0, 1.0] and np.isnan(eager[-1])

    weights = cr.tensor(np.ones(z.shape, dtype), requires_grad=True)
    step = cr.compile(lambda: (weights * cr.tensor(z)).sigmoid())
    step()  # the recording; the next call runs the compiled kernels
    assert np.array_equal(step().data, eager, equal_nan=True)
    assert step.stats.replays == 1
