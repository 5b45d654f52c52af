"""Reading a learner's answer: the way people write maths, turned into chainrule's syntax.

People write ``-2xy sin(x^2 y)``; chainrule's parser (:func:`chainrule.expressions.parse`)
reads ``-2*x*y*sin(x**2*y)``. :func:`read_answer` bridges the two without evaluating
anything: it splits the text into tokens, splits a run of letters into the exercise's
known names (``xy`` → ``x y``, ``w1x1`` → ``w1 x1``), writes ``^`` as ``**``, puts
``*`` where two values meet, accepts the handouts' ``w_{1,2}^{(1)}``, ``σ``, ``√``,
``−``, ``·``, ``²``, ``ln`` and ``e^x``, and hands the strict text to ``parse``. Text it
cannot read gets an :class:`AnswerError` with a hint saying what to write instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .. import ops
from ..errors import ChainruleError
from ..expressions import Binary, Expr, ExpressionError, Number, parse
from ..expressions.tree import walk

__all__ = ["MAX_ANSWER_LENGTH", "MAX_EXPONENT", "AnswerError", "read_answer"]

#: Longer answers are refused unread: a derivative in these exercises fits in a few lines.
MAX_ANSWER_LENGTH = 1000
#: Powers above this are refused, so that marking never expands a huge polynomial.
MAX_EXPONENT = 12

_FUNCTIONS = frozenset(ops.FUNCTIONS)
_ALIASES = {"ln": "log", "σ": "sigmoid", "√": "sqrt"}
_CHARACTERS = {
    "−": "-",
    "–": "-",
    "·": "*",
    "×": "*",
    "⋅": "*",
    "÷": "/",
    "²": "^2",
    "³": "^3",
    "σ": " sigmoid",
    "√": " sqrt",
}
# w_{1,2}^{(1)} and w_{12}^{(1)} (the handouts' weight names) → w1_12; x_{1}^{(2)} → x2_1.
_LAYERED = re.compile(r"([A-Za-z])_\{?(\d)\s*,?\s*(\d)?\}?\s*\^\s*\{?\s*\(\s*(\d)\s*\)\s*\}?")
# w_{1,2}, w_{12}, w_1 (no layer) → w12, w1
_SUBSCRIPT = re.compile(r"([A-Za-z])_\{(\d)\s*,?\s*(\d)?\}")
_TOKEN = re.compile(
    r"\s*(?:(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+)|([A-Za-z_][A-Za-z0-9_]*)|(\*\*|[-+*/^(),]))"
)


_WORD_END = re.compile(r"[A-Za-z0-9_.]")


class AnswerError(ChainruleError, ValueError):
    """An answer that cannot be read; the message says what to write instead."""


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", "function" or "op"
    text: str


def _layered(match: re.Match[str]) -> str:
    letter, first, second, layer = match.groups()
    return f"{letter}{layer}_{first}{second or ''}"


def _subscripted(match: re.Match[str]) -> str:
    letter, first, second = match.groups()
    return f"{letter}{first}{second or ''}"


def read_answer(text: str, names: Iterable[str]) -> Expr:
    """Read an answer written the way people write maths, using the exercise's ``names``.

    Args:
        text: the learner's answer, e.g. ``"-2xy sin(x^2 y) + 2x sqrt(z)"``.
        names: the variables the answer may use (``x``, ``y``, ``z``; ``w1_12``, ``s1``).

    Returns:
        the parsed tree (:mod:`chainrule.expressions`); nothing is evaluated.

    Raises:
        AnswerError: for text that is too long, uses a name the exercise does not know
            (``__import__``), characters outside the language, or powers above
            :data:`MAX_EXPONENT`; the message says how to write it.
    """
    if not isinstance(text, str):
        raise TypeError(f"an answer is text, not {type(text).__name__}")
    known = sorted(set(names), key=len, reverse=True)
    if len(text) > MAX_ANSWER_LENGTH:
        raise AnswerError(
            f"the answer is {len(text)} characters long; answers here fit in "
            f"{MAX_ANSWER_LENGTH} (simplify it, or use the names the exercise defines)"
        )
    if not text.strip():
        raise AnswerError("the answer is empty: write an expression, e.g. 2*x*y")
    strict = _strict_text(text, known)
    try:
        tree = parse(strict)
    except ExpressionError as error:
        shown = "" if strict == text else f" (read as {strict!r})"
        raise AnswerError(f"cannot read the answer{shown}: {error.message}") from None
    for node in walk(tree):
        if isinstance(node, Binary) and node.op == "**":
            exponents = [n.value for n in walk(node.right) if isinstance(n, Number)]
            if any(abs(value) > MAX_EXPONENT for value in exponents):
                raise AnswerError(
                    f"powers above {MAX_EXPONENT} do not occur in these exercises; "
                    "check the exponent"
                )
    return tree


def _strict_text(text: str, known: list[str]) -> str:
    """The answer in chainrule's strict syntax (``*`` everywhere, ``**`` for powers)."""
    for character, replacement in _CHARACTERS.items():
        text = text.replace(character, replacement)
    text = _LAYERED.sub(_layered, text)
    text = _SUBSCRIPT.sub(_subscripted, text)
    tokens = _tokens(text, known)
    tokens = _function_arguments(_exponentials(tokens))
    pieces: list[str] = []
    previous: _Token | None = None
    for token in tokens:
        if previous is not None and _ends_value(previous) and _starts_value(token):
            pieces.append("*")
        pieces.append(token.text)
        previous = token
    if any(token.kind == "e" for token in tokens):
        raise AnswerError("write e^x as exp(x) (and the number e as exp(1))")
    text = ""
    for piece in pieces:
        if piece in ("+", "-") and text:
            text += f" {piece} "
        elif text and _WORD_END.match(text[-1]) and _WORD_END.match(piece[0]):
            text += " " + piece  # keep "sin x" two words, so the parser can say what to do
        else:
            text += piece
    return text.strip()


