"""chainrule's small expression language, parsed by hand and never evaluated by Python.

The language is what the handouts write on dataflow diagrams and what the op rows
store as symbols (:mod:`chainrule.ops`): numbers (``2``, ``0.5``, ``1e-3``), names
(``x``, ``w1``, ``x_2``), ``+ - * / **`` (``**`` is right-associative and binds
tighter than unary minus, as in Python: ``-x**2`` is ``-(x**2)``), unary ``-``/``+``,
parentheses, and calls of chainrule's functions (:data:`chainrule.ops.FUNCTIONS`:
exp log sin cos tan sqrt tanh sigmoid relu abs softplus). Symbols of partial
derivatives and of a few ops also use ``step(x)`` (Heaviside, 0 at 0), ``sign(x)``,
``maximum(a, b)`` and ``where(c, a, b)``; they are accepted only with
``allow_partial_functions=True``.

Anything else — attribute access, calls of other names, ``__import__``, lambdas,
strings, brackets, keywords, commas outside calls — raises :class:`ExpressionError`
with the 1-based column of the offending character. The text goes through a
tokenizer and a recursive-descent parser into a small immutable tree
(:class:`Number`, :class:`Name`, :class:`Unary`, :class:`Binary`, :class:`Call`);
nothing in this module hands user text to ``eval``, ``compile`` or ``ast``.

What the tree is used for:

* :func:`format_symbol` renders an op's partial or forward symbol for people
  (``p*a**(p - 1)`` with ``a`` = x and ``p`` = 2 is ``2·x``);
* :func:`to_graph` builds a :class:`~chainrule.Value` graph from an expression
  (the ``chainrule draw`` and ``chainrule explain`` commands);
* :func:`evaluate` computes it with the ops' own scalar maths;
* :func:`to_sympy` converts it to sympy (the optional ``symbolic`` extra).
"""

from __future__ import annotations

import keyword
import math
import numbers
import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from . import ops
from ._math import SCALAR
from .errors import ChainruleError

if TYPE_CHECKING:
    from .value import Value

__all__ = [
    "MAX_DEPTH",
    "PARTIAL_FUNCTIONS",
    "Binary",
    "Call",
    "Expr",
    "ExpressionError",
    "Name",
    "Number",
    "Unary",
    "evaluate",
    "format_expr",
    "format_symbol",
    "names",
    "parse",
    "parse_values",
    "simplify",
    "substitute",
    "tidy",
    "to_graph",
    "to_sympy",
]

#: Deepest nesting the parser accepts; keeps every tree walk far from Python's
#: recursion limit (a person never writes 100 nested parentheses).
MAX_DEPTH = 100


class ExpressionError(ChainruleError, ValueError):
    """An expression chainrule refuses, with where: ``column`` is 1-based.

    ``str(error)`` is the message, the expression, and a caret under the column;
    :attr:`one_line` is the same on one line (for command-line errors). ``source``
    says what the text was (``"expression"``, or ``"pair"`` for ``name=value``).
    """

    def __init__(self, message: str, text: str, column: int, source: str = "expression") -> None:
        self.message = message
        self.text = text
        self.source = source
        self.column = max(1, min(column, len(text) + 1))
        caret = " " * (self.column - 1) + "^"
        super().__init__(f"{message}\n  {text}\n  {caret}")

    @property
    def one_line(self) -> str:
        """``expression 'x.y' at column 2: message`` — one line, for the command line."""
        return f"{self.source} {self.text!r} at column {self.column}: {self.message}"


# --- the tree ------------------------------------------------------------------------
# Columns are kept for error messages but left out of equality, so trees that say
# the same thing compare equal wherever they were written.


