"""``chainrule titanic``: the handout's Titanic experiment, printed as tables."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from ..experiments import titanic as experiment
from ..experiments.figures import FIGURE_FILES, write_figures
from ..nn.handout_names import SHAPE_CONVENTION
from ._report import format_table, percent
from .main import UsageError

DESCRIPTION = (
    "Run the assignment's Titanic experiment (section 2 and exercise 2) on the 714 passengers "
    "with a known age: logistic regression on (age, male) against the sex-only rule, the same "
    "with a hand-made 'young male' feature, the handout's 3→2→1 sigmoid MLP trained by "
    "backprop (what its hidden units learned), and exercise 2's hand-set weights with the "
    "handout's numbers recomputed. Train and held-out accuracy for every model."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seed",
        metavar="N",
        type=int,
        default=experiment.DEFAULT_SEED,
        help="seed of the held-out split and the MLP's random starts (default %(default)s)",
    )
    parser.add_argument(
        "--epochs",
        metavar="N",
        type=_positive_int,
        default=experiment.DEFAULT_EPOCHS,
        help="full-batch training epochs of every model (default %(default)s)",
    )
    parser.add_argument(
        "--hidden",
        metavar="N",
        type=_positive_int,
        default=experiment.DEFAULT_HIDDEN,
        help="hidden units of the MLP (default %(default)s, the handout's network)",
    )
    parser.add_argument(
        "--restarts",
        metavar="N",
        type=_positive_int,
        default=experiment.DEFAULT_RESTARTS,
        help="random starts of the MLP; the lowest training loss is reported (default %(default)s)",
    )
    parser.add_argument(
        "--young-age",
        metavar="YEARS",
        type=float,
        default=experiment.YOUNG_AGE,
        help="'young male' means younger than this many years (default %(default)g)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="also write PNG figures into DIR (loss curves, hidden units against age, the "
        'network with its weights); needs matplotlib: pip install "chainrule[plot]"',
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="print only the accuracy table: no progress bar, no other tables",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    out = Path(args.out) if args.out else None
    if out is not None:
        # Check before training: a missing extra or a bad folder should not cost a run.
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out} is a file; give a folder for the figures")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError(
                'the figures of --out need matplotlib: pip install "chainrule[plot]"'
            ) from None
    try:
        results = experiment.run_titanic_experiment(
            seed=args.seed,
            epochs=args.epochs,
            hidden=args.hidden,
            restarts=args.restarts,
            young_age=args.young_age,
            progress=not args.quiet,
        )
    except experiment.ExperimentError as error:
        raise UsageError(str(error)) from None

    if args.quiet:
        print(accuracy_table(results))
    else:
        print(report(results))
    if out is not None:
        try:
            written = write_figures(results, out)
        except OSError as error:
            raise UsageError(f"cannot write the figures into {out}: {error}") from None
        if not args.quiet:
            print()
            print("Figures: " + ", ".join(str(path) for path in written))
    if out is None and not args.quiet:
        print()
        print(
            "Figures: none written. Add --out DIR to write "
            f"{', '.join(FIGURE_FILES)} into DIR (needs matplotlib: "
            'pip install "chainrule[plot]").'
        )
    if not args.quiet:
        print(f"\nDone in {time.perf_counter() - started:.1f} s.")
    return 0


# --- the report ---------------------------------------------------------------------------


def report(results: experiment.TitanicResults) -> str:
    """The whole printed report of ``chainrule titanic``."""
    sections = [
        _introduction(results),
        accuracy_table(results),
        _weights_table(results),
        _restarts_table(results),
        _hidden_table(results),
        _network_rule(results),
        _hand_table(results),
        _hand_summary(results),
    ]
    return "\n\n".join(sections)


def _introduction(results: experiment.TitanicResults) -> str:
    return "\n".join(
        [
            "The Titanic experiment of the backprop assignment (section 2, exercise 2).",
            f"{results.passengers} passengers with a known age (Kaggle's training file has 891); "
            f"'young male' = male younger than {results.young_age:g} years.",
            f"Each model is fitted on all {results.passengers} passengers, and again on a fixed "
            f"training split of {results.train_size} (seed {results.seed}) to be scored on the "
            f"{results.heldout_size} held out. {results.epochs} full-batch epochs per fit.",
            f"Network shapes are written {SHAPE_CONVENTION}. 3→{results.hidden}→1: the "
            f"inputs age, male and the bias unit; {results.hidden} hidden units; one output.",
        ]
    )


def accuracy_table(results: experiment.TitanicResults) -> str:
    """The models' accuracy on all passengers, on the training split and held out."""
    rows = []
    for model in results.models:
        correct = round(model.accuracy * results.passengers)
        rows.append(
            [
                model.name,
                f"{percent(model.accuracy)} ({correct})",
                percent(model.train_accuracy),
                percent(model.heldout_accuracy),
                "—" if model.loss is None else f"{model.loss:.4f}",
            ]
        )
    return format_table(
        [
            "model",
            f"all {results.passengers} (right)",
            f"train {results.train_size}",
            f"held-out {results.heldout_size}",
            "log loss",
        ],
        rows,
        title="Accuracy (a passenger is predicted to survive when the model says p > 0.5)",
    )


