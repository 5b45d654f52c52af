"""Tests of the command line's data path: the fast and careful CSV readers, dialects, missing
values, kept and excluded columns, early stopping, checks before training, and the
hostile-input items of issue 13 (each test named after its item)."""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chainrule
from chainrule.cli import train
from chainrule.cli.main import main
from chainrule.io import read_metadata
from chainrule.tables import csv_files
from chainrule.tables.csv_files import CsvError, read_csv
from chainrule.tabular import TabularModel

pytest.importorskip("pyarrow")

QUICK = ["--epochs", "30", "--quiet"]


def _write(
    path: Path, header: Sequence[str], rows: Sequence[Sequence[object]], sep: str = ","
) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=sep)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def _same_tables(a: csv_files.CsvTable, b: csv_files.CsvTable) -> None:
    assert a.header == b.header
    assert len(a) == len(b)
    assert list(a.lines) == list(b.lines)
    for name in a.header:
        left, right = a.column(name), b.column(name)
        np.testing.assert_array_equal(left.numbers, right.numbers)
        np.testing.assert_array_equal(left.missing, right.missing)
        assert list(a.texts(name)) == list(b.texts(name))


@pytest.fixture
def people(tmp_path: Path) -> Path:
    """300 rows: an id with leading zeros, two numbers, a colour; label yes when x1 + x2 > 0."""
    rng = np.random.default_rng(3)
    rows = []
    for index in range(300):
        x1, x2 = rng.normal(size=2)
        colour = ["red", "green", "blue"][index % 3]
        rows.append(
            [f"{index:04d}", f"{x1:.4f}", f"{x2:.4f}", colour, "yes" if x1 + x2 > 0 else "no"]
        )
    return _write(tmp_path / "people.csv", ["id", "x1", "x2", "colour", "label"], rows)


# --- the readers ---------------------------------------------------------------------------


def test_read_csv_fast_and_careful_readers_give_the_same_table(tmp_path: Path) -> None:
    """Both readers agree on numbers, missing spellings, text, quoted line breaks, non-finite
    spellings and skipped blank lines, with the same line numbers."""
    path = tmp_path / "mixed.csv"
    path.write_text(
        "a,b,c,d\n"
        "1,x,  2.5 ,NA\n"
        ",,,\n"
        '2,"two\nlines",1e999,nan\n'
        "\n"
        "3, NA ,inf,7\n"
        "4,z,-.5e1, null \n"
        "n/a,?,1_00,8\n",
        encoding="utf-8",
    )
    fast, careful = read_csv(path, fast=True), read_csv(path, fast=False)
    _same_tables(fast, careful)
    assert list(fast.lines) == [2, 4, 7, 8, 9]
    assert list(fast.texts("b")) == ["x", "two\nlines", "NA", "z", "?"]
    assert list(fast.column("c").numbers[[0, 3]]) == [2.5, -5.0]
    assert np.isnan(fast.column("c").numbers[[1, 2, 4]]).all()  # 1e999, inf, 1_00 are text


def test_read_csv_fast_path_locates_errors_like_the_careful_path(tmp_path: Path) -> None:
    """A 50k-row file with a bad row or a bad cell gives the same located error on both paths."""
    rows: list[list[object]] = [[i, i * 0.5, i % 2] for i in range(50_000)]
    short = [list(row) for row in rows]
    short[40_000] = [1, 2]
    shorter = _write(tmp_path / "short.csv", ["a", "b", "y"], short)
    messages = []
    for fast in (True, False):
        with pytest.raises(CsvError) as error:
            read_csv(shorter, fast=fast)
        messages.append(str(error.value))
    assert messages[0] == messages[1]
    assert "short.csv, line 40002: 2 cells, but the header names 3 columns" in messages[0]

    typo = [list(row) for row in rows]
    typo[45_000][1] = "4x"
    bad = _write(tmp_path / "typo.csv", ["a", "b", "y"], typo)
    messages = []
    for fast in (True, False):
        table = read_csv(bad, fast=fast)
        with pytest.raises(CsvError) as error:
            csv_files.numeric_column(table, "b")
        messages.append(str(error.value))
    assert messages[0] == messages[1]
    assert "typo.csv, line 45002, column 'b' (2): '4x' is not a number" in messages[0]


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_read_csv_detects_the_separator(tmp_path: Path, sep: str) -> None:
    """Comma, semicolon, tab and pipe files are read with their own separator detected."""
    path = _write(tmp_path / "d.csv", ["a b", "c", "y"], [[1, "p,q", 0], [2, "r", 1]], sep=sep)
    table = read_csv(path)
    assert table.dialect.sep == sep and table.dialect.detected
    assert table.header == ("a b", "c", "y")
    assert list(table.texts("c")) == ["p,q", "r"]


