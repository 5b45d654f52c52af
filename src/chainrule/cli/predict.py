"""``chainrule predict MODEL FILE.csv``: a saved model's predictions for a CSV file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._csv import PREPROCESSING_METADATA_KEY, Preprocessing, read_csv, write_csv
from .main import UsageError
from .train import predict_arrays

DESCRIPTION = (
    "Predict with a model saved by 'chainrule train --save MODEL'. Reads the model and, "
    "from the same file, how CSV columns become its inputs, encodes FILE.csv that way and "
    "writes one row per input row: the predicted class and each class's probability, or "
    "the predicted value for a regression. Other columns of FILE.csv, such as the target, "
    "are ignored."
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
    """The model saved at ``model_path`` and the preprocessing stored in its metadata.

    Raises:
        UsageError: there is no such file, or it holds no ``chainrule train``
            preprocessing (a model saved with chainrule.save from Python), or the
            preprocessing does not fit the network's inputs and outputs.
        ModelFileError: the file is not a valid model file.
        PreprocessingError: the stored preprocessing is malformed.
    """
    from ..io import load

    if not model_path.is_file():
        raise UsageError(f"{model_path}: no such model file")
    # One read gives the model and its metadata from the same version of the file.
    model, metadata = load(model_path, with_metadata=True)
    document = metadata.get(PREPROCESSING_METADATA_KEY)
    if document is None:
        raise UsageError(
            f"{model_path} is a chainrule model file without the preprocessing that "
            "'chainrule train --save' stores in it (how CSV columns become inputs), such "
            "as a model saved with chainrule.save from Python; train one with 'chainrule "
            "train FILE.csv --target COLUMN --save MODEL', or predict in Python with "
            "chainrule.load"
        )
    preprocessing = Preprocessing.from_metadata(document, str(model_path))
    sizes = getattr(model, "sizes", None)
    expected = [len(preprocessing.input_names), preprocessing.target.outputs]
    if sizes is None or [sizes[0], sizes[-1]] != expected:
        shape = f"{sizes[0]} inputs and {sizes[-1]} outputs" if sizes else "an unknown shape"
        raise UsageError(
            f"{model_path}: its network has {shape} but its preprocessing describes "
            f"{expected[0]} inputs and {expected[1]} outputs; train and save the model "
            "again with 'chainrule train --save'"
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
