"""A CSV file's typed columns, and the careful reader that reads them.

:class:`CsvTable` holds a file as typed columns (see :mod:`.csv_files`, which chooses the
reader). The **careful** reader here reads with Python's :mod:`csv` module and knows the
file line of every row; the fast reader (:mod:`.csv_arrow`) builds the same table and
leaves to this one whatever it cannot place, and both tables read their rows again
here when a message needs a line number or a cell's text.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ChainruleError

#: Cells that mean "no value" (pandas' most common spellings), compared case-insensitively
#: after removing blanks around the cell.
MISSING_CELLS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
#: The separators ``--sep`` may detect, in order of preference when several fit.
SEPARATORS = (",", ";", "\t", "|")
#: Blanks removed around every cell (the fast reader removes the same ones).
BLANKS = " \t"
#: What a number looks like: ASCII digits, an optional sign, point and exponent. Python's
#: float() also takes ``1_00``, fullwidth and Arabic-Indic digits, ``inf`` and ``nan``:
#: in a data file those are typos or text, not numbers.
NUMBER_PATTERN = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
#: Longest cell or column name echoed in a message, and most column names listed.
MAX_ECHO = 60
MAX_LISTED = 20

_ROWS_PER_BATCH = 1 << 16
_NUMBER = re.compile(NUMBER_PATTERN)
_NUMBER_DECIMAL_COMMA = re.compile(NUMBER_PATTERN.replace(r"\.", ","))


class CsvError(ChainruleError, ValueError):
    """A CSV file cannot be used as asked; the message says where and why."""


# --- safe echoes of what a file holds -------------------------------------------------------


def shown(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` quoted for a message: control characters escaped, at most ``limit`` characters.

    Column names and cells come from the user's file; printed raw, a line break or an
    ANSI escape in one could forge a second message line or recolour the terminal.
    """
    if len(text) > limit:
        text = text[:limit] + "…"
    return repr(text)


def listed(names: Sequence[str], limit: int = MAX_LISTED) -> str:
    """At most ``limit`` names, each :func:`shown`, then how many more there are."""
    text = ", ".join(shown(name) for name in names[:limit])
    if len(names) > limit:
        text += f", … ({len(names) - limit} more)"
    return text


def spreadsheet_safe(cell: str) -> str:
    """``cell`` made safe to open in a spreadsheet: text that starts like a formula gets ``'``.

    A label such as ``=HYPERLINK(...)`` written as-is into a CSV file runs as a formula
    when the file is opened in Excel or LibreOffice (CSV injection). Numbers such as
    ``-1.5`` are left alone.
    """
    if cell and cell[0] in "=+-@\t\r" and _NUMBER.fullmatch(cell) is None:
        return "'" + cell
    return cell


# --- dialects ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    """How a file separates its cells.

    Attributes:
        sep: the cell separator.
        decimal: the decimal mark of its numbers, ``"."`` or ``","``.
        detected: the separator was detected (not given with ``--sep``).
    """

    sep: str = ","
    decimal: str = "."
    detected: bool = False

    def describe(self) -> str:
        """``"separator ';' (detected)"`` for messages."""
        how = "detected" if self.detected else "given"
        return f"separator {self.sep!r} ({how})"


# --- the table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of a :class:`CsvTable`, typed once after the whole file was read.

    Attributes:
        numbers: float64, the value of every cell that is a number, NaN elsewhere.
        missing: bool, the cells that are empty or spell "no value" (NA, null, ...).
        text: the text of every cell (blanks around it removed), for columns holding
            text; None for columns of numbers, whose text is read again when asked for.
    """

    numbers: np.ndarray
    missing: np.ndarray
    text: np.ndarray | None = None

    @property
    def others(self) -> np.ndarray:
        """bool, the cells that are neither a number nor missing."""
        return ~self.missing & np.isnan(self.numbers)

    def take(self, rows: np.ndarray) -> Column:
        """This column restricted to ``rows``."""
        return Column(
            self.numbers[rows], self.missing[rows], None if self.text is None else self.text[rows]
        )


