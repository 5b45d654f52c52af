"""``chainrule train FILE.csv --target COLUMN``: train an MLP on your own table."""

from __future__ import annotations

import argparse
import itertools
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..nn.handout_names import handout_shape
from ..tables.csv_files import (
    CsvError,
    parse_separator,
    read_csv,
    shown,
)
from ..tables.encoding import choose_feature_columns, drop_missing, fit_preprocessing, target_task
from ..tables.preprocessing import (
    IMPUTE_STRATEGIES,
    MAX_AUTO_CLASSES,
    PREPROCESSING_METADATA_KEY,
    Preprocessing,
)
from ..tabular import predict_arrays
from ._report import format_table, percent
from .main import UsageError

DESCRIPTION = (
    "Train a multi-layer perceptron on a CSV file with a header line. By default every "
    "column except the target is a feature; text columns are one-hot encoded (a note says "
    "so) and numeric ones standardised. The task follows the target: text or a few whole "
    f"numbers (at most {MAX_AUTO_CLASSES}) are classes (log loss for two, cross-entropy for "
    "more), other numbers a regression (square loss). With a validation split, training "
    "stops early when the validation loss stops improving and keeps the best epoch. "
    "Prints the training progress and a final report; --save writes the model to one file "
    "that also holds the feature encoding 'chainrule predict' needs."
)

