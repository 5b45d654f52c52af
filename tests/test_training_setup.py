"""Tests for what fit checks and prepares before its epochs (the set-up a later fit repeats)."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import nn
from chainrule.training import BestWeights, History, NonFiniteInputError, run_epochs
from chainrule.training import _inputs as inputs


def test_finite_check_accepts_finite_values_whose_sum_overflows() -> None:
    """Huge finite values (their sum is Inf) pass the finiteness check."""
    huge = np.array([[1e308, 1e308], [1e308, -1.0]])
    with np.errstate(over="ignore"):
        assert np.isinf(huge.sum())
    inputs._check_finite(huge, "X", None)


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ([[np.nan, 1.0], [2.0, np.nan]], r"2 NaN and 0 Inf values \(column 0: 1 NaN; column 1: 1"),
        ([[np.inf, 1.0], [-np.inf, 2.0]], r"X has 0 NaN and 2 Inf values \(column 0: 2 Inf\)"),
        ([[1e308, np.nan], [1e308, 1.0]], r"X has 1 NaN and 0 Inf values \(column 1: 1 NaN\)"),
    ],
)  # fmt: skip
def test_finite_check_still_counts_every_nan_and_inf(
    cells: list[list[float]], message: str
) -> None:
    """A NaN or Inf (also Infs that cancel to NaN, or beside an overflowing sum) gets the
    full per-column report."""
    with pytest.raises(NonFiniteInputError, match=message):
        inputs._check_finite(np.array(cells), "X", None)


def test_run_epochs_without_a_measure_restores_the_start_if_no_epoch_completes() -> None:
    """With no measure (no separate copy of the start), the best weights kept before the
    first epoch are the start: an interrupt in epoch 1 puts them back."""
    model = nn.MLP([2, 3, 1], seed=0)
    parameters = model.parameters()
    start = [p.data.copy() for p in parameters]

    def interrupted_epoch(epoch: int) -> dict[str, float]:
        for p in parameters:
            p.data += 1.0
        raise KeyboardInterrupt

    history = History()
    run_epochs(history, interrupted_epoch, parameters, epochs=3)
    assert history.interrupted and history.restored
    assert all(np.array_equal(p.data, s) for p, s in zip(parameters, start))


def test_best_weights_allocated_empty_hold_what_the_first_save_copies() -> None:
    """BestWeights(keep_now=False) copies nothing until save(), then restores that save."""
    model = nn.MLP([2, 3, 1], seed=0)
    parameters = model.parameters()
    best = BestWeights(parameters, keep_now=False)
    for p in parameters:
        p.data += 2.0
    best.save()
    saved = [p.data.copy() for p in parameters]
    for p in parameters:
        p.data -= 5.0
    best.restore()
    assert all(np.array_equal(p.data, s) for p, s in zip(parameters, saved))
