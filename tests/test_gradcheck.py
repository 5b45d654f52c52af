"""gradcheck itself: it passes correct gradients and catches wrong ones, with a useful report."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import ops
from chainrule.ops import Op, Partial


def _wrong_square(x: cr.Tensor) -> cr.Tensor:
    """x² with a deliberately wrong partial (3x instead of 2x)."""
    bad = Op("bad_square", lambda xp, a: a * a, (Partial("3*a", lambda xp, out, a: 3 * a),), "a**2")
    return cr.Tensor._apply(bad, (x,))


def test_gradcheck_passes_a_correct_function_of_values() -> None:
    """A correct gradient of Values passes and the report says so."""
    result = cr.gradcheck(lambda x, y: x * cr.sin(y), cr.Value(1.0, "x"), cr.Value(2.0, "y"))
    assert result.ok and bool(result)
    assert "passed" in result.report
    assert result.max_abs_error < 1e-8


def test_gradcheck_catches_a_wrong_partial_and_locates_it() -> None:
    """A wrong partial fails; the worst input and element are reported."""
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    result = cr.gradcheck(lambda a, b: (a + _wrong_square(b)).sum(), np.ones(2), x)
    assert not result.ok
    assert result.worst_input == 1
    assert result.worst_index == (1, 1)
    assert "FAILED" in result.report and "input 1[1, 1]" in result.report
    np.testing.assert_allclose(result.analytic[1], 3 * x)
    np.testing.assert_allclose(result.numeric[1], 2 * x, rtol=1e-6)


def test_gradcheck_raises_with_the_report_when_asked() -> None:
    """raise_on_failure=True raises GradcheckError carrying the report."""
    with pytest.raises(cr.GradcheckError) as info:
        cr.gradcheck(lambda a: _wrong_square(a).sum(), np.array([2.0]), raise_on_failure=True)
    assert "backprop 6" in info.value.report


def test_gradcheck_checks_vector_outputs_through_a_projection() -> None:
    """Vector outputs are checked too: a wrong partial in one element is caught."""
    assert cr.gradcheck(lambda a: cr.tanh(a) * 2, np.array([0.1, -0.3, 0.7])).ok
    assert not cr.gradcheck(lambda a: _wrong_square(a), np.array([0.1, -0.3, 0.7])).ok


def test_gradcheck_uses_float64_for_float32_tensors() -> None:
    """A float32 input is checked in float64 so the tolerance is meaningful."""
    x = cr.tensor(np.array([0.3, 0.6], np.float32), label="x")
    result = cr.gradcheck(lambda a: cr.exp(a).sum(), x)
    assert result.ok
    assert result.analytic[0].dtype == np.float64
    assert "x" in result.report


def test_every_registered_op_has_a_symbol_for_every_input() -> None:
    """Each op row carries a symbolic partial per input, read by diagrams and path sums."""
    for op in ops.OPS.values():
        assert op.symbol
        assert len(op.partials) == op.arity >= 1
        assert all(partial.symbol for partial in op.partials)