@dataclass
class CsvTable:
    """A CSV file read into typed columns.

    Attributes:
        path: the file read (as given; messages name it).
        header: the column names, in file order.
        columns: name -> :class:`Column`.
        dialect: the separator and decimal mark it was read with.
        source_rows: for each row, its position among the file's data rows (rows kept
            by :meth:`subset` remember where they came from, for their line numbers).
        source: the file to read again for line numbers and text (``path`` unless the
            table was renamed with :meth:`with_path`).
        in_memory: the table was built from columns in memory (a DataFrame): messages
            name rows (from 1) instead of file lines.
    """

    path: Path
    header: tuple[str, ...]
    columns: dict[str, Column]
    dialect: Dialect = field(default_factory=Dialect)
    source_rows: np.ndarray | None = None
    source: Path | None = None
    in_memory: bool = False
    _file_lines: np.ndarray | None = None
    _positions: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self._positions:
            self._positions = {name: position for position, name in enumerate(self.header)}

    def __len__(self) -> int:
        first = next(iter(self.columns.values()))
        return len(first.numbers)

    @property
    def _source(self) -> Path:
        return self.source or self.path

    def index(self, name: str, role: str = "column") -> int:
        """The position of column ``name``; an unknown name is a CsvError listing the columns.

        Args:
            name: the column's name as written in the header.
            role: what the column was asked for (e.g. "target column"), for the message.
        """
        position = self._positions.get(name)
        if position is None:
            raise CsvError(
                f"{self.path}: no {role} {shown(name)}; the columns are: {listed(self.header)}"
                f"{self._separator_hint(name)}"
            )
        return position

    def _separator_hint(self, name: str) -> str:
        """Why a name may be missing: the file may use another separator than the one read."""
        for sep in SEPARATORS:
            # One column whose name holds another separator: the file was split wrongly.
            if len(self.header) == 1 and sep != self.dialect.sep and sep in self.header[0]:
                return (
                    f" (read with {self.dialect.describe()}; the header holds {sep!r}: "
                    f"try --sep {sep!r})"
                )
        return f" (read with {self.dialect.describe()})"

    def column(self, name: str, role: str = "column") -> Column:
        """Column ``name`` (a CsvError listing the columns if there is none)."""
        self.index(name, role)
        return self.columns[name]

    def texts(self, name: str) -> np.ndarray:
        """The text of every cell of column ``name`` as written (blanks around removed)."""
        column = self.column(name)
        if column.text is None:
            text = _read_texts(self._source, self.dialect, self.index(name))
            if self.source_rows is not None:
                text = text[self.source_rows]
            column = Column(column.numbers, column.missing, text)
            self.columns[name] = column
        assert column.text is not None
        return column.text

    @property
    def lines(self) -> np.ndarray:
        """The file line on which each row starts (the header is on line 1 or later)."""
        if self._file_lines is None:
            self._file_lines = _read_lines(self._source, self.dialect)
        if self.source_rows is None:
            return self._file_lines
        return self._file_lines[self.source_rows]

    def line(self, row: int) -> int:
        """The file line on which row ``row`` (counting from 0) starts."""
        if self._file_lines is None and not self.in_memory:
            return self._locate(row)[0]
        return int(self.lines[row])

    def cell(self, row: int, name: str) -> str:
        """The text of one cell as written (blanks around removed)."""
        column = self.column(name)
        if column.text is not None:
            return str(column.text[row])
        return self._locate(row)[1][self.index(name)].strip(BLANKS)

    def _locate(self, row: int) -> tuple[int, list[str]]:
        """The line and cells of one row, read again up to it with the careful reader."""
        wanted = row if self.source_rows is None else int(self.source_rows[row])
        width = len(self.header)
        records = _data_records(self._source, self.dialect, width)
        for line, record in itertools.islice(records, wanted, None):
            return line, record
        raise IndexError(row)

    def where(self, row: int, name: str) -> str:
        """``"FILE, line L, column 'name' (number)"`` for error messages."""
        at = f"row {row + 1}" if self.in_memory else f"line {self.line(row)}"
        return f"{self.path}, {at}, column {shown(name)} ({self.index(name) + 1})"

    def subset(self, rows: Sequence[int] | np.ndarray) -> CsvTable:
        """The same table with only the given rows (their line numbers kept for messages)."""
        rows = np.asarray(rows, dtype=np.int64)
        source_rows = rows if self.source_rows is None else self.source_rows[rows]
        return CsvTable(
            self.path,
            self.header,
            {name: column.take(rows) for name, column in self.columns.items()},
            self.dialect,
            source_rows=source_rows,
            source=self.source,
            in_memory=self.in_memory,
            _file_lines=self._file_lines,
        )

    def with_path(self, path: str | os.PathLike[str]) -> CsvTable:
        """The same table, with messages naming ``path`` (line numbers still read from the file)."""
        return CsvTable(
            Path(path),
            self.header,
            dict(self.columns),
            self.dialect,
            source_rows=self.source_rows,
            source=self._source,
            in_memory=self.in_memory,
            _file_lines=self._file_lines,
        )


# --- reading


# --- the careful reader -----------------------------------------------------------------------


