"""Reading an expression: Python's own parser for the structure, an allow-list for the rest.

:func:`parse` reads text in three steps, and nothing in them runs the text:

1. **lexical checks**, left to right over the raw text: every character is one the
   language uses (letters, digits, ``_ . + - * / ( ) ,`` and spaces), every word is a
   name that is not a Python keyword and does not start with ``__``, or a plain decimal
   number (no ``1_00``, ``0x10``, ``1j``, fullwidth or Arabic-Indic digits — they are
   not ASCII), and parentheses balance, at most :data:`~.tree.MAX_DEPTH` deep;
2. **structure**: :func:`ast.parse` in ``eval`` mode — it only builds a syntax tree;
   nothing is compiled to bytecode or run — with its syntax errors turned into ours;
3. **an allow-list visitor** turns the syntax tree into chainrule's own
   (:mod:`.tree`): numbers, names, ``+ - * / **``, unary signs and calls of
   chainrule's functions with the right number of arguments. Every other node
   (tuples, unpacking, calls of other things) is refused at its column.
"""

from __future__ import annotations

import ast
import keyword
import math
import re

from .tree import (
    MAX_DEPTH,
    MAX_LENGTH,
    Binary,
    Call,
    Expr,
    ExpressionError,
    Name,
    Number,
    Unary,
    arity,
    function_list,
    quoted,
)

__all__ = ["parse"]

_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DIGITS = frozenset("0123456789")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD = re.compile(r"[A-Za-z0-9_.]+")
_PUNCTUATION = frozenset("+-*/(),")
_SIDE_BY_SIDE = re.compile(r"(?<=[A-Za-z0-9_.)])\s+(?=[A-Za-z0-9_.(])")
_OPERATOR_SYMBOLS: dict[type, str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
}

# Characters people type by habit (or paste from the handouts), with what to write.
_CHARACTER_HINTS = {
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
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression is {len(text)} characters long; at most {MAX_LENGTH} are read",
            text,
            MAX_LENGTH + 1,
        )
    if not text.strip():
        raise ExpressionError("empty expression", text, 1)
    _check_lexically(text, allow_partial_functions)
    # Spaces of any kind become plain ones, and the outer parentheses let the text
    # start with a space or break lines: ast's columns then equal ours, 1-based.
    code = "(" + "".join(" " if c.isspace() else c for c in text) + ")"
    try:
        syntax = ast.parse(code, mode="eval").body
    except SyntaxError as error:
        column = (error.offset or 1) - 1
        if "forgot a comma" in (error.msg or ""):  # two values side by side: x y
            side_by_side = _SIDE_BY_SIDE.search(text, max(column - 1, 0))
            column = side_by_side.end() + 1 if side_by_side else column
        raise _syntax_error(text, column) from None
    except (RecursionError, MemoryError):  # a chain of thousands of signs or powers
        raise ExpressionError(
            f"the expression is nested more than {MAX_DEPTH} levels deep", text, 1
        ) from None
    reader = _Reader(text, code, allow_partial_functions)
    reader.check_depth(syntax)
    return reader.read(syntax)


# --- 1. lexical checks -------------------------------------------------------------------


def _check_lexically(text: str, allow_partial_functions: bool) -> None:
    """Raise the leftmost lexical problem: a character, a word, or the parentheses."""
    problems = [
        problem
        for problem in (
            _character_problem(text, allow_partial_functions),
            _word_problem(text),
            _parenthesis_problem(text),
        )
        if problem is not None
    ]
    if problems:
        message, column = min(problems, key=lambda problem: problem[1])
        raise ExpressionError(message, text, column)


def _character_problem(text: str, allow_partial_functions: bool) -> tuple[str, int] | None:
    for position, char in enumerate(text):
        if char.isspace() or char in _PUNCTUATION or (char.isascii() and char.isalnum()):
            if text.startswith("//", position):
                return "floor division // is not supported", position + 1
            continue
        if char in "_.":
            continue
        hint = _CHARACTER_HINTS.get(char)
        if hint is None and char.isdigit():
            hint = "write digits as 0-9"
        if hint is None:
            hint = (
                "expressions use numbers, names, + - * / **, parentheses and the "
                f"functions {function_list(allow_partial_functions)}"
            )
        described = f"{char!r}" if char.isprintable() else f"U+{ord(char):04X}"
        return f"unexpected character {described}: {hint}", position + 1
    return None


