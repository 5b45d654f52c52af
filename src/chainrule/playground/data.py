"""The playground's data sets: the Titanic passengers, XOR, four 2-D sets, and uploaded CSV files.

Every data set is a :class:`Dataset`: model inputs ``X`` (float64), targets ``y`` and
what the page needs to name things (input names, class names, a label per row). The
four 2-D sets are TensorFlow Playground's (circle, exclusive-or, two Gaussians,
spiral), generated here with a seeded numpy Generator so a preset is the same every
time. Uploaded files go through the CSV reader and the column encodings of
``chainrule train`` (:mod:`chainrule.tables.csv_files`), so a bad cell gets the same message
naming the file, line and column.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..datasets import load_titanic
from ..errors import ChainruleError
from ..tables.csv_files import CsvError, CsvTable, read_csv
from ..tables.encoding import EncodingError, drop_missing, fit_preprocessing, target_task
from ..tables.preprocessing import Preprocessing

#: Uploads larger than this many bytes are refused before they are read.
MAX_UPLOAD_BYTES = 2_000_000
#: The 2-D sets have this many points.
POINTS_2D = 200
#: Rows beyond this many are refused (training and heat maps stay interactive).
MAX_ROWS = 20_000
#: At most this many model inputs from an upload (one-hot columns count one per category).
MAX_INPUTS = 32


class PlaygroundDataError(ChainruleError, ValueError):
    """A data set cannot be used as asked; the message says what to do."""


@dataclass
class Dataset:
    """Inputs and targets for one session.

    Attributes:
        name: the preset's name, or ``"upload"``.
        title: what the page shows (``"Titanic (age, male)"``, the file name).
        X: float64 array (rows, inputs).
        y: float64 array (rows,) of 0/1 for two classes, int64 class indices for more,
            float64 values for regression.
        input_names: one per column of ``X``.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        classes: class labels in output order (classification).
        row_labels: a short label per row (a passenger's name), or empty.
        preprocessing: how an uploaded CSV became ``X`` and ``y`` (None for presets).
    """

    name: str
    title: str
    X: np.ndarray
    y: np.ndarray
    input_names: list[str]
    task: str
    classes: list[str] = field(default_factory=list)
    row_labels: list[str] = field(default_factory=list)
    preprocessing: Preprocessing | None = None

    @property
    def outputs(self) -> int:
        """Output units the task needs."""
        return len(self.classes) if self.task == "multiclass" else 1


def titanic() -> Dataset:
    """The 714 passengers with a known age; inputs age (years) and male (0/1), as in the handout."""
    data = load_titanic()
    columns = [data.feature_names.index("age"), data.feature_names.index("male")]
    X = np.ascontiguousarray(data.data[:, columns], dtype=np.float64)
    labels = [
        f"{name} ({age:g}, {'male' if male else 'female'})"
        for name, (age, male) in zip(data.names, X)
    ]
    return Dataset(
        "titanic",
        "Titanic: age, male → survived",
        X,
        data.target.astype(np.float64),
        ["age", "male"],
        "binary",
        ["died", "survived"],
        labels,
    )


def xor() -> Dataset:
    """The four corners of the unit square, labelled x₁ XOR x₂."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array([0, 1, 1, 0], dtype=np.float64)
    return Dataset("xor", "XOR (4 points)", X, y, ["x1", "x2"], "binary", ["0", "1"])


def circle(seed: int = 0) -> Dataset:
    """A disc of one class inside a ring of the other (TensorFlow Playground's "circle")."""
    rng = np.random.default_rng(seed)
    half = POINTS_2D // 2
    radius = np.concatenate([rng.uniform(0, 2.0, half), rng.uniform(3.5, 5.0, half)])
    angle = rng.uniform(0, 2 * math.pi, POINTS_2D)
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    y = np.concatenate([np.ones(half), np.zeros(half)])
    return _shuffled("circle", "Circle", X, y, rng)


def exclusive_or(seed: int = 0) -> Dataset:
    """Points in four quadrants, labelled by whether x₁ and x₂ have the same sign."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-5, 5, (POINTS_2D, 2))
    # Keep points off the axes so the quadrant is clear, as TensorFlow Playground does.
    X += np.where(X > 0, 0.3, -0.3)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.float64)
    return _shuffled("exclusive_or", "Exclusive or", X, y, rng)


def gaussians(seed: int = 0) -> Dataset:
    """Two Gaussian clouds, one per class."""
    rng = np.random.default_rng(seed)
    half = POINTS_2D // 2
    X = np.vstack([rng.normal(2.0, 1.0, (half, 2)), rng.normal(-2.0, 1.0, (half, 2))])
    y = np.concatenate([np.ones(half), np.zeros(half)])
    return _shuffled("gaussians", "Two Gaussians", X, y, rng)


def spiral(seed: int = 0) -> Dataset:
    """Two interleaved spirals, one per class."""
    rng = np.random.default_rng(seed)
    half = POINTS_2D // 2
    t = np.linspace(0.0, 1.0, half)
    radius = 5.0 * t
    angle = 1.75 * 2 * math.pi * t
    arms = []
    for offset in (0.0, math.pi):
        noise = rng.normal(0.0, 0.15, (half, 2))
        arms.append(
            np.column_stack([radius * np.sin(angle + offset), radius * np.cos(angle + offset)])
            + noise
        )
    X = np.vstack(arms)
    y = np.concatenate([np.ones(half), np.zeros(half)])
    return _shuffled("spiral", "Spiral", X, y, rng)


def _shuffled(
    name: str, title: str, X: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> Dataset:
    order = rng.permutation(len(X))
    return Dataset(name, title, X[order], y[order], ["x1", "x2"], "binary", ["0", "1"])


#: Preset data sets by name, in the order the page lists them.
PRESET_DATA = {
    "titanic": titanic,
    "xor": xor,
    "circle": circle,
    "exclusive_or": exclusive_or,
    "gaussians": gaussians,
    "spiral": spiral,
}


def preset_data(name: str) -> Dataset:
    """The preset data set ``name`` (one of :data:`PRESET_DATA`)."""
    if name not in PRESET_DATA:
        raise PlaygroundDataError(
            f"unknown data set {name!r}; choose one of: {', '.join(PRESET_DATA)}"
        )
    return PRESET_DATA[name]()


def safe_file_name(name: str) -> str:
    """The last part of an uploaded file's name, with only harmless characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c if c.isalnum() or c in "._- " else "_" for c in base).strip(" .")
    return cleaned[:80] or "upload.csv"


def read_upload(name: str, content: bytes) -> CsvTable:
    """Parse an uploaded CSV file with ``chainrule train``'s reader.

    Errors name the file as the user knows it (``passengers.csv, line 3, …``), not the
    temporary copy the reader was given.

    Args:
        name: the file's name on the user's machine (only its last part is used).
        content: the file's bytes, at most :data:`MAX_UPLOAD_BYTES`.

    Raises:
        CsvError: anything :func:`chainrule.tables.csv_files.read_csv` refuses, or a file too large.
    """
    shown = safe_file_name(name)
    if len(content) > MAX_UPLOAD_BYTES:
        raise CsvError(
            f"{shown}: {len(content):,} bytes is more than the playground's limit of "
            f"{MAX_UPLOAD_BYTES:,}; use a sample of the rows, or chainrule train for big files"
        )
    with tempfile.TemporaryDirectory(prefix="chainrule-playground-") as folder:
        path = Path(folder) / shown
        path.write_bytes(content)
        try:
            table = read_csv(path)
            if len(table) > MAX_ROWS:
                raise CsvError(
                    f"{shown}: {len(table):,} rows is more than the playground's limit of "
                    f"{MAX_ROWS:,}"
                )
            # The reader finds line numbers and cell texts lazily, from the file: read
            # them now, while the temporary copy exists.
            table.lines  # noqa: B018
            for name in table.header:
                table.texts(name)
        except CsvError as error:
            raise CsvError(str(error).replace(str(path), shown)) from None
        return table.with_path(shown)


def dataset_from_table(table: CsvTable, target: str, inputs: list[str]) -> Dataset:
    """Encode an uploaded table as ``chainrule train`` does.

    The target's task is read from its values; numbers are standardised, text one-hot.

    Args:
        table: from :func:`read_upload`.
        target: the target column.
        inputs: the input columns, at least one.

    Raises:
        CsvError: a missing or unknown column, or a bad cell (file, line, column named).
        PlaygroundDataError: no inputs, the target among them, or too many inputs.
    """
    table.index(target, "target column")
    if not inputs:
        raise PlaygroundDataError("pick at least one input column")
    if target in inputs:
        raise PlaygroundDataError(f"the target column {target!r} cannot also be an input")
    if len(set(inputs)) != len(inputs):
        raise PlaygroundDataError("an input column is picked twice")
    for column in inputs:
        table.index(column, "input column")
    # chainrule train's own encoders: the page's data is what `chainrule train --impute
    # drop` would use (the page has no --impute to offer, so a missing cell costs its row,
    # as the Titanic preset's missing ages do).
    dropped: list[str] = []
    table = drop_missing(table, [target, *inputs], dropped.append)
    try:
        task, labels = target_task(table, target)
        rows = np.arange(len(table))
        # Stored as train stores it: "drop" only when rows were left out.
        impute = "drop" if dropped else None
        preprocessing, X, y = fit_preprocessing(
            table, target, inputs, task, labels, rows, impute=impute
        )
    except EncodingError as error:
        raise PlaygroundDataError(str(error)) from None
    if X.shape[1] > MAX_INPUTS:
        raise PlaygroundDataError(
            f"the chosen columns make {X.shape[1]} inputs (text columns give one per "
            f"category); the playground takes at most {MAX_INPUTS}: pick fewer columns"
        )
    return Dataset(
        "upload",
        str(table.path) + "".join(f" ({note})" for note in dropped),
        np.ascontiguousarray(X, dtype=np.float64),
        y,
        preprocessing.input_names,
        task,
        list(labels),
        [f"line {line}" for line in table.lines],
        preprocessing,
    )
