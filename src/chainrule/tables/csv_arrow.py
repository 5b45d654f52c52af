"""The fast CSV reader: pyarrow's streaming CSV parser and vectorised cell classification.

Every column starts as float64 (pyarrow converts the cells in C++, block by block). A
column whose cells are not all numbers or missing makes pyarrow stop with a conversion
error naming the column; that column is then read as text and classified with the same
rules as the careful reader (blanks removed, missing spellings, :data:`NUMBER_PATTERN`),
in vectorised pyarrow compute calls. Whatever else pyarrow refuses (a row with too many
cells, bytes that are not UTF-8) is left to the careful reader, which locates it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .csv_table import (
    BLANKS,
    MISSING_CELLS,
    NUMBER_PATTERN,
    CsvTable,
    Dialect,
    _ColumnBuilder,
    _read_texts,
)

#: Above this many columns the careful reader is as fast and simpler to reason about.
MAX_COLUMNS = 2000
#: Reading restarts when a column turns out to hold text; after this many, give up.
MAX_RESTARTS = 32
_BLOCK_BYTES = 1 << 20
_CONVERSION = re.compile(r"In CSV column #(\d+): CSV conversion error to double")


def available() -> bool:
    """Whether pyarrow is installed."""
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


#: The missing-value spellings pyarrow turns into nulls while converting numbers. Each
#: one more slows its conversion of every cell, so only the common ones are here; other
#: spellings (``nA``, `` NA ``) make the column fail conversion and go through the text
#: path, which knows them all.
_NULLS = ["", "NA", "na", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "none", "?"]


def read(
    file: Path,
    header: tuple[str, ...],
    dialect: Dialect,
    announce: Callable[[int | None], None] | None,
) -> CsvTable | None:
    """The table, or None when the careful reader must read (and locate a problem in) the file."""
    if len(header) > MAX_COLUMNS:
        return None
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    text_columns: set[int] = set()
    for _ in range(MAX_RESTARTS):
        try:
            return _read_once(file, header, dialect, text_columns, announce, pa, pa_csv)
        except _Restart as restart:
            text_columns.add(restart.column)
        except (pa.ArrowException, UnicodeDecodeError):
            return None
    return None


class _Restart(Exception):
    """A float64 column holds text: read again with it as text."""

    def __init__(self, column: int) -> None:
        super().__init__(column)
        self.column = column


def _read_once(
    file: Path,
    header: tuple[str, ...],
    dialect: Dialect,
    text_columns: set[int],
    announce: Callable[[int | None], None] | None,
    pa: Any,
    pa_csv: Any,
) -> CsvTable:
    types = {
        name: pa.string() if position in text_columns else pa.float64()
        for position, name in enumerate(header)
    }
    read_options = pa_csv.ReadOptions(
        column_names=list(header), skip_rows=1, block_size=_BLOCK_BYTES, use_threads=True
    )
    parse_options = pa_csv.ParseOptions(delimiter=dialect.sep, newlines_in_values=True)
    convert_options = pa_csv.ConvertOptions(
        column_types=types,
        null_values=_NULLS,
        strings_can_be_null=False,
        quoted_strings_can_be_null=True,
        decimal_point=dialect.decimal,
    )
    builders = [_ColumnBuilder() for _ in header]
    with pa.OSFile(str(file)) as handle:
        reader = pa_csv.open_csv(
            handle,
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )
        position_read = 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as error:
                match = _CONVERSION.search(str(error))
                if match is None:
                    raise
                raise _Restart(int(match.group(1))) from None
            _add_batch(batch, builders, text_columns, dialect, pa)
            if announce is not None:
                now = handle.tell()
                announce(now - position_read)
                position_read = now
    columns = {
        name: builder.finish(functools.partial(_read_texts, file, dialect, position))
        for position, (name, builder) in enumerate(zip(header, builders))
    }
    if not columns or not columns[header[0]].numbers.size:
        return CsvTable(file, header, columns, dialect)
    empty = np.logical_and.reduce([column.missing for column in columns.values()])
    if empty.any():
        # Lines whose cells are all empty or missing carry no data (the careful reader
        # skips them too).
        keep = np.flatnonzero(~empty)
        columns = {name: column.take(keep) for name, column in columns.items()}
    return CsvTable(file, header, columns, dialect)


def _add_batch(
    batch: Any, builders: list[_ColumnBuilder], text_columns: set[int], dialect: Dialect, pa: Any
) -> None:
    # NOTE: numbers come out of pyarrow's buffers directly: its to_numpy() on arrays with
    # nulls, and any conversion of Python objects, import pandas (seconds on a cold start).
    for position, array in enumerate(batch.columns):
        if position in text_columns:
            _add_text(array, builders[position], dialect, pa)
            continue
        valid = _bits(array.buffers()[0], array.offset, len(array))
        numbers = np.frombuffer(
            array.buffers()[1], dtype=np.float64, count=array.offset + len(array)
        )[array.offset :].copy()
        numbers[~valid] = np.nan
        if not np.isfinite(numbers[valid]).all():
            # pyarrow reads "inf" and "-nan" as numbers; chainrule reads them as text.
            raise _Restart(position)
        builders[position].add(numbers, ~valid, lambda: np.empty(0, dtype=object))


def _add_text(array: Any, builder: _ColumnBuilder, dialect: Dialect, pa: Any) -> None:
    """Classify a text column's cells as the careful reader does, in vectorised calls."""
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim(array, characters=BLANKS)
    missing = pc.is_in(pc.utf8_lower(trimmed), value_set=_strings(sorted(MISSING_CELLS), pa))
    number_like = pc.and_(
        pc.match_substring_regex(trimmed, f"^{_pattern(dialect)}$"), pc.invert(missing)
    )
    spelled = trimmed if dialect.decimal == "." else pc.replace_substring(trimmed, ",", ".")
    chosen = _bools(number_like)
    values = pc.cast(spelled.filter(number_like), pa.float64())
    numbers = np.full(len(array), np.nan)
    numbers[np.flatnonzero(chosen)] = np.frombuffer(
        values.buffers()[1], dtype=np.float64, count=values.offset + len(values)
    )[values.offset :]
    numbers[~np.isfinite(numbers)] = np.nan  # 1e999 spells no finite number
    builder.add(
        numbers,
        _bools(missing),
        lambda: _object_array(trimmed.to_pylist()),
        keep_text=True,
    )


def _bits(buffer: Any, offset: int, length: int) -> np.ndarray:
    """An Arrow bitmap as a bool array (a missing validity bitmap means all valid)."""
    if buffer is None:
        return np.ones(length, dtype=bool)
    bits = np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), bitorder="little")
    return bits[offset : offset + length].astype(bool)


def _bools(array: Any) -> np.ndarray:
    """An Arrow boolean array as numpy (null counts as False)."""
    buffers = array.buffers()
    values = _bits(buffers[1], array.offset, len(array))
    return values & _bits(buffers[0], array.offset, len(array))


def _strings(values: list[str], pa: Any) -> Any:
    """An Arrow string array built from its buffers (no Python-object conversion)."""
    data = [value.encode() for value in values]
    offsets = np.cumsum([0] + [len(item) for item in data], dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(),
        len(values),
        [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(data))],
    )


def _object_array(cells: list[Any]) -> np.ndarray:
    array = np.empty(len(cells), dtype=object)
    array[:] = cells
    return array


def _pattern(dialect: Dialect) -> str:
    return NUMBER_PATTERN if dialect.decimal == "." else NUMBER_PATTERN.replace(r"\.", ",")