def _word_problem(text: str) -> tuple[str, int] | None:
    """The first bad name or number in the runs of letters, digits, ``_`` and ``.``."""
    consumed = 0  # where the last number ended: its exponent may span several words
    for word in _WORD.finditer(text):
        position = max(word.start(), consumed)
        while position < word.end():
            if text[position] == "." and text[position + 1 : position + 2] not in _DIGITS:
                return "unexpected character '.': attribute access is not allowed", position + 1
            name = _NAME.match(text, position, word.end())
            if name is not None:
                problem = _name_problem(name.group(), position + 1)
                if problem is not None:
                    return problem
                position = name.end()
                continue
            # not bounded by the word: an exponent's sign (1e-3) is part of the number
            number = _NUMBER.match(text, position)
            assert number is not None  # a digit, or a '.' before a digit, starts a number
            problem = _number_problem(text, number)
            if problem is not None:
                return problem
            position = consumed = number.end()
    return None


def _name_problem(name: str, column: int) -> tuple[str, int] | None:
    if keyword.iskeyword(name):
        return (
            f"the Python keyword {name!r} is not allowed: expressions are arithmetic only",
            column,
        )
    if name.startswith("__"):
        return f"names starting with '__' are not allowed ({quoted(name)})", column
    return None


def _number_problem(text: str, number: re.Match[str]) -> tuple[str, int] | None:
    literal, end = number.group(), number.end()
    column = number.start() + 1
    if not math.isfinite(float(literal)):
        return f"the number {quoted(literal, 16)} is too large", column
    if literal.isascii() and literal.isdigit() and literal[0] == "0" and literal.strip("0"):
        return f"a whole number may not start with 0: write {int(literal)}", column
    following = text[end : end + 1]
    if following == "" or not (following.isalnum() or following in "_."):
        return None
    if following == "." or following in _DIGITS:
        return "malformed number", end + 1
    if following == "_":
        return "numbers are written without '_' (write 100, not 1_00)", end + 1
    if literal == "0" and following in "xXoObB":
        return "only decimal numbers are allowed (no 0x, 0o or 0b)", end + 1
    if following in "jJ":
        return "complex numbers are not supported", end + 1
    return (
        f"a number followed by {following!r}: write * for a product (2*{following})",
        end + 1,
    )


def _parenthesis_problem(text: str) -> tuple[str, int] | None:
    opened: list[int] = []
    for position, char in enumerate(text):
        if char == "(":
            opened.append(position)
            if len(opened) > MAX_DEPTH:
                return f"the expression is nested more than {MAX_DEPTH} levels deep", position + 1
        elif char == ")":
            if not opened:
                return "unmatched ')'", position + 1
            opened.pop()
    if not opened:
        return None
    start = opened[-1]
    function = re.search(r"[A-Za-z_][A-Za-z0-9_]*$", text[:start].rstrip())
    if function is not None:
        what = f"the call of {function.group()} at column {function.start() + 1}"
    else:
        what = f"the '(' at column {start + 1}"
    return f"missing ')' to close {what}", len(text) + 1


# --- 2. Python's syntax errors, in our words -------------------------------------------------


def _syntax_error(text: str, column: int) -> ExpressionError:
    """What is wrong at ``column`` (1-based in ``text``), where ast stopped reading."""
    rest = text[max(column, 1) - 1 :]
    if not rest.strip():  # ast stopped at the end (or at our closing parenthesis)
        return ExpressionError(
            "the expression ends too early: a value is missing", text, len(text) + 1
        )
    column = len(text) - len(rest.lstrip()) + 1
    token = _token_at(text, column)
    if token == ",":
        message = "a comma is allowed only between the arguments of a function call"
    elif token[0].isalnum() or token[0] in "_." or token == "(":
        message = f"unexpected {quoted(token)}: an operator (+ - * / **) is missing before it"
    else:
        message = f"unexpected {quoted(token)}: a value is missing before it"
    return ExpressionError(message, text, column)


def _token_at(text: str, column: int) -> str:
    word = _WORD.match(text, column - 1)
    if word is not None:
        return word.group()
    return "**" if text.startswith("**", column - 1) else text[column - 1]


# --- 3. the allow-list visitor -----------------------------------------------------------------


