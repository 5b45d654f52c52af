"""chainrule.tables.encoding: the table encoding ``chainrule train`` and the playground share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chainrule.cli.main import main
from chainrule.errors import ChainruleError
from chainrule.io import read_metadata
from chainrule.playground.data import dataset_from_table, read_upload
from chainrule.tables.csv_files import read_csv
from chainrule.tables.encoding import (
    EncodingError,
    choose_feature_columns,
    fit_preprocessing,
    target_task,
)
from chainrule.tables.preprocessing import PREPROCESSING_METADATA_KEY, Preprocessing

#: Twelve people: ``id`` counts the rows and ``name`` is distinct in each (identifiers).
NAMES = ("ann", "bob", "cid", "dee", "eve", "fay", "gus", "hal", "ivy", "jon", "kim", "lea")
PEOPLE = "id,name,age,colour,label\n" + "".join(
    f"{row + 1},{name},{20 + 7 * row % 41},{('red', 'blue', 'green')[row % 3]},{row % 2}\n"
    for row, name in enumerate(NAMES)
)


def test_encoding_chooses_features_and_notes_what_it_leaves_out(tmp_path: Path) -> None:
    """Row numbers and name-like text are left out, each with a note; the rest are features."""
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE, encoding="utf-8")
    notes: list[str] = []
    columns = choose_feature_columns(read_csv(path), "label", note=notes.append)
    assert columns == ["age", "colour"]
    assert len(notes) == 2
    assert "left out column 'id'" in notes[0] and "left out text column 'name'" in notes[1]


def test_encoding_errors_are_chainrule_errors_not_command_line_ones(tmp_path: Path) -> None:
    """A request the table cannot satisfy is an EncodingError, a ChainruleError and ValueError."""
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE, encoding="utf-8")
    table = read_csv(path)
    with pytest.raises(EncodingError, match="--loss mse needs a numeric target") as caught:
        target_task(table, "colour", "mse")
    assert isinstance(caught.value, ChainruleError) and isinstance(caught.value, ValueError)
    with pytest.raises(EncodingError, match="names 'age' twice"):
        choose_feature_columns(table, "label", ["age", "age"])


def test_playground_upload_gets_the_preprocessing_train_saves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same file and columns give the playground exactly the encoding train stores."""
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE, encoding="utf-8")
    model = tmp_path / "people.model"
    arguments = ["train", str(path), "--target", "label", "--features", "age,colour"]
    arguments += ["--validation-split", "0", "--epochs", "1", "--quiet", "--save", str(model)]
    assert main(arguments) == 0
    capsys.readouterr()
    saved = read_metadata(model)[PREPROCESSING_METADATA_KEY]
    trained = Preprocessing.from_metadata(saved, str(model))

    dataset = dataset_from_table(
        read_upload("people.csv", path.read_bytes()), "label", ["age", "colour"]
    )
    assert dataset.preprocessing == trained

    table = read_csv(path)
    task, labels = target_task(table, "label")
    rows = np.arange(len(table))
    preprocessing, inputs, y = fit_preprocessing(
        table, "label", ["age", "colour"], task, labels, rows
    )
    assert preprocessing == trained and preprocessing.loss == "log_loss"
    np.testing.assert_array_equal(inputs, dataset.X)
    np.testing.assert_array_equal(y, dataset.y)
    assert inputs.shape == (12, 4)  # age, and one input per colour
