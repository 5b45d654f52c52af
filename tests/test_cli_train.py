"""Tests of ``chainrule train`` and ``chainrule predict`` on generated CSV files."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chainrule import nn
from chainrule.cli.main import main
from chainrule.cli.train import parse_hidden
from chainrule.io import load, read_metadata, save
from chainrule.tables import csv_files
from chainrule.tables.preprocessing import ColumnEncoding, Preprocessing, TargetEncoding

FAST = ["--epochs", "60", "--quiet"]


def _write(path: Path, header: list[str], rows: Sequence[Sequence[object]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def classification_csv(tmp_path: Path) -> Path:
    """200 rows: two numbers, a colour and a name; label = yes when x1 + x2 + [red] > 0.5."""
    rng = np.random.default_rng(0)
    rows = []
    for index in range(200):
        x1, x2 = rng.normal(size=2)
        colour = ["red", "green", "blue"][index % 3]
        label = "yes" if x1 + x2 + 1.5 * (colour == "red") > 0.5 else "no"
        rows.append([f"{x1:.4f}", f"{x2:.4f}", colour, f"person {index}", label])
    return _write(tmp_path / "people.csv", ["x1", "x2", "colour", "name", "label"], rows)


def _files(folder: Path) -> set[str]:
    return set(os.listdir(folder))


def _read_predictions(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_train_learns_a_generated_classification_csv(
    classification_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """train fits the rule behind a generated CSV well above the majority baseline."""
    assert main(["train", str(classification_csv), "--target", "label", "--epochs", "60"]) == 0
    output = capsys.readouterr().out
    one_hot = "note: text column 'colour' one-hot encoded into 3 inputs ('blue', 'green', 'red')"
    assert one_hot in output
    assert "note: left out text column 'name'" in output
    # 5 inputs (x1, x2, three colours) + the bias unit: the handouts' way of writing shapes
    assert "Training MLP 6→8→8→1 (5 inputs + the bias unit, as the handouts count;" in output
    assert "epoch  1/60" in output and "epoch 60/60" in output
    accuracy_line = next(line for line in output.splitlines() if line.startswith("accuracy"))
    train_accuracy, validation_accuracy = (
        float(cell) for cell in accuracy_line.split() if cell[0].isdigit()
    )
    assert train_accuracy >= 90.0
    assert validation_accuracy >= 85.0


def test_train_save_and_predict_round_trip(
    classification_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model saved as one file (the preprocessing in its metadata, no sidecar) predicts the
    file's labels; the CSV output has one row per input row."""
    model = tmp_path / "model.safetensors"
    assert (
        main(["train", str(classification_csv), "--target", "label", "--save", str(model), *FAST])
        == 0
    )
    assert f"Saved the model and its preprocessing to {model}." in capsys.readouterr().out
    assert _files(tmp_path) == {"people.csv", "model.safetensors"}
    document = read_metadata(model)["preprocessing"]
    assert document["format"] == "chainrule-train-preprocessing"
    assert [entry["column"] for entry in document["features"]] == ["x1", "x2", "colour"]
    assert document["features"][2]["categories"] == ["blue", "green", "red"]
    assert document["target"]["classes"] == ["no", "yes"]
    assert document["loss"] == "log_loss"

    out = tmp_path / "predictions.csv"
    assert main(["predict", str(model), str(classification_csv), "-o", str(out)]) == 0
    predictions = _read_predictions(out)
    with open(classification_csv, newline="", encoding="utf-8") as handle:
        truth = [row["label"] for row in csv.DictReader(handle)]
    assert len(predictions) == len(truth) == 200
    assert list(predictions[0]) == ["predicted_label", "probability_no", "probability_yes"]
    agreement = np.mean([p["predicted_label"] == t for p, t in zip(predictions, truth)])
    assert agreement >= 0.9
    for row in predictions:
        assert float(row["probability_no"]) + float(row["probability_yes"]) == pytest.approx(1.0)
    assert _files(tmp_path) == {"people.csv", "model.safetensors", "predictions.csv"}