_LOSSES = ("auto", "mse", "log_loss", "cross_entropy")
_DEFAULT_BATCH = 32
_DEFAULT_LR = {"sgd": 0.1, "adam": 0.01}
_DEFAULT_PATIENCE = 10
_LOG_LINES = 20
#: Widest hidden layer and most weights a command-line network may have: beyond them
#: building the network alone would exhaust the memory of an ordinary machine.
MAX_WIDTH = 100_000
MAX_WEIGHTS = 50_000_000
MAX_SEED = 2**32 - 1


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
        "--exclude",
        metavar="A,B",
        action="append",
        default=[],
        help="columns never to use as features (comma-separated; may be repeated)",
    )
    add_dialect_arguments(parser, decimal=".")
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
        "--patience",
        type=int,
        default=_DEFAULT_PATIENCE,
        metavar="N",
        help="with a validation split, stop after N epochs without a lower validation loss "
        "and keep the best epoch's weights; 0 trains every epoch and keeps the last "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=0.0,
        metavar="L2",
        help="L2 penalty on the weights (not the biases): alpha/2 · Σ W², added to the "
        "training loss (default 0: none)",
    )
    parser.add_argument(
        "--lr-schedule",
        choices=("constant", "step", "cosine"),
        default="constant",
        help="learning rate over the epochs: constant, step (halved every quarter of the "
        "epochs) or cosine (down towards 0 along a half cosine) (default %(default)s)",
    )
    parser.add_argument(
        "--class-weight",
        choices=("none", "balanced"),
        default="none",
        help="balanced weighs each class's rows by rows / (classes × that class's rows) in "
        "the training loss, for imbalanced classes (default %(default)s)",
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
        "classes, imputation) in the file's metadata",
    )
    parser.add_argument(
        "--save-partial",
        action="store_true",
        help="also save when training is interrupted (Ctrl-C) or diverges: the best weights "
        "so far replace MODEL (by default nothing is saved then)",
    )
    parser.add_argument(
        "--log-every",
        type=int,
        metavar="N",
        help=f"print the progress every N epochs (default: about {_LOG_LINES} lines)",
    )
    parser.add_argument(
        "--impute",
        choices=IMPUTE_STRATEGIES,
        help="missing values (empty, NA, NaN, ...) in feature columns: fill numbers with the "
        "training rows' mean, median or most frequent value and text with the most frequent "
        "category (stored in the model, applied by 'chainrule predict'; rows without a "
        "target are left out), or drop the rows; default: stop at the first one",
    )
    parser.add_argument(
        "--drop-missing",
        action="store_true",
        help="the same as --impute drop",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the final report")


def add_dialect_arguments(parser: argparse.ArgumentParser, decimal: str | None) -> None:
    """``--sep`` and ``--decimal`` (default ``decimal``; None: the training file's)."""
    parser.add_argument(
        "--sep",
        metavar="CHAR",
        help="the cell separator: , ; | or 'tab' (default: detected from the first lines)",
    )
    parser.add_argument(
        "--decimal",
        default=decimal,
        choices=(".", ","),
        help="the decimal mark of the file's numbers (default: "
        + (f"{decimal})" if decimal else "the training file's)"),
    )


def parse_hidden(text: str) -> list[int]:
    """``"8,8"`` -> ``[8, 8]``; ``"none"`` -> ``[]``; anything else is a UsageError."""
    if text.strip().lower() in ("none", ""):
        return []
    widths = []
    for part in text.split(","):
        part = part.strip()
        if not (part.isascii() and part.isdigit()) or int(part) < 1:
            raise UsageError(
                f"--hidden {shown(text)}: expected layer widths as whole numbers of at least 1, "
                "separated by commas, such as 8,8 (or 'none')"
            )
        if int(part) > MAX_WIDTH:
            raise UsageError(
                f"--hidden {shown(text)}: a layer of {int(part):,} units is wider than the "
                f"{MAX_WIDTH:,} the command line allows; use narrower layers"
            )
        widths.append(int(part))
    return widths


def check_options(args: argparse.Namespace) -> None:
    """Check every option before any data is read, in command-line words.

    Raises:
        UsageError: the first option out of range, naming it as typed.
    """
    from .. import nn

    if args.activation not in nn.ACTIVATIONS or args.activation == "softmax":
        known = ", ".join(sorted(name for name in nn.ACTIVATIONS if name != "softmax"))
        raise UsageError(f"--activation {shown(args.activation)} is not known; use one of: {known}")
    if not 0.0 <= args.validation_split < 1.0:
        raise UsageError(
            f"--validation-split must be a fraction from 0 to below 1, got {args.validation_split}"
        )
    if args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {args.epochs}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise UsageError(f"--lr must be a positive number, got {args.lr}")
    if args.batch_size is not None and args.batch_size < 0:
        raise UsageError(
            f"--batch-size must be a whole number of at least 1 (or 0 for the full batch), "
            f"got {args.batch_size}"
        )
    if args.log_every is not None and args.log_every < 1:
        raise UsageError(f"--log-every must be at least 1, got {args.log_every}")
    if args.patience < 0:
        raise UsageError(
            f"--patience must be a whole number of epochs, 0 or more (0 turns early stopping "
            f"off), got {args.patience}"
        )
    if not (math.isfinite(args.alpha) and args.alpha >= 0):
        raise UsageError(
            f"--alpha must be a number of 0 or more (0: no L2 penalty), got {args.alpha}"
        )
    if not 0 <= args.seed <= MAX_SEED:
        raise UsageError(f"--seed must be a whole number from 0 to {MAX_SEED}, got {args.seed}")
    if args.drop_missing and args.impute not in (None, "drop"):
        raise UsageError(
            f"--drop-missing is --impute drop; it cannot go with --impute {args.impute}"
        )
    if args.sep is not None:
        try:
            separator = parse_separator(args.sep)
        except CsvError as error:
            raise UsageError(str(error)) from None
        if separator == args.decimal:
            raise UsageError(
                f"--sep {shown(args.sep)} and --decimal {args.decimal!r} are the same character; "
                "a file with decimal commas needs another separator, such as ';'"
            )


def check_output_path(path: Path, option: str) -> None:
    """Check that a file can be written at ``path`` (before any work is done).

    Raises:
        UsageError: its folder does not exist or cannot be written to, or ``path`` is a
            folder or an existing file that cannot be replaced.
    """
    folder = path.parent
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name inside it")
    if not folder.is_dir():
        raise UsageError(f"{option} {path}: there is no folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(
            f"{option} {path}: cannot write to the folder {folder} (permission denied)"
        )
    if path.exists() and not path.is_file():
        raise UsageError(f"{option} {path}: is not a regular file; give a file name")


def run(args: argparse.Namespace) -> int:
    from .. import nn

    check_options(args)
    hidden = parse_hidden(args.hidden)
    impute = "drop" if args.drop_missing else args.impute
    save_path = Path(args.save) if args.save else None
    if save_path is not None:
        check_output_path(save_path, "--save")

    separator = parse_separator(args.sep) if args.sep is not None else None
    excluded = column_list(args.exclude, "--exclude")
    requested = column_list([args.features], "--features") if args.features is not None else None
    require = [(args.target, "target column")] + [(c, "column to exclude") for c in excluded]
    require += [(c, "feature column") for c in requested or []]
    table = read_csv(
        args.file,
        sep=separator,
        decimal=args.decimal,
        progress=not args.quiet,
        require=require,
    )
    note = _silent_note if args.quiet else _printed_note
    feature_columns = choose_feature_columns(table, args.target, requested, excluded, note)
    used = [args.target, *feature_columns]
    if impute == "drop":
        table = drop_missing(table, used, note)
    elif impute is not None:
        table = drop_missing(table, [args.target], note, why="without a target")
    task, labels = target_task(table, args.target, args.loss)
    if args.class_weight == "balanced" and task == "regression":
        raise UsageError(
            f"--class-weight balanced is for class targets, but {shown(args.target)} is a "
            "regression target (numbers); leave it out"
        )

    train_rows, validation_rows = _split_rows(len(table), args.validation_split, args.seed)
    preprocessing, inputs, y = fit_preprocessing(
        table, args.target, feature_columns, task, labels, train_rows, impute, args.decimal, note
    )
    target = preprocessing.target

    sizes = [inputs.shape[1], *hidden, target.outputs]
    weights = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    if weights > MAX_WEIGHTS:
        raise UsageError(
            f"--hidden {args.hidden}: the network {'→'.join(map(str, sizes))} would have "
            f"{weights:,} weights, more than the {MAX_WEIGHTS:,} the command line allows; "
            "use narrower layers"
        )
    output_activation = {"binary": "sigmoid", "multiclass": "softmax", "regression": None}
    model = nn.MLP(
        sizes,
        activation=args.activation,
        output_activation=output_activation[task],
        seed=args.seed,
    )
    batch_size = _batch_size(args.batch_size, len(train_rows))
    lr = args.lr if args.lr is not None else _DEFAULT_LR[args.optimizer]
    every = args.log_every or max(1, math.ceil(args.epochs / _LOG_LINES))
    validating = len(validation_rows) > 0
    patience = args.patience if validating and args.patience > 0 else None

    if not args.quiet:
        layers = handout_shape(model.sizes, model.bias)
        output = output_activation[task]
        units = args.activation + (f", {output} output" if output else "")
        if model.bias:  # the handouts' convention: the input width counts the bias unit
            units = f"{model.sizes[0]} inputs + the bias unit, as the handouts count; {units}"
        on = f", validating on {len(validation_rows)}" if validating else ""
        stopping = f", early stopping after {patience} epochs without progress" if patience else ""
        print(
            f"Training MLP {layers} ({units}) on {len(train_rows)} rows of {table.path}"
            f"{on}: {task}, loss {preprocessing.loss}, {args.optimizer} "
            f"(lr {lr:g}), batch {batch_size or len(train_rows)}, {args.epochs} epochs"
            f"{stopping}."
        )

    def log(epoch: int, logs: dict[str, float]) -> None:
        if epoch == 1 or epoch % every == 0 or epoch == args.epochs:
            print(f"epoch {epoch:>{len(str(args.epochs))}}/{args.epochs}  " + _format_logs(logs))

    history = _fit_quietly(
        model,
        inputs[train_rows],
        y[train_rows],
        loss=preprocessing.loss,
        optimizer=args.optimizer,
        lr=lr,
        epochs=args.epochs,
        batch_size=batch_size,
        validation_data=(inputs[validation_rows], y[validation_rows]) if validating else None,
        early_stopping=patience,
        weight_decay=args.alpha,
        lr_schedule=None if args.lr_schedule == "constant" else args.lr_schedule,
        class_weight="balanced" if args.class_weight == "balanced" else None,
        seed=args.seed,
        callbacks=() if args.quiet else (log,),
        progress=False,
    )
    diverged = history.diverged or not all(
        np.isfinite(parameter.data).all() for parameter in model.parameters()
    )
    if diverged:
        saved = _save_partial(args, model, preprocessing, save_path)
        raise UsageError(
            f"training diverged at epoch {history.diverged_epoch or len(history.epoch)} "
            "(the loss grew without bound); "
            f"{saved}; try a smaller --lr (such as {lr / 10:g})"
        )

    if not args.quiet:
        print()
    print(_final_report(model, preprocessing, inputs, y, train_rows, validation_rows))
    print(_best_epoch_line(history, patience, validating))
    if history.interrupted:
        saved = _save_partial(args, model, preprocessing, save_path)
        print(f"Interrupted at epoch {len(history.epoch)}: {saved}.")
        return 130
    if save_path is not None:
        _save(model, preprocessing, save_path)
        print(f"Saved the model and its preprocessing to {save_path}.")
    return 0


def _fit_quietly(model: Any, X: np.ndarray, y: np.ndarray, **options: Any) -> Any:
    """chainrule.fit, with numpy's overflow warnings kept off the terminal.

    A diverging run makes numpy warn about overflow from deep inside the library;
    the command line reports the divergence itself, in its own words.
    """
    from ..training import NoProgressWarning, TrainingDivergedWarning, fit

    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("always", NoProgressWarning)
        # The command line reports a divergence itself (exit 2, what was saved).
        warnings.simplefilter("ignore", TrainingDivergedWarning)
        history = fit(model, X, y, **options)
    for warning in caught:
        if issubclass(warning.category, NoProgressWarning):
            print(f"note: {warning.message}")
    return history


def _save_partial(
    args: argparse.Namespace, model: Any, preprocessing: Preprocessing, path: Path | None
) -> str:
    """Save after an interrupted or diverged run only if asked; say what happened."""
    if path is None:
        return "nothing saved (no --save)"
    if not args.save_partial:
        state = "left unchanged" if path.exists() else "not written"
        return f"nothing saved: {path} {state} (--save-partial saves the best weights so far)"
    _save(model, preprocessing, path)
    return f"saved the best weights so far to {path} (--save-partial)"


def _save(model: Any, preprocessing: Preprocessing, path: Path) -> None:
    try:
        save_model(model, preprocessing, path)
    except OSError as error:
        raise UsageError(f"cannot save the model to {path}: {error.strerror or error}") from None


def _best_epoch_line(history: Any, patience: int | None, validating: bool) -> str:
    epochs = len(history.epoch)
    if not validating or history.best_epoch is None:
        return f"Trained {epochs} epochs; the model is the last epoch's."
    best = history.best_epoch
    lowest = history.best_loss if history.best_loss is not None else history.val_loss[best - 1]
    if patience is None:
        return (
            f"Lowest validation loss {lowest:.6g} at epoch {best}; the model is the last "
            f"epoch's ({epochs}), as --patience 0 asks."
        )
    stopped = (
        f"Stopped early at epoch {epochs}: no lower validation loss for {patience} epochs. "
        if history.stopped_early and not history.interrupted
        else ""
    )
    return f"{stopped}The model is epoch {best}'s, with the lowest validation loss {lowest:.6g}."


def column_list(values: list[str], option: str) -> list[str]:
    """Column names given as comma-separated options (``--exclude a,b --exclude c``).

    Args:
        values: each option's text, as typed.
        option: the option's name, for the message.

    Raises:
        UsageError: an empty name between commas.
    """
    columns = []
    for value in values:
        for part in value.split(","):
            if not part.strip():
                raise UsageError(f"{option} {shown(value)}: an empty name between commas")
            columns.append(part.strip())
    return columns


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
            f"--batch-size must be a whole number of at least 1 (or 0 for the full batch), "
            f"got {requested}"
        )
    return min(requested, rows)


def _printed_note(message: str) -> None:
    print(f"note: {message}")


def _silent_note(message: str) -> None:
    """Say nothing (``--quiet``)."""


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


def _final_report(
    model: Any,
    preprocessing: Preprocessing,
    inputs: np.ndarray,
    y: np.ndarray,
    train_rows: np.ndarray,
    validation_rows: np.ndarray,
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
            [f"baseline (always {shown(target.classes[majority])})"]
            + [percent(float(np.mean(classes[r] == majority))) for r in parts.values()]
        )
        rows.append(["log loss"] + [_log_loss(predictions[r], classes[r]) for r in parts.values()])
    return format_table(
        ["", *(f"{name} ({len(r)} rows)" for name, r in parts.items())],
        rows,
        title=f"Final report: target {shown(target.column)} ({target.task}), "
        f"{sum(p.data.size for p in model.parameters())} weights",
    )


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
