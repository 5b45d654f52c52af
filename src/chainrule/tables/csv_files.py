"""CSV files: fast columnar reading with located errors, atomic writes.

A file is read into a :class:`CsvTable` of typed columns. Every column is decided once,
after the whole file is read: a float64 array of its numbers, a mask of its missing
cells and, for columns holding text, the text of every cell.

Two readers produce the same table:

* the **fast** one (:mod:`.csv_arrow`) streams the file through pyarrow's CSV reader
  (installed with the ``all`` extra), converting each block of rows to numbers in
  vectorised code;
* the **careful** one (:mod:`.csv_table`, beside the table itself) reads with Python's
  :mod:`csv` module and knows the file line of every row.

This module chooses the reader and holds what ``chainrule train``, ``chainrule predict``
and the playground do with the columns.

Every problem with a user's file is a :class:`CsvError` whose message names the file,
the line and the column (by name and by number, counting from 1) and says what to do.
When the fast reader meets something it cannot place (a row with too many cells, a byte
that is not UTF-8, a quoted line break it disagrees about), the careful reader reads the
file again and raises its located error, so both give the same message. Line numbers of
the fast reader's rows are found the same way, only when a message needs one. The
command line prints the message as one line and exits with status 2.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np

from .._files import write_atomically
from . import csv_arrow
from .csv_table import BLANKS as BLANKS
from .csv_table import MAX_ECHO as MAX_ECHO
from .csv_table import MAX_LISTED as MAX_LISTED
from .csv_table import MISSING_CELLS as MISSING_CELLS
from .csv_table import NUMBER_PATTERN as NUMBER_PATTERN
from .csv_table import SEPARATORS as SEPARATORS
from .csv_table import Column as Column
from .csv_table import CsvError as CsvError
from .csv_table import CsvTable as CsvTable
from .csv_table import Dialect as Dialect
from .csv_table import _read_careful, _read_header
from .csv_table import check_header as check_header
from .csv_table import classify_cells as classify_cells
from .csv_table import listed as listed
from .csv_table import parse_number as parse_number
from .csv_table import shown as shown
from .csv_table import spreadsheet_safe as spreadsheet_safe

#: A text column with more distinct values than this (and mostly distinct values) looks
#: like an identifier or free text; default feature selection leaves it out.
MAX_DEFAULT_CATEGORIES = 50
#: Files at least this large show progress while they are read.
LARGE_FILE_BYTES = 8 << 20
_SNIFF_BYTES = 1 << 16


# --- dialects ---------------------------------------------------------------------------------


def parse_separator(text: str) -> str:
    """``--sep`` text to a separator: one character, or ``tab``/``\\t`` for a tab.

    Raises:
        CsvError: anything else (no separator, several characters, a quote or line break).
    """
    sep = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(
        text.lower(), text
    )
    if len(sep) != 1 or sep in '"\r\n' or sep.isalnum():
        raise CsvError(
            f"--sep {shown(text)}: expected one separator character such as , ; | or 'tab'"
        )
    return sep


def _sniff_separator(sample: str, decimal: str) -> str:
    """The separator that splits the sample's lines into the same, largest number of cells."""
    lines = sample.splitlines()[:50]
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the sample may end inside a line
    best, best_score = ",", (False, 1)
    for sep in SEPARATORS:
        if sep == decimal:
            continue
        try:
            counts = [len(r) for r in csv.reader(lines, delimiter=sep) if any(c.strip() for c in r)]
        except csv.Error:
            continue
        if not counts:
            continue
        score = (len(set(counts)) == 1, counts[0])
        if counts[0] > 1 and score > best_score:
            best, best_score = sep, score
    return best


# --- reading ----------------------------------------------------------------------------------


