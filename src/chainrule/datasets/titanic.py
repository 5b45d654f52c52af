"""The Titanic passenger list shipped with chainrule (the handout's companion data set).

The file is the 891-row training file of Kaggle's "Titanic - Machine Learning from
Disaster" competition, copied unchanged into ``chainrule/datasets/data/titanic.csv``.
It is read from the installed package (never from the network) and its SHA-256 is
checked on every load, so an edited copy cannot silently change an experiment.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from ..errors import ChainruleError

#: SHA-256 of the shipped ``titanic.csv`` (Kaggle's ``train.csv``, 891 passengers).
TITANIC_SHA256 = "4a437fde05fe5264e1701a7387ac6fb75393772ba38bb2c9c566405af5af4bd7"
#: Where the file comes from.
TITANIC_SOURCE = (
    'Kaggle, "Titanic - Machine Learning from Disaster", training file train.csv '
    "(https://www.kaggle.com/competitions/titanic/data)"
)
#: Feature columns of :func:`load_titanic`, in order: the handout's x₁ (age) and x₂ (male)
#: first, then the other passenger attributes for users who want them.
FEATURE_NAMES: tuple[str, ...] = (
    "age",
    "male",
    "pclass",
    "sibsp",
    "parch",
    "fare",
    "embarked_c",
    "embarked_q",
    "embarked_s",
)
_HEADER = (
    "PassengerId",
    "Survived",
    "Pclass",
    "Name",
    "Sex",
    "Age",
    "SibSp",
    "Parch",
    "Ticket",
    "Fare",
    "Cabin",
    "Embarked",
)
_IMPUTATIONS = (None, "median", "mean")


class DatasetError(ChainruleError, ValueError):
    """A shipped data file is missing, altered, or a loader got an invalid option."""


@dataclass(frozen=True)
class TitanicData:
    """The passengers returned by :func:`load_titanic`.

    Attributes:
        data: float64 array (passengers, features); columns named by ``feature_names``.
        target: int64 array (passengers,): 1 if the passenger survived, else 0.
        feature_names: the column names of ``data`` (see :data:`FEATURE_NAMES`).
        target_name: ``"survived"``.
        names: each passenger's name as written in the file.
        passenger_ids: Kaggle's PassengerId of each row.
        age_imputed: True where the age was missing and filled in by ``impute_age``.
        frame: a pandas DataFrame of the features, ``name`` and ``survived`` when
            ``as_frame=True`` was asked for, else None.
    """

    data: np.ndarray
    target: np.ndarray
    feature_names: tuple[str, ...]
    names: tuple[str, ...]
    passenger_ids: np.ndarray
    age_imputed: np.ndarray
    target_name: str = "survived"
    frame: Any = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def column(self, name: str) -> np.ndarray:
        """One feature column by name, e.g. ``column("age")`` (a view into ``data``)."""
        try:
            index = self.feature_names.index(name)
        except ValueError:
            known = ", ".join(self.feature_names)
            raise KeyError(f"no feature {name!r}; the features are: {known}") from None
        return self.data[:, index]


def load_titanic(
    as_frame: bool = False,
    drop_missing_age: bool = True,
    impute_age: str | None = None,
) -> TitanicData:
    """Load the 891 Titanic passengers shipped with chainrule.

    177 passengers have no recorded age. By default they are dropped, leaving the 714
    passengers the handout's companion notebook uses.

    Args:
        as_frame: also build a pandas DataFrame in ``frame`` (needs the ``pandas`` extra).
        drop_missing_age: drop passengers without an age (default). With False and no
            ``impute_age`` their age is NaN.
        impute_age: ``"median"`` or ``"mean"`` fills missing ages with that statistic of
            the known ages (then nothing is dropped and ``age_imputed`` marks them);
            None (default) leaves them missing.

    Returns:
        A :class:`TitanicData` with ``data``, ``target``, ``feature_names`` and more.

    Raises:
        DatasetError: for an unknown ``impute_age`` or a shipped file that is missing or
            does not match :data:`TITANIC_SHA256`.
    """
    if impute_age not in _IMPUTATIONS:
        raise DatasetError(f"impute_age must be None, 'median' or 'mean', not {impute_age!r}")
    rows = _read_rows()
    passenger_ids = np.array([int(row["PassengerId"]) for row in rows], dtype=np.int64)
    target = np.array([int(row["Survived"]) for row in rows], dtype=np.int64)
    names = tuple(row["Name"] for row in rows)
    embarked = [row["Embarked"] for row in rows]
    columns = {
        "age": np.array([_number(row["Age"]) for row in rows]),
        "male": np.array([1.0 if row["Sex"] == "male" else 0.0 for row in rows]),
        "pclass": np.array([_number(row["Pclass"]) for row in rows]),
        "sibsp": np.array([_number(row["SibSp"]) for row in rows]),
        "parch": np.array([_number(row["Parch"]) for row in rows]),
        "fare": np.array([_number(row["Fare"]) for row in rows]),
        # Two passengers have no port of embarkation: all three indicators are 0 for them.
        "embarked_c": np.array([1.0 if port == "C" else 0.0 for port in embarked]),
        "embarked_q": np.array([1.0 if port == "Q" else 0.0 for port in embarked]),
        "embarked_s": np.array([1.0 if port == "S" else 0.0 for port in embarked]),
    }
    age = columns["age"]
    missing = np.isnan(age)
    age_imputed = np.zeros(len(rows), dtype=bool)
    if impute_age is not None:
        known = age[~missing]
        fill = float(np.median(known) if impute_age == "median" else np.mean(known))
        age[missing] = fill
        age_imputed = missing
        missing = np.zeros(len(rows), dtype=bool)
    data = np.column_stack([columns[name] for name in FEATURE_NAMES])
    keep = ~missing if drop_missing_age else np.ones(len(rows), dtype=bool)
    result = TitanicData(
        data=np.ascontiguousarray(data[keep]),
        target=target[keep],
        feature_names=FEATURE_NAMES,
        names=tuple(name for name, kept in zip(names, keep) if kept),
        passenger_ids=passenger_ids[keep],
        age_imputed=age_imputed[keep],
    )
    if as_frame:
        return _with_frame(result)
    return result


def titanic_csv_bytes() -> bytes:
    """The shipped CSV file's bytes, checked against :data:`TITANIC_SHA256`."""
    try:
        raw = resources.files("chainrule.datasets").joinpath("data/titanic.csv").read_bytes()
    except (FileNotFoundError, OSError) as error:
        raise DatasetError(
            f"the shipped Titanic file is missing ({error}); reinstall chainrule"
        ) from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != TITANIC_SHA256:
        raise DatasetError(
            f"the shipped Titanic file has SHA-256 {digest}, expected {TITANIC_SHA256}: "
            "it was altered; reinstall chainrule"
        )
    return raw


