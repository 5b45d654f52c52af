"""chainrule's small expression language, read by Python's parser and never evaluated by it.

The language is what the handouts write on dataflow diagrams and what the op rows
store as symbols (:mod:`chainrule.ops`): numbers (``2``, ``0.5``, ``1e-3``), names
(``x``, ``w1``, ``x_2``), ``+ - * / **`` (``**`` is right-associative and binds
tighter than unary minus, as in Python: ``-x**2`` is ``-(x**2)``), unary ``-``/``+``,
parentheses, and calls of chainrule's functions (:data:`chainrule.ops.FUNCTIONS`, one
per op row; ``chainrule explain --functions`` lists them). Symbols of partial
derivatives and of a few ops also use ``step(x)`` (Heaviside, 0 at 0), ``sign(x)``,
``maximum(a, b)`` and ``where(c, a, b)``; they are accepted only with
``allow_partial_functions=True``.

Anything else — attribute access, calls of other names, ``__import__``, lambdas,
strings, brackets, keywords, commas outside calls, ``1_00``, non-ASCII digits — raises
:class:`ExpressionError` with the 1-based column of the offending character. The
package is split by job:

* :mod:`.syntax` — :func:`parse`: lexical allow-list checks, then :func:`ast.parse`
  in ``eval`` mode (which builds a syntax tree and runs nothing), then an allow-list
  visitor into chainrule's own immutable tree;
* :mod:`.tree` — that tree (:class:`Number`, :class:`Name`, :class:`Unary`,
  :class:`Binary`, :class:`Call`), :class:`ExpressionError`, :func:`names`,
  :func:`substitute`;
* :mod:`.algebra` — :func:`evaluate` with the ops' own scalar maths, and the display
  rewrites :func:`simplify` and :func:`tidy`;
* :mod:`.formatting` — :func:`format_expr` and :func:`format_symbol` (how an op's
  partial such as ``p*a**(p - 1)`` with ``a`` = x and ``p`` = 2 reads ``2·x``);
* :mod:`.conversion` — :func:`to_graph` (a :class:`~chainrule.Value` graph, for
  ``chainrule draw`` and ``chainrule explain``) and :func:`to_sympy`.

:func:`~chainrule.cli._values.parse_values` (``--at x=1 y=2``) lives with the command
line, which is the only thing that reads such pairs (expressions import nothing above them).
"""

from __future__ import annotations

from .algebra import evaluate, simplify, tidy
from .conversion import to_graph, to_sympy
from .formatting import format_expr, format_symbol
from .syntax import parse
from .tree import (
    MAX_DEPTH,
    MAX_LENGTH,
    PARTIAL_FUNCTIONS,
    Binary,
    Call,
    Expr,
    ExpressionError,
    Name,
    Number,
    Unary,
    names,
    substitute,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
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
    "simplify",
    "substitute",
    "tidy",
    "to_graph",
    "to_sympy",
]