@dataclass(frozen=True)
class Number:
    """A numeric literal (always held as a float)."""

    value: float
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Name:
    """A variable: an input of the expression, or of an op's symbol (``a``, ``b``, ``p``)."""

    name: str
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Unary:
    """``-operand`` or ``+operand``."""

    op: str
    operand: Expr
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Binary:
    """``left op right`` with ``op`` one of ``+ - * / **``."""

    op: str
    left: Expr
    right: Expr
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Call:
    """A call of one of chainrule's functions, e.g. ``sin(x)``."""

    function: str
    arguments: tuple[Expr, ...]
    column: int = field(default=0, compare=False)


Expr: TypeAlias = Number | Name | Unary | Binary | Call

#: Functions that appear only in partial symbols, with their number of arguments.
PARTIAL_FUNCTIONS: dict[str, int] = {"step": 1, "sign": 1, "maximum": 2, "where": 3}


def _arity(function: str, allow_partial_functions: bool) -> int | None:
    if function in ops.FUNCTIONS:
        return ops.FUNCTIONS[function].arity
    if allow_partial_functions:
        return PARTIAL_FUNCTIONS.get(function)
    return None


def _function_list(allow_partial_functions: bool) -> str:
    known = list(ops.FUNCTIONS)
    if allow_partial_functions:
        known += list(PARTIAL_FUNCTIONS)
    return ", ".join(known)


# --- tokenizer -----------------------------------------------------------------------

_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = ("**", "+", "-", "*", "/", "(", ")", ",")

# Characters people type by habit (or paste from the handouts), with what to write.
_CHARACTER_HINTS = {
    ".": "attribute access is not allowed",
    "'": "strings are not allowed",
    '"': "strings are not allowed",
    "[": "brackets (lists, indexing) are not allowed",
    "]": "brackets (lists, indexing) are not allowed",
    "{": "braces are not allowed",
    "}": "braces are not allowed",
    "^": "write ** for a power",
    "=": "assignments and comparisons are not allowed",
    "<": "comparisons are not allowed",
    ">": "comparisons are not allowed",
    "!": "comparisons are not allowed",
    ":": "':' is not allowed (no lambdas, slices or annotations)",
    ";": "only one expression is allowed",
    "@": "the matrix product is not part of the expression language",
    "%": "the remainder operator is not supported",
    "~": "bitwise operators are not supported",
    "&": "bitwise operators are not supported",
    "|": "bitwise operators are not supported; write abs(x) for |x|",
    "\u2212": "write - for minus",
    "\u00d7": "write * for a product",
    "\u00b7": "write * for a product",
    "\u00f7": "write / for a division",
    "\u221a": "write sqrt(x)",
    "\u00b2": "write **2 for a square",
    "\u00b3": "write **3 for a cube",
    "\u03c3": "write sigmoid(x)",
}


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", "op" or "end"
    text: str
    column: int


def _tokens(text: str, allow_partial_functions: bool) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        char = text[position]
        column = position + 1
        if char.isspace():
            position += 1
            continue
        number = _NUMBER.match(text, position)
        if number:
            end = number.end()
            if end < len(text) and (text[end].isalnum() or text[end] in "_."):
                if text[end] == "." or text[end].isdigit():
                    raise ExpressionError("malformed number", text, end + 1)
                raise ExpressionError(
                    f"a number followed by {text[end]!r}: write * for a product (2*x)",
                    text,
                    end + 1,
                )
            tokens.append(_Token("number", number.group(), column))
            position = end
            continue
        name = _NAME.match(text, position)
        if name:
            _check_name(name.group(), text, column)
            tokens.append(_Token("name", name.group(), column))
            position = name.end()
            continue
        operator = next((o for o in _OPERATORS if text.startswith(o, position)), None)
        if operator is not None:
            if text.startswith("//", position):
                raise ExpressionError("floor division // is not supported", text, column)
            tokens.append(_Token("op", operator, column))
            position += len(operator)
            continue
        hint = _CHARACTER_HINTS.get(char)
        described = f"{char!r}" if char.isprintable() else f"U+{ord(char):04X}"
        if hint is None:
            hint = (
                "expressions use numbers, names, + - * / **, parentheses and the "
                f"functions {_function_list(allow_partial_functions)}"
            )
        raise ExpressionError(f"unexpected character {described}: {hint}", text, column)
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


