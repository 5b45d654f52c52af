"""Property tests (issue 13): chainrule's readers of untrusted input — the model-file
reader, the command line's CSV reader and the expression parser — give a correct
result or their own clean error for any input, never another exception.

Bounded for CI (max_examples); benchmarks/fuzz.py runs the same checks for minutes.
"""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainrule import nn
from chainrule.expressions import (
    ExpressionError,
    format_expr,
    parse,
)
from chainrule.io import ModelFileError, load, save
from chainrule.tables.csv_files import CsvError, read_csv

_BOUNDED = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def seed_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, dict[str, bytes]]:
    folder = tmp_path_factory.mktemp("seed")
    model = nn.MLP([2, 3, 1], activation="tanh", seed=0)
    path = save(model, folder / "m.safetensors", metadata={"classes": ["a", "b"]})
    weights = {name: value.tobytes() for name, value in model.state_dict().items()}
    return path.read_bytes(), weights


def _load_outcome(path: Path, data: bytes, weights: dict[str, bytes]) -> str:
    path.write_bytes(data)
    try:
        model = load(path)
    except ModelFileError:
        return "refused"
    loaded = {name: np.asarray(value).tobytes() for name, value in model.state_dict().items()}
    assert loaded == weights, "a changed file loaded with different weights"
    return "identical"


@_BOUNDED
@given(
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=4)
)
def test_load_mutated_model_file_is_refused_or_identical(
    tmp_path: Path, seed_file: tuple[bytes, dict[str, bytes]], edits: list[tuple[int, int]]
) -> None:
    """Any few bytes of a model file changed: ModelFileError, or the very same weights."""
    original, weights = seed_file
    data = bytearray(original)
    for position, flip in edits:
        data[position % len(data)] ^= flip
    _load_outcome(tmp_path / "mutant.safetensors", bytes(data), weights)


@_BOUNDED
@given(cut=st.integers(0, 10_000), insert=st.binary(max_size=64))
def test_load_truncated_or_padded_model_file_is_refused(
    tmp_path: Path, seed_file: tuple[bytes, dict[str, bytes]], cut: int, insert: bytes
) -> None:
    """A model file cut short, or with bytes inserted anywhere, is refused."""
    original, weights = seed_file
    position = cut % len(original)
    for data in (original[:position], original[:position] + insert + original[position:]):
        if data != original:
            assert _load_outcome(tmp_path / "m.safetensors", data, weights) == "refused"


def _json_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=4) | st.dictionaries(
        st.text(max_size=8), children, max_size=4
    )


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    _json_containers,
    max_leaves=8,
)


@settings(_BOUNDED, max_examples=40)  # generating nested JSON is the slow part
@given(
    name=st.text(max_size=12),
    entry=_JSON,
    config=_JSON,
    metadata=st.dictionaries(st.sampled_from(["format", "config", "user", "digest", "x"]), _JSON),
)
def test_load_arbitrary_header_json_is_refused_cleanly(
    tmp_path: Path, name: str, entry: Any, config: Any, metadata: dict[str, Any]
) -> None:
    """Headers of arbitrary JSON values where tensors, configs and metadata belong are
    refused with ModelFileError (they never load: no such file is a valid model)."""
    header = {name: entry, "__metadata__": {**metadata, "config": json.dumps(config)}}
    encoded = json.dumps(header).encode()
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"\0" * 24)
    with pytest.raises(ModelFileError):
        load(path)


_CSV_PIECES = st.sampled_from(
    [
        "a",
        "b",
        "x y",
        ",",
        ",",
        ",",
        '"',
        "\n",
        "\n",
        "\r\n",
        "1",
        "2.5",
        "-1e308",
        "NaN",
        "",
        " ",
        ";",
        "\t",
        "\ufeff",
        "é",
        "\x00",
        "NA",
        "1e999",
        '"q,r"',
    ]
)


@_BOUNDED
@given(pieces=st.lists(_CSV_PIECES, max_size=40), raw=st.binary(max_size=40))
def test_read_csv_gives_a_rectangular_table_or_csv_error(
    tmp_path: Path, pieces: list[str], raw: bytes
) -> None:
    """Any bytes as a CSV file: a table with a cell for every column of every row, or
    CsvError."""
    for data in ("".join(pieces).encode("utf-8"), raw):
        path = tmp_path / "data.csv"
        path.write_bytes(data)
        try:
            table = read_csv(path)
        except CsvError:
            continue
        rows = len(table)
        assert rows > 0 and len(set(table.header)) == len(table.header) > 0
        for name in table.header:
            column = table.column(name)
            assert len(column.numbers) == len(column.missing) == rows
            assert column.text is None or len(column.text) == rows


_EXPRESSION_PIECES = st.sampled_from(
    [
        "x",
        "y",
        "w1",
        "2",
        "0.5",
        "1e-3",
        "1e999",
        "+",
        "-",
        "*",
        "/",
        "**",
        "(",
        ")",
        "sin(",
        "exp(",
        "log(",
        "sigmoid(",
        ",",
        " ",
        ".",
        "__import__",
        "x.y",
        "[",
        "'",
        "١",
        "1_0",
    ]
)


@_BOUNDED
@given(pieces=st.lists(_EXPRESSION_PIECES, max_size=20), text=st.text(max_size=20))
def test_parse_gives_a_tree_that_prints_back_or_expression_error(
    pieces: list[str], text: str
) -> None:
    """Any text: a tree whose printed form parses back to it, or ExpressionError."""
    for candidate in ("".join(pieces), text):
        try:
            tree = parse(candidate)
        except ExpressionError:
            continue
        # The printer writes a + (b + c) as a + b + c and rounds numbers: compare up to that.
        assert _same(_canonical(parse(format_expr(tree, unicode=False))), _canonical(tree))


def test_parse_reads_exponents_written_with_leading_zeros() -> None:
    """1e-06 and 2.5e+07 (as the printer and Python write them) are numbers: the exponent's
    digits are not a second, zero-led whole number (a fuzzing finding)."""
    assert parse("1e-06") == parse("1e-6")
    assert parse("x + 2.5e+07*y") == parse("x + 2.5e7*y")
    printed = format_expr(parse("x + 0.000001"), unicode=False)
    assert parse(printed) == parse("x + 0.000001")
    with pytest.raises(ExpressionError, match="may not start with 0"):
        parse("1e-6 + 06")


def _load_fuzz_script() -> Any:
    """benchmarks/fuzz.py as a module: its expression oracle is the one these tests use."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz.py"
    spec = importlib.util.spec_from_file_location("chainrule_fuzz_script", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The printer-tolerant comparison of parsed trees, shared with the long fuzz runs.
_FUZZ_SCRIPT = _load_fuzz_script()
_canonical = _FUZZ_SCRIPT.canonical
_same = _FUZZ_SCRIPT.same
