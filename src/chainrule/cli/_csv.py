"""CSV files for the command line: reading with precise errors, encoding columns, atomic writes.

Every problem with a user's file is a :class:`CsvError` whose message names the file,
the line and the column (by name and by number, counting from 1) and says what to do.
The command line prints it as one line and exits with status 2.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from .._files import write_atomically
from ..errors import ChainruleError

#: Cells that mean "no value" (pandas' most common spellings).
MISSING_CELLS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
#: A text column with more distinct values than this (and mostly distinct values) looks
#: like an identifier or free text; default feature selection leaves it out.
MAX_DEFAULT_CATEGORIES = 50


class CsvError(ChainruleError, ValueError):
    """A CSV file cannot be used as asked; the message says where and why."""


class PreprocessingError(ChainruleError, ValueError):
    """A model file's ``chainrule train`` preprocessing is missing or malformed."""


@dataclass(frozen=True)
class CsvTable:
    """A CSV file read into memory: its header, its rows of text cells and their line numbers.

    Attributes:
        path: the file read (as given).
        header: the column names, in file order.
        rows: each data row's cells, all of length ``len(header)``.
        lines: the file line on which each row starts (the header is line 1).
    """

    path: Path
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    lines: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.rows)

    def index(self, name: str, role: str = "column") -> int:
        """The position of column ``name``; an unknown name is a CsvError listing the columns.

        Args:
            name: the column's name as written in the header.
            role: what the column was asked for (e.g. "target column"), for the message.
        """
        try:
            return self.header.index(name)
        except ValueError:
            raise CsvError(
                f"{self.path}: no {role} {name!r}; the columns are: {', '.join(self.header)}"
            ) from None

    def cells(self, name: str) -> list[str]:
        """The text cells of column ``name``, one per row."""
        position = self.index(name)
        return [row[position] for row in self.rows]

    def subset(self, rows: Sequence[int]) -> CsvTable:
        """The same table with only the given rows (line numbers kept for messages)."""
        return CsvTable(
            self.path,
            self.header,
            tuple(self.rows[row] for row in rows),
            tuple(self.lines[row] for row in rows),
        )

    def where(self, row: int, name: str) -> str:
        """``"FILE, line L, column 'name' (number)"`` for error messages."""
        return f"{self.path}, line {self.lines[row]}, column {name!r} ({self.index(name) + 1})"


def read_csv(path: str | os.PathLike[str]) -> CsvTable:
    """Read a CSV file with a header line.

    Args:
        path: the file. UTF-8 (a byte-order mark is allowed); fields may be quoted and
            contain commas or line breaks.

    Raises:
        CsvError: the file is missing, a folder, unreadable, not UTF-8, empty, has no
            header (its first line is all numbers), repeats or leaves out a column name,
            has no data rows, or a row has the wrong number of cells.
    """
    file = Path(path)
    if not file.exists():
        raise CsvError(f"{file}: no such file")
    if file.is_dir():
        raise CsvError(f"{file}: is a folder, not a CSV file")
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise CsvError(f"{file}: cannot read it ({error.strerror or error})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CsvError(
            f"{file}: not UTF-8 text (byte {error.start} is {raw[error.start]:#04x}); "
            "save it as UTF-8 CSV"
        ) from None
    if not text.strip():
        raise CsvError(
            f"{file}: the file is empty; a CSV file needs a header line naming the columns "
            "and then one row per example"
        )
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[str, ...]] = []
    lines: list[int] = []
    header: tuple[str, ...] | None = None
    try:
        start = 1
        for record in reader:
            if not any(cell.strip() for cell in record):
                pass  # blank lines carry no data
            elif header is None:
                header = _check_header(file, record)
            else:
                if len(record) != len(header):
                    raise CsvError(
                        f"{file}, line {start}: {len(record)} cells, but the header names "
                        f"{len(header)} columns"
                    )
                rows.append(tuple(cell.strip() for cell in record))
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as error:
        raise CsvError(f"{file}, line {reader.line_num}: not valid CSV ({error})") from None
    assert header is not None  # a non-blank file has a first record
    if not rows:
        raise CsvError(f"{file}: the header is there but there are no data rows")
    return CsvTable(file, header, tuple(rows), tuple(lines))


def _check_header(file: Path, record: list[str]) -> tuple[str, ...]:
    names = tuple(cell.strip() for cell in record)
    if all(_parse_number(name) is not None for name in names):
        raise CsvError(
            f"{file}: no header: the first line ({','.join(names)}) holds only numbers; "
            "add a first line naming the columns"
        )
    for position, name in enumerate(names, start=1):
        if not name:
            raise CsvError(f"{file}, line 1: column {position} has no name in the header")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise CsvError(f"{file}, line 1: the header names column {name!r} twice")
        seen.add(name)
    return names


