"""How ``chainrule train`` turns CSV columns into model inputs, and how it remembers that.

The :class:`Preprocessing` is stored as plain JSON data in the model file's metadata
(under :data:`PREPROCESSING_METADATA_KEY`), so the model and the encoding of its inputs
travel as one file. Its layout, version 2 (version 1 files still load)::

    {"format": "chainrule-train-preprocessing", "version": 2,
     "loss": "log_loss" | "cross_entropy" | "mse",
     "impute": null | "mean" | "median" | "most_frequent" | "drop",
     "decimal": "." | ",",
     "features": [
        {"column": "age", "kind": "numeric", "mean": 29.7, "scale": 14.5, "fill": 28.0},
        {"column": "sex", "kind": "one_hot", "categories": ["female", "male"],
         "fill": "male"}, ...],
     "target": {"column": "survived", "task": "binary" | "multiclass" | "regression",
                "classes": ["0", "1"], "mean": 0.0, "scale": 1.0}}

``fill`` (absent or null: none) is the value a missing cell takes at prediction time,
in the column's own units (numbers before standardisation) or a category.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ChainruleError
from .csv_files import (
    MAX_ECHO,
    CsvError,
    CsvTable,
    numeric_column,
    one_hot,
    shown,
    text_column,
)

__all__ = [
    "IMPUTE_STRATEGIES",
    "MAX_AUTO_CLASSES",
    "PREPROCESSING_FORMAT",
    "PREPROCESSING_METADATA_KEY",
    "PREPROCESSING_VERSION",
    "ColumnEncoding",
    "Preprocessing",
    "PreprocessingError",
    "TargetEncoding",
]


class PreprocessingError(ChainruleError, ValueError):
    """A model file's ``chainrule train`` preprocessing is missing or malformed."""


#: A numeric target with at most this many distinct whole-number values is taken as
#: class labels by ``--loss auto`` (0/1, ratings, digit classes); more is a regression.
MAX_AUTO_CLASSES = 10
PREPROCESSING_FORMAT = "chainrule-train-preprocessing"
PREPROCESSING_VERSION = 2
#: ``chainrule train --save MODEL`` stores the preprocessing in the model file's metadata
#: (``chainrule.save(..., metadata=...)``) under this key.
PREPROCESSING_METADATA_KEY = "preprocessing"
#: ``--impute`` strategies: how missing feature cells are filled.
IMPUTE_STRATEGIES = ("mean", "median", "most_frequent", "drop")


@dataclass(frozen=True)
class ColumnEncoding:
    """How one CSV column becomes model inputs.

    Attributes:
        column: the column's name in the CSV header.
        kind: ``"numeric"`` (one standardised input) or ``"one_hot"`` (one 0/1 input
            per category).
        mean, scale: the standardisation of a numeric column, from the training rows.
        categories: the one-hot vocabulary, in input order.
        fill: what a missing cell becomes (a number for a numeric column, a category
            for a one-hot one); None refuses missing cells.
    """

    column: str
    kind: str
    mean: float = 0.0
    scale: float = 1.0
    categories: tuple[str, ...] = ()
    fill: float | str | None = None

    @property
    def input_names(self) -> list[str]:
        """The model inputs this column makes: ``["age"]`` or ``["sex=female", "sex=male"]``."""
        if self.kind == "numeric":
            return [self.column]
        return [f"{self.column}={category}" for category in self.categories]

    def encode(self, table: CsvTable) -> tuple[np.ndarray, set[str]]:
        """This column of ``table`` as model inputs, and any unknown categories met."""
        imputing = self.fill is not None
        if self.kind == "numeric":
            values = numeric_column(table, self.column, allow_missing=imputing)
            if imputing:
                fill = float(self.fill)  # type: ignore[arg-type]  # a number for numeric columns
                values = np.where(table.column(self.column).missing, fill, values)
            return ((values - self.mean) / self.scale)[:, None], set()
        cells = text_column(table, self.column, allow_missing=imputing)
        if imputing:
            cells = np.where(table.column(self.column).missing, str(self.fill), cells)
        return one_hot(cells, self.categories)

    def as_json(self) -> dict[str, object]:
        """This encoding as plain JSON data."""
        entry: dict[str, object]
        if self.kind == "numeric":
            entry = {"column": self.column, "kind": "numeric", "mean": self.mean}
            entry["scale"] = self.scale
        else:
            entry = {"column": self.column, "kind": "one_hot", "categories": list(self.categories)}
        entry["fill"] = self.fill
        return entry


