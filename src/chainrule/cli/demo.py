"""``chainrule demo``: backprop on the handout's f(x, y, z) = cos(x²y) + x²√z."""

from __future__ import annotations

import argparse
import math

from ..functions import cos, sqrt
from ..value import Value
from .main import UsageError

DESCRIPTION = (
    "Build f = cos(x²y) + x²√z from scalar Values, run backprop, and print each "
    "gradient next to the closed form of the assignment's equations (3)-(5)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--x", type=float, default=1.0, help="value of x (default 1)")
    parser.add_argument("--y", type=float, default=2.0, help="value of y (default 2)")
    parser.add_argument("--z", type=float, default=3.0, help="value of z, > 0 (default 3)")


def run(args: argparse.Namespace) -> int:
    if args.z <= 0:
        raise UsageError(f"--z must be positive (√z and its derivative), got {args.z}")
    x, y, z = Value(args.x, "x"), Value(args.y, "y"), Value(args.z, "z")
    f = cos(x**2 * y) + x**2 * sqrt(z)
    f.backward()
    a, b, c = args.x, args.y, args.z
    closed = {
        "x": -2 * a * b * math.sin(a * a * b) + 2 * a * math.sqrt(c),
        "y": -(a * a) * math.sin(a * a * b),
        "z": a * a / (2 * math.sqrt(c)),
    }
    formulas = {"x": "-2xy·sin(x²y) + 2x√z", "y": "-x²·sin(x²y)", "z": "x²/(2√z)"}
    print(f"f(x={a:g}, y={b:g}, z={c:g}) = cos(x²y) + x²√z = {f.data:.10g}")
    print(f"{'':6}{'backprop':>16}  {'closed form':>16}  formula")
    for name, node in (("x", x), ("y", y), ("z", z)):
        print(f"∂f/∂{name} {node.grad:16.10g}  {closed[name]:16.10g}  {formulas[name]}")
    return 0