def _read_rows() -> list[dict[str, str]]:
    # The csv module, not str.split: quoted names such as "Braund, Mr. Owen Harris"
    # contain commas.
    text = titanic_csv_bytes().decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = tuple(next(reader))
    if header != _HEADER:
        raise DatasetError(f"the shipped Titanic file has header {header}, expected {_HEADER}")
    return [dict(zip(header, row)) for row in reader if row]


def _number(text: str) -> float:
    return float(text) if text.strip() else math.nan


def _with_frame(result: TitanicData) -> TitanicData:
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            'load_titanic(as_frame=True) needs pandas: pip install "chainrule[pandas]"'
        ) from None
    frame = pd.DataFrame(result.data, columns=list(result.feature_names))
    for name in ("male", "pclass", "sibsp", "parch", "embarked_c", "embarked_q", "embarked_s"):
        frame[name] = frame[name].astype("int64")
    frame.insert(0, "name", list(result.names))
    frame.insert(0, "passenger_id", result.passenger_ids)
    frame[result.target_name] = result.target
    return TitanicData(
        data=result.data,
        target=result.target,
        feature_names=result.feature_names,
        names=result.names,
        passenger_ids=result.passenger_ids,
        age_imputed=result.age_imputed,
        target_name=result.target_name,
        frame=frame,
    )
