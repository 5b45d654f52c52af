"""Expression trees to other things: a :class:`~chainrule.Value` graph (:func:`to_graph`)
and a sympy expression (:func:`to_sympy`, with the optional ``symbolic`` extra)."""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .. import ops
from .algebra import apply_binary
from .formatting import format_expr
from .syntax import parse
from .tree import Binary, Expr, ExpressionError, Name, Number, Unary, names, walk

if TYPE_CHECKING:
    from ..value import Value

__all__ = ["to_graph", "to_sympy"]


def to_graph(expr: Expr | str, values: Mapping[str, float]) -> tuple[Value, dict[str, Value]]:
    """Build a :class:`~chainrule.Value` graph that computes ``expr``.

    Operators go through Value's operators and functions through
    :mod:`chainrule.functions`, so every node records the same op rows backward
    uses. Each name becomes one leaf labelled with the name, and a subexpression
    written twice is built once (one node with two outgoing edges, as the handouts
    draw ``x²`` in cos(x²y) + x²√z). A constant subexpression (``2*3``) is
    computed once and enters the graph as one number, and a number exponent makes
    the one-input power op (``x**2`` has a single edge labelled ``2·x``).

    Args:
        expr: an expression's text (parsed with :func:`parse`) or a parsed tree.
        values: a number for every name; names not in ``expr`` are ignored.

    Returns:
        ``(output, leaves)``: the output Value (unlabelled) and the leaf of each
        name, in order of first appearance.

    Raises:
        ExpressionError: for text outside the language, a name without a value
            (naming it), a division by zero, or a function (``step``, ``sign``,
            ``maximum``, ``where``) that has no graph op.
    """
    from .. import functions
    from ..value import Value

    if isinstance(expr, str):
        text, tree = expr, parse(expr)
    else:
        # Columns in a tree refer to the text it was parsed from, which is gone:
        # errors point into the tree's own rendering instead.
        text, tree = format_expr(expr, unicode=False), expr

    def column(node: Expr, name: str) -> int:
        return node.column if isinstance(expr, str) else _column_in(text, name)

    leaves: dict[str, Value] = {}
    for name in names(tree):
        if name not in values:
            known = ", ".join(sorted(values)) or "none"
            first = next(n for n in walk(tree) if isinstance(n, Name) and n.name == name)
            raise ExpressionError(
                f"no value for the name {name!r} (values were given for: {known})",
                text,
                column(first, name),
            )
        leaves[name] = Value(float(values[name]), label=name)

    built: dict[Expr, Value | float] = {}

    def build(node: Expr) -> Value | float:
        # A subexpression written twice (x**2 in cos(x**2*y) + x**2*sqrt(z)) is one
        # node with two outgoing edges, as the handouts draw it.
        if node not in built:
            built[node] = build_new(node)
        return built[node]

    def build_new(node: Expr) -> Value | float:
        if isinstance(node, Number):
            return node.value
        if isinstance(node, Name):
            return leaves[node.name]
        if isinstance(node, Unary):
            operand = build(node.operand)
            return -operand if node.op == "-" else operand
        if isinstance(node, Binary):
            left, right = build(node.left), build(node.right)
            if not isinstance(left, Value) and not isinstance(right, Value):
                return apply_binary(node.op, left, right)
            # A Value divided by zero is ±inf or NaN, as in numpy; on the command line
            # that is almost always a mistaken point, so say where it happens.
            divisor = right.data if isinstance(right, Value) else right
            if node.op == "/" and divisor == 0.0:
                raise ExpressionError(
                    "division by zero at the given values", text, column(node, node.op)
                )
            return _binary_on_values(node.op, left, right)
        if node.function not in ops.FUNCTIONS:
            raise ExpressionError(
                f"{node.function} appears only in partial symbols and has no graph op",
                text,
                column(node, node.function),
            )
        (argument,) = (build(a) for a in node.arguments)
        result: Value | float = getattr(functions, node.function)(argument)
        return result

    output = build(tree)
    if not isinstance(output, Value):
        output = Value(output)
    return output, leaves


_VALUE_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "**": operator.pow,
}


def _binary_on_values(op: str, left: Value | float, right: Value | float) -> Value:
    result: Value = _VALUE_OPERATORS[op](left, right)
    return result


