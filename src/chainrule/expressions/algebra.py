"""Numbers and algebra on expression trees: :func:`evaluate`, :func:`simplify`, :func:`tidy`.

Evaluation uses the op rows' own scalar maths (:mod:`chainrule.ops`), so an expression
and the graph built from it compute the same numbers; simplification is for display
(the edges of a dataflow diagram), never for changing what a graph computes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from .. import ops
from .._math import SCALAR, numpy_semantics
from .tree import Binary, Call, Expr, Name, Number, Unary, walk

__all__ = ["apply_binary", "apply_function", "evaluate", "simplify", "tidy"]


# --- numeric evaluation with the ops' own scalar maths -----------------------------------


def _step(x: float) -> float:
    return 1.0 if x > 0.0 else 0.0


_SCALAR_EXTRAS: dict[str, Callable[..., float]] = {
    "step": _step,
    "sign": SCALAR.sign,
    "maximum": SCALAR.maximum,
    "where": SCALAR.where,
}


def apply_function(function: str, arguments: list[float]) -> float:
    """A function of the language at numbers, with the op row's own scalar maths."""
    rule = ops.FUNCTIONS[function].forward if function in ops.FUNCTIONS else None
    try:
        if rule is not None:
            return float(rule(SCALAR, *arguments))
        return float(_SCALAR_EXTRAS[function](*arguments))
    except ArithmeticError:  # exp(1000): numpy's inf rather than Python's OverflowError
        if rule is None:
            raise
        return numpy_semantics(rule, *arguments)


def apply_binary(op: str, left: float, right: float) -> float:
    """``left op right`` for ``op`` in ``+ - * / **``, with numpy's inf and NaN."""
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if op == "/":
        if right == 0.0:
            # numpy's answer rather than Python's ZeroDivisionError
            return math.copysign(math.inf, left) if left != 0.0 else math.nan
        return left / right
    return float(SCALAR.power(left, right))


def evaluate(expr: Expr, values: Mapping[str, float]) -> float:
    """The value of ``expr`` as a float, with chainrule's scalar maths.

    Args:
        expr: a parsed expression (the partial-only functions allowed).
        values: a number for every name in ``expr``.

    Outside a function's domain the result follows numpy (``log(-1)`` is NaN,
    ``1/0`` is inf), like the ops themselves.
    """
    if isinstance(expr, Number):
        return expr.value
    if isinstance(expr, Name):
        if expr.name not in values:
            raise KeyError(f"no value for the name {expr.name!r}")
        return float(values[expr.name])
    if isinstance(expr, Unary):
        operand = evaluate(expr.operand, values)
        return -operand if expr.op == "-" else operand
    if isinstance(expr, Binary):
        return apply_binary(expr.op, evaluate(expr.left, values), evaluate(expr.right, values))
    return apply_function(expr.function, [evaluate(a, values) for a in expr.arguments])


# --- simplification for display ----------------------------------------------------------


def _is_number(expr: Expr, value: float | None = None) -> bool:
    return isinstance(expr, Number) and (value is None or expr.value == value)


def _is_tidy(value: float) -> bool:
    """Whether a folded constant reads as well as the expression it replaces."""
    return math.isfinite(value) and float(f"{value:.6g}") == value


def _fold(expr: Expr) -> Expr:
    # A constant subexpression becomes one number when the number is short and exact
    # (2 - 1 -> 1, 1/4 -> 0.25), but 1/3 and sqrt(2) stay as written.
    if all(isinstance(n, (Number, Unary, Binary, Call)) for n in walk(expr)):
        value = evaluate(expr, {})
        if _is_tidy(value):
            return Number(value)
    return expr


def simplify(expr: Expr) -> Expr:
    """A display-oriented simplification: fold tidy constants, drop ×1, +0, **1, …

    Rules (applied bottom-up): constant subexpressions with a short exact value
    become numbers; ``x**1`` → ``x``; ``x**0``, ``1**x`` → ``1``; ``1*x``, ``x*1``,
    ``x/1``, ``x+0``, ``x-0`` → ``x``; ``0*x``, ``0/x`` → ``0``; ``-1*x`` → ``-x``;
    a number factor moves to the front (``x*2`` → ``2*x``); ``x*(-y)`` → ``-(x*y)``;
    ``x + (-y)`` → ``x - y``; ``--x`` → ``x``.
    """
    if isinstance(expr, (Number, Name)):
        return expr
    if isinstance(expr, Call):
        return _fold(Call(expr.function, tuple(simplify(a) for a in expr.arguments)))
    if isinstance(expr, Unary):
        return (
            _simplify_negation(simplify(expr.operand)) if expr.op == "-" else simplify(expr.operand)
        )
    left, right = simplify(expr.left), simplify(expr.right)
    folded = _fold(Binary(expr.op, left, right))
    if isinstance(folded, Number):
        return folded
    if expr.op == "+":
        return _simplify_sum(left, right)
    if expr.op == "-":
        return _simplify_difference(left, right)
    if expr.op == "*":
        return _simplify_product(left, right)
    if expr.op == "/":
        return _simplify_quotient(left, right)
    return _simplify_power(left, right)


