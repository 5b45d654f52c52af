"""``chainrule train FILE.csv --target COLUMN``: train an MLP on your own table."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np

from ._csv import (
    MAX_AUTO_CLASSES,
    PREPROCESSING_METADATA_KEY,
    ColumnEncoding,
    CsvError,
    CsvTable,
    Preprocessing,
    TargetEncoding,
    categories,
    is_missing,
    is_numeric_column,
    looks_like_identifier,
    number_label,
    numeric_column,
    read_csv,
    text_column,
)
from ._report import format_table, percent
from .main import UsageError

DESCRIPTION = (
    "Train a multi-layer perceptron on a CSV file with a header line. By default every "
    "column except the target is a feature; text columns are one-hot encoded (a note says "
    "so) and numeric ones standardised. The task follows the target: text or a few whole "
    f"numbers (at most {MAX_AUTO_CLASSES}) are classes (log loss for two, cross-entropy for "
    "more), other numbers a regression (square loss). Prints the training progress and a "
    "final report; --save writes the model to one file that also holds the feature "
    "encoding 'chainrule predict' needs."
)

_LOSSES = ("auto", "mse", "log_loss", "cross_entropy")
_DEFAULT_BATCH = 32
_DEFAULT_LR = {"sgd": 0.1, "adam": 0.01}
_LOG_LINES = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE.csv", help="the training data, with a header line")
    parser.add_argument("--target", required=True, metavar="COLUMN", help="the column to predict")
    parser.add_argument(
        "--features",
        metavar="A,B,C",
        help="comma-separated feature columns (default: every other column, leaving out "
        "text columns that look like identifiers)",
    )
    parser.add_argument(
        "--hidden",
        default="8,8",
        metavar="N,N,...",
        help="hidden layer widths, comma-separated; 'none' for no hidden layer "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--activation",
        default="relu",
        metavar="NAME",
        help="hidden activation: relu, sigmoid, tanh, softplus, identity (default %(default)s)",
    )
    parser.add_argument(
        "--loss",
        default="auto",
        choices=_LOSSES,
        help="auto (from the target), mse (regression), log_loss (two classes), "
        "cross_entropy (classes) (default %(default)s)",
    )
    parser.add_argument(
        "--epochs", type=int, default=100, metavar="N", help="passes over the data (default 100)"
    )
    parser.add_argument(
        "--lr",
        type=float,
        metavar="RATE",
        help="learning rate (default 0.01 for adam, 0.1 for sgd)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        help=f"examples per step (default {_DEFAULT_BATCH}, or all rows if fewer); "
        "0 for the full batch",
    )
    parser.add_argument(
        "--optimizer", default="adam", choices=("sgd", "adam"), help="(default %(default)s)"
    )
    parser.add_argument(
        "--validation-split",
        type=float,
        default=0.2,
        metavar="FRACTION",
        help="share of the rows held out to validate on, 0 for none (default %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="seeds the weights, split and shuffling (default 0)",
    )
    parser.add_argument(
        "--save",
        metavar="MODEL",
        help="write the trained model to MODEL, with its preprocessing (feature encoding, "
        "classes) in the file's metadata",
    )
    parser.add_argument(
        "--log-every",
        type=int,
        metavar="N",
        help=f"print the progress every N epochs (default: about {_LOG_LINES} lines)",
    )
    parser.add_argument(
        "--drop-missing",
        action="store_true",
        help="leave out rows with a missing value (empty, NA, NaN, ...) in the target or a "
        "feature column, instead of stopping at the first one",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the final report")


def parse_hidden(text: str) -> list[int]:
    """``"8,8"`` -> ``[8, 8]``; ``"none"`` -> ``[]``; anything else is a UsageError."""
    if text.strip().lower() in ("none", ""):
        return []
    widths = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise UsageError(
                f"--hidden {text!r}: expected layer widths as whole numbers of at least 1, "
                "separated by commas, such as 8,8 (or 'none')"
            )
        widths.append(int(part))
    return widths


def run(args: argparse.Namespace) -> int:
    from .. import nn
    from ..training import fit

    hidden = parse_hidden(args.hidden)
    if args.activation not in nn.ACTIVATIONS or args.activation == "softmax":
        known = ", ".join(sorted(name for name in nn.ACTIVATIONS if name != "softmax"))
        raise UsageError(f"--activation {args.activation!r} is not known; use one of: {known}")
    if not 0.0 <= args.validation_split < 1.0:
        raise UsageError(
            f"--validation-split must be a fraction from 0 to below 1, got {args.validation_split}"
        )
    if args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {args.epochs}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise UsageError(f"--lr must be a positive number, got {args.lr}")
    if args.log_every is not None and args.log_every < 1:
        raise UsageError(f"--log-every must be at least 1, got {args.log_every}")
    save_path = Path(args.save) if args.save else None
    if save_path is not None and not save_path.parent.is_dir():
        raise UsageError(f"--save {save_path}: there is no folder {save_path.parent}")

    table = read_csv(args.file)
    table.index(args.target, "target column")
    feature_columns = _feature_columns(table, args.target, args.features, quiet=args.quiet)
    if args.drop_missing:
        table = _drop_missing(table, [args.target, *feature_columns], quiet=args.quiet)
    target_task, labels = _target_task(table, args.target, args.loss)

    train_rows, validation_rows = _split_rows(len(table), args.validation_split, args.seed)
    encodings = _feature_encodings(table, feature_columns, train_rows, quiet=args.quiet)
    target, y = _encode_target(table, args.target, target_task, labels, train_rows)
    preprocessing = Preprocessing(tuple(encodings), target, _fit_loss(target_task))
    inputs, _ = preprocessing.encode(table)

    output_activation = {"binary": "sigmoid", "multiclass": "softmax", "regression": None}
    model = nn.MLP(
        [inputs.shape[1], *hidden, target.outputs],
        activation=args.activation,
        output_activation=output_activation[target_task],
        seed=args.seed,
    )
    batch_size = _batch_size(args.batch_size, len(train_rows))
    lr = args.lr if args.lr is not None else _DEFAULT_LR[args.optimizer]
    every = args.log_every or max(1, math.ceil(args.epochs / _LOG_LINES))

    if not args.quiet:
        layers = "→".join(str(size) for size in model.sizes)
        output = output_activation[target_task]
        units = args.activation + (f", {output} output" if output else "")
        validating = f", validating on {len(validation_rows)}" if len(validation_rows) else ""
        print(
            f"Training MLP {layers} ({units}) on {len(train_rows)} rows of {table.path}"
            f"{validating}: {target_task}, loss {preprocessing.loss}, {args.optimizer} "
            f"(lr {lr:g}), batch {batch_size or len(train_rows)}, {args.epochs} epochs."
        )

    def log(epoch: int, logs: dict[str, float]) -> None:
        if epoch == 1 or epoch % every == 0 or epoch == args.epochs:
            print(f"epoch {epoch:>{len(str(args.epochs))}}/{args.epochs}  " + _format_logs(logs))

    history = fit(
        model,
        inputs[train_rows],
        y[train_rows],
        loss=preprocessing.loss,
        optimizer=args.optimizer,
        lr=lr,
        epochs=args.epochs,
        batch_size=batch_size,
        validation_data=(inputs[validation_rows], y[validation_rows])
        if len(validation_rows)
        else None,
        seed=args.seed,
        callbacks=() if args.quiet else (log,),
        progress=False,
    )
    if history.interrupted:
        print("Interrupted: reporting the best weights so far.")

    if not args.quiet:
        print()
    print(
        _final_report(
            model, preprocessing, inputs, y, train_rows, validation_rows, history.best_epoch
        )
    )
    if save_path is not None:
        try:
            save_model(model, preprocessing, save_path)
        except OSError as error:
            raise UsageError(f"cannot save the model to {save_path}: {error}") from None
        print(f"Saved the model and its preprocessing to {save_path}.")
    return 0


# --- reading the target and the features -----------------------------------------------------


def _target_task(table: CsvTable, name: str, loss: str) -> tuple[str, tuple[str, ...]]:
    """The task (binary, multiclass, regression) and, for classes, their labels."""
    cells = table.cells(name)
    for row, cell in enumerate(cells):
        if is_missing(cell):
            raise CsvError(
                f"{table.where(row, name)}: the target is missing ({cell!r}); every row needs "
                "one: fill it in or remove the row"
            )
    numeric = is_numeric_column(table, name)
    if loss == "mse":
        if not numeric:
            raise UsageError(
                f"--loss mse needs a numeric target, but column {name!r} holds text "
                f"such as {cells[0]!r}; use --loss auto to learn its classes"
            )
        values = numeric_column(table, name)
        if np.unique(values).size < 2:
            raise _one_value(table, name, number_label(values[0]))
        return "regression", ()
    if numeric:
        values = numeric_column(table, name)
        distinct = np.unique(values)
        whole = bool(np.all(distinct == np.round(distinct)))
        if loss == "auto" and not (whole and distinct.size <= MAX_AUTO_CLASSES):
            if distinct.size < 2:
                raise _one_value(table, name, number_label(values[0]))
            return "regression", ()
        labels = tuple(number_label(value) for value in distinct)
    else:
        labels = tuple(categories(cells))
    if len(labels) < 2:
        raise _one_value(table, name, labels[0])
    if loss == "log_loss" and len(labels) != 2:
        raise UsageError(
            f"--loss log_loss is for two classes, but target {name!r} has {len(labels)} "
            f"({_preview(labels)}); use --loss cross_entropy"
        )
    if loss == "cross_entropy" or len(labels) > 2:
        return "multiclass", labels
    return "binary", labels


def _one_value(table: CsvTable, name: str, label: str) -> CsvError:
    return CsvError(
        f"{table.path}: target column {name!r} has a single value ({label!r}) in all "
        f"{len(table)} rows, so there is nothing to learn; a classifier needs at least two "
        "classes"
    )


def _preview(labels: tuple[str, ...], count: int = 5) -> str:
    shown = ", ".join(labels[:count])
    return shown + (", ..." if len(labels) > count else "")


def _feature_columns(table: CsvTable, target: str, requested: str | None, quiet: bool) -> list[str]:
    if requested is not None:
        columns = [part.strip() for part in requested.split(",")]
        if any(not column for column in columns):
            raise UsageError(f"--features {requested!r}: an empty name between commas")
        for column in columns:
            table.index(column, "feature column")
        if target in columns:
            raise UsageError(f"--features lists the target column {target!r}; leave it out")
        duplicates = sorted({column for column in columns if columns.count(column) > 1})
        if duplicates:
            raise UsageError(f"--features names {', '.join(map(repr, duplicates))} twice")
        return columns
    columns = []
    for column in table.header:
        if column == target:
            continue
        if is_numeric_column(table, column):
            if _looks_like_row_number(table, column):
                _note(
                    f"left out column {column!r}: its values count the rows one by one, like "
                    "an id (name it in --features to use it)",
                    quiet,
                )
                continue
        else:
            cells = [cell for cell in table.cells(column) if not is_missing(cell)]
            if looks_like_identifier(cells):
                _note(
                    f"left out text column {column!r}: {len(set(cells))} different values in "
                    f"{len(table)} rows looks like names or ids (name it in --features to use it)",
                    quiet,
                )
                continue
        columns.append(column)
    if not columns:
        raise UsageError(
            f"{table.path}: no feature columns left besides the target {target!r}; "
            "name some with --features"
        )
    return columns


def _drop_missing(table: CsvTable, columns: list[str], quiet: bool) -> CsvTable:
    positions = [table.index(column) for column in columns]
    keep = []
    counts = dict.fromkeys(columns, 0)
    for row, cells in enumerate(table.rows):
        missing = [column for column, p in zip(columns, positions) if is_missing(cells[p])]
        for column in missing:
            counts[column] += 1
        if not missing:
            keep.append(row)
    dropped = len(table) - len(keep)
    if not keep:
        raise CsvError(f"{table.path}: every row has a missing value in a used column")
    if dropped:
        where = ", ".join(f"{column}: {count}" for column, count in counts.items() if count)
        _note(f"dropped {dropped} of {len(table)} rows with missing values ({where})", quiet)
    return table.subset(keep)


def _looks_like_row_number(table: CsvTable, column: str) -> bool:
    """Whole numbers that step by exactly 1 from row to row (PassengerId, an index)."""
    cells = table.cells(column)
    if len(cells) < 3 or any(is_missing(cell) for cell in cells):
        return False
    try:
        values = np.array([float(cell) for cell in cells])
    except ValueError:
        return False
    return bool(np.all(np.diff(values) == 1) and values[0] == round(values[0]))


def _feature_encodings(
    table: CsvTable, columns: list[str], train_rows: np.ndarray, quiet: bool
) -> list[ColumnEncoding]:
    encodings = []
    for column in columns:
        if is_numeric_column(table, column):
            values = numeric_column(table, column)[train_rows]
            spread = float(values.std())
            # A constant column carries no information; scale 1 keeps it finite.
            scale = spread if spread > 0 else 1.0
            encodings.append(ColumnEncoding(column, "numeric", float(values.mean()), scale))
        else:
            vocabulary = tuple(categories(text_column(table, column)))
            encodings.append(ColumnEncoding(column, "one_hot", categories=vocabulary))
            _note(
                f"text column {column!r} one-hot encoded into {len(vocabulary)} inputs "
                f"({_preview(vocabulary)})",
                quiet,
            )
    return encodings


def _encode_target(
    table: CsvTable, name: str, task: str, labels: tuple[str, ...], train_rows: np.ndarray
) -> tuple[TargetEncoding, np.ndarray]:
    if task == "regression":
        values = numeric_column(table, name)
        mean = float(values[train_rows].mean())
        spread = float(values[train_rows].std())
        scale = spread if spread > 0 else 1.0
        return TargetEncoding(name, task, mean=mean, scale=scale), (values - mean) / scale
    if is_numeric_column(table, name):
        cells = [number_label(value) for value in numeric_column(table, name)]
    else:
        cells = table.cells(name)
    index = {label: position for position, label in enumerate(labels)}
    codes = np.array([index[cell] for cell in cells])
    encoding = TargetEncoding(name, task, classes=labels)
    if task == "binary":
        return encoding, codes.astype(np.float64)
    return encoding, codes.astype(np.int64)


def _fit_loss(task: str) -> str:
    return {"binary": "log_loss", "multiclass": "cross_entropy", "regression": "mse"}[task]


def _split_rows(count: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if fraction == 0:
        return np.arange(count), np.arange(0)
    held = round(count * fraction)
    if held < 1 or held >= count:
        raise UsageError(
            f"--validation-split {fraction} of {count} rows leaves {count - held} for training "
            f"and {held} for validation; both need at least one (use 0 for no validation)"
        )
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[held:]), np.sort(order[:held])


def _batch_size(requested: int | None, rows: int) -> int | None:
    if requested is None:
        return min(_DEFAULT_BATCH, rows)
    if requested == 0:
        return None  # the full batch
    if requested < 0:
        raise UsageError(
            f"--batch-size must be at least 1 (or 0 for the full batch), got {requested}"
        )
    return requested


def _note(message: str, quiet: bool) -> None:
    if not quiet:
        print(f"note: {message}")


def _format_logs(logs: dict[str, float]) -> str:
    parts = [f"loss {logs['loss']:.4f}"]
    if "accuracy" in logs:
        parts.append(f"accuracy {percent(logs['accuracy'])}")
    if "val_loss" in logs:
        parts.append(f"val_loss {logs['val_loss']:.4f}")
    if "val_accuracy" in logs:
        parts.append(f"val_accuracy {percent(logs['val_accuracy'])}")
    return "  ".join(parts)


# --- the final report ----------------------------------------------------------------------


def predict_arrays(model: Any, preprocessing: Preprocessing, inputs: np.ndarray) -> np.ndarray:
    """The model's outputs for encoded inputs: class probabilities, or values in target units.

    Returns:
        binary: shape (rows, 2), the probabilities of the two classes; multiclass:
        (rows, classes); regression: (rows,) in the target column's units.
    """
    from ..functional import no_grad

    with no_grad():
        outputs = np.asarray(model(inputs).data, dtype=np.float64)
    target = preprocessing.target
    if target.task == "binary":
        positive = outputs[:, 0]
        return np.column_stack([1.0 - positive, positive])
    if target.task == "multiclass":
        return outputs
    return outputs[:, 0] * target.scale + target.mean


def _final_report(
    model: Any,
    preprocessing: Preprocessing,
    inputs: np.ndarray,
    y: np.ndarray,
    train_rows: np.ndarray,
    validation_rows: np.ndarray,
    best_epoch: int | None,
) -> str:
    target = preprocessing.target
    predictions = predict_arrays(model, preprocessing, inputs)
    parts = {"train": train_rows}
    if len(validation_rows):
        parts["validation"] = validation_rows
    rows = []
    if target.task == "regression":
        truth = y * target.scale + target.mean
        train_mean = float(truth[train_rows].mean())
        rows.append(["RMSE"] + [_rmse(predictions[r], truth[r]) for r in parts.values()])
        rows.append(
            [f"baseline RMSE (always {train_mean:.4g})"]
            + [_rmse(np.full(len(r), train_mean), truth[r]) for r in parts.values()]
        )
        rows.append(["R²"] + [_r_squared(predictions[r], truth[r]) for r in parts.values()])
    else:
        classes = y.astype(np.int64)
        chosen = predictions.argmax(axis=1)
        majority = int(np.bincount(classes[train_rows], minlength=len(target.classes)).argmax())
        rows.append(
            ["accuracy"]
            + [percent(float(np.mean(chosen[r] == classes[r]))) for r in parts.values()]
        )
        rows.append(
            [f"baseline (always {target.classes[majority]!r})"]
            + [percent(float(np.mean(classes[r] == majority))) for r in parts.values()]
        )
        rows.append(["log loss"] + [_log_loss(predictions[r], classes[r]) for r in parts.values()])
    table = format_table(
        ["", *(f"{name} ({len(r)} rows)" for name, r in parts.items())],
        rows,
        title=f"Final report: target {target.column!r} ({target.task}), "
        f"{sum(p.data.size for p in model.parameters())} weights",
    )
    if best_epoch is not None and len(validation_rows):
        table += (
            f"\nLowest validation loss at epoch {best_epoch} (the model above is the last "
            "epoch's; fewer --epochs would stop there)."
        )
    return table


def _rmse(prediction: np.ndarray, truth: np.ndarray) -> str:
    return f"{math.sqrt(float(np.mean((prediction - truth) ** 2))):.4g}"


def _r_squared(prediction: np.ndarray, truth: np.ndarray) -> str:
    total = float(np.sum((truth - truth.mean()) ** 2))
    if total == 0:
        return "n/a"
    return f"{1 - float(np.sum((prediction - truth) ** 2)) / total:.3f}"


def _log_loss(probabilities: np.ndarray, classes: np.ndarray) -> str:
    chosen = np.clip(probabilities[np.arange(len(classes)), classes], 1e-15, 1.0)
    return f"{-float(np.mean(np.log(chosen))):.4f}"


# --- saving ----------------------------------------------------------------------------------


def save_model(model: Any, preprocessing: Preprocessing, path: Path) -> Path:
    """Write the model with its preprocessing in the file's metadata (chainrule.save).

    One file, written atomically, so the model and the encoding of its inputs can
    never be separated or mismatched. ``chainrule.io.read_metadata(path)`` returns
    ``{"preprocessing": ...}`` for it.

    Returns:
        The path written.
    """
    from ..io import save

    return save(model, path, metadata={PREPROCESSING_METADATA_KEY: preprocessing.as_metadata()})
