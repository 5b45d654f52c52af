"""The ``chainrule`` command: a dispatcher over one module per command.

Each command module (``chainrule.cli.<name>``) provides ``DESCRIPTION`` (shown by ``--help``),
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only
when their command runs, so ``chainrule --help`` stays fast.

Bad input is reported as one line on standard error with exit status 2, never a
traceback: commands raise :class:`UsageError` (or a chainrule error) for that.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from .. import __version__
from ..errors import ChainruleError

#: command name -> (module, one-line help shown by ``chainrule --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "titanic": ("chainrule.cli.titanic", "run the handout's Titanic experiment (the main job)"),
    "train": ("chainrule.cli.train", "train an MLP on a CSV file with a header"),
    "predict": ("chainrule.cli.predict", "write a saved model's predictions for a CSV file"),
    "export": ("chainrule.cli.export", "write a saved model as an ONNX file"),
    "draw": ("chainrule.cli.draw", "draw the dataflow diagram of an expression"),
    "explain": ("chainrule.cli.explain", "explain a derivative as a sum over paths"),
    "playground": (
        "chainrule.cli.playground",
        "start the local web playground (edit, train, step backprop)",
    ),
    "demo": ("chainrule.cli.demo", "backprop on f = cos(x²y) + x²√z against the closed forms"),
    "practice": ("chainrule.cli.practice", "practise the chain rule and backprop, marked"),
}


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def _load(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name][0])


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The full parser; only the command named in ``argv`` (if any) is imported."""
    parser = argparse.ArgumentParser(
        prog="chainrule",
        description="Backpropagation you can see through and train with.",
    )
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    requested = _requested_command(argv)
    for name, (_, summary) in COMMANDS.items():
        # Only the command being run is imported; the others need just their summary.
        if name == requested:
            module = _load(name)
            sub = commands.add_parser(
                name, help=summary, description=getattr(module, "DESCRIPTION", summary)
            )
            module.add_arguments(sub)
        else:
            commands.add_parser(name, help=summary, add_help=False)
    return parser


def _requested_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (also used as a console script)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments)
    args = parser.parse_args(arguments)
    if args.command is None:
        parser.print_help()
        return 0
    module = _load(args.command)
    try:
        status = module.run(args)
    except (
        UsageError,
        ChainruleError,
        FileNotFoundError,
        PermissionError,
        IsADirectoryError,
    ) as error:
        print(f"chainrule {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"chainrule {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`chainrule train ... | head`): stop quietly, and point
        # stdout at devnull so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