def _check_name(name: str, text: str, column: int) -> None:
    if keyword.iskeyword(name):
        raise ExpressionError(
            f"the Python keyword {name!r} is not allowed: expressions are arithmetic only",
            text,
            column,
        )
    if name.startswith("__"):
        raise ExpressionError(f"names starting with '__' are not allowed ({name!r})", text, column)


# --- parser --------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the grammar (lowest precedence first)::

    expression := term (("+" | "-") term)*
    term       := unary (("*" | "/") unary)*
    unary      := ("-" | "+") unary | power
    power      := primary ("**" unary)?
    primary    := NUMBER | NAME | NAME "(" expression ("," expression)* ")" | "(" expression ")"
    """

    def __init__(self, text: str, allow_partial_functions: bool) -> None:
        self.text = text
        self.allow_partial_functions = allow_partial_functions
        self.tokens = _tokens(text, allow_partial_functions)
        self.index = 0
        self.depth = 0

    def error(self, message: str, column: int) -> ExpressionError:
        return ExpressionError(message, self.text, column)

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at(self, *operators: str) -> bool:
        return self.current.kind == "op" and self.current.text in operators

    def parse(self) -> Expr:
        if self.current.kind == "end":
            raise self.error("empty expression", 1)
        tree = self.expression()
        token = self.current
        if token.kind != "end":
            raise self.error(self._unexpected(token), token.column)
        return tree

    def _unexpected(self, token: _Token) -> str:
        if token.text == ")":
            return "unmatched ')'"
        if token.text == ",":
            return "a comma is allowed only between the arguments of a function call"
        if token.kind in ("name", "number") or token.text == "(":
            return f"unexpected {token.text!r}: an operator (+ - * / **) is missing before it"
        return f"unexpected {token.text!r}"

    def _enter(self, column: int) -> None:
        # Bounds the parser's own recursion (nested parentheses, calls, signs, powers).
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"the expression is nested more than {MAX_DEPTH} levels deep", column)

    def expression(self) -> Expr:
        self._enter(self.current.column)
        tree = self.term()
        while self.at("+", "-"):
            operator = self.advance()
            tree = Binary(operator.text, tree, self.term(), operator.column)
        self.depth -= 1
        return tree

    def term(self) -> Expr:
        tree = self.unary()
        while self.at("*", "/"):
            operator = self.advance()
            tree = Binary(operator.text, tree, self.unary(), operator.column)
        return tree

    def unary(self) -> Expr:
        if self.at("-", "+"):
            operator = self.advance()
            self._enter(operator.column)
            operand = self.unary()
            self.depth -= 1
            return Unary(operator.text, operand, operator.column)
        return self.power()

    def power(self) -> Expr:
        base = self.primary()
        if self.at("**"):
            operator = self.advance()
            self._enter(operator.column)
            exponent = self.unary()
            self.depth -= 1
            return Binary("**", base, exponent, operator.column)
        return base

    def primary(self) -> Expr:
        token = self.current
        if token.kind == "number":
            self.advance()
            value = float(token.text)
            if not math.isfinite(value):
                raise self.error(f"the number {token.text} is too large", token.column)
            return Number(value, token.column)
        if token.kind == "name":
            self.advance()
            if self.at("("):
                return self.call(token)
            if _arity(token.text, self.allow_partial_functions) is not None:
                raise self.error(
                    f"{token.text} is a function: call it as {token.text}(...)", token.column
                )
            return Name(token.text, token.column)
        if self.at("("):
            opening = self.advance()
            self._enter(opening.column)
            inner = self.expression()
            self.depth -= 1
            if not self.at(")"):
                raise self.error(
                    f"missing ')' to close the '(' at column {opening.column}",
                    self.current.column,
                )
            self.advance()
            return inner
        if token.kind == "end":
            raise self.error("the expression ends too early: a value is missing", token.column)
        if token.text == ")":
            raise self.error("unexpected ')': a value is missing before it", token.column)
        if token.text == ",":
            raise self.error(
                "a comma is allowed only between the arguments of a function call", token.column
            )
        raise self.error(f"unexpected {token.text!r}: a value is missing before it", token.column)

    def call(self, name: _Token) -> Expr:
        arity = _arity(name.text, self.allow_partial_functions)
        if arity is None:
            raise self.error(
                f"{name.text!r} is not a function chainrule knows; calls are allowed only "
                f"for {_function_list(self.allow_partial_functions)}",
                name.column,
            )
        opening = self.advance()
        self._enter(opening.column)
        arguments: list[Expr] = []
        if not self.at(")"):
            arguments.append(self.expression())
            while self.at(","):
                self.advance()
                arguments.append(self.expression())
        if not self.at(")"):
            raise self.error(
                f"missing ')' to close the call of {name.text} at column {name.column}",
                self.current.column,
            )
        self.advance()
        self.depth -= 1
        if len(arguments) != arity:
            plural = "argument" if arity == 1 else "arguments"
            raise self.error(
                f"{name.text} takes {arity} {plural}, got {len(arguments)}", name.column
            )
        return Call(name.text, tuple(arguments), name.column)


def parse(text: str, *, allow_partial_functions: bool = False) -> Expr:
    """Parse an expression into a tree, refusing anything outside the language.

    Args:
        text: the expression, e.g. ``"cos(x**2*y) + x**2*sqrt(z)"``.
        allow_partial_functions: also accept ``step(x)``, ``sign(x)``,
            ``maximum(a, b)`` and ``where(c, a, b)``, which appear only in the ops'
            symbols.

    Raises:
        ExpressionError: with the 1-based column of the first offending character.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse() takes a string, not {type(text).__name__}")
    tree = _Parser(text, allow_partial_functions).parse()
    _check_tree_depth(tree, text)
    return tree


