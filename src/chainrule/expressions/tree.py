"""The expression tree (:class:`Number`, :class:`Name`, :class:`Unary`, :class:`Binary`,
:class:`Call`), the error every refusal raises, and walks over the tree."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from .. import ops
from ..errors import ChainruleError

#: Deepest nesting the parser accepts; keeps every tree walk far from Python's
#: recursion limit (a person never writes 100 nested parentheses).
MAX_DEPTH = 100

#: Longest text the parser reads, so the work on hostile input stays bounded.
MAX_LENGTH = 100_000

#: How much of an expression an error message shows around the offending column.
ECHO_WIDTH = 72


def excerpt(text: str, column: int) -> tuple[str, int]:
    """The part of ``text`` an error shows, and the column's place in it.

    Long texts are cut to :data:`ECHO_WIDTH` characters around ``column`` (marked
    with …), and characters a terminal would act on (newlines, ANSI escapes) are
    shown as ``?``, so a message is one short, inert line whatever it quotes.
    """
    start = 0
    if len(text) > ECHO_WIDTH:
        start = max(0, min(column - 1 - ECHO_WIDTH // 2, len(text) - ECHO_WIDTH))
    shown = "".join(c if c.isprintable() else "?" for c in text[start : start + ECHO_WIDTH])
    caret = column - start
    if start > 0:
        shown, caret = "…" + shown, caret + 1
    if start + ECHO_WIDTH < len(text):
        shown += "…"
    return shown, caret


def shown(name: str, limit: int = 60) -> str:
    """A user-given name (or file name) as a message shows it: as is when it is short
    and printable, else :func:`quoted` (so a newline or an escape sequence in it stays
    inert, and a long one is cut at ``limit`` characters)."""
    if name.isprintable() and len(name) <= limit:
        return name
    return quoted(name, limit)


def quoted(fragment: str, limit: int = 24) -> str:
    """``repr`` of a piece of user text, at most ``limit`` characters of it."""
    if len(fragment) > limit:
        return repr(fragment[:limit]) + "…"
    return repr(fragment)


class ExpressionError(ChainruleError, ValueError):
    """An expression chainrule refuses, with where: ``column`` is 1-based.

    ``str(error)`` is the message, the expression, and a caret under the column;
    :attr:`one_line` is the same on one line (for command-line errors). ``source``
    says what the text was (``"expression"``, or ``"pair"`` for ``name=value``).
    ``text`` is the whole input; messages show at most :data:`ECHO_WIDTH` characters
    of it, with unprintable ones as ``?``.
    """

    def __init__(self, message: str, text: str, column: int, source: str = "expression") -> None:
        self.message = message
        self.text = text
        self.source = source
        self.column = max(1, min(column, len(text) + 1))
        shown, caret = excerpt(text, self.column)
        super().__init__(f"{message}\n  {shown}\n  {' ' * (caret - 1)}^")

    @property
    def one_line(self) -> str:
        """``expression 'x.y' at column 2: message`` — one line, for the command line.

        A long expression is shown in part, around the column (see :func:`excerpt`).
        """
        shown, _ = excerpt(self.text, self.column)
        return f"{self.source} {shown!r} at column {self.column}: {self.message}"


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


def arity(function: str, allow_partial_functions: bool) -> int | None:
    """How many arguments ``function`` takes, or None if it is not a function here."""
    if function in ops.FUNCTIONS:
        return ops.FUNCTIONS[function].arity
    if allow_partial_functions:
        return PARTIAL_FUNCTIONS.get(function)
    return None


def function_list(allow_partial_functions: bool) -> str:
    """The callable functions, comma-separated, for error messages."""
    known = list(ops.FUNCTIONS)
    if allow_partial_functions:
        known += list(PARTIAL_FUNCTIONS)
    return ", ".join(known)


# --- walking the tree ----------------------------------------------------------------


def names(expr: Expr) -> tuple[str, ...]:
    """The distinct names in ``expr``, in order of first appearance."""
    seen: dict[str, None] = {}
    for node in walk(expr):
        if isinstance(node, Name):
            seen.setdefault(node.name, None)
    return tuple(seen)


def walk(expr: Expr) -> Iterator[Expr]:
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