def test_preprocessing_round_trips_through_model_metadata(tmp_path: Path) -> None:
    """Preprocessing.as_metadata, stored with chainrule.save and read back, gives an equal
    Preprocessing (numbers bit for bit)."""
    preprocessing = Preprocessing(
        (
            ColumnEncoding("age", "numeric", mean=29.69911764705882, scale=14.52649733233),
            ColumnEncoding("sex", "one_hot", categories=("female", "male")),
        ),
        TargetEncoding("fare", "regression", mean=32.204207968574636, scale=49.6655344),
        "mse",
    )
    path = save(
        nn.MLP([3, 1], seed=0), tmp_path / "m.model", metadata={"p": preprocessing.as_metadata()}
    )
    assert Preprocessing.from_metadata(read_metadata(path)["p"], str(path)) == preprocessing


def test_predict_writes_to_stdout_without_output_option(
    classification_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without -o the predictions go to standard output as CSV."""
    model = tmp_path / "m.model"
    assert (
        main(["train", str(classification_csv), "--target", "label", "--save", str(model), *FAST])
        == 0
    )
    capsys.readouterr()
    assert main(["predict", str(model), str(classification_csv)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "predicted_label,probability_no,probability_yes"
    assert len(lines) == 201


def test_train_regression_predicts_in_target_units(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real-valued target is a regression; predictions come back in the target's units."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(150, 2))
    y = 3 * x[:, 0] - 2 * x[:, 1] + 100
    data = _write(tmp_path / "r.csv", ["a", "b", "y"], [[*row, value] for row, value in zip(x, y)])
    model = tmp_path / "r.model"
    command = ["train", str(data), "--target", "y", "--epochs", "150", "--save", str(model)]
    assert main([*command, "--quiet"]) == 0
    assert "(regression)" in capsys.readouterr().out
    out = tmp_path / "r_predictions.csv"
    assert main(["predict", str(model), str(data), "-o", str(out)]) == 0
    predicted = np.array([float(row["predicted_y"]) for row in _read_predictions(out)])
    assert np.sqrt(np.mean((predicted - y) ** 2)) < 0.1 * y.std()


def test_train_several_classes_uses_softmax(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A target with three whole-number values is three classes, one probability each."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=300)
    level = np.digitize(x, [-0.5, 0.5])
    data = _write(tmp_path / "c.csv", ["x", "level"], [[f"{a:.4f}", b] for a, b in zip(x, level)])
    model = tmp_path / "c.model"
    command = ["train", str(data), "--target", "level", "--hidden", "16", "--epochs", "100"]
    assert main([*command, "--save", str(model), "--quiet"]) == 0
    assert "(multiclass)" in capsys.readouterr().out
    out = tmp_path / "c_predictions.csv"
    assert main(["predict", str(model), str(data), "-o", str(out)]) == 0
    rows = _read_predictions(out)
    assert list(rows[0]) == ["predicted_level", "probability_0", "probability_1", "probability_2"]
    agreement = np.mean([int(row["predicted_level"]) == b for row, b in zip(rows, level)])
    assert agreement >= 0.9


def test_train_drop_missing_skips_incomplete_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--drop-missing leaves out rows with an empty used cell and says how many."""
    rows = [[i, i % 2 if i != 3 else "", "x"] for i in range(20)]
    rows[5][0] = "NA"
    data = _write(tmp_path / "gaps.csv", ["v", "y", "unused"], rows)
    assert (
        main(
            [
                "train",
                str(data),
                "--target",
                "y",
                "--features",
                "v",
                "--drop-missing",
                "--epochs",
                "2",
            ]
        )
        == 0
    )
    assert "dropped 2 of 20 rows with missing values (y: 1, v: 1)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "widths"), [("8,8", [8, 8]), ("16", [16]), (" 4 , 2 ", [4, 2]), ("none", [])]
)
def test_parse_hidden_reads_layer_widths(text: str, widths: list[int]) -> None:
    """--hidden takes comma-separated widths, or none."""
    assert parse_hidden(text) == widths


def test_read_csv_reports_lines_of_multiline_rows(tmp_path: Path) -> None:
    """A quoted cell spanning lines keeps later rows' line numbers right in errors."""
    path = tmp_path / "multi.csv"
    path.write_text('x,note\n1,"two\nlines"\noops,fine\n', encoding="utf-8")
    table = csv_files.read_csv(path)
    assert list(table.lines) == [2, 4]
    with pytest.raises(csv_files.CsvError, match="line 4, column 'x' \\(1\\)"):
        csv_files.numeric_column(table, "x")


# --- bad input: exit status 2, one line on stderr, no output file ------------------------


