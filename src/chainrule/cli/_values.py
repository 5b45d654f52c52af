"""Reading ``name=value`` pairs, the command line's ``--at x=1 y=2`` (draw and explain)."""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Sequence

from ..expressions.tree import ExpressionError

__all__ = ["parse_values"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_values(pairs: Sequence[str]) -> dict[str, float]:
    """Read ``name=number`` pairs (the command line's ``--at x=1 y=2``).

    Args:
        pairs: strings such as ``"x=1"``, ``"w_1=-0.5"``, ``"z=1e-3"``.

    Raises:
        ExpressionError: naming the pair and the column in it that is wrong (no
            ``=``, a name that is not a name, a value that is not a finite number,
            a name given twice).
    """
    values: dict[str, float] = {}
    for pair in pairs:
        name, equals, number = pair.partition("=")
        if not equals:
            raise ExpressionError("expected name=value, e.g. x=1", pair, len(pair) + 1, "pair")
        stripped = name.strip()
        if not _NAME.fullmatch(stripped) or keyword.iskeyword(stripped):
            column = len(name) - len(name.lstrip()) + 1
            raise ExpressionError(f"{stripped!r} is not a name", pair, column, "pair")
        value_column = len(name) + 2
        text = number.strip()
        value = float(text) if _NUMBER_OR_SIGNED.fullmatch(text) else math.nan
        if not text:
            raise ExpressionError("a number is missing after '='", pair, value_column, "pair")
        if not math.isfinite(value):
            raise ExpressionError(f"{text} is not a finite number", pair, value_column, "pair")
        if stripped in values:
            raise ExpressionError(f"{stripped} is given twice", pair, 1, "pair")
        values[stripped] = value
    return values


# ASCII digits only: float() would also read "١" or "１", which are not numbers here.
_NUMBER_OR_SIGNED = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