def read_csv(
    path: str | os.PathLike[str],
    *,
    sep: str | None = None,
    decimal: str = ".",
    progress: bool = False,
    fast: bool | None = None,
    require: Sequence[tuple[str, str]] = (),
) -> CsvTable:
    """Read a CSV file with a header line into typed columns.

    Args:
        path: the file. UTF-8 (a byte-order mark is allowed); fields may be quoted and
            contain separators or line breaks. Lines whose cells are all empty or missing
            are skipped.
        sep: the cell separator; None detects one of ``,`` ``;`` tab ``|`` from the
            first lines (the one splitting them into the same, largest number of cells).
        decimal: the decimal mark of numbers, ``"."`` or ``","`` (``1,5``).
        progress: show progress on standard error while reading a large file (at least
            :data:`LARGE_FILE_BYTES`): a bar with tqdm on a terminal, else one line.
        fast: use the fast reader (pyarrow); None uses it when pyarrow is installed.
        require: ``(column, role)`` pairs checked against the header before the rows are
            read (an absent column is the same CsvError as :meth:`CsvTable.index` gives).

    Raises:
        CsvError: the file is missing, a folder, not a regular file (a device or pipe),
            unreadable, not UTF-8, empty, has no header (its first line is all numbers),
            repeats or leaves out a column name, has no data rows, or a row has the wrong
            number of cells. The message names the file and line.
    """
    file = Path(path)
    size = check_regular_file(file, "CSV file")
    if decimal not in (".", ","):
        raise CsvError(f"--decimal {shown(decimal)}: the decimal mark is '.' or ','")
    sample = _sample(file)
    if sep is None:
        dialect = Dialect(_sniff_separator(sample, decimal), decimal, detected=True)
    else:
        dialect = Dialect(sep, decimal)
    if dialect.sep == decimal:
        raise CsvError(
            f"{file}: the separator and the decimal mark are both {decimal!r}; "
            "give another --sep (such as ';')"
        )
    header, header_line = _read_header(file, dialect)
    if require:
        header_only = CsvTable(file, header, {}, dialect)  # names only, for messages
        for name, role in require:
            header_only.index(name, role)
    announce = _progress(file, size) if progress and size >= LARGE_FILE_BYTES else None
    try:
        table = None
        if fast is not False and header_line == 1 and (fast or csv_arrow.available()):
            table = csv_arrow.read(file, header, dialect, announce)
        if table is None:
            table = _read_careful(file, header, dialect, announce)
    finally:
        if announce is not None:
            announce(None)
    if not len(table):
        raise CsvError(f"{file}: the header is there but there are no data rows")
    return table


def check_regular_file(file: Path, what: str) -> int:
    """The size of ``file``, after checking it is a regular file that can be read.

    A device such as /dev/zero would be read forever and a named pipe blocks until
    someone writes to it; both are refused before they are opened.

    Args:
        file: the path.
        what: what the file should be (``"CSV file"``, ``"model file"``), for messages.

    Raises:
        CsvError: no such file, a folder, or not a regular file.
    """
    try:
        status = file.stat()
    except FileNotFoundError:
        raise CsvError(f"{file}: no such file") from None
    except OSError as error:
        raise CsvError(f"{file}: cannot read it ({error.strerror or error})") from None
    if stat.S_ISDIR(status.st_mode):
        raise CsvError(f"{file}: is a folder, not a {what}")
    if not stat.S_ISREG(status.st_mode):
        kind = "a named pipe" if stat.S_ISFIFO(status.st_mode) else "a device or socket"
        raise CsvError(f"{file}: is {kind}, not a regular file; give a {what} on disk")
    if not os.access(file, os.R_OK):
        raise CsvError(f"{file}: cannot read it (permission denied)")
    return status.st_size


def _sample(file: Path) -> str:
    """The file's first bytes as text (for detecting the separator); checks it is not empty."""
    with open(file, "rb") as handle:
        raw = handle.read(_SNIFF_BYTES)
    text = codecs.getincrementaldecoder("utf-8-sig")(errors="replace").decode(raw)
    if not text.strip():
        with open(file, "rb") as handle:
            rest_blank = not any(chunk.strip() for chunk in iter(lambda: handle.read(1 << 20), b""))
        if rest_blank:
            raise CsvError(
                f"{file}: the file is empty; a CSV file needs a header line naming the "
                "columns and then one row per example"
            )
    return text


def _progress(file: Path, size: int) -> Callable[[int | None], None]:
    """A function told how many more bytes were read (None: done) that shows progress."""
    try:
        if not sys.stderr.isatty():
            raise ImportError
        from tqdm import tqdm
    except ImportError:
        print(f"reading {file} ({size / 1e6:.1f} MB)…", file=sys.stderr, flush=True)
        return lambda _: None
    bar = tqdm(total=size, unit="B", unit_scale=True, desc=f"reading {file.name}", leave=False)

    def announce(count: int | None) -> None:
        if count is None:
            bar.close()
        else:
            bar.update(count)

    return announce


# --- using columns ----------------------------------------------------------------------------


def is_missing(cell: str) -> bool:
    """Whether a cell means "no value" (empty, NA, NaN, null, ...)."""
    return cell.strip(BLANKS).lower() in MISSING_CELLS


