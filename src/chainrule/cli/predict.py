"""``chainrule predict MODEL FILE.csv``: a saved model's predictions for a CSV file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..tables.csv_files import (
    CsvError,
    check_regular_file,
    parse_separator,
    read_csv,
    shown,
    write_csv,
)
from ..tables.preprocessing import PREPROCESSING_METADATA_KEY, Preprocessing
from .main import UsageError
from .train import add_dialect_arguments, check_output_path, column_list

DESCRIPTION = (
    "Predict with a model saved by 'chainrule train --save MODEL'. Reads the model and, "
    "from the same file, how CSV columns become its inputs, encodes FILE.csv that way "
    "(filling missing cells as --impute did in training) and writes one row per input row: "
    "the predicted class and each class's probability, or the predicted value for a "
    "regression, after any --keep columns. Other columns of FILE.csv are ignored."
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
    parser.add_argument(
        "--keep",
        metavar="A,B",
        action="append",
        default=[],
        help="copy these columns of FILE.csv (such as an id) into the predictions, first, "
        "as written (comma-separated; may be repeated)",
    )
    add_dialect_arguments(parser, decimal=None)


def load_trained(model_path: Path) -> tuple[object, Preprocessing]:
    """The model saved at ``model_path`` and the preprocessing stored in its metadata.

    Raises:
        UsageError: there is no such file, it is a folder or not a regular file, it holds
            no ``chainrule train`` preprocessing (a model saved with chainrule.save from
            Python), or the preprocessing does not fit the network's inputs and outputs.
        ModelFileError: the file is not a valid model file.
        PreprocessingError: the stored preprocessing is malformed.
    """
    from ..io import load
    from ..tabular import TabularModel, TabularModelError

    if model_path.is_dir():
        raise UsageError(
            f"{model_path}: is a folder, not a model file; give the file that "
            "'chainrule train --save MODEL' wrote"
        )
    try:
        check_regular_file(model_path, "model file")
    except CsvError as error:
        if not model_path.exists():
            raise UsageError(f"{model_path}: no such model file") from None
        raise UsageError(str(error)) from None
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
    try:
        TabularModel(model, preprocessing, str(model_path))
    except TabularModelError as error:
        raise UsageError(str(error)) from None
    return model, preprocessing


def run(args: argparse.Namespace) -> int:
    from ..tabular import predict_arrays

    output = Path(args.output) if args.output else None
    if output is not None:
        check_output_path(output, "-o")
    separator = parse_separator(args.sep) if args.sep is not None else None
    keep = column_list(args.keep, "--keep")
    model, preprocessing = load_trained(Path(args.model))
    decimal = args.decimal or preprocessing.decimal
    require = [
        (c, "feature column (the model was trained on it)") for c in preprocessing.feature_columns
    ]
    require += [(column, "column to keep") for column in keep]
    table = read_csv(args.file, sep=separator, decimal=decimal, require=require)
    inputs, unknown = preprocessing.encode(table)
    for column, unseen in sorted(unknown.items()):
        shown_values = ", ".join(shown(value) for value in sorted(unseen)[:5])
        print(
            f"note: column {shown(column)} has values not seen in training ({shown_values}); "
            "those rows get no category",
            file=sys.stderr,
        )
    predictions = predict_arrays(model, preprocessing, inputs)
    target = preprocessing.target
    kept = [table.texts(column) for column in keep]
    if target.task == "regression":
        header = [f"predicted_{target.column}"]
        outputs = [[f"{value:.10g}"] for value in predictions]
    else:
        header = [f"predicted_{target.column}"] + [
            f"probability_{label}" for label in target.classes
        ]
        chosen = np.asarray(target.classes, dtype=object)[predictions.argmax(axis=1)]
        outputs = [[label] + [f"{p:.6f}" for p in row] for label, row in zip(chosen, predictions)]
    rows = [[str(cells[row]) for cells in kept] + value for row, value in enumerate(outputs)]
    clash = sorted(set(keep) & set(header))
    if clash:
        raise UsageError(f"--keep {listed_names(clash)}: the predictions already have that column")
    write_csv(output, [*keep, *header], rows)
    if output is not None:
        print(f"wrote {len(rows)} predictions to {output}", file=sys.stderr)
    return 0


def listed_names(names: list[str]) -> str:
    """Names for a message, each quoted safely."""
    return ", ".join(shown(name) for name in names)