def _check_tree_depth(tree: Expr, text: str) -> None:
    # Every later walk (rendering, simplifying, sympy) recurses over the tree, so a
    # sum of thousands of terms is refused here rather than by a RecursionError there.
    stack: list[tuple[Expr, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionError(
                f"the expression is nested more than {MAX_DEPTH} levels deep (a sum or "
                f"product of more than {MAX_DEPTH} terms counts as that deep)",
                text,
                node.column,
            )
        if isinstance(node, Unary):
            stack.append((node.operand, depth + 1))
        elif isinstance(node, Binary):
            stack.extend(((node.left, depth + 1), (node.right, depth + 1)))
        elif isinstance(node, Call):
            stack.extend((argument, depth + 1) for argument in node.arguments)


# --- walking the tree ----------------------------------------------------------------


def names(expr: Expr) -> tuple[str, ...]:
    """The distinct names in ``expr``, in order of first appearance."""
    seen: dict[str, None] = {}
    for node in _walk(expr):
        if isinstance(node, Name):
            seen.setdefault(node.name, None)
    return tuple(seen)


def _walk(expr: Expr) -> Iterator[Expr]:
    """Every node, left to right (pre-order)."""
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Unary):
            stack.append(node.operand)
        elif isinstance(node, Binary):
            stack.extend((node.right, node.left))
        elif isinstance(node, Call):
            stack.extend(reversed(node.arguments))


def substitute(expr: Expr, replacements: Mapping[str, Expr]) -> Expr:
    """``expr`` with every :class:`Name` in ``replacements`` replaced by its tree."""
    if isinstance(expr, Name):
        return replacements.get(expr.name, expr)
    if isinstance(expr, Unary):
        return Unary(expr.op, substitute(expr.operand, replacements), expr.column)
    if isinstance(expr, Binary):
        return Binary(
            expr.op,
            substitute(expr.left, replacements),
            substitute(expr.right, replacements),
            expr.column,
        )
    if isinstance(expr, Call):
        arguments = tuple(substitute(a, replacements) for a in expr.arguments)
        return Call(expr.function, arguments, expr.column)
    return expr


# --- numeric evaluation with the ops' own scalar maths -----------------------------------


def _step(x: float) -> float:
    return 1.0 if x > 0.0 else 0.0


_SCALAR_EXTRAS: dict[str, Callable[..., float]] = {
    "step": _step,
    "sign": SCALAR.sign,
    "maximum": SCALAR.maximum,
    "where": SCALAR.where,
}


def _apply_function(function: str, arguments: list[float]) -> float:
    if function in ops.FUNCTIONS:
        return float(ops.FUNCTIONS[function].forward(SCALAR, *arguments))
    return float(_SCALAR_EXTRAS[function](*arguments))


def _apply_binary(op: str, left: float, right: float) -> float:
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
        return _apply_binary(expr.op, evaluate(expr.left, values), evaluate(expr.right, values))
    return _apply_function(expr.function, [evaluate(a, values) for a in expr.arguments])


# --- simplification for display ----------------------------------------------------------


def _is_number(expr: Expr, value: float | None = None) -> bool:
    return isinstance(expr, Number) and (value is None or expr.value == value)


def _is_tidy(value: float) -> bool:
    """Whether a folded constant reads as well as the expression it replaces."""
    return math.isfinite(value) and float(f"{value:.6g}") == value


def _fold(expr: Expr) -> Expr:
    # A constant subexpression becomes one number when the number is short and exact
    # (2 - 1 -> 1, 1/4 -> 0.25), but 1/3 and sqrt(2) stay as written.
    if all(isinstance(n, (Number, Unary, Binary, Call)) for n in _walk(expr)):
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


# --- rendering ---------------------------------------------------------------------------

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


# --- values given as text ------------------------------------------------------------


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


_NUMBER_OR_SIGNED = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


# --- building a chainrule graph ----------------------------------------------------------


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
    from . import functions
    from .value import Value

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
            first = next(n for n in _walk(tree) if isinstance(n, Name) and n.name == name)
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
                return _apply_binary(node.op, left, right)
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


def to_sympy(expr: Expr, symbols: Mapping[str, Any] | None = None) -> Any:
    """Convert a tree to a sympy expression (needs the ``symbolic`` extra).

    Args:
        expr: a parsed expression.
        symbols: sympy expression to use for a name; any other name becomes
            ``sympy.Symbol(name, real=True)``.

    Numbers become exact (integers and decimal rationals). Functions map to sympy's:
    ``sigmoid(x)`` → ``1/(1 + exp(-x))``, ``relu(x)`` → ``Max(x, 0)``,
    ``softplus(x)`` → ``log(1 + exp(x))``, ``step(x)`` → ``Heaviside(x, 0)``,
    ``abs`` → ``Abs``, ``maximum`` → ``Max``, ``where(c, a, b)`` → ``Piecewise``.
    """
    sympy = _sympy()
    given = dict(symbols or {})
    functions: dict[str, Callable[..., Any]] = {
        "exp": sympy.exp,
        "log": sympy.log,
        "sin": sympy.sin,
        "cos": sympy.cos,
        "tan": sympy.tan,
        "sqrt": sympy.sqrt,
        "tanh": sympy.tanh,
        "sigmoid": lambda x: 1 / (1 + sympy.exp(-x)),
        "relu": lambda x: sympy.Max(x, 0),
        "abs": sympy.Abs,
        "softplus": lambda x: sympy.log(1 + sympy.exp(x)),
        "step": lambda x: sympy.Heaviside(x, 0),
        "sign": sympy.sign,
        "maximum": sympy.Max,
        "where": lambda c, a, b: sympy.Piecewise((a, sympy.Ne(c, 0)), (b, True)),
    }

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
        return functions[node.function](*(convert(a) for a in node.arguments))

    return convert(expr)
