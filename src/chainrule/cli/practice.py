"""``chainrule practice``: a generated exercise, your answer marked, and the worked solution.

Interactive by default: the exercise is printed, answers are read from standard input
one line at a time and marked; after a right answer, ``solution``, or the last attempt,
the worked solution follows. ``--answer TEXT`` marks one answer without asking (for
scripts and tests). Answers are read by :mod:`chainrule.practice` with chainrule's own
parser, never evaluated by Python.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..explanations.diagram import SAVE_FORMATS
from .explain import _non_negative
from .main import UsageError

DESCRIPTION = (
    "Practise the chain rule and backprop on generated exercises in the handouts' style: "
    "answer as on paper (-2xy sin(x^2 y)), get marked (symbolically and at random points), "
    "see which part is wrong and the worked solution (the dataflow diagram's partials, the "
    "sum over paths, the closed form). The same --seed brings the same exercise back. "
    "Example: chainrule practice --topic chain-rule --seed 7"
)

_TOPICS = ("chain-rule", "dataflow", "sigmoid-neuron", "mlp-layer", "backprop")
_GIVE_UP = ("solution", "s", "?")
_QUIT = ("quit", "q", "exit")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--topic",
        choices=_TOPICS,
        default="chain-rule",
        help="what to practise (default chain-rule)",
    )
    parser.add_argument(
        "--seed",
        type=_non_negative,
        metavar="N",
        help="the exercise's number: the same seed gives the same exercise (default: a new one)",
    )
    parser.add_argument(
        "--difficulty",
        type=int,
        choices=(1, 2, 3),
        default=2,
        help="1: a step or two; 2: the handouts' size (default); 3: a step further",
    )
    parser.add_argument(
        "--answer",
        metavar="TEXT",
        help="mark this answer without asking (exit status 0 right, 1 wrong); a text that "
        "starts with '-' is written --answer=-2*x",
    )
    parser.add_argument(
        "--attempts",
        type=_positive,
        default=3,
        metavar="N",
        help="interactive: answers before the solution is shown (default 3)",
    )
    parser.add_argument(
        "--solution", action="store_true", help="show the worked solution without asking"
    )
    parser.add_argument(
        "--diagram",
        metavar="FILE",
        help="also save the solution's dataflow diagram here "
        f"(the suffix picks the format: {', '.join(SAVE_FORMATS)})",
    )


def _positive(text: str) -> int:
    number = _non_negative(text)
    if number == 0:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def run(args: argparse.Namespace) -> int:
    from ..practice import generate

    if args.diagram is not None and Path(args.diagram).suffix.lower() not in SAVE_FORMATS:
        raise UsageError(
            f"--diagram {args.diagram}: cannot tell the format from its suffix; use a file "
            f"name ending in {', '.join(SAVE_FORMATS)}"
        )
    try:
        import sympy  # noqa: F401  (marking and solutions need it; say so before asking)
    except ImportError:
        raise UsageError(
            'practice marks answers with sympy: pip install "chainrule[symbolic]"'
        ) from None
    exercise = generate(args.topic, seed=args.seed, difficulty=args.difficulty)
    feedback = None if args.answer is None else exercise.check(args.answer)
    if feedback is not None and not feedback.readable:
        raise UsageError(f"--answer {args.answer!r}: {feedback.message}")
    print(
        f"Exercise ({exercise.topic}, difficulty {exercise.difficulty}; "
        f"--seed {exercise.seed} brings it back)"
    )
    print(exercise.prompt)
    if args.solution:
        _show_solution(exercise, args.diagram)
        return 0
    if feedback is not None:
        print(f"\nYour answer: {args.answer}")
        print(feedback.message)
        if not feedback.correct:
            _show_solution(exercise, args.diagram)
        elif args.diagram is not None:
            _save_diagram(exercise, args.diagram)
        return 0 if feedback.correct else 1
    return _interactive(exercise, args.attempts, args.diagram)


def _interactive(exercise: object, attempts: int, diagram: str | None) -> int:
    from ..practice import Exercise

    assert isinstance(exercise, Exercise)
    print(
        f"\nType your answer and press Enter ({attempts} "
        f"{'try' if attempts == 1 else 'tries'}; 'solution' shows it, 'quit' stops)."
    )
    tries = 0
    while tries < attempts:
        try:
            line = input("answer> ")
        except EOFError:
            print()
            return 1
        text = line.strip()
        if not text:
            continue
        if text.lower() in _QUIT:
            return 1
        if text.lower() in _GIVE_UP:
            _show_solution(exercise, diagram)
            return 1
        feedback = exercise.check(text)
        print(feedback.message)
        if not feedback.readable:
            continue  # a hint about how to write it is not a wrong answer
        tries += 1
        if feedback.correct:
            _show_solution(exercise, diagram, heading="Here is how the diagram gives it:")
            return 0
    _show_solution(exercise, diagram)
    return 1


def _show_solution(exercise: object, diagram: str | None, heading: str | None = None) -> None:
    from ..practice import Exercise

    assert isinstance(exercise, Exercise)
    solution = exercise.solution()
    print()
    if heading:
        print(heading)
    print(solution.text)
    if diagram is not None:
        _write(solution.diagram, diagram)


def _save_diagram(exercise: object, path: str) -> None:
    from ..practice import Exercise

    assert isinstance(exercise, Exercise)
    _write(exercise.solution().diagram, path)


def _write(diagram: object, path: str) -> None:
    from ..explanations.diagram import Diagram

    assert isinstance(diagram, Diagram)
    try:
        written = diagram.save(path)
    except ImportError as error:
        raise UsageError(f"--diagram {path}: {error}") from None
    print(f"\nwrote the dataflow diagram to {written}", file=sys.stdout)