def _run_failing(arguments: list[str], capsys: pytest.CaptureFixture[str], folder: Path) -> str:
    before = _files(folder)
    assert main(arguments) == 2
    captured = capsys.readouterr()
    error = captured.err
    assert error.count("\n") == 1, error
    assert "Traceback" not in error
    assert _files(folder) == before, "a failed command left files behind"
    return error


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("", [], "the file is empty"),
        ("   \n\n", [], "the file is empty"),
        ("1,2,3\n4,5,6\n", [], "no header"),
        ("x,label\n", [], "no data rows"),
        ("x,label\n1,a\n2,b\n", ["--target", "colour"], "no target column 'colour'"),
        ("x,label\n1,a\n2,b\n", ["--features", "x,size"], "no feature column 'size'"),
        ("x,label\n1,a\n2,b\n3,a\n", ["--features", "label"], "lists the target column"),
        ("x,label\n5,a\n2,a\n3,a\n", [], "single value ('a')"),
        ("x,label\n1,a\n2\n3,a\n", [], "line 3: 1 cells, but the header names 2"),
        ("x,x,label\n1,2,a\n", [], "names column 'x' twice"),
        ("x,label\n1,a\n,b\n3,a\n", [], "line 3, column 'x' (1): missing value"),
        ("x,label\n1,a\n2,b\n", ["--hidden", "8,,x"], "--hidden '8,,x'"),
        ("x,label\n1,a\n2,b\n", ["--hidden", "0"], "at least 1"),
        ("x,label\n1,a\n2,b\n", ["--activation", "swish"], "--activation 'swish'"),
        ("x,label\n5,a\n2,b\n3,c\n", ["--loss", "log_loss"], "log_loss is for two classes"),
        ("x,label\n1,a\n2,b\n", ["--loss", "mse"], "needs a numeric target"),
        ("x,label\n1,a\n2,b\n", ["--validation-split", "1.5"], "--validation-split"),
        ("x,label\n1,a\n2,b\n", ["--save", "nowhere/m.model"], "no folder"),
    ],
)
def test_train_bad_input_exits_2_with_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    extra: list[str],
    message: str,
) -> None:
    """Each kind of bad file or option is one clear line on stderr and exit status 2."""
    data = tmp_path / "data.csv"
    data.write_text(content, encoding="utf-8")
    arguments = ["train", str(data), "--target", "label", *extra]
    if "--target" in extra:
        arguments = ["train", str(data), *extra]
    arguments += ["--save", str(tmp_path / "model.safetensors")] if "--save" not in extra else []
    error = _run_failing(arguments, capsys, tmp_path)
    assert message in error
    assert error.startswith("chainrule train: error: ")


def test_train_non_numeric_value_names_file_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A word in a numeric column is reported with the file, its line and the column."""
    rows: list[list[object]] = [[i, i * 2.5, i % 2] for i in range(30)]
    rows[16][1] = "twelve"
    data = _write(tmp_path / "numbers.csv", ["id", "size", "label"], rows)
    error = _run_failing(
        ["train", str(data), "--target", "label", "--save", str(tmp_path / "m.model")],
        capsys,
        tmp_path,
    )
    assert f"{data}, line 18, column 'size' (2): 'twelve' is not a number" in error


def test_train_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CSV path that does not exist is one line naming it."""
    error = _run_failing(["train", str(tmp_path / "absent.csv"), "--target", "y"], capsys, tmp_path)
    assert "absent.csv: no such file" in error


def test_train_rejects_a_file_that_is_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bytes that are not UTF-8 are reported with their position."""
    data = tmp_path / "latin1.csv"
    data.write_bytes("x,label\n1,caf\xe9\n".encode("latin-1"))
    error = _run_failing(["train", str(data), "--target", "label"], capsys, tmp_path)
    assert "not UTF-8" in error


@pytest.fixture
def saved_model(classification_csv: Path, tmp_path: Path) -> Path:
    """A model trained on the classification CSV, saved next to it."""
    model = tmp_path / "saved.model"
    arguments = ["train", str(classification_csv), "--target", "label", "--save", str(model)]
    assert main([*arguments, "--epochs", "5", "--quiet"]) == 0
    return model


def test_predict_bad_input_leaves_an_existing_output_untouched(
    saved_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad cell in the last row fails the run before the output file is replaced."""
    capsys.readouterr()
    out = tmp_path / "out.csv"
    out.write_text("old predictions\n")
    rows = [[0.1, 0.2, "red", "a", "yes"]] * 5 + [["oops", 0.2, "red", "a", "yes"]]
    data = _write(tmp_path / "new.csv", ["x1", "x2", "colour", "name", "label"], rows)
    error = _run_failing(["predict", str(saved_model), str(data), "-o", str(out)], capsys, tmp_path)
    assert "line 7, column 'x1' (1): 'oops' is not a number" in error
    assert out.read_text() == "old predictions\n"