@dataclass(frozen=True)
class TargetEncoding:
    """How the target column becomes what the model is trained to output.

    Attributes:
        column: the target column's name.
        task: ``"binary"`` (one sigmoid output), ``"multiclass"`` (softmax over the
            classes) or ``"regression"`` (one linear output, standardised target).
        classes: the class labels as text, in output order (classification).
        mean, scale: the target's standardisation (regression).
    """

    column: str
    task: str
    classes: tuple[str, ...] = ()
    mean: float = 0.0
    scale: float = 1.0

    @property
    def outputs(self) -> int:
        """Output units of the model."""
        return len(self.classes) if self.task == "multiclass" else 1

    def as_json(self) -> dict[str, object]:
        """This encoding as plain JSON data."""
        return {
            "column": self.column,
            "task": self.task,
            "classes": list(self.classes),
            "mean": self.mean,
            "scale": self.scale,
        }


@dataclass(frozen=True)
class Preprocessing:
    """Everything ``chainrule predict`` needs to turn a CSV file into model inputs.

    Attributes:
        features: one :class:`ColumnEncoding` per feature column, in input order.
        target: the :class:`TargetEncoding`.
        loss: the loss the model was trained with.
        impute: the ``--impute`` strategy used in training (None: missing cells refused).
        decimal: the decimal mark of the training file's numbers.
    """

    features: tuple[ColumnEncoding, ...]
    target: TargetEncoding
    loss: str
    impute: str | None = None
    decimal: str = "."

    @property
    def input_names(self) -> list[str]:
        """Every model input's name, in order."""
        return [name for encoding in self.features for name in encoding.input_names]

    @property
    def feature_columns(self) -> list[str]:
        """The CSV columns the model reads, in order."""
        return [encoding.column for encoding in self.features]

    def encode(self, table: CsvTable) -> tuple[np.ndarray, dict[str, set[str]]]:
        """The model inputs for every row of ``table``, and unknown categories per column.

        Missing cells take the stored ``fill`` values; without them, they are refused.

        Raises:
            CsvError: a feature column is missing, or a cell cannot be used (file, line
                and column named).
        """
        for encoding in self.features:
            table.index(encoding.column, "feature column (the model was trained on it)")
        blocks = []
        unknown: dict[str, set[str]] = {}
        for encoding in self.features:
            block, missing = encoding.encode(table)
            blocks.append(block)
            if missing:
                unknown[encoding.column] = missing
        inputs = np.hstack(blocks)
        if not np.isfinite(inputs).all():
            row, position = np.argwhere(~np.isfinite(inputs))[0]
            column = self._column_of_input(int(position))
            raise CsvError(
                f"{table.where(int(row), column)}: the value is too large to standardise "
                "(it overflows to infinity); rescale the column"
            )
        return inputs, unknown

    def _column_of_input(self, position: int) -> str:
        for encoding in self.features:
            if position < len(encoding.input_names):
                return encoding.column
            position -= len(encoding.input_names)
        raise IndexError(position)

    def as_metadata(self) -> dict[str, object]:
        """The preprocessing as plain JSON data, for a model file's metadata."""
        return {
            "format": PREPROCESSING_FORMAT,
            "version": PREPROCESSING_VERSION,
            "loss": self.loss,
            "impute": self.impute,
            "decimal": self.decimal,
            "features": [encoding.as_json() for encoding in self.features],
            "target": self.target.as_json(),
        }

    @classmethod
    def from_metadata(cls, document: object, source: str) -> Preprocessing:
        """Parse what :meth:`as_metadata` wrote; ``source`` (the model file) names it in errors.

        Reads versions 1 (no imputation) and 2.

        Raises:
            PreprocessingError: the document is not a preprocessing of a known version,
                or an entry is missing or of the wrong kind (the message says which).
        """
        try:
            if not isinstance(document, dict):
                raise ValueError(f"it is a {type(document).__name__}, not a JSON object")
            if document.get("format") != PREPROCESSING_FORMAT:
                raise ValueError(f"its format is {_echo(document.get('format'))}")
            version = document.get("version")
            if version not in (1, PREPROCESSING_VERSION) or isinstance(version, bool):
                raise ValueError(f"version {_echo(version)} is not supported")
            entries = document["features"]
            if not isinstance(entries, list) or not entries:
                raise ValueError("it lists no feature columns")
            features = tuple(_column_encoding(entry) for entry in entries)
            target = _target_encoding(document["target"])
            loss = _one_of(document["loss"], ("log_loss", "cross_entropy", "mse"))
            impute = None
            decimal = "."
            if version == 2:
                if document["impute"] is not None:
                    impute = _one_of(document["impute"], IMPUTE_STRATEGIES)
                decimal = _one_of(document["decimal"], (".", ","))
            return cls(features, target, loss, impute, decimal)
        except (ValueError, KeyError, TypeError) as error:
            detail = f"missing entry {error}" if isinstance(error, KeyError) else str(error)
            raise PreprocessingError(
                f"{source}: its 'chainrule train' preprocessing is malformed ({detail}); "
                "train and save the model again with 'chainrule train --save'"
            ) from None


