"""Rendering expression trees for people: :func:`format_expr` and :func:`format_symbol`.

Parentheses appear exactly where the meaning needs them (binding as in Python: sums <
products < unary minus < powers < atoms); the Unicode form writes ``−``, ``·``, ``√``,
``σ``, ``|x|`` and superscript powers, the ASCII form is the expression language itself
(:func:`~chainrule.expressions.parse` reads it back to an equal value).
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping
from typing import Any

from .algebra import simplify
from .syntax import parse
from .tree import Binary, Call, Expr, Name, Number, Unary, substitute

__all__ = ["format_expr", "format_symbol"]

# Binding strength, as in Python: sums < products < unary minus < powers < atoms. A
# display name holding a matrix product (x @ W) binds between sums and products: it
# needs no parentheses in a sum, and gets them next to · so that the two never mix.
_SUM, _MATMUL, _PRODUCT, _NEGATION, _POWER, _ATOM = 1, 2, 3, 4, 5, 6

_SUPERSCRIPTS = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_UNICODE_FUNCTION_NAMES = {"sigmoid": "σ"}
_OPERATOR_LIKE = re.compile(r"[\s+\-−*/·]")
_SUM_SIGNS = frozenset("+-−")
_PRODUCT_SIGNS = frozenset("*/·×")
_NAME_OPERATORS = _SUM_SIGNS | _PRODUCT_SIGNS | {"@"}
_SUPERSCRIPT_ENDINGS = frozenset("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺⁾ᵀ")


def _name_precedence(name: str) -> int:
    """How strongly a display name binds, read from its operators outside brackets.

    Names are labels, made-up names (u1) and the formulas of nodes drawn by name
    (``x @ W``, ``W1ᵀ``, ``1 − y``): a formula keeps its meaning next to other
    operators by getting parentheses exactly where its own operators bind more weakly.
    """
    depth = 0
    sums = products = matmul = words = False
    for position, char in enumerate(name):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth > 0:
            continue
        elif char in _SUM_SIGNS and position > 0:
            sums = True
        elif char in _PRODUCT_SIGNS:
            products = True
        elif char == "@":
            matmul = True
        elif char.isspace():
            before = name[:position].rstrip()[-1:]
            after = name[position:].lstrip()[:1]
            # A space beside an operator is layout; between two words it is prose.
            words = words or not (before in _NAME_OPERATORS or after in _NAME_OPERATORS)
    if sums or words:
        return _SUM
    if matmul:
        return _MATMUL
    if products:
        return _PRODUCT
    if name[:1] in _SUM_SIGNS:
        return _NEGATION
    if name[-1:] in _SUPERSCRIPT_ENDINGS:
        return _POWER  # x² or Wᵀ as the base of a power needs parentheses
    return _ATOM


def _precedence(expr: Expr) -> int:
    if isinstance(expr, Number):
        return _NEGATION if expr.value < 0 else _ATOM
    if isinstance(expr, Unary):
        return _NEGATION
    if isinstance(expr, Binary):
        return {"+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT}.get(expr.op, _POWER)
    if isinstance(expr, Name):
        return _name_precedence(expr.name)
    return _ATOM


def _format_number(value: float, unicode: bool) -> str:
    if value.is_integer() and abs(value) < 1e15:
        text = str(int(value))
    else:
        text = f"{value:.6g}"
    return text.replace("-", "−") if unicode else text


class _Renderer:
    def __init__(self, unicode: bool) -> None:
        self.unicode = unicode
        self.minus = "−" if unicode else "-"
        self.times = "·" if unicode else "*"

    def render(self, expr: Expr) -> str:
        if isinstance(expr, Number):
            return _format_number(expr.value, self.unicode)
        if isinstance(expr, Name):
            # Parentheses, where a compound name needs them, come from its precedence.
            return expr.name
        if isinstance(expr, Unary):
            sign = self.minus if expr.op == "-" else "+"
            if _starts_with_minus(expr.operand):
                return f"{sign}({self.render(expr.operand)})"  # −(−x), not −−x
            return sign + self.wrap(expr.operand, _PRODUCT)
        if isinstance(expr, Call):
            return self.call(expr)
        if expr.op == "**":
            return self.power(expr)
        left = self.wrap(expr.left, _precedence(expr))
        right = self.wrap_right(expr)
        if expr.op == "+":
            return f"{left} + {right}"
        if expr.op == "-":
            return f"{left} {self.minus} {right}"
        if expr.op == "/":
            return f"{left}/{right}"
        if self.unicode and isinstance(expr.left, Number) and right.startswith("√"):
            return f"{left}{right}"  # 2√z reads better than 2·√z
        return f"{left}{self.times}{right}"

    def wrap(self, expr: Expr, weakest: int) -> str:
        """Render ``expr``, in parentheses if it binds more weakly than ``weakest``."""
        text = self.render(expr)
        return f"({text})" if _precedence(expr) < weakest else text

    def wrap_right(self, expr: Binary) -> str:
        right = expr.right
        if _starts_with_minus(right):
            return f"({self.render(right)})"
        own = _precedence(expr)
        # a - (b + c) and a/(b*c) need their parentheses; a + (b - c) and a*(b/c) do not.
        strict = expr.op in ("-", "/")
        needs = _precedence(right) <= own if strict else _precedence(right) < own
        text = self.render(right)
        return f"({text})" if needs else text

    def power(self, expr: Binary) -> str:
        base = self.render(expr.left)
        if _precedence(expr.left) <= _POWER or _starts_with_minus(expr.left):
            base = f"({base})"
        exponent = expr.right
        if self.unicode:
            power = _small_integer(exponent)
            if power is not None:
                return base + str(power).translate(_SUPERSCRIPTS)
            text = self.render(exponent)
            return f"{base}^{text}" if _precedence(exponent) == _ATOM else f"{base}^({text})"
        text = self.render(exponent)
        atomic = _precedence(exponent) >= _POWER and not _starts_with_minus(exponent)
        return f"{base}**{text}" if atomic else f"{base}**({text})"

    def call(self, expr: Call) -> str:
        # The call's own parentheses already delimit a display name like "x + 1".
        arguments = [a.name if isinstance(a, Name) else self.render(a) for a in expr.arguments]
        if self.unicode and expr.function == "sqrt":
            (argument,) = expr.arguments
            if isinstance(argument, Number) and argument.value >= 0:
                return "√" + arguments[0]
            if isinstance(argument, Name) and not _OPERATOR_LIKE.search(argument.name):
                return "√" + arguments[0]
            return f"√({arguments[0]})"
        if self.unicode and expr.function == "abs":
            return f"|{arguments[0]}|"
        function = expr.function
        if self.unicode:
            function = _UNICODE_FUNCTION_NAMES.get(function, function)
        return f"{function}({', '.join(arguments)})"


def _small_integer(expr: Expr) -> int | None:
    """The exponent as an int when it is one that reads well as a superscript."""
    if isinstance(expr, Number) and expr.value.is_integer() and abs(expr.value) < 100:
        return int(expr.value)
    return None


def _starts_with_minus(expr: Expr) -> bool:
    if isinstance(expr, Number):
        return expr.value < 0
    if isinstance(expr, Unary):
        return True
    if isinstance(expr, Binary):
        return _starts_with_minus(expr.left)
    if isinstance(expr, Name):
        return expr.name[:1] in ("-", "−")
    return False


def format_expr(expr: Expr, *, unicode: bool = True) -> str:
    """Render a tree as text with minimal parentheses (no simplification).

    Args:
        expr: the tree.
        unicode: ``True`` for ``−``, ``·``, ``√``, ``σ``, ``|x|`` and superscript
            integer powers (``x²``); ``False`` for plain ASCII in the expression
            language itself (``parse`` reads it back to an equal value).
    """
    return _Renderer(unicode).render(expr)


def format_symbol(
    template: str,
    names: Mapping[str, str],
    params: Mapping[str, Any],
    *,
    unicode: bool = True,
) -> str:
    """Render an op's partial or forward symbol for people.

    Args:
        template: the symbol as stored on the op row, over the input names
            ``a``, ``b`` and parameter names, e.g. ``"p*a**(p - 1)"``.
        names: display name of each input, e.g. ``{"a": "x"}``; any name works
            (``w1``, ``x_2``). Names not given stay as written.
        params: the node's parameters; real numbers are substituted (``{"p": 2.0}``),
            others (arrays, axes) are left as their names.
        unicode: ``False`` for plain ASCII (DOT files, terminals without UTF-8).

    Returns:
        the simplified text: ``"p*a**(p - 1)"`` with x and p = 2 is ``"2·x"``,
        ``"-sin(a)"`` with u is ``"−sin(u)"``, ``"1/(2*sqrt(a))"`` with z is ``"1/(2√z)"``.

    Raises:
        ExpressionError: if the template is not in the expression language.
    """
    tree = parse(template, allow_partial_functions=True)
    replacements: dict[str, Expr] = {}
    for key, value in params.items():
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            replacements[key] = Number(float(value))
    for key, display in names.items():
        replacements[key] = Name(display)
    return format_expr(simplify(substitute(tree, replacements)), unicode=unicode)