def _resave_with_preprocessing(path: Path, change: Callable[[dict[str, Any]], object]) -> None:
    """Save the model at ``path`` again with its preprocessing changed by ``change``."""
    model, metadata = load(path, with_metadata=True)
    change(metadata["preprocessing"])
    save(model, path, metadata=metadata)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("delete_model", "no such model file"),
        ("truncate_model", "cannot load model file"),
        ("garbage", "cannot load model file"),
        ("foreign_format", "preprocessing is malformed (its format is 'something else')"),
        ("missing_kind", "preprocessing is malformed (missing entry 'kind')"),
        ("nan_scale", "preprocessing is malformed (column 'x1''s scale is 'NaN'"),
        ("other_network", "its network has 4 inputs and 1 outputs but its preprocessing"),
    ],
)
def test_predict_unreadable_model_exits_2(
    saved_model: Path,
    classification_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: str,
    message: str,
) -> None:
    """A missing, truncated or corrupt model file, or one whose stored preprocessing is
    malformed or does not fit its network, is one line and exit 2."""
    capsys.readouterr()
    if damage == "delete_model":
        saved_model.unlink()
    elif damage == "truncate_model":
        saved_model.write_bytes(saved_model.read_bytes()[:40])
    elif damage == "garbage":
        saved_model.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    elif damage == "foreign_format":
        _resave_with_preprocessing(saved_model, lambda p: p.update(format="something else"))
    elif damage == "missing_kind":
        _resave_with_preprocessing(saved_model, lambda p: p["features"][0].pop("kind"))
    elif damage == "nan_scale":
        _resave_with_preprocessing(saved_model, lambda p: p["features"][0].update(scale="NaN"))
    else:
        metadata = read_metadata(saved_model)
        save(nn.MLP([4, 3, 1], output_activation="sigmoid", seed=0), saved_model, metadata)
    out = tmp_path / "p.csv"
    error = _run_failing(
        ["predict", str(saved_model), str(classification_csv), "-o", str(out)], capsys, tmp_path
    )
    assert message in error
    assert not out.exists()


def test_predict_on_a_model_without_preprocessing_exits_2(
    classification_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model saved with chainrule.save from Python (no preprocessing in its metadata) is
    refused with one line saying so and what to do, and no output."""
    model = save(nn.MLP([5, 1], output_activation="sigmoid", seed=0), tmp_path / "plain.model")
    out = tmp_path / "p.csv"
    error = _run_failing(
        ["predict", str(model), str(classification_csv), "-o", str(out)], capsys, tmp_path
    )
    assert error.startswith("chainrule predict: error: ")
    assert "without the preprocessing that 'chainrule train --save' stores" in error
    assert "saved with chainrule.save from Python" in error
    assert "chainrule train FILE.csv --target COLUMN --save MODEL" in error
    assert not out.exists()


def test_predict_needs_the_training_columns(
    saved_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CSV without one of the model's feature columns is refused, naming it."""
    capsys.readouterr()
    data = _write(tmp_path / "partial.csv", ["x1", "colour"], [[0.1, "red"]])
    error = _run_failing(
        ["predict", str(saved_model), str(data), "-o", str(tmp_path / "p.csv")], capsys, tmp_path
    )
    assert "no feature column (the model was trained on it) 'x2'" in error


def test_predict_output_folder_must_exist(
    saved_model: Path, classification_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-o into a folder that does not exist is refused before predicting."""
    capsys.readouterr()
    error = _run_failing(
        ["predict", str(saved_model), str(classification_csv), "-o", str(tmp_path / "no/p.csv")],
        capsys,
        tmp_path,
    )
    assert "there is no folder" in error


def test_train_console_entry_reports_errors_without_traceback(tmp_path: Path) -> None:
    """Through the real `python -m chainrule`, a bad file is exit 2 and one stderr line."""
    data = tmp_path / "empty.csv"
    data.write_text("")
    completed = subprocess.run(
        [sys.executable, "-m", "chainrule", "train", str(data), "--target", "y"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert "the file is empty" in completed.stderr