def _column_encoding(entry: object) -> ColumnEncoding:
    if not isinstance(entry, dict):
        raise ValueError(f"a feature entry is a {type(entry).__name__}, not a JSON object")
    column = _text(entry["column"], "a feature column's name")
    kind = _one_of(entry["kind"], ("numeric", "one_hot"))
    fill = entry.get("fill")
    if kind == "numeric":
        mean = _finite(entry["mean"], f"column {shown(column)}'s mean")
        scale = _finite(entry["scale"], f"column {shown(column)}'s scale")
        if not scale > 0:
            raise ValueError(f"column {shown(column)} has scale {scale}")
        if fill is not None:
            fill = _finite(fill, f"column {shown(column)}'s fill value")
        return ColumnEncoding(column, kind, mean, scale, fill=fill)
    categories = entry["categories"]
    if not isinstance(categories, list) or not categories:
        raise ValueError(f"column {shown(column)} has no categories")
    vocabulary = tuple(_text(c, f"a category of column {shown(column)}") for c in categories)
    if fill is not None and fill not in vocabulary:
        raise ValueError(f"column {shown(column)}'s fill value is not one of its categories")
    return ColumnEncoding(column, kind, categories=vocabulary, fill=fill)


def _target_encoding(entry: object) -> TargetEncoding:
    if not isinstance(entry, dict):
        raise ValueError(f"the target entry is a {type(entry).__name__}, not a JSON object")
    column = _text(entry["column"], "the target column's name")
    task = _one_of(entry["task"], ("binary", "multiclass", "regression"))
    labels = entry["classes"]
    if not isinstance(labels, list):
        raise ValueError("the target's classes are not a list")
    classes = tuple(_text(label, "a class label") for label in labels)
    if task == "binary" and len(classes) != 2:
        raise ValueError(f"a binary target has {len(classes)} classes")
    if task == "multiclass" and len(classes) < 2:
        raise ValueError(f"a multiclass target has {len(classes)} classes")
    mean = _finite(entry["mean"], "the target's mean")
    scale = _finite(entry["scale"], "the target's scale")
    if not scale > 0:
        raise ValueError(f"the target has scale {scale}")
    return TargetEncoding(column, task, classes, mean, scale)


def _echo(value: object) -> str:
    """``repr(value)`` cut to a length fit for a message (the file may hold anything)."""
    text = repr(value)
    return text if len(text) <= MAX_ECHO else text[:MAX_ECHO] + "…"


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is {_echo(value)}, not text")
    return value


def _finite(value: object, what: str) -> float:
    # bool is an int to Python but never a meaningful mean or scale.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} is {_echo(value)}, not a finite number")
    return float(value)


def _one_of(value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{_echo(value)} is not one of {', '.join(allowed)}")
    return str(value)