class _Reader:
    """Turns an ``ast`` expression into chainrule's tree, refusing what is not allowed.

    ``code`` is the text in parentheses, so a node's ``col_offset`` (0-based in
    ``code``) is its 1-based column in ``text``.
    """

    def __init__(self, text: str, code: str, allow_partial_functions: bool) -> None:
        self.text = text
        self.code = code
        self.allow_partial_functions = allow_partial_functions

    def error(self, message: str, column: int) -> ExpressionError:
        return ExpressionError(message, self.text, column)

    def check_depth(self, syntax: ast.expr) -> None:
        # Every later walk (rendering, simplifying, sympy) recurses over the tree, so a
        # sum of thousands of terms is refused here, without recursing, rather than by
        # a RecursionError there.
        stack: list[tuple[ast.AST, int]] = [(syntax, 1)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_DEPTH:
                raise self.error(
                    f"the expression is nested more than {MAX_DEPTH} levels deep (a sum or "
                    f"product of more than {MAX_DEPTH} terms counts as that deep)",
                    self.column(node),
                )
            children = [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr)]
            stack.extend((child, depth + 1) for child in children)

    def column(self, node: ast.AST) -> int:
        """The node's column; for ``a + b`` the operator's, as people point at it."""
        if isinstance(node, ast.BinOp):
            symbol = _OPERATOR_SYMBOLS.get(type(node.op), "")
            gap = self.code.find(symbol, node.left.end_col_offset or 0, node.right.col_offset)
            if symbol and gap >= 0:
                return gap
        return getattr(node, "col_offset", 1)

    def read(self, node: ast.expr) -> Expr:
        if isinstance(node, ast.Constant):
            return self.number(node)
        if isinstance(node, ast.Name):
            if arity(node.id, self.allow_partial_functions) is not None:
                raise self.error(
                    f"{node.id} is a function: call it as {node.id}(...)", node.col_offset
                )
            return Name(node.id, node.col_offset)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            sign = "-" if isinstance(node.op, ast.USub) else "+"
            return Unary(sign, self.read(node.operand), node.col_offset)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATOR_SYMBOLS:
            left, right = self.read(node.left), self.read(node.right)
            return Binary(_OPERATOR_SYMBOLS[type(node.op)], left, right, self.column(node))
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Tuple):
            if not node.elts:
                closing = self.code.index(")", node.col_offset)
                raise self.error("unexpected ')': a value is missing before it", closing)
            comma = self.code.index(",", node.elts[0].end_col_offset or 0)
            raise self.error(
                "a comma is allowed only between the arguments of a function call", comma
            )
        if isinstance(node, ast.Starred):
            raise self.error("'*' unpacking is not allowed", node.col_offset)
        # The lexical checks leave nothing else reachable; refuse it all the same.
        raise self.error(f"{type(node).__name__} is not allowed", self.column(node))

    def number(self, node: ast.Constant) -> Number:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(f"{quoted(repr(value))} is not a number", node.col_offset)
        return Number(float(value), node.col_offset)

    def call(self, node: ast.Call) -> Call:
        function = node.func
        if not isinstance(function, ast.Name):
            opening = self.code.index("(", function.end_col_offset or 0)
            raise self.error(
                "unexpected '(': an operator (+ - * / **) is missing before it", opening
            )
        name, column = function.id, function.col_offset
        expected = arity(name, self.allow_partial_functions)
        if expected is None:
            raise self.error(
                f"{quoted(name)} is not a function chainrule knows; calls are allowed only "
                f"for {function_list(self.allow_partial_functions)}",
                column,
            )
        for argument in node.args:
            if isinstance(argument, ast.Starred):
                raise self.error("'*' unpacking is not allowed", argument.col_offset)
        if node.keywords:
            raise self.error("'**' unpacking is not allowed", node.keywords[0].col_offset)
        closing = (node.end_col_offset or 1) - 1
        if node.args:
            after = self.code.find(",", node.args[-1].end_col_offset or 0, closing)
            if after >= 0:  # sin(x,): Python allows the trailing comma, we do not
                raise self.error("unexpected ')': a value is missing before it", closing)
        if len(node.args) != expected:
            plural = "argument" if expected == 1 else "arguments"
            raise self.error(f"{name} takes {expected} {plural}, got {len(node.args)}", column)
        return Call(name, tuple(self.read(argument) for argument in node.args), column)