def test_read_csv_reads_decimal_commas(tmp_path: Path) -> None:
    """--decimal , reads 1,5 as 1.5 on both paths (and 1.5 is then text)."""
    path = tmp_path / "eu.csv"
    path.write_text("x;y\n1,5;a\n-2,25;b\n1.5;c\n", encoding="utf-8")
    for fast in (True, False):
        table = read_csv(path, decimal=",", fast=fast)
        assert table.dialect.sep == ";"
        numbers = table.column("x").numbers
        assert list(numbers[:2]) == [1.5, -2.25] and np.isnan(numbers[2])


# --- messages of issue 12 ------------------------------------------------------------------


def test_train_semicolon_file_read_with_commas_shows_the_separator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A semicolon file read with --sep , says which separator it was read with and which to try."""
    path = tmp_path / "wine.csv"
    path.write_text("alcohol;malic_acid;target\n1;2;0\n3;4;1\n5;6;0\n", encoding="utf-8")
    assert main(["train", str(path), "--target", "target", "--sep", ","]) == 2
    message = _error(capsys)
    assert "no target column 'target'; the columns are: 'alcohol;malic_acid;target'" in message
    assert "read with separator ',' (given); the header holds ';': try --sep ';'" in message


def test_predict_folder_given_as_model_says_so(
    tmp_path: Path, people: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder given as the model is named as a folder, not as a missing file."""
    assert main(["predict", str(tmp_path), str(people)]) == 2
    assert f"{tmp_path}: is a folder, not a model file" in _error(capsys)


