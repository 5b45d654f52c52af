"""Tests of chainrule.datasets: the shipped Titanic file and its loader."""

from __future__ import annotations

import hashlib
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import chainrule
from chainrule.datasets import TITANIC_SHA256, DatasetError, load_titanic
from chainrule.datasets import titanic as titanic_module

# The hash of Kaggle's train.csv as the project received it (recorded in docs/titanic.md).
KAGGLE_TRAIN_SHA256 = "4a437fde05fe5264e1701a7387ac6fb75393772ba38bb2c9c566405af5af4bd7"


def _shipped_file() -> Path:
    return Path(str(resources.files("chainrule.datasets").joinpath("data/titanic.csv")))


def test_titanic_file_hash_matches_kaggle_train_csv() -> None:
    """The CSV inside the package is byte for byte the recorded Kaggle file."""
    digest = hashlib.sha256(_shipped_file().read_bytes()).hexdigest()
    assert digest == KAGGLE_TRAIN_SHA256
    assert TITANIC_SHA256 == KAGGLE_TRAIN_SHA256


def test_load_titanic_drops_the_177_passengers_without_age() -> None:
    """By default 714 of the 891 passengers remain, all with an age."""
    data = load_titanic()
    assert len(data) == 714
    assert data.data.shape == (714, len(data.feature_names))
    assert data.target.shape == (714,)
    assert not np.isnan(data.column("age")).any()


def test_load_titanic_keeps_all_891_rows_on_request() -> None:
    """drop_missing_age=False keeps every passenger, 177 of them with age NaN."""
    data = load_titanic(drop_missing_age=False)
    assert len(data) == 891
    assert int(np.isnan(data.column("age")).sum()) == 177
    # Facts of the Kaggle file: 342 survivors, 577 men, passenger ids 1..891 in order.
    assert int(data.target.sum()) == 342
    assert int(data.column("male").sum()) == 577
    assert np.array_equal(data.passenger_ids, np.arange(1, 892))


def test_load_titanic_parses_quoted_names_with_commas() -> None:
    """Names such as "Braund, Mr. Owen Harris" stay one field, so columns do not shift."""
    data = load_titanic(drop_missing_age=False)
    assert data.names[0] == "Braund, Mr. Owen Harris"
    first = dict(zip(data.feature_names, data.data[0]))
    assert first["age"] == 22.0
    assert first["male"] == 1.0
    assert first["pclass"] == 3.0
    assert first["sibsp"] == 1.0
    assert first["fare"] == pytest.approx(7.25)
    assert first["embarked_s"] == 1.0
    assert data.target[0] == 0


def test_load_titanic_features_start_with_the_handouts_inputs() -> None:
    """age and male come first (the handout's x1 and x2), then the other attributes."""
    data = load_titanic()
    assert data.feature_names[:2] == ("age", "male")
    assert {"pclass", "sibsp", "parch", "fare"} <= set(data.feature_names)
    assert set(np.unique(data.column("male"))) == {0.0, 1.0}


@pytest.mark.parametrize("how", ["median", "mean"])
def test_load_titanic_imputes_missing_ages(how: str) -> None:
    """impute_age fills the 177 missing ages with the statistic of the known ones."""
    known = load_titanic().column("age")
    expected = float(np.median(known) if how == "median" else np.mean(known))
    data = load_titanic(impute_age=how)
    assert len(data) == 891
    assert int(data.age_imputed.sum()) == 177
    assert np.all(data.column("age")[data.age_imputed] == expected)
    assert not np.isnan(data.column("age")).any()


def test_load_titanic_as_frame_builds_a_dataframe() -> None:
    """as_frame=True adds a pandas DataFrame with the features, name and survived."""
    data = load_titanic(as_frame=True)
    frame = data.frame
    assert frame.shape == (714, len(data.feature_names) + 3)
    assert list(frame.columns[:2]) == ["passenger_id", "name"]
    assert frame["survived"].sum() == data.target.sum()
    assert np.allclose(frame["age"].to_numpy(), data.column("age"))
    assert load_titanic().frame is None


def test_load_titanic_rejects_an_unknown_imputation() -> None:
    """An impute_age other than None, "median" or "mean" is a DatasetError naming it."""
    with pytest.raises(DatasetError, match="'mode'"):
        load_titanic(impute_age="mode")


def test_load_titanic_refuses_an_altered_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shipped file whose hash differs (edited, truncated) is refused, not used."""
    (tmp_path / "data").mkdir()
    altered = tmp_path / "data" / "titanic.csv"
    shutil.copy(_shipped_file(), altered)
    with open(altered, "ab") as handle:
        handle.write(b'892,1,1,"Someone, Mr. Extra",male,30,0,0,X,1.0,,S\n')

    class _Resources:
        @staticmethod
        def files(_: str) -> Path:
            return tmp_path

    monkeypatch.setattr(titanic_module, "resources", _Resources)
    with pytest.raises(DatasetError, match="altered"):
        load_titanic()


def test_column_names_unknown_feature() -> None:
    """column() with an unknown name raises KeyError listing the features."""
    with pytest.raises(KeyError, match="pclass"):
        load_titanic().column("sex")


def test_datasets_is_a_lazy_attribute_of_chainrule() -> None:
    """chainrule.datasets.load_titanic is reachable from the top-level package."""
    assert chainrule.datasets.load_titanic is load_titanic