def _is_blank(record: Sequence[str]) -> bool:
    return not any(cell.strip(BLANKS) for cell in record)


def _is_empty_row(record: Sequence[str]) -> bool:
    """A data row whose every cell is empty or missing: it carries no data and is skipped."""
    return all(cell.strip(BLANKS).lower() in MISSING_CELLS for cell in record)


def _records(file: Path, dialect: Dialect) -> Iterator[tuple[int, list[str]]]:
    """Every record of the file with the line it starts on, blank lines left out.

    Raises:
        CsvError: a byte that is not UTF-8 or a malformed quoted field (line named).
    """
    with open(file, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=dialect.sep, strict=False)
        start = 1
        try:
            for record in reader:
                if not _is_blank(record):
                    yield start, record
                start = reader.line_num + 1
        except UnicodeDecodeError:
            raise _not_utf8(file) from None
        except csv.Error as error:
            raise CsvError(
                f"{file}, line {reader.line_num}: not valid CSV ({error}); check the quotes"
            ) from None


def _not_utf8(file: Path) -> CsvError:
    """The located message for the first byte of ``file`` that is not UTF-8."""
    offset = 0
    with open(file, "rb") as handle:
        # No byte of a multi-byte UTF-8 character is a line feed: lines decode on their own.
        for line, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                return CsvError(
                    f"{file}, line {line}: not UTF-8 text (byte {offset + error.start} is "
                    f"{raw[error.start]:#04x}); save it as UTF-8 CSV"
                )
            offset += len(raw)
    return CsvError(f"{file}: not UTF-8 text; save it as UTF-8 CSV")


def _read_header(file: Path, dialect: Dialect) -> tuple[tuple[str, ...], int]:
    """The header's column names (checked) and the line it is on."""
    for line, record in _records(file, dialect):
        return check_header(file, record), line
    raise CsvError(
        f"{file}: no header: every line is blank or holds only separators; a CSV file needs "
        "a header line naming the columns and then one row per example"
    )


def check_header(file: Path, record: Sequence[str]) -> tuple[str, ...]:
    """The header's names, blanks removed, after checking each is there once (linear time).

    Raises:
        CsvError: a name is empty or repeated, or every name is a number (no header).
    """
    names = tuple(cell.strip(BLANKS) for cell in record)
    if all(parse_number(name) is not None for name in names):
        raise CsvError(
            f"{file}: no header: the first line ({shown(dialect_join(names))}) holds only "
            "numbers; add a first line naming the columns"
        )
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if not name:
            raise CsvError(f"{file}, line 1: column {position} has no name in the header")
        if name in seen:
            raise CsvError(f"{file}, line 1: the header names column {shown(name)} twice")
        seen.add(name)
    return names


def dialect_join(names: Sequence[str]) -> str:
    """The first names joined by commas (enough of them for a message)."""
    return ",".join(names[: MAX_LISTED + 1])


def parse_number(cell: str, decimal: str = ".") -> float | None:
    """The finite number ``cell`` spells (ASCII digits only), else None."""
    pattern = _NUMBER if decimal == "." else _NUMBER_DECIMAL_COMMA
    if pattern.fullmatch(cell) is None:
        return None
    value = float(cell if decimal == "." else cell.replace(",", "."))
    return value if math.isfinite(value) else None


def classify_cells(cells: Sequence[str], decimal: str) -> tuple[np.ndarray, np.ndarray]:
    """``(numbers, missing)`` of a column's cells, blanks around each already removed."""
    numbers = np.full(len(cells), np.nan)
    missing = np.zeros(len(cells), dtype=bool)
    for row, cell in enumerate(cells):
        if cell.lower() in MISSING_CELLS:
            missing[row] = True
        else:
            number = parse_number(cell, decimal)
            if number is not None:
                numbers[row] = number
    return numbers, missing


def _data_records(file: Path, dialect: Dialect, width: int) -> Iterator[tuple[int, list[str]]]:
    """The data rows after the header (checked for their width), empty rows left out."""
    records = _records(file, dialect)
    next(records)  # the header, already checked
    for line, record in records:
        if len(record) != width:
            raise CsvError(
                f"{file}, line {line}: {len(record)} cells, but the header names {width} "
                f"columns; check the separator (the file is read with {dialect.describe()}) "
                "and the quotes on that line"
            )
        if not _is_empty_row(record):
            yield line, record