def _weights_table(results: experiment.TitanicResults) -> str:
    lines = ["Learned weights, in raw units (per year of age), fitted on all passengers"]
    for model in results.models:
        if model.trained and model.name.startswith("logistic"):
            weights = "  ".join(f"{name} = {value:.4g}" for name, value in model.weights.items())
            lines.append(f"  {model.name}: {weights}")
    return "\n".join(lines)


def _restarts_table(results: experiment.TitanicResults) -> str:
    rows = [
        [
            str(index + 1) + (" (best)" if index == results.best_restart else ""),
            restart.seed,
            f"{restart.loss:.5f}",
            percent(restart.accuracy),
        ]
        for index, restart in enumerate(results.restarts_all)
    ]
    return format_table(
        ["start", "seed", "final log loss", "accuracy"],
        rows,
        title=f"MLP 3→{results.hidden}→1 random starts on all {results.passengers} passengers "
        "(the best is the lowest loss)",
    )


def _number(value: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"


def _hidden_table(results: experiment.TitanicResults) -> str:
    rows = []
    for unit in results.hidden_units:
        w = list(unit.weights.values())
        closest = unit.closest
        rows.append(
            [
                f"x{unit.unit}(2)",
                f"{w[0]:.3g}",
                f"{w[1]:.3g}",
                f"{w[2]:.3g}",
                f"{unit.output_weight:.3g}",
                _number(unit.mean_women),
                _number(unit.mean_young_males),
                _number(unit.mean_older_males),
                unit.description,
                "—" if closest is None else f"{closest} ({percent(unit.agreement[closest])})",
            ]
        )
    table = format_table(
        [
            "unit",
            "w age",
            "w male",
            "w bias",
            "w out",
            "mean women",
            "young males",
            "older males",
            "on (activation > 0.5) for",
            "closest to",
        ],
        rows,
        title="What the best MLP's hidden units learned (means: average activation per group; "
        f"'closest to': a handout feature the unit matches on ≥ "
        f"{experiment.CLOSE_AGREEMENT:.0%} of passengers, — if none)",
        align="l" + "r" * 7 + "ll",
    )
    return table + "\n" + _handout_story(results)


def _handout_story(results: experiment.TitanicResults) -> str:
    """The handout's reading (one unit 'is female', one 'is young male') against the units."""
    parts = []
    for feature in ("female", "young male"):
        best = max(results.hidden_units, key=lambda unit: unit.agreement[feature])
        parts.append(
            f"'is {feature}' is closest to x{best.unit}(2), which agrees on "
            f"{percent(best.agreement[feature])} of passengers"
        )
    matched = {unit.closest for unit in results.hidden_units}
    verdict = (
        "as in the handout"
        if {"female", "young male"} <= matched
        else "so this network does not split the work as the handout's story does"
    )
    return "The handout's story has one unit 'is female' and one 'is young male': " + (
        "; ".join(parts) + f"; {verdict}."
    )


def _intervals(intervals: list[tuple[float, float]]) -> str:
    if not intervals:
        return "never"
    return ", ".join(f"{start:g}-{end:g}" for start, end in intervals)


def _network_rule(results: experiment.TitanicResults) -> str:
    ages = results.survival_ages
    return (
        "The trained network predicts survival for men aged "
        f"{_intervals(ages['men'])} and for women aged {_intervals(ages['women'])} "
        "(ages 0-80 scanned every 0.05 years)."
    )


def _hand_table(results: experiment.TitanicResults) -> str:
    rows = [
        [
            check.part,
            check.unit,
            check.case,
            f"σ({check.preactivation:g})",
            check.printed,
            check.handout_text,
            "yes" if check.matches else "NO",
        ]
        for check in results.hand_checks
    ]
    return format_table(
        ["part", "unit", "input", "s", "chainrule", "handout", "same"],
        rows,
        title="Exercise 2's hand-set weights, the handout's numbers recomputed by chainrule",
        align="lll" + "rrrl",
    )


def _hand_summary(results: experiment.TitanicResults) -> str:
    hand = results.model("hand-set")
    parts = [
        f"{name}: agrees on {percent(share)}" for name, share in results.hand_agreement.items()
    ]
    parts.append(f"(c) survival accuracy {percent(hand.accuracy)}")
    return "Hand-set network on the passengers: " + "; ".join(parts) + "."