def tidy(expr: Expr) -> Expr:
    """Tidy signs and put number factors first, never removing or folding an operand.

    Where :func:`simplify` may drop a whole subexpression (``0*log(1 - z)`` → ``0``,
    ``1*x`` → ``x``) or fold constants into one number, ``tidy`` only rewrites how
    the same operands are combined, so a formula that names a node of a graph keeps
    every input of that node: ``x + (-y)`` → ``x - y``, ``x - (-y)`` → ``x + y``,
    ``x + -2`` → ``x - 2``, ``x*2`` → ``2*x``, ``-(2)`` → ``-2``, ``+x`` → ``x``.
    """
    if isinstance(expr, (Number, Name)):
        return expr
    if isinstance(expr, Call):
        return Call(expr.function, tuple(tidy(a) for a in expr.arguments))
    if isinstance(expr, Unary):
        operand = tidy(expr.operand)
        if expr.op == "+":
            return operand
        return Number(-operand.value) if isinstance(operand, Number) else Unary("-", operand)
    left, right = tidy(expr.left), tidy(expr.right)
    if expr.op in ("+", "-"):
        flipped = "-" if expr.op == "+" else "+"
        if isinstance(right, Unary) and right.op == "-":
            return Binary(flipped, left, right.operand)
        if isinstance(right, Number) and right.value < 0:
            return Binary(flipped, left, Number(-right.value))
    if expr.op == "*" and isinstance(right, Number) and not isinstance(left, Number):
        left, right = right, left
    return Binary(expr.op, left, right)


def _simplify_negation(operand: Expr) -> Expr:
    if isinstance(operand, Number):
        return Number(-operand.value)
    if isinstance(operand, Unary) and operand.op == "-":
        return operand.operand
    if isinstance(operand, Binary) and operand.op == "*" and isinstance(operand.left, Number):
        return _simplify_product(Number(-operand.left.value), operand.right)
    return Unary("-", operand)


def _simplify_sum(left: Expr, right: Expr) -> Expr:
    if _is_number(left, 0.0):
        return right
    if _is_number(right, 0.0):
        return left
    if isinstance(right, Number) and right.value < 0:
        return Binary("-", left, Number(-right.value))
    if isinstance(right, Unary) and right.op == "-":
        return Binary("-", left, right.operand)
    return Binary("+", left, right)


def _simplify_difference(left: Expr, right: Expr) -> Expr:
    if _is_number(right, 0.0):
        return left
    if _is_number(left, 0.0):
        return _simplify_negation(right)
    if isinstance(right, Number) and right.value < 0:
        return Binary("+", left, Number(-right.value))
    if isinstance(right, Unary) and right.op == "-":
        return Binary("+", left, right.operand)
    return Binary("-", left, right)


def _simplify_product(left: Expr, right: Expr) -> Expr:
    if isinstance(right, Number) and not isinstance(left, Number):
        left, right = right, left
    if isinstance(left, Number):
        if left.value == 0.0:
            return Number(0.0)
        if left.value == 1.0:
            return right
        if left.value == -1.0:
            return _simplify_negation(right)
        if isinstance(right, Unary) and right.op == "-":
            return _simplify_product(Number(-left.value), right.operand)
        if isinstance(right, Binary) and right.op == "*" and isinstance(right.left, Number):
            merged = left.value * right.left.value
            if _is_tidy(merged):
                return _simplify_product(Number(merged), right.right)
        return Binary("*", left, right)
    if isinstance(right, Unary) and right.op == "-":
        return _simplify_negation(_simplify_product(left, right.operand))
    if isinstance(left, Unary) and left.op == "-":
        return _simplify_negation(_simplify_product(left.operand, right))
    return Binary("*", left, right)


def _simplify_quotient(left: Expr, right: Expr) -> Expr:
    if _is_number(right, 1.0):
        return left
    if _is_number(left, 0.0) and not _is_number(right, 0.0):
        return Number(0.0)
    if isinstance(left, Unary) and left.op == "-":
        return _simplify_negation(Binary("/", left.operand, right))
    return Binary("/", left, right)


def _simplify_power(base: Expr, exponent: Expr) -> Expr:
    if _is_number(exponent, 1.0):
        return base
    if _is_number(exponent, 0.0) or _is_number(base, 1.0):
        return Number(1.0)
    return Binary("**", base, exponent)