def _parse_number(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def is_missing(cell: str) -> bool:
    """Whether a cell means "no value" (empty, NA, NaN, null, ...)."""
    return cell.strip().lower() in MISSING_CELLS


def is_numeric_column(table: CsvTable, name: str) -> bool:
    """Whether column ``name`` holds numbers.

    It does when all its non-missing cells are finite numbers, or all but a few (at most
    one in ten, and at least one is allowed): those few are then taken for mistakes that
    :func:`numeric_column` reports, rather than a reason to treat the column as text.
    Columns that mix numbers and text more often (ticket codes such as ``113803`` and
    ``A/5 21171``) are text.
    """
    values = [cell for cell in table.cells(name) if not is_missing(cell)]
    if not values:
        return True
    numbers = sum(_parse_number(cell) is not None for cell in values)
    others = len(values) - numbers
    return others == 0 or (numbers * 2 > len(values) and others <= max(1, len(values) // 10))


def numeric_column(table: CsvTable, name: str) -> np.ndarray:
    """Column ``name`` as a float64 array.

    Raises:
        CsvError: naming the file, line and column of the first empty or non-numeric cell.
    """
    values = np.empty(len(table), dtype=np.float64)
    for row, cell in enumerate(table.cells(name)):
        if is_missing(cell):
            raise CsvError(
                f"{table.where(row, name)}: missing value {cell!r}; fill it in or remove "
                "the row (chainrule train --drop-missing drops such rows)"
            )
        number = _parse_number(cell)
        if number is None:
            raise CsvError(
                f"{table.where(row, name)}: {cell!r} is not a number, but the column "
                "holds numbers; fix the cell"
            )
        values[row] = number
    return values


def text_column(table: CsvTable, name: str) -> list[str]:
    """Column ``name`` as text cells; missing cells are refused with file, line and column."""
    cells = table.cells(name)
    for row, cell in enumerate(cells):
        if is_missing(cell):
            raise CsvError(
                f"{table.where(row, name)}: missing value {cell!r}; fill it in or remove "
                "the row (chainrule train --drop-missing drops such rows)"
            )
    return cells


def categories(cells: Sequence[str]) -> list[str]:
    """The distinct values of a text column, sorted (the one-hot vocabulary)."""
    return sorted(set(cells))


def one_hot(cells: Sequence[str], vocabulary: Sequence[str]) -> tuple[np.ndarray, set[str]]:
    """One column of 0/1 per vocabulary entry; also returns the cells not in the vocabulary.

    Args:
        cells: the text values, one per row.
        vocabulary: the categories seen in training, in column order.

    Returns:
        ``(array of shape (rows, len(vocabulary)), unknown values)``. A row whose value
        is unknown gets all zeros.
    """
    position = {category: index for index, category in enumerate(vocabulary)}
    encoded = np.zeros((len(cells), len(vocabulary)), dtype=np.float64)
    unknown: set[str] = set()
    for row, cell in enumerate(cells):
        index = position.get(cell)
        if index is None:
            unknown.add(cell)
        else:
            encoded[row, index] = 1.0
    return encoded, unknown


def looks_like_identifier(cells: Sequence[str]) -> bool:
    """A text column with many values, nearly all distinct (names, ticket numbers, ids)."""
    distinct = len(set(cells))
    return distinct > MAX_DEFAULT_CATEGORIES or (distinct > 10 and distinct * 2 > len(cells))


def write_text_atomically(path: str | os.PathLike[str], write: Callable[[IO[str]], None]) -> Path:
    """Write a UTF-8 text file atomically (see :func:`chainrule._files.write_atomically`).

    Args:
        path: the file to write; its folder must exist.
        write: called with the open temporary file (text mode, newline="").

    Raises:
        CsvError: the folder does not exist or the file cannot be written.
    """

    def write_text(handle: IO[bytes]) -> None:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        write(text)
        text.flush()
        text.detach()  # the binary handle stays open for the fsync that follows

    try:
        return write_atomically(path, write_text)
    except OSError as error:
        # Our own messages already name the file; the system's need the path added.
        message = str(error) if error.filename is None else f"cannot write {path}: {error.strerror}"
        raise CsvError(message) from None


def write_csv(
    path: str | os.PathLike[str] | None,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
) -> None:
    """Write a CSV file atomically, or to standard output when ``path`` is None."""

    def write(handle: IO[str]) -> None:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)

    if path is None:
        # Build the whole text first so an error cannot leave half a table on stdout.
        buffer = io.StringIO()
        write(buffer)
        sys.stdout.write(buffer.getvalue())
    else:
        write_text_atomically(path, write)


# --- turning a table into features, and remembering how --------------------------------

#: A numeric target with at most this many distinct whole-number values is taken as
#: class labels by ``--loss auto`` (0/1, ratings, digit classes); more is a regression.
MAX_AUTO_CLASSES = 10
PREPROCESSING_FORMAT = "chainrule-train-preprocessing"
PREPROCESSING_VERSION = 1
#: ``chainrule train --save MODEL`` stores the preprocessing in the model file's metadata
#: (``chainrule.save(..., metadata=...)``) under this key.
PREPROCESSING_METADATA_KEY = "preprocessing"


@dataclass(frozen=True)
class ColumnEncoding:
    """How one CSV column becomes model inputs.

    Attributes:
        column: the column's name in the CSV header.
        kind: ``"numeric"`` (one standardised input) or ``"one_hot"`` (one 0/1 input
            per category).
        mean, scale: the standardisation of a numeric column, from the training rows.
        categories: the one-hot vocabulary, in input order.
    """

    column: str
    kind: str
    mean: float = 0.0
    scale: float = 1.0
    categories: tuple[str, ...] = ()

    @property
    def input_names(self) -> list[str]:
        """The model inputs this column makes: ``["age"]`` or ``["sex=female", "sex=male"]``."""
        if self.kind == "numeric":
            return [self.column]
        return [f"{self.column}={category}" for category in self.categories]

    def encode(self, table: CsvTable) -> tuple[np.ndarray, set[str]]:
        """This column of ``table`` as model inputs, and any unknown categories met."""
        if self.kind == "numeric":
            values = numeric_column(table, self.column)
            return ((values - self.mean) / self.scale)[:, None], set()
        return one_hot(text_column(table, self.column), self.categories)

    def as_json(self) -> dict[str, object]:
        """This encoding as plain JSON data."""
        if self.kind == "numeric":
            return {
                "column": self.column,
                "kind": "numeric",
                "mean": self.mean,
                "scale": self.scale,
            }
        return {"column": self.column, "kind": "one_hot", "categories": list(self.categories)}


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
    """

    features: tuple[ColumnEncoding, ...]
    target: TargetEncoding
    loss: str

    @property
    def input_names(self) -> list[str]:
        """Every model input's name, in order."""
        return [name for encoding in self.features for name in encoding.input_names]

    def encode(self, table: CsvTable) -> tuple[np.ndarray, dict[str, set[str]]]:
        """The model inputs for every row of ``table``, and unknown categories per column.

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
        return np.hstack(blocks), unknown

    def as_metadata(self) -> dict[str, object]:
        """The preprocessing as plain JSON data, for a model file's metadata."""
        return {
            "format": PREPROCESSING_FORMAT,
            "version": PREPROCESSING_VERSION,
            "loss": self.loss,
            "features": [encoding.as_json() for encoding in self.features],
            "target": self.target.as_json(),
        }

    @classmethod
    def from_metadata(cls, document: object, source: str) -> Preprocessing:
        """Parse what :meth:`as_metadata` wrote; ``source`` (the model file) names it in errors.

        Raises:
            PreprocessingError: the document is not a preprocessing of this version, or
                an entry is missing or of the wrong kind (the message says which).
        """
        try:
            if not isinstance(document, dict):
                raise ValueError(f"it is a {type(document).__name__}, not a JSON object")
            if document.get("format") != PREPROCESSING_FORMAT:
                raise ValueError(f"its format is {document.get('format')!r}")
            if document.get("version") != PREPROCESSING_VERSION:
                raise ValueError(f"version {document.get('version')!r} is not supported")
            entries = document["features"]
            if not isinstance(entries, list) or not entries:
                raise ValueError("it lists no feature columns")
            features = tuple(_column_encoding(entry) for entry in entries)
            target = _target_encoding(document["target"])
            loss = _one_of(document["loss"], ("log_loss", "cross_entropy", "mse"))
            return cls(features, target, loss)
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
    if kind == "numeric":
        mean = _finite(entry["mean"], f"column {column!r}'s mean")
        scale = _finite(entry["scale"], f"column {column!r}'s scale")
        if not scale > 0:
            raise ValueError(f"column {column!r} has scale {scale}")
        return ColumnEncoding(column, kind, mean, scale)
    categories = entry["categories"]
    if not isinstance(categories, list) or not categories:
        raise ValueError(f"column {column!r} has no categories")
    return ColumnEncoding(
        column,
        kind,
        categories=tuple(_text(c, f"a category of column {column!r}") for c in categories),
    )


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


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is {value!r}, not text")
    return value


def _finite(value: object, what: str) -> float:
    # bool is an int to Python but never a meaningful mean or scale.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} is {value!r}, not a finite number")
    return float(value)


def _one_of(value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
    return str(value)


def number_label(value: float) -> str:
    """A numeric class label as text: ``1.0`` -> ``"1"``, ``2.5`` -> ``"2.5"``."""
    return f"{value:.15g}"
