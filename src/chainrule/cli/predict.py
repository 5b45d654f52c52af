"""``chainrule predict MODEL FILE.csv``: a saved model's predictions for a CSV file."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from ._csv import PREPROCESSING_SUFFIX, Preprocessing, read_csv, write_csv
from .main import UsageError
from .train import predict_arrays, sidecar_path

DESCRIPTION = (
    "Predict with a model saved by 'chainrule train --save MODEL'. Reads MODEL and "
    f"MODEL{PREPROCESSING_SUFFIX} (how CSV columns become inputs), encodes FILE.csv the "
    "same way and writes one row per input row: the predicted class and each class's "
    "probability, or the predicted value for a regression. Other columns of FILE.csv, "
    "such as the target, are ignored."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="a model saved by 'chainrule train --save'")
    parser.add_argument("file", metavar="FILE.csv", help="rows to predict, with a header line")
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT.csv",
        help="write the predictions here (atomically) instead of to standard output",
    )


def load_trained(model_path: Path) -> tuple[object, Preprocessing]:
    """The model saved at ``model_path`` and its preprocessing, checked to belong together.

    Raises:
        UsageError: the model or its preprocessing file is missing, unreadable, or they
            do not belong together.
    """
    from ..io import load

    if not model_path.is_file():
        raise UsageError(f"{model_path}: no such model file")
    sidecar = sidecar_path(model_path)
    if not sidecar.is_file():
        raise UsageError(
            f"{model_path}: its preprocessing file {sidecar} is missing; models saved by "
            "'chainrule train --save' come with one"
        )
    try:
        preprocessing = Preprocessing.from_json(sidecar.read_text(encoding="utf-8"), str(sidecar))
        model_bytes = model_path.read_bytes()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {sidecar} or {model_path}: {error}") from None
    if hashlib.sha256(model_bytes).hexdigest() != preprocessing.model_sha256:
        raise UsageError(
            f"{model_path} is not the model {sidecar} was written for (its SHA-256 differs); "
            "save the model again with 'chainrule train --save'"
        )
    model = load(model_path)
    sizes = getattr(model, "sizes", None)
    expected = [len(preprocessing.input_names), preprocessing.target.outputs]
    if sizes is None or [sizes[0], sizes[-1]] != expected:
        shape = f"{sizes[0]} inputs and {sizes[-1]} outputs" if sizes else "an unknown shape"
        raise UsageError(
            f"{model_path} has {shape} but {sidecar} describes {expected[0]} inputs and "
            f"{expected[1]} outputs; save the model again with 'chainrule train --save'"
        )
    return model, preprocessing


def run(args: argparse.Namespace) -> int:
    model, preprocessing = load_trained(Path(args.model))
    output = Path(args.output) if args.output else None
    if output is not None and not output.parent.is_dir():
        raise UsageError(f"-o {output}: there is no folder {output.parent}")
    table = read_csv(args.file)
    inputs, unknown = preprocessing.encode(table)
    for column, values in sorted(unknown.items()):
        shown = ", ".join(repr(value) for value in sorted(values)[:5])
        print(
            f"note: column {column!r} has values not seen in training ({shown}); "
            "those rows get no category",
            file=sys.stderr,
        )
    predictions = predict_arrays(model, preprocessing, inputs)
    target = preprocessing.target
    if target.task == "regression":
        header = [f"predicted_{target.column}"]
        rows = [[f"{value:.10g}"] for value in predictions]
    else:
        header = [f"predicted_{target.column}"] + [
            f"probability_{label}" for label in target.classes
        ]
        rows = [
            [target.classes[int(row.argmax())]] + [f"{p:.6f}" for p in row] for row in predictions
        ]
    write_csv(output, header, rows)
    if output is not None:
        print(f"wrote {len(rows)} predictions to {output}", file=sys.stderr)
    return 0