def _column_in(text: str, word: str) -> int:
    if not word[:1].isalpha():
        return text.find(word) + 1 or 1
    match = re.search(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])", text)
    return match.start() + 1 if match else 1


# --- sympy ----------------------------------------------------------------------------------


def _sympy() -> Any:
    try:
        import sympy
    except ImportError:
        raise ImportError(
            'symbolic derivatives need sympy: pip install "chainrule[symbolic]"'
        ) from None
    return sympy


def _sympy_number(sympy: Any, value: float) -> Any:
    if math.isnan(value):
        return sympy.nan
    if math.isinf(value):
        return sympy.oo if value > 0 else -sympy.oo
    if value.is_integer():
        return sympy.Integer(int(value))
    # The shortest decimal that round-trips (0.1, not 0.1000000000000000055…), as an
    # exact rational so sympy's simplification can cancel it.
    return sympy.Rational(repr(value))


def _sympy_partial_functions(sympy: Any) -> dict[str, Callable[..., Any]]:
    """sympy's forms of the functions that appear only in partial symbols."""
    return {
        "step": lambda x: sympy.Heaviside(x, 0),
        "sign": sympy.sign,
        "maximum": sympy.Max,
        "where": lambda c, a, b: sympy.Piecewise((a, sympy.Ne(c, 0)), (b, True)),
    }


@functools.cache
def _definition(name: str) -> Expr | None:
    """The parsed :attr:`~chainrule.ops.Op.definition` of the function row ``name``."""
    text = ops.FUNCTIONS[name].definition
    return None if text is None else parse(text, allow_partial_functions=True)


def _sympy_function(sympy: Any, name: str) -> Callable[..., Any]:
    """sympy's function of ``name``: its own (sympy writes a few capitalized: Abs)."""
    for spelling in (name, name.capitalize()):
        function = getattr(sympy, spelling, None)
        if callable(function):
            return function
    raise ExpressionError(
        f"sympy has no function {name!r}: give the op row of {name} a definition in "
        "other functions (chainrule.ops.Op.definition)",
        ops.FUNCTIONS[name].symbol,
        1,
    )


def to_sympy(expr: Expr, symbols: Mapping[str, Any] | None = None) -> Any:
    """Convert a tree to a sympy expression (needs the ``symbolic`` extra).

    Args:
        expr: a parsed expression.
        symbols: sympy expression to use for a name; any other name becomes
            ``sympy.Symbol(name, real=True)``.

    Numbers become exact (integers and decimal rationals). A function becomes its op
    row's :attr:`~chainrule.ops.Op.definition` where the row has one (``sigmoid(x)``
    → ``1/(1 + exp(-x))``, ``relu(x)`` → ``Max(x, 0)``, ``log1p(x)`` → ``log(x + 1)``),
    else sympy's function of the same name (``exp``, ``tanh``; ``abs`` → ``Abs``).
    The functions of partial symbols: ``step(x)`` → ``Heaviside(x, 0)``, ``sign``,
    ``maximum`` → ``Max``, ``where(c, a, b)`` → ``Piecewise``.

    Raises:
        ExpressionError: for a function row without a definition whose name sympy
            does not know.
    """
    sympy = _sympy()
    given = dict(symbols or {})
    partial_functions = _sympy_partial_functions(sympy)

    def call(function: str, arguments: list[Any]) -> Any:
        if function in partial_functions:
            return partial_functions[function](*arguments)
        definition = _definition(function)
        if definition is None:
            return _sympy_function(sympy, function)(*arguments)
        return to_sympy(definition, {"a": arguments[0]})

    def convert(node: Expr) -> Any:
        if isinstance(node, Number):
            return _sympy_number(sympy, node.value)
        if isinstance(node, Name):
            if node.name not in given:
                given[node.name] = sympy.Symbol(node.name, real=True)
            return given[node.name]
        if isinstance(node, Unary):
            operand = convert(node.operand)
            return -operand if node.op == "-" else operand
        if isinstance(node, Binary):
            left, right = convert(node.left), convert(node.right)
            if node.op == "+":
                return left + right
            if node.op == "-":
                return left - right
            if node.op == "*":
                return left * right
            if node.op == "/":
                return left / right
            return left**right
        return call(node.function, [convert(a) for a in node.arguments])

    return convert(expr)