def _tokens(text: str, known: list[str]) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            column = position + len(text[position:]) - len(text[position:].lstrip()) + 1
            bad = text[column - 1]
            raise AnswerError(
                f"unexpected character {bad!r} at column {column}: answers use numbers, "
                "the exercise's names, + - * / ^ (or **), parentheses and the functions "
                + ", ".join(sorted(_FUNCTIONS))
            )
        number, name, operator = match.groups()
        if number is not None:
            tokens.append(_Token("number", number))
        elif operator is not None:
            tokens.append(_Token("op", "**" if operator == "^" else operator))
        else:
            tokens.extend(_split_name(name, known))
        position = match.end()
    return tokens


def _split_name(word: str, known: list[str]) -> list[_Token]:
    """A run of letters as known names and functions: ``xysin`` → x, y, sin."""
    word_known = {name: name for name in known}
    for name in known:
        # w_0 for w0, x_1 for x1: underscores are optional where no name needs them.
        word_known.setdefault(name.replace("_", ""), name)
    for spelling in (word, word.replace("_", "")):
        if spelling in word_known:
            return [_Token("name", word_known[spelling])]
    if word in _FUNCTIONS or word in _ALIASES:
        return [_Token("function", _ALIASES.get(word, word))]
    if word == "e":
        return [_Token("e", "e")]
    split = _split(word, word_known)
    if split is None:
        listed = ", ".join(sorted(known))
        raise AnswerError(
            f"unknown name {word!r}: this exercise's names are {listed}, and the "
            f"functions are {', '.join(sorted(_FUNCTIONS))} (write e^x as exp(x))"
        )
    return split


def _split(word: str, known: dict[str, str]) -> list[_Token] | None:
    # Longest known prefix first, with backtracking; words are short (≤ 400 characters
    # in all), and a prefix is tried once per position, so this stays cheap.
    failed: set[int] = set()

    def from_position(start: int) -> list[_Token] | None:
        if start == len(word):
            return []
        if start in failed:
            return None
        for end in range(len(word), start, -1):
            piece = word[start:end]
            token = None
            if piece in known:
                token = _Token("name", known[piece])
            elif piece in _FUNCTIONS or piece in _ALIASES:
                token = _Token("function", _ALIASES.get(piece, piece))
            elif piece.isdigit():
                token = _Token("number", piece)
            if token is not None:
                rest = from_position(end)
                if rest is not None:
                    return [token, *rest]
        failed.add(start)
        return None

    return from_position(0)


def _exponentials(tokens: list[_Token]) -> list[_Token]:
    """``e ** u`` (from ``e^u``) as ``exp(u)`` when ``e`` is not one of the exercise's names."""
    result: list[_Token] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.kind == "e" and index + 1 < len(tokens) and tokens[index + 1].text == "**":
            operand, index = _operand(tokens, index + 2)
            result.extend([_Token("function", "exp"), _Token("op", "("), *operand])
            result.append(_Token("op", ")"))
            continue
        result.append(token)
        index += 1
    return result


def _operand(tokens: list[_Token], start: int) -> tuple[list[_Token], int]:
    """The exponent after ``e^``: a parenthesised group, or a signed name or number."""
    if start >= len(tokens):
        raise AnswerError("e^ needs an exponent: write exp(x) for e^x")
    index = start
    taken: list[_Token] = []
    while index < len(tokens) and tokens[index].text in ("-", "+"):
        taken.append(tokens[index])
        index += 1
    if index < len(tokens) and tokens[index].text == "(":
        depth = 0
        while index < len(tokens):
            taken.append(tokens[index])
            depth += {"(": 1, ")": -1}.get(tokens[index].text, 0)
            index += 1
            if depth == 0:
                break
        return taken, index
    if index < len(tokens):
        taken.append(tokens[index])
        return taken, index + 1
    raise AnswerError("e^ needs an exponent: write exp(x) for e^x")


def _ends_value(token: _Token) -> bool:
    return token.kind in ("number", "name") or token.text == ")"


def _starts_value(token: _Token) -> bool:
    return token.kind in ("number", "name", "function") or token.text == "("


def _function_arguments(tokens: list[_Token]) -> list[_Token]:
    """``sqrt z`` (from √z) and ``sin x`` as ``sqrt(z)``, ``sin(x)``: one name or number only.

    ``sin x^2`` stays as written, and the parser asks for parentheses: it could mean
    sin(x²) or sin(x)².
    """
    result: list[_Token] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        following = tokens[index + 1 : index + 3]
        if (
            token.kind == "function"
            and following
            and following[0].kind in ("name", "number")
            and not (len(following) > 1 and following[1].text == "**")
        ):
            result.extend([token, _Token("op", "("), following[0], _Token("op", ")")])
            index += 2
            continue
        result.append(token)
        index += 1
    return result
