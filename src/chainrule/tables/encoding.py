"""From a table's columns to a model's inputs and target: the choices ``chainrule train`` makes.

``chainrule train`` and the playground's uploads both encode a table here, so the same
file gives the same inputs, the same target and the same messages in both:

* :func:`choose_feature_columns`: every column but the target, leaving out what looks
  like an identifier (a row number, a text column of names), or the columns asked for;
* :func:`target_task`: binary, multiclass or regression, read from the target's values;
* :func:`fit_preprocessing`: each feature's encoding (standardised numbers, one-hot text,
  the value that fills a missing cell), the target's encoding and the loss for the task,
  fitted on the training rows, as one :class:`~.preprocessing.Preprocessing`.

A problem with the file itself (a missing target, an overflowing column) is a
:class:`~.csv_table.CsvError` naming the file, line and column; a request that does not
fit the table (``--loss mse`` for a text target, a feature named twice) is an
:class:`EncodingError`. Both are chainrule errors: the command line prints them as one
line with exit status 2, the playground returns them as its JSON error. The messages name
the command line's options, since that is where a user can change the request.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import ChainruleError
from .csv_files import (
    CsvError,
    CsvTable,
    categories,
    is_numeric_column,
    listed,
    looks_like_identifier,
    number_label,
    numeric_column,
    shown,
    text_column,
)
from .preprocessing import MAX_AUTO_CLASSES, ColumnEncoding, Preprocessing, TargetEncoding

#: Receives a one-line note on a choice made for the user (a column left out, one-hot).
Note = Callable[[str], None]

#: The loss each task trains with.
TASK_LOSSES = {"binary": "log_loss", "multiclass": "cross_entropy", "regression": "mse"}


class EncodingError(ChainruleError, ValueError):
    """A request about a table's columns that the table cannot satisfy."""


def _ignore(message: str) -> None:
    """The default :data:`Note`: say nothing."""


# --- choosing the features -------------------------------------------------------------------


def choose_feature_columns(
    table: CsvTable,
    target: str,
    requested: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    note: Note = _ignore,
) -> list[str]:
    """The feature columns: those requested, or every column that is not an identifier.

    Args:
        table: the table read.
        target: the target column (never a feature).
        requested: the feature columns asked for (``--features``); None chooses them.
        exclude: columns never to use (``--exclude``).
        note: told which columns were left out, and why.

    Raises:
        CsvError: a requested column is not in the table.
        EncodingError: the target is requested or excluded, a column is requested twice or
            both requested and excluded, or no column is left.
    """
    if target in exclude:
        raise EncodingError(f"--exclude names the target column {shown(target)}; leave it out")
    if requested is not None:
        columns = list(requested)
        for column in columns:
            table.index(column, "feature column")
        if target in columns:
            raise EncodingError(f"--features lists the target column {shown(target)}; leave it out")
        duplicates = sorted(_repeated(columns))
        if duplicates:
            raise EncodingError(f"--features names {listed(duplicates)} twice")
        both = [column for column in columns if column in exclude]
        if both:
            raise EncodingError(f"{listed(both)} is both in --features and in --exclude")
        return columns
    excluded = set(exclude)
    columns = []
    for column in table.header:
        if column == target or column in excluded:
            continue
        if is_numeric_column(table, column):
            if _looks_like_row_number(table, column):
                note(
                    f"left out column {shown(column)}: its values count the rows one by one, "
                    "like an id (name it in --features to use it)"
                )
                continue
        else:
            column_data = table.column(column)
            cells = table.texts(column)[~column_data.missing]
            if looks_like_identifier(cells):
                note(
                    f"left out text column {shown(column)}: {len(set(cells))} different values "
                    f"in {len(table)} rows looks like names or ids (name it in --features to "
                    "use it)"
                )
                continue
        columns.append(column)
    if not columns:
        raise EncodingError(
            f"{table.path}: no feature columns left besides the target {shown(target)}; "
            "name some with --features"
        )
    return columns


def _repeated(names: list[str]) -> set[str]:
    """The names that appear more than once (in linear time)."""
    seen: set[str] = set()
    repeated = set()
    for name in names:
        if name in seen:
            repeated.add(name)
        seen.add(name)
    return repeated


def _looks_like_row_number(table: CsvTable, column: str) -> bool:
    """Whole numbers that step by exactly 1 from row to row (PassengerId, an index)."""
    values = table.column(column).numbers
    if len(values) < 3 or np.isnan(values).any():
        return False
    with np.errstate(over="ignore", invalid="ignore"):  # ±1e308 neighbours overflow
        steps = np.diff(values)
    return bool(np.all(steps == 1) and values[0] == round(values[0]))


