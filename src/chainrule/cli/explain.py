"""``chainrule explain``: a derivative of an expression as a sum over paths, and its cost.

The expression is parsed by :mod:`chainrule.expressions` (numbers, names,
``+ - * / **``, parentheses and chainrule's functions), never evaluated by Python.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from .. import ops
from ..expressions import (
    PARTIAL_FUNCTIONS,
    ExpressionError,
    format_symbol,
    names,
    parse,
    to_graph,
)
from ..expressions.tree import quoted, shown
from ..value import Value
from ._values import parse_values
from .main import UsageError

#: Longest derivative formula ``--symbolic`` prints, in sympy's ``count_ops``.
PRINT_MAX_OPS = 400

DESCRIPTION = (
    "Build the dataflow graph of an expression at a point, list every path from one "
    "input to the output with the product of its edge partials, add them up, and set "
    "the sum beside backprop's adjoint and the cost of each (paths against "
    "multiply-adds). Example: chainrule explain 'cos(x**2*y) + x**2*sqrt(z)' "
    "--at x=1 y=2 z=3 --wrt x"
)


def add_expression_arguments(parser: argparse.ArgumentParser) -> None:
    """The expression and ``--at`` arguments that ``draw`` and ``explain`` share.

    Call :func:`accept_leading_minus` once all the command's options are added.
    """
    parser.add_argument(
        "expression",
        nargs="?",  # may also come last, after --at's pairs (read by expression_arguments)
        help="e.g. 'cos(x**2*y) + x**2*sqrt(z)': numbers, names, + - * / **, "
        f"parentheses, {' '.join(ops.FUNCTIONS)} (see chainrule explain --functions; "
        "one that starts with '-', like '-x*y', may go anywhere)",
    )
    parser.add_argument(
        "--at",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME=VALUE",
        help="the point: a value for every name in the expression, e.g. --at x=1 y=2 z=3",
    )
    # After '--' argparse takes every argument as positional, options included
    # (draw -- '-x*y' --at x=1): they are collected here and read again.
    parser.add_argument("after", nargs="*", help=argparse.SUPPRESS)
    parser.set_defaults(reread=parser)


def accept_leading_minus(parser: argparse.ArgumentParser) -> None:
    """Let an argument that starts with one '-' (``-x*y``) be the expression.

    argparse takes such an argument for an option unless it looks like a negative
    number and the command has no option that does; widening "negative number" to
    any ``-`` followed by a non-dash (after the command's own options are added, so
    that ``-o``, ``-h`` still work as options) makes ``-x*y`` a value anywhere.
    """
    parser._negative_number_matcher = _LEADING_MINUS


_LEADING_MINUS = re.compile(r"^-[^-]")


def expression_arguments(args: argparse.Namespace) -> None:
    """Read again what followed ``--`` (``draw -- '-x*y' --at x=1``), into ``args``.

    Raises:
        UsageError: for stray words (an expression in two pieces, without quotes).
    """
    if args.expression is None:
        # --at x=1 y=2 'x*y': --at takes every value that follows it, the expression too
        if not args.at or "=" in args.at[-1]:
            raise UsageError("an expression is required, e.g. 'x*y' --at x=1 y=2")
        args.expression = args.at.pop()
    if args.after and args.after[0].startswith("--"):
        expression, after = args.expression, args.after
        args.after = []
        args.reread.parse_args([*after, "--", expression], namespace=args)
    if args.after:
        raise UsageError(
            f"unexpected argument {shown(args.after[0])} after the expression "
            f"{shown(args.expression)}: give the expression as one argument, in quotes "
            "('x * y'), and the point with --at NAME=VALUE"
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_expression_arguments(parser)
    parser.add_argument("--wrt", metavar="NAME", help="the input to differentiate by (required)")
    parser.add_argument(
        "--max-paths",
        type=_non_negative,
        default=10_000,
        metavar="N",
        help="list the paths only if there are at most N (default 10000); the count is "
        "always shown",
    )
    parser.add_argument(
        "--symbolic",
        action="store_true",
        help="also print the derivative as a formula (needs sympy: the symbolic extra)",
    )
    parser.add_argument("--ascii", action="store_true", help="plain ASCII output")
    parser.add_argument(
        "--functions",
        action="store_true",
        help="list the functions an expression may call, each with its derivative, and exit",
    )
    accept_leading_minus(parser)


def _non_negative(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {number}")
    return number


def build_expression(text: str, pairs: list[str]) -> tuple[Value, dict[str, Value]]:
    """Parse ``text`` and the ``--at`` pairs and build the graph, labelled ``f``.

    Every problem becomes a :class:`UsageError` of one line that points at the
    column of the expression (or of the ``--at`` pair) that is wrong.
    """
    try:
        tree = parse(text)
    except ExpressionError as error:
        raise UsageError(error.one_line) from None
    try:
        values = parse_values(pairs)
    except ExpressionError as error:
        shown = quoted(error.text, 40)
        raise UsageError(f"--at {shown} at column {error.column}: {error.message}") from None
    known = names(tree)
    for pair, name in zip(pairs, values):
        if name not in known:
            listed = ", ".join(known) or "none"
            column = len(pair) - len(pair.lstrip()) + 1
            raise UsageError(
                f"--at {quoted(pair, 40)} at column {column}: {name} does not appear in the "
                "expression "
                f"(its names: {listed})"
            )
    try:
        output, leaves = to_graph(text, values)
    except ExpressionError as error:
        missing = [name for name in known if name not in values]
        hint = f"; add {missing[0]}=… to --at" if missing else ""
        raise UsageError(error.one_line + hint) from None
    output.label = "f" if "f" not in leaves else None
    for name, leaf in leaves.items():
        leaf.label = subscripted(name)
    return output, leaves


_SUBSCRIPTED_NAME = re.compile(r"([A-Za-z][A-Za-z0-9]*)_([0-9]+|[a-z])")


def subscripted(name: str) -> str:
    """A name as a label: ``w_0`` becomes ``w_{0}`` (drawn w₀), ``x_i`` ``x_{i}``; a
    name like ``my_rate`` (more than one letter after ``_``) stays as written."""
    match = _SUBSCRIPTED_NAME.fullmatch(name)
    return f"{match.group(1)}_{{{match.group(2)}}}" if match else name


def run(args: argparse.Namespace) -> int:
    from ..explanations.paths import explain

    if args.functions:
        print(functions_table(unicode=not args.ascii))
        return 0
    expression_arguments(args)
    if args.wrt is None:
        raise UsageError("--wrt NAME is required: the input to differentiate by")
    output, leaves = build_expression(args.expression, args.at)
    if args.wrt not in leaves:
        listed = ", ".join(leaves) or "none"
        raise UsageError(
            f"--wrt {shown(args.wrt)}: the expression has no name {shown(args.wrt)} "
            f"(its names: {listed})"
        )
    explanation = explain(
        output, leaves[args.wrt], max_paths=args.max_paths, unicode=not args.ascii
    )
    print(explanation.report)
    if args.symbolic:
        print()
        print(_symbolic_lines(output, leaves, explanation.output_name, args))
    # A path sum that disagrees with backprop means an op row's partial is wrong.
    return 1 if explanation.agrees is False else 0


def functions_table(unicode: bool = True) -> str:
    """The functions of the expression language, one a line, read from the op rows.

    Each line is the call, its derivative (the row's partial) and, where the row has
    one, its definition in other functions (what ``--symbolic`` writes it as).

    Args:
        unicode: ``False`` for plain ASCII.
    """
    d = "∂" if unicode else "d"
    lines = ["Functions an expression may call (one per op row, chainrule.ops.FUNCTIONS):"]
    calls = {name: f"{name}(x)" for name in ops.FUNCTIONS}
    partials = {
        name: format_symbol(op.partials[0].symbol, {"a": "x"}, {}, unicode=unicode)
        for name, op in ops.FUNCTIONS.items()
    }
    call_width = max(len(call) for call in calls.values())
    partial_width = max(len(partial) for partial in partials.values())
    for name, op in ops.FUNCTIONS.items():
        line = f"  {calls[name]:<{call_width}}  {d}/{d}x = {partials[name]:<{partial_width}}"
        if op.definition is not None:
            definition = format_symbol(op.definition, {"a": "x"}, {}, unicode=unicode)
            line += f"  {calls[name]} = {definition}"
        lines.append(line.rstrip())
    arguments = {1: "x", 2: "a, b", 3: "c, a, b"}
    only_in_partials = (f"{name}({arguments[n]})" for name, n in PARTIAL_FUNCTIONS.items())
    lines.append(f"In partial symbols only: {', '.join(only_in_partials)}")
    return "\n".join(lines)


def _symbolic_lines(
    output: Value, leaves: dict[str, Value], output_name: str, args: argparse.Namespace
) -> str:
    from ..explanations.symbolic import symbolic

    # sympy's symbols are the names as written (w_0), not the drawn labels (w_{0})
    for name, leaf in leaves.items():
        leaf.label = name
    try:
        formula = symbolic(output, args.wrt)
    except ImportError as error:
        raise UsageError(str(error)) from None
    d = "d" if args.ascii else "∂"
    size = formula.count_ops()
    if size > PRINT_MAX_OPS:
        return (
            f"symbolic: {d}{output_name}/{d}{args.wrt} has {size} operations written out, "
            f"too long to print (at most {PRINT_MAX_OPS}); its value is the sum above"
        )
    point = {symbol: leaves[symbol.name].data for symbol in formula.free_symbols}
    return (
        f"symbolic: {d}{output_name}/{d}{args.wrt} = {formula}\n"
        f"          = {_number_text(formula.subs(point))} at the point"
    )


def _number_text(value: Any) -> str:
    """A sympy number as text; at a domain edge it may be ±oo, nan or zoo (undefined)."""
    try:
        return f"{float(value):.6g}"
    except TypeError:  # zoo, a complex number, or a symbol left over
        if str(value) == "zoo":
            return "undefined (sympy: zoo, a division by zero)"
        return str(value)