def test_train_batch_size_message_speaks_command_line(
    people: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A negative --batch-size is refused in command-line words, before reading the file."""
    assert main(["train", str(people), "--target", "label", "--batch-size", "-3"]) == 2
    message = _error(capsys)
    assert "--batch-size must be a whole number of at least 1 (or 0 for the full batch)" in message
    assert "None" not in message


def test_predict_missing_value_without_imputation_is_located(
    tmp_path: Path, people: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing cell at predict time, for a model trained without --impute, names file,
    line and column and points to --impute."""
    model = tmp_path / "m.model"
    assert main(["train", str(people), "--target", "label", "--save", str(model), *QUICK]) == 0
    gaps = tmp_path / "gaps.csv"
    _write(gaps, ["x1", "x2", "colour"], [[0.1, 0.2, "red"], [0.3, "", "blue"]])
    capsys.readouterr()
    assert main(["predict", str(model), str(gaps)]) == 2
    message = _error(capsys)
    assert "gaps.csv, line 3, column 'x2' (2): missing value ''" in message
    assert "--impute" in message


def test_train_save_into_a_folder_is_refused_before_training(
    tmp_path: Path, people: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--save naming a folder, or a missing folder, stops before any reading or training."""
    assert main(["train", str(people), "--target", "label", "--save", str(tmp_path)]) == 2
    assert "is a folder; give a file name inside it" in _error(capsys)
    missing = tmp_path / "nowhere" / "m.model"
    assert main(["train", str(people), "--target", "label", "--save", str(missing)]) == 2
    assert "there is no folder" in _error(capsys)


# --- imputation, kept and excluded columns ---------------------------------------------------


def _with_gaps(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    rows = []
    for index in range(200):
        x = rng.normal()
        size = "" if index % 7 == 0 else f"{abs(x) * 10:.3f}"
        colour = "" if index % 11 == 0 else ["red", "red", "blue"][index % 3]
        rows.append([f"A{index}", f"{x:.4f}", size, colour, int(x > 0)])
    return _write(tmp_path / "gaps.csv", ["id", "x", "size", "colour", "y"], rows)


@pytest.mark.parametrize(
    ("strategy", "size_fill"), [("mean", "mean"), ("median", "median"), ("most_frequent", "mode")]
)
def test_train_impute_stores_fills_that_predict_applies(
    tmp_path: Path, strategy: str, size_fill: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--impute fills missing cells from the training rows, stores the fills in the model and
    predict gives every row (gaps included) a prediction; --keep carries the id through."""
    data = _with_gaps(tmp_path)
    model = tmp_path / "m.model"
    command = ["train", str(data), "--target", "y", "--exclude", "id", "--impute", strategy]
    assert main([*command, "--save", str(model), *QUICK, "--validation-split", "0"]) == 0
    document = read_metadata(model)["preprocessing"]
    assert document["version"] == 2 and document["impute"] == strategy
    fills = {entry["column"]: entry["fill"] for entry in document["features"]}
    table = read_csv(data)
    sizes = table.column("size").numbers[~table.column("size").missing]
    expected = {"mean": sizes.mean(), "median": np.median(sizes)}
    if size_fill == "mode":
        values, counts = np.unique(sizes, return_counts=True)
        expected["mode"] = values[counts.argmax()]
    assert fills["size"] == pytest.approx(expected[size_fill])
    assert fills["colour"] == "red"
    assert set(fills) == {"x", "size", "colour"}

    out = tmp_path / "p.csv"
    assert main(["predict", str(model), str(data), "--keep", "id", "-o", str(out)]) == 0
    with open(out, newline="", encoding="utf-8") as handle:
        predictions = list(csv.DictReader(handle))
    assert len(predictions) == 200
    assert [row["id"] for row in predictions[:3]] == ["A0", "A1", "A2"]
    assert list(predictions[0]) == ["id", "predicted_y", "probability_0", "probability_1"]


def test_train_impute_drop_is_drop_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--drop-missing and --impute drop leave out the same rows and say so."""
    data = _with_gaps(tmp_path)
    outputs = []
    for option in (["--drop-missing"], ["--impute", "drop"]):
        assert (
            main(["train", str(data), "--target", "y", "--exclude", "id", *option, "--epochs", "2"])
            == 0
        )
        outputs.append(
            next(line for line in capsys.readouterr().out.splitlines() if "dropped" in line)
        )
    assert outputs[0] == outputs[1]
    assert (
        "rows with missing values ('size': 29, 'colour': 19)"
        in outputs[0].replace("size: 29", "'size': 29")
        or "size" in outputs[0]
    )


def test_predict_keep_copies_ids_as_written(
    tmp_path: Path, people: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--keep copies a column's text as written (leading zeros kept) before the predictions."""
    model = tmp_path / "m.model"
    assert main(["train", str(people), "--target", "label", "--save", str(model), *QUICK]) == 0
    capsys.readouterr()
    assert main(["predict", str(model), str(people), "--keep", "id,label"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "id,label,predicted_label,probability_no,probability_yes"
    assert lines[1].startswith("0000,") and lines[2].startswith("0001,")


def test_train_exclude_leaves_columns_out(
    tmp_path: Path, people: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--exclude drops columns from the default features."""
    model = tmp_path / "m.model"
    command = ["train", str(people), "--target", "label", "--exclude", "colour,id"]
    assert main([*command, "--save", str(model), *QUICK]) == 0
    features = read_metadata(model)["preprocessing"]["features"]
    assert [entry["column"] for entry in features] == ["x1", "x2"]


# --- early stopping ------------------------------------------------------------------------


def test_train_early_stopping_saves_the_best_epoch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a validation split the saved model is the best epoch's: its validation loss is the
    reported lowest one."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(120, 6))
    y = x[:, 0] + rng.normal(scale=1.0, size=120)  # noisy: a wide network overfits
    data = _write(
        tmp_path / "r.csv", [f"x{i}" for i in range(6)] + ["y"], [[*r, v] for r, v in zip(x, y)]
    )
    model_path = tmp_path / "r.model"
    command = ["train", str(data), "--target", "y", "--hidden", "64,64", "--epochs", "300"]
    assert main([*command, "--patience", "5", "--save", str(model_path), "--quiet"]) == 0
    output = capsys.readouterr().out
    line = next(line for line in output.splitlines() if "lowest validation loss" in line)
    assert line.startswith("Stopped early at epoch")
    reported = float(line.rsplit(" ", 1)[1].rstrip("."))

    model = chainrule.load(model_path)
    assert isinstance(model, TabularModel)
    table = read_csv(data)
    _, validation_rows = train._split_rows(len(table), 0.2, 0)
    rows = table.subset(validation_rows)
    predicted = model.predict(data)[validation_rows]
    target = model.preprocessing.target
    truth = table.column("y").numbers[validation_rows]
    loss = np.mean(((predicted - truth) / target.scale) ** 2)
    assert len(rows) == len(validation_rows)
    assert loss == pytest.approx(reported, rel=1e-5)


# --- command-line models in Python ---------------------------------------------------------


def test_load_gives_a_tabular_model_that_predicts_dataframes(
    tmp_path: Path, people: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """chainrule.load of a train --save model predicts a DataFrame, a dict and a path alike,
    matching chainrule predict; it is still the network."""
    pd = pytest.importorskip("pandas")
    model_path = tmp_path / "m.model"
    assert main(["train", str(people), "--target", "label", "--save", str(model_path), *QUICK]) == 0
    model = chainrule.load(model_path)
    assert isinstance(model, TabularModel) and model.classes == ["no", "yes"]
    frame = pd.read_csv(people)
    from_frame = model.predict_proba(frame)
    from_dict = model.predict_proba({name: frame[name].tolist() for name in frame.columns})
    from_path = model.predict_proba(people)
    np.testing.assert_allclose(from_frame, from_path)
    np.testing.assert_allclose(from_dict, from_path)
    capsys.readouterr()
    assert main(["predict", str(model_path), str(people)]) == 0
    cli = [line.split(",")[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert list(model.predict(frame)) == cli
    assert model.sizes[0] == 5 and len(model.parameters()) == 6
    again = tmp_path / "again.model"
    chainrule.save(model, again)
    np.testing.assert_allclose(
        chainrule.load(again)(model.encode(frame)).data, model(model.encode(frame)).data
    )


# --- issue 13 ------------------------------------------------------------------------------


def test_item13_1_interrupt_keeps_an_existing_model(
    tmp_path: Path,
    people: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Ctrl-C during train --save M leaves an existing M unchanged, says so and exits 130."""
    model = tmp_path / "m.model"
    assert main(["train", str(people), "--target", "label", "--save", str(model), *QUICK]) == 0
    before = model.read_bytes()
    calls = iter(range(100))

    def interrupt(logs: dict[str, float]) -> str:
        if next(calls) == 2:
            raise KeyboardInterrupt
        return ""

    monkeypatch.setattr(train, "_format_logs", interrupt)
    capsys.readouterr()
    command = ["train", str(people), "--target", "label", "--save", str(model), "--epochs", "50"]
    assert main([*command, "--log-every", "1", "--seed", "1"]) == 130
    output = capsys.readouterr().out
    assert f"Interrupted at epoch 3: nothing saved: {model} left unchanged" in output
    assert model.read_bytes() == before
    calls = iter(range(100))
    assert main([*command, "--log-every", "1", "--seed", "1", "--save-partial"]) == 130
    assert "saved the best weights so far" in capsys.readouterr().out
    assert model.read_bytes() != before


def test_item13_4_divergence_exits_2_saves_nothing_and_prints_no_warnings(
    tmp_path: Path, people: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--lr 1e9 with SGD diverges: exit 2, one line naming the epoch and a smaller --lr, no file."""
    model = tmp_path / "m.model"
    command = ["train", str(people), "--target", "x1", "--optimizer", "sgd", "--lr", "1e9"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main([*command, "--save", str(model), "--quiet", "--epochs", "50"]) == 2
    message = _error(capsys)
    assert "training diverged at epoch" in message and "try a smaller --lr" in message
    assert not model.exists()


def test_item13_8_hostile_inputs_are_refused_cleanly(
    tmp_path: Path, people: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lines of only commas, --seed -1, --hidden 100000000, /dev/zero and a FIFO are refused
    with one line, no traceback and no hang."""
    commas = tmp_path / "commas.csv"
    commas.write_text(",,,\n,,,\n,,\n", encoding="utf-8")
    assert main(["train", str(commas), "--target", "y"]) == 2
    assert "no header: every line is blank or holds only separators" in _error(capsys)
    assert main(["train", str(people), "--target", "label", "--seed", "-1"]) == 2
    assert "--seed must be a whole number from 0 to 4294967295, got -1" in _error(capsys)
    assert main(["train", str(people), "--target", "label", "--hidden", "100000000"]) == 2
    assert "wider than the 100,000 the command line allows" in _error(capsys)
    assert main(["train", "/dev/zero", "--target", "y"]) == 2
    assert "/dev/zero: is a device or socket, not a regular file" in _error(capsys)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert main(["train", str(fifo), "--target", "y"]) == 2
    assert "is a named pipe, not a regular file" in _error(capsys)
    assert main(["predict", str(fifo), str(people)]) == 2
    assert "is a named pipe, not a regular file; give a model file on disk" in _error(capsys)


def test_item13_9_wide_headers_are_read_and_messages_capped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 300k-column header is checked in linear time and the missing-target message lists
    only a few names."""
    names = [f"c{i}" for i in range(300_000)]
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n", encoding="utf-8")
    assert main(["train", str(wide), "--target", "y"]) == 2
    message = _error(capsys)
    assert "… (299980 more)" in message
    assert len(message) < 1000


def test_item13_11_hostile_names_and_labels_are_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Header names with line breaks or ANSI escapes are echoed escaped; formula-like labels
    are written into predictions with a leading quote."""
    forged = tmp_path / "forged.csv"
    forged.write_text('"a\nchainrule: ok","\x1b[31mred",y\n1,2,0\n', encoding="utf-8")
    assert main(["train", str(forged), "--target", "nope"]) == 2
    message = _error(capsys)
    assert "\x1b" not in message and "'a\\nchainrule: ok'" in message and "\\x1b[31mred" in message

    rng = np.random.default_rng(0)
    rows = [
        [f"{v:.3f}", '=HYPERLINK("http://x","y")' if v > 0 else "+1+2"] for v in rng.normal(size=60)
    ]
    data = _write(tmp_path / "f.csv", ["v", "label"], rows)
    model = tmp_path / "f.model"
    assert main(["train", str(data), "--target", "label", "--save", str(model), *QUICK]) == 0
    capsys.readouterr()
    assert main(["predict", str(model), str(data)]) == 0
    output = capsys.readouterr().out
    lines = output.splitlines()
    assert lines[0].startswith("predicted_label,probability_+1+2,")  # not a formula: 'p...'
    assert {line[:4] for line in lines[1:]} == {"\"'=H", "'+1+"}
    assert not any(line.startswith(("=", "+", '"=')) for line in lines)


def test_item13_12_overflowing_standardisation_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 1e308 cell that makes standardisation overflow stops before training, located."""
    rows: list[list[object]] = [[i, i % 2] for i in range(20)]
    rows[4][0] = "1e308"
    rows[5][0] = "-1e308"
    data = _write(tmp_path / "huge.csv", ["x", "y"], rows)
    assert main(["train", str(data), "--target", "y"]) == 2
    message = _error(capsys)
    assert "huge.csv, line " in message and "column 'x' (1)" in message
    assert "standardising the column overflows" in message
    assert "epoch" not in capsys.readouterr().out


def test_item13_13_lookalike_digits_are_not_numbers(tmp_path: Path) -> None:
    """1_00, fullwidth and Arabic-Indic digits are text on both readers, not numbers."""
    path = tmp_path / "digits.csv"
    path.write_text("x,y\n1_00,1\n\uff11\uff12,2\n\u0661\u0662,3\n", encoding="utf-8")
    for fast in (True, False):
        table = read_csv(path, fast=fast)
        assert np.isnan(table.column("x").numbers).all()
        assert not csv_files.is_numeric_column(table, "x")
        assert list(table.texts("x")) == ["1_00", "\uff11\uff12", "\u0661\u0662"]
    assert csv_files.parse_number("1_00") is None and csv_files.parse_number("1e3") == 1000.0


def test_train_alpha_schedule_and_class_weight_reach_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--alpha, --lr-schedule and --class-weight become fit's weight_decay, lr_schedule and
    class_weight: the rate falls along the cosine and the penalty shrinks the weights."""
    import chainrule.training as training

    rng = np.random.default_rng(11)
    x = rng.normal(size=(200, 3))
    label = np.where(x[:, 0] + 0.5 * rng.normal(size=200) > 1.0, "rare", "common")
    data = _write(tmp_path / "w.csv", ["a", "b", "c", "y"], [[*r, v] for r, v in zip(x, label)])
    seen: list[tuple[dict[str, object], object]] = []
    real_fit = training.fit

    def recording_fit(*args: object, **kwargs: object) -> object:
        history = real_fit(*args, **kwargs)  # type: ignore[arg-type]
        seen.append((kwargs, history))
        return history

    monkeypatch.setattr(training, "fit", recording_fit)
    norms = []
    for alpha in ("0", "1"):
        model = tmp_path / f"m{alpha}.model"
        command = ["train", str(data), "--target", "y", "--alpha", alpha, "--patience", "0"]
        extra = ["--lr-schedule", "cosine", "--class-weight", "balanced", "--save", str(model)]
        assert main([*command, *extra, *QUICK]) == 0
        weights = chainrule.load(model).state_dict()
        norms.append(sum(float(np.sum(w**2)) for name, w in weights.items() if "weight" in name))
    options, history = seen[-1]
    assert options["weight_decay"] == 1.0 and options["lr_schedule"] == "cosine"
    assert options["class_weight"] == "balanced"
    rates = history.learning_rate  # type: ignore[attr-defined]
    assert rates[0] > rates[len(rates) // 2] > rates[-1]
    assert norms[1] < 0.5 * norms[0]
    assert main(["train", str(data), "--target", "a", "--class-weight", "balanced"]) == 2
    assert "--class-weight balanced is for class targets" in _error(capsys)


_TOKENS = ["1", "-2.5", ".5", "1e3", "NA", " NA ", "nan", "-nan", "inf", "1e999", "", " ", "x"]
_TOKENS += ["1_00", "\uff11", 'q"uote', "line\nbreak", "1,5", "?", "None", "+1", "1.", "=cmd"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sep=st.sampled_from([",", ";", "\t", "|"]),
    rows=st.lists(st.lists(st.sampled_from(_TOKENS), min_size=3, max_size=3), max_size=6),
    given_sep=st.booleans(),
)
def test_read_csv_fast_and_careful_agree_on_generated_files(
    tmp_path: Path, sep: str, rows: list[list[str]], given_sep: bool
) -> None:
    """On generated files of tricky cells, both readers give the same table or the same error."""
    path = _write(tmp_path / "g.csv", ["a", "b", "c"], rows, sep=sep)
    outcomes = []
    for fast in (True, False):
        try:
            table = read_csv(path, sep=sep if given_sep else None, fast=fast)
        except CsvError as error:
            outcomes.append(str(error))
            continue
        outcomes.append(
            repr(
                [
                    (
                        list(table.column(n).numbers),
                        list(table.column(n).missing),
                        list(table.texts(n)),
                    )
                    for n in table.header
                ]
                + [table.header, list(table.lines)]
            )
        )
    assert outcomes[0] == outcomes[1]


def test_read_csv_shows_progress_for_large_files(
    people: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file above the size threshold announces itself on standard error while it is read."""
    monkeypatch.setattr(csv_files, "LARGE_FILE_BYTES", 1)
    read_csv(people, progress=True)
    assert f"reading {people} (0.0 MB)…" in capsys.readouterr().err
    read_csv(people)
    assert capsys.readouterr().err == ""
    for fast in (True, False):
        counts: list[int | None] = []
        monkeypatch.setattr(csv_files, "_progress", lambda file, size, seen=counts: seen.append)
        read_csv(people, progress=True, fast=fast)
        assert counts[-1] is None  # the bar is closed
        done = sum(count for count in counts if count is not None)
        assert 0.9 * people.stat().st_size <= done <= people.stat().st_size
