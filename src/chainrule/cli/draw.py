"""``chainrule draw``: the dataflow diagram of an expression, as DOT, SVG, PNG or PDF.

The expression is parsed by :mod:`chainrule.expressions`, never evaluated by Python.
The diagram is drawn after backprop, so every node shows its value and adjoint and
every edge its local partial, symbolically and at the point.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..explanations.diagram import SAVE_FORMATS
from ..expressions.tree import quoted, shown
from .explain import (
    accept_leading_minus,
    add_expression_arguments,
    build_expression,
    expression_arguments,
)
from .main import UsageError

DESCRIPTION = (
    "Draw the dataflow diagram of an expression at a point: values, adjoints "
    "(∂f/∂node) and the local partial on every edge. Without -o, print the Graphviz "
    "DOT source. Example: chainrule draw 'cos(x**2*y) + x**2*sqrt(z)' --at x=1 y=2 z=3 "
    "-o f.svg"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_expression_arguments(parser)
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help=f"write the diagram here; the suffix picks the format ({', '.join(SAVE_FORMATS)})",
    )
    parser.add_argument(
        "--ops", action="store_true", help="draw each op as a node of its own between values"
    )
    parser.add_argument(
        "--no-numbers", action="store_true", help="formulas only: no values, adjoints or numbers"
    )
    parser.add_argument(
        "--rankdir",
        choices=("LR", "TB"),
        default="LR",
        help="LR: inputs left, output right (default); TB: top to bottom",
    )
    parser.add_argument(
        "--highlight", metavar="NAME", help="emphasise every path from this input to the output"
    )
    accept_leading_minus(parser)


def run(args: argparse.Namespace) -> int:
    from ..explanations.diagram import draw

    if args.output is not None:
        suffix = Path(args.output).suffix.lower()
        if suffix not in SAVE_FORMATS:
            raise UsageError(
                f"-o {shown(args.output)}: cannot tell the format from "
                f"{quoted(suffix) if suffix else 'no suffix'}; "
                f"use a file name ending in {', '.join(SAVE_FORMATS)}"
            )
    expression_arguments(args)
    output, leaves = build_expression(args.expression, args.at)
    highlight = None
    if args.highlight is not None:
        if args.highlight not in leaves:
            listed = ", ".join(leaves) or "none"
            raise UsageError(
                f"--highlight {shown(args.highlight)}: the expression has no name "
                f"{shown(args.highlight)} "
                f"(its names: {listed})"
            )
        highlight = leaves[args.highlight]
    output.backward()
    diagram = draw(
        output,
        fold_ops=not args.ops,
        numbers=not args.no_numbers,
        rankdir=args.rankdir,
        highlight=highlight,
    )
    if args.output is None:
        print(diagram.dot)
        return 0
    try:
        written = diagram.save(args.output)
    except ImportError as error:
        raise UsageError(f"-o {shown(args.output)}: {error}") from None
    print(f"wrote {shown(str(written), 200)}")
    return 0
