"""Checks of the numbers ``fit`` takes as settings: epochs, patience, batch size, learning rate.

They need nothing of the model or the data, so both the input checks
(:mod:`._inputs`) and the objective (:mod:`._objective`, which builds the optimizer)
use them.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from ._errors import FitSettingError


def is_integer(value: Any) -> bool:
    """Whether ``value`` is a whole number (an int or numpy integer, not a bool)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive_int(value: Any, name: str, hint: str) -> int:
    """``value`` as an int of at least 1, else a FitSettingError naming ``name`` with ``hint``."""
    if not is_integer(value) or value < 1:
        raise FitSettingError(f"{name} must be a whole number of at least 1, got {value!r}; {hint}")
    return int(value)


def check_lr(lr: Any) -> float:
    """``lr`` as a float, after checking it is a finite positive number."""
    if not isinstance(lr, numbers.Real) or isinstance(lr, bool) or not math.isfinite(lr) or lr <= 0:
        raise FitSettingError(
            f"the learning rate must be a positive number, got lr={lr!r}; try 0.1 for "
            "'sgd' or 0.001 for 'adam'"
        )
    return float(lr)