class _ColumnBuilder:
    """Collects a column's classified batches; keeps text only where the column has some."""

    def __init__(self) -> None:
        self.numbers: list[np.ndarray] = []
        self.missing: list[np.ndarray] = []
        self.text: list[np.ndarray] | None = []
        self.has_others = False

    def add(
        self,
        numbers: np.ndarray,
        missing: np.ndarray,
        text: Callable[[], np.ndarray],
        keep_text: bool = False,
        others: bool | None = None,
    ) -> None:
        """One batch: its numbers, missing cells and (called only if needed) its text.

        ``keep_text`` keeps the text of every batch (columns already known to be text);
        ``others`` says whether the batch has cells that are neither numbers nor missing
        (computed here when not given).
        """
        self.numbers.append(numbers)
        self.missing.append(missing)
        if others is None:
            others = bool(np.any(~missing & np.isnan(numbers)))
        others = keep_text or others
        if others and not self.has_others and self.text is not None and self.numbers[:-1]:
            self.text = None  # the earlier batches' text is gone: read it again at the end
        self.has_others |= others
        if self.text is not None and self.has_others:
            self.text.append(text())

    def finish(self, read_text: Callable[[], np.ndarray]) -> Column:
        numbers, missing = _joined(self.numbers, np.float64), _joined(self.missing, bool)
        text = None
        if self.has_others:
            text = _joined(self.text, object) if self.text is not None else read_text()
        return Column(numbers, missing, text)


def _joined(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
    """The batches as one array (one batch as it is: wide files have many columns)."""
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


def _read_careful(
    file: Path,
    header: tuple[str, ...],
    dialect: Dialect,
    announce: Callable[[int | None], None] | None,
) -> CsvTable:
    """Read the file with Python's csv module, batch by batch (the careful reader).

    Each batch is classified at once as a (rows, columns) grid, and the columns are
    views of the joined grid: a file with a million columns costs little more per cell
    than one with thirty. Text is kept for the columns that hold some.
    """
    width = len(header)
    numbers_parts: list[np.ndarray] = []
    missing_parts: list[np.ndarray] = []
    texts: dict[int, list[np.ndarray] | None] = {}  # None: text read again at the end
    lines: list[int] = []
    batch: list[list[str]] = []

    def flush() -> None:
        stripped = [cell.strip(BLANKS) for record in batch for cell in record]
        numbers, missing = classify_cells(stripped, dialect.decimal)
        numbers, missing = numbers.reshape(-1, width), missing.reshape(-1, width)
        for position in np.flatnonzero((~missing & np.isnan(numbers)).any(axis=0)).tolist():
            if position not in texts:
                # Its earlier batches' text is gone: read it again at the end.
                texts[position] = [] if not numbers_parts else None
        for position, chunks in texts.items():
            if chunks is not None:
                chunks.append(_text_array(stripped[position::width]))
        numbers_parts.append(numbers)
        missing_parts.append(missing)
        batch.clear()
        if announce is not None:
            # About the bytes the batch took in the file: its cells and their separators.
            announce(sum(map(len, stripped)) + len(stripped))

    for line, record in _data_records(file, dialect, width):
        lines.append(line)
        batch.append(record)
        if len(batch) == _ROWS_PER_BATCH:
            flush()
    if batch:
        flush()
    if not lines:
        return CsvTable(file, header, _empty_columns(header), dialect)
    # One row per column, so that each column is a contiguous view.
    numbers_by_column = np.concatenate(numbers_parts).T.copy()
    missing_by_column = np.concatenate(missing_parts).T.copy()
    columns = {}
    for position, name in enumerate(header):
        text = None
        if position in texts:
            chunks = texts[position]
            text = (
                np.concatenate(chunks)
                if chunks is not None
                else _read_texts(file, dialect, position)
            )
        columns[name] = Column(numbers_by_column[position], missing_by_column[position], text)
    return CsvTable(file, header, columns, dialect, _file_lines=np.asarray(lines, dtype=np.int64))


def _empty_columns(header: Sequence[str]) -> dict[str, Column]:
    return {name: Column(np.empty(0), np.empty(0, dtype=bool)) for name in header}


def _text_array(cells: Sequence[str]) -> np.ndarray:
    array = np.empty(len(cells), dtype=object)
    array[:] = cells
    return array


def _read_texts(file: Path, dialect: Dialect, position: int) -> np.ndarray:
    """One column's text, read again with the careful reader."""
    width = len(_read_header(file, dialect)[0])
    return _text_array(
        [record[position].strip(BLANKS) for _, record in _data_records(file, dialect, width)]
    )


def _read_lines(file: Path, dialect: Dialect) -> np.ndarray:
    """The line of every data row, read again with the careful reader."""
    width = len(_read_header(file, dialect)[0])
    return np.asarray([line for line, _ in _data_records(file, dialect, width)], dtype=np.int64)