def drop_missing(
    table: CsvTable,
    columns: Sequence[str],
    note: Note = _ignore,
    why: str = "with missing values",
) -> CsvTable:
    """The rows with a value in every one of ``columns`` (``--impute drop``).

    Args:
        table: the table read.
        columns: the columns that must have a value.
        note: told how many rows were dropped, per column.
        why: how the note describes the dropped rows.

    Raises:
        CsvError: no row is left.
    """
    gaps = {column: table.column(column).missing for column in columns}
    any_gap = np.logical_or.reduce(list(gaps.values()))
    keep = np.flatnonzero(~any_gap)
    dropped = len(table) - len(keep)
    if not len(keep):
        raise CsvError(f"{table.path}: every row has a missing value in a used column")
    if dropped:
        where = ", ".join(
            f"{shown(column)[1:-1]}: {int(gap.sum())}" for column, gap in gaps.items() if gap.any()
        )
        note(f"dropped {dropped} of {len(table)} rows {why} ({where})")
        return table.subset(keep)
    return table


# --- the target ------------------------------------------------------------------------------


def target_task(table: CsvTable, name: str, loss: str = "auto") -> tuple[str, tuple[str, ...]]:
    """The task (binary, multiclass, regression) and, for classes, their labels.

    Text, or at most :data:`~.preprocessing.MAX_AUTO_CLASSES` distinct whole numbers, are
    classes; other numbers a regression.

    Args:
        table: the table read.
        name: the target column.
        loss: ``"auto"``, or the loss asked for (``mse``, ``log_loss``, ``cross_entropy``),
            which decides between regression, two classes and several.

    Raises:
        CsvError: a target cell is missing, or the target holds a single value.
        EncodingError: the loss asked for does not fit the target's values.
    """
    column = table.column(name, "target column")
    gaps = np.flatnonzero(column.missing)
    if gaps.size:
        row = int(gaps[0])
        raise CsvError(
            f"{table.where(row, name)}: the target is missing "
            f"({shown(table.cell(row, name))}); every row needs one: fill it in, remove "
            "the row, or use --impute (rows without a target are then left out)"
        )
    numeric = is_numeric_column(table, name)
    if loss == "mse":
        if not numeric:
            raise EncodingError(
                f"--loss mse needs a numeric target, but column {shown(name)} holds text "
                f"such as {shown(table.cell(0, name))}; use --loss auto to learn its classes"
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
        labels = tuple(categories(table.texts(name)))
    if len(labels) < 2:
        raise _one_value(table, name, labels[0])
    if loss == "log_loss" and len(labels) != 2:
        raise EncodingError(
            f"--loss log_loss is for two classes, but target {shown(name)} has {len(labels)} "
            f"({listed(labels, 5)}); use --loss cross_entropy"
        )
    if loss == "cross_entropy" or len(labels) > 2:
        return "multiclass", labels
    return "binary", labels


def _one_value(table: CsvTable, name: str, label: str) -> CsvError:
    return CsvError(
        f"{table.path}: target column {shown(name)} has a single value ({shown(label)}) in all "
        f"{len(table)} rows, so there is nothing to learn; a classifier needs at least two "
        "classes"
    )


def encode_target(
    table: CsvTable, name: str, task: str, labels: tuple[str, ...], train_rows: np.ndarray
) -> tuple[TargetEncoding, np.ndarray]:
    """The target's encoding and its values as the model learns them.

    A regression target is standardised with its training rows' mean and spread (float64);
    classes become their index in ``labels`` (float64 0/1 for two, int64 for more).

    Args:
        table: the table read.
        name: the target column.
        task: from :func:`target_task`.
        labels: the class labels from :func:`target_task` (empty for a regression).
        train_rows: the rows the standardisation is fitted on.

    Raises:
        CsvError: standardising the target overflows.
    """
    if task == "regression":
        values = numeric_column(table, name)
        mean, scale = _standardisation(table, name, values[train_rows])
        return TargetEncoding(name, task, mean=mean, scale=scale), (values - mean) / scale
    if is_numeric_column(table, name):
        cells: Any = [number_label(value) for value in numeric_column(table, name)]
    else:
        cells = table.texts(name)
    index = {label: position for position, label in enumerate(labels)}
    codes = np.array([index[cell] for cell in cells])
    encoding = TargetEncoding(name, task, classes=labels)
    if task == "binary":
        return encoding, codes.astype(np.float64)
    return encoding, codes.astype(np.int64)


# --- the features ----------------------------------------------------------------------------


def feature_encodings(
    table: CsvTable,
    columns: Sequence[str],
    train_rows: np.ndarray,
    impute: str | None = None,
    note: Note = _ignore,
) -> list[ColumnEncoding]:
    """Each feature column's encoding, fitted on the training rows.

    Numbers are standardised (mean and spread of the training rows); text is one-hot
    over the column's categories (``note`` is told so). With an ``impute`` strategy
    other than ``"drop"``, each column also gets the value that fills its missing cells.

    Args:
        table: the table read.
        columns: the feature columns, in input order.
        train_rows: the rows the encodings are fitted on.
        impute: None (a missing cell is an error), ``"drop"`` (rows already dropped),
            ``"mean"``, ``"median"`` or ``"most_frequent"``.
        note: told how each text column is encoded.

    Raises:
        CsvError: a missing cell without ``impute``, a column with no training values to
            fill from, or a column whose standardisation overflows.
    """
    filling = impute not in (None, "drop")
    encodings = []
    for column in columns:
        missing = table.column(column).missing[train_rows]
        if filling and missing.all():
            raise CsvError(
                f"{table.path}: column {shown(column)} has no values in the training rows, "
                "so there is nothing to fill its missing cells with; leave it out "
                "(--exclude)"
            )
        if is_numeric_column(table, column):
            values = numeric_column(table, column, allow_missing=filling)[train_rows]
            present = values[~missing]
            mean, scale = _standardisation(table, column, present)
            fill = _fill_value(present, impute) if filling else None
            encodings.append(ColumnEncoding(column, "numeric", mean, scale, fill=fill))
        else:
            cells = text_column(table, column, allow_missing=filling)
            vocabulary = tuple(categories(cells[~table.column(column).missing]))
            fill_category = None
            if filling:
                labels, counts = np.unique(cells[train_rows][~missing], return_counts=True)
                fill_category = str(labels[int(counts.argmax())])
            encodings.append(
                ColumnEncoding(column, "one_hot", categories=vocabulary, fill=fill_category)
            )
            note(
                f"text column {shown(column)} one-hot encoded into {len(vocabulary)} inputs "
                f"({listed(vocabulary, 5)})"
            )
    return encodings


def _standardisation(table: CsvTable, column: str, values: np.ndarray) -> tuple[float, float]:
    """Mean and scale of a numeric column's training values; refuses what overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(values.mean()) if values.size else 0.0
        spread = float(values.std()) if values.size else 0.0
    if not (math.isfinite(mean) and math.isfinite(spread)):
        row = int(np.nanargmax(np.abs(table.column(column).numbers)))
        raise CsvError(
            f"{table.where(row, column)}: {shown(table.cell(row, column))} is too large: "
            "standardising the column overflows (its spread is infinite); rescale the "
            "column (for instance into other units) before training"
        )
    # A constant column carries no information; scale 1 keeps it finite.
    return mean, spread if spread > 0 else 1.0


def _fill_value(values: np.ndarray, impute: str | None) -> float:
    if impute == "mean":
        return float(values.mean())
    if impute == "median":
        return float(np.median(values))
    distinct, counts = np.unique(values, return_counts=True)
    return float(distinct[int(counts.argmax())])


# --- all of it -------------------------------------------------------------------------------


def fit_preprocessing(
    table: CsvTable,
    target: str,
    features: Sequence[str],
    task: str,
    labels: tuple[str, ...],
    train_rows: np.ndarray,
    impute: str | None = None,
    decimal: str = ".",
    note: Note = _ignore,
) -> tuple[Preprocessing, np.ndarray, np.ndarray]:
    """The preprocessing fitted on the training rows, and every row encoded with it.

    Args:
        table: the table read.
        target: the target column.
        features: the feature columns, in input order (see :func:`choose_feature_columns`).
        task: the target's task, and ``labels`` its classes (see :func:`target_task`).
        labels: the class labels (empty for a regression).
        train_rows: the rows the encodings are fitted on.
        impute: the imputation strategy (see :func:`feature_encodings`).
        decimal: the decimal mark of the file's numbers, stored for prediction.
        note: told how each text column is encoded.

    Returns:
        The :class:`~.preprocessing.Preprocessing` (loss from :data:`TASK_LOSSES`), the
        inputs of every row (float64, one column per model input) and the targets.

    Raises:
        CsvError: as :func:`feature_encodings` and :func:`encode_target`.
    """
    encodings = feature_encodings(table, features, train_rows, impute=impute, note=note)
    encoding, y = encode_target(table, target, task, labels, train_rows)
    preprocessing = Preprocessing(tuple(encodings), encoding, TASK_LOSSES[task], impute, decimal)
    inputs, _ = preprocessing.encode(table)
    return preprocessing, inputs, y