def is_numeric_column(table: CsvTable, name: str) -> bool:
    """Whether column ``name`` holds numbers.

    It does when all its non-missing cells are finite numbers, or all but a few (at most
    one in ten, and at least one is allowed): those few are then taken for mistakes that
    :func:`numeric_column` reports, rather than a reason to treat the column as text.
    Columns that mix numbers and text more often (ticket codes such as ``113803`` and
    ``A/5 21171``) are text.
    """
    column = table.column(name)
    values = int(np.count_nonzero(~column.missing))
    if not values:
        return True
    numbers = int(np.count_nonzero(~np.isnan(column.numbers)))
    others = values - numbers
    return others == 0 or (numbers * 2 > values and others <= max(1, values // 10))


def first_problem(table: CsvTable, name: str, allow_missing: bool = False) -> int | None:
    """The first row whose cell in numeric column ``name`` is not a number (or is missing)."""
    column = table.column(name)
    bad = np.isnan(column.numbers)
    if allow_missing:
        bad &= ~column.missing
    rows = np.flatnonzero(bad)
    return int(rows[0]) if rows.size else None


def numeric_column(table: CsvTable, name: str, allow_missing: bool = False) -> np.ndarray:
    """Column ``name`` as a float64 array (NaN for missing cells when ``allow_missing``).

    Raises:
        CsvError: naming the file, line and column of the first non-numeric cell, or
            of the first missing one unless ``allow_missing``.
    """
    row = first_problem(table, name, allow_missing)
    if row is not None:
        cell = table.cell(row, name)
        if table.column(name).missing[row]:
            raise missing_value(table, row, name, cell)
        raise CsvError(
            f"{table.where(row, name)}: {shown(cell)} is not a number, but the column "
            "holds numbers; fix the cell"
        )
    return table.column(name).numbers


def missing_value(table: CsvTable, row: int, name: str, cell: str) -> CsvError:
    """The located message for a missing cell where a value is needed."""
    return CsvError(
        f"{table.where(row, name)}: missing value {shown(cell)}; fill it in, remove the row, "
        "or train with --impute (mean, median, most_frequent or drop)"
    )


def text_column(table: CsvTable, name: str, allow_missing: bool = False) -> np.ndarray:
    """Column ``name`` as text cells; missing cells are refused with file, line and column."""
    cells = table.texts(name)
    if not allow_missing:
        rows = np.flatnonzero(table.column(name).missing)
        if rows.size:
            raise missing_value(table, int(rows[0]), name, table.cell(int(rows[0]), name))
    return cells


def categories(cells: Sequence[str] | np.ndarray) -> list[str]:
    """The distinct values of a text column, sorted (the one-hot vocabulary)."""
    return sorted(set(cells))


def one_hot(
    cells: Sequence[str] | np.ndarray, vocabulary: Sequence[str]
) -> tuple[np.ndarray, set[str]]:
    """One column of 0/1 per vocabulary entry; also returns the cells not in the vocabulary.

    Args:
        cells: the text values, one per row.
        vocabulary: the categories seen in training, in column order.

    Returns:
        ``(array of shape (rows, len(vocabulary)), unknown values)``. A row whose value
        is unknown gets all zeros.
    """
    position = {category: index for index, category in enumerate(vocabulary)}
    codes = np.fromiter(
        (position.get(cell, -1) for cell in cells), dtype=np.int64, count=len(cells)
    )
    encoded = np.zeros((len(cells), len(vocabulary)), dtype=np.float64)
    known = codes >= 0
    encoded[np.flatnonzero(known), codes[known]] = 1.0
    unknown = {str(cells[int(row)]) for row in np.flatnonzero(~known)}
    return encoded, unknown


def looks_like_identifier(cells: Sequence[str] | np.ndarray) -> bool:
    """A text column with many values, nearly all distinct (names, ticket numbers, ids)."""
    distinct = len(set(cells))
    return distinct > MAX_DEFAULT_CATEGORIES or (distinct > 10 and distinct * 2 > len(cells))


# --- writing ----------------------------------------------------------------------------------


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
    rows: Sequence[Sequence[str]] | Iterator[Sequence[str]],
) -> None:
    """Write a CSV file atomically, or to standard output when ``path`` is None.

    Every text cell goes through :func:`spreadsheet_safe`.
    """

    def write(handle: IO[str]) -> None:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([spreadsheet_safe(cell) for cell in header])
        writer.writerows([spreadsheet_safe(cell) for cell in row] for row in rows)

    if path is None:
        # Build the whole text first so an error cannot leave half a table on stdout.
        buffer = io.StringIO()
        write(buffer)
        sys.stdout.write(buffer.getvalue())
    else:
        write_text_atomically(path, write)


def number_label(value: float) -> str:
    """A numeric class label as text: ``1.0`` -> ``"1"``, ``2.5`` -> ``"2.5"``."""
    return f"{value:.15g}"
