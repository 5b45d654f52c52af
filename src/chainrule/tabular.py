"""Models trained by ``chainrule train``, used from Python.

A model file written by ``chainrule train --save`` holds the network and, in its
metadata, how CSV columns become inputs (:mod:`chainrule.tables.preprocessing`).
:func:`chainrule.load` gives such a file back as a :class:`TabularModel`: the network
(it still is one: call it, save it, read its weights) plus ``predict`` and
``predict_proba`` that take a pandas DataFrame, a dict of columns or a CSV path and
apply the stored encoding, standardisation and imputation first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ChainruleError
from .nn.modules import ConfigError, Module, Parameter
from .tables.csv_files import (
    BLANKS,
    Column,
    CsvError,
    CsvTable,
    classify_cells,
    number_label,
    read_csv,
)
from .tables.preprocessing import PREPROCESSING_METADATA_KEY, Preprocessing

__all__ = ["TabularModel", "predict_arrays"]


class TabularModelError(ChainruleError, ValueError):
    """A tabular model cannot be built or used as asked (the message says why)."""


class TabularModel(Module):
    """A network trained by ``chainrule train`` together with its preprocessing.

    It behaves as the network itself (calling it, ``parameters()``, ``state_dict()``,
    ``sizes``, saving it with :func:`chainrule.save`), and adds :meth:`predict` and
    :meth:`predict_proba` on raw columns.

    Args:
        network: the trained network (an ``MLP``).
        preprocessing: the stored :class:`~chainrule.tables.preprocessing.Preprocessing`.
        source: where the model came from (its file), for messages.
    """

    def __init__(
        self, network: Module, preprocessing: Preprocessing, source: str = "model"
    ) -> None:
        self._network = network
        self._preprocessing = preprocessing
        self._source = source
        sizes = getattr(network, "sizes", None)
        expected = [len(preprocessing.input_names), preprocessing.target.outputs]
        if sizes is None or [sizes[0], sizes[-1]] != expected:
            shape = f"{sizes[0]} inputs and {sizes[-1]} outputs" if sizes else "an unknown shape"
            raise TabularModelError(
                f"{source}: its network has {shape} but its preprocessing describes "
                f"{expected[0]} inputs and {expected[1]} outputs; train and save the model "
                "again with 'chainrule train --save'"
            )

    # --- the network, unchanged ---------------------------------------------------------

    @property
    def network(self) -> Module:
        """The trained network."""
        return self._network

    @property
    def preprocessing(self) -> Preprocessing:
        """How columns become the network's inputs (feature encodings, target, imputation)."""
        return self._preprocessing

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The network's forward pass on already-encoded inputs."""
        return self._network(*args, **kwargs)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        return self._network.named_children()

    def _named_own_parameters(self) -> Iterator[tuple[str, Parameter]]:
        return self._network._named_own_parameters()

    def config(self) -> dict[str, Any]:
        return self._network.config()

    @classmethod
    def _from_config(cls, arguments: dict[str, Any], seed: Any, build: Any) -> Module:
        raise ConfigError("a TabularModel is not built from a config; load its model file")

    def __getattr__(self, name: str) -> Any:
        # Only called for names the wrapper lacks: the network's own attributes (sizes, ...).
        if name.startswith("__") or "_network" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["_network"], name)

    def __repr__(self) -> str:
        target = self._preprocessing.target
        return f"TabularModel({target.column!r}, {target.task}, {self._network!r})"

    # --- predicting on raw columns ------------------------------------------------------

    @property
    def task(self) -> str:
        """``"binary"``, ``"multiclass"`` or ``"regression"``."""
        return self._preprocessing.target.task

    @property
    def classes(self) -> list[str]:
        """The class labels in probability-column order (empty for a regression)."""
        return list(self._preprocessing.target.classes)

    @property
    def feature_columns(self) -> list[str]:
        """The columns the model reads, in order."""
        return self._preprocessing.feature_columns

    def encode(self, data: Any) -> np.ndarray:
        """The network's inputs for ``data`` (see :meth:`predict` for what it may be)."""
        inputs, _ = self._preprocessing.encode(as_table(data, self._preprocessing))
        return inputs

    def predict_proba(self, data: Any) -> np.ndarray:
        """Each class's probability for every row of ``data``, columns in :attr:`classes` order.

        Args:
            data: a pandas DataFrame, a dict of columns (name -> sequence), or the path of
                a CSV file with a header. Only the feature columns are read; missing cells
                take the fill values stored at training (``--impute``).

        Raises:
            TabularModelError: the model is a regression (use :meth:`predict`).
            CsvError: a feature column is absent or a cell cannot be used (named).
        """
        if self.task == "regression":
            raise TabularModelError(
                f"{self._source} is a regression model: it has no class probabilities; use predict"
            )
        return predict_arrays(self._network, self._preprocessing, self.encode(data))

    def predict(self, data: Any) -> np.ndarray:
        """The predicted class label (as text) or value (in the target's units) for every row.

        Args:
            data: as for :meth:`predict_proba`.
        """
        outputs = predict_arrays(self._network, self._preprocessing, self.encode(data))
        if self.task == "regression":
            return outputs
        return np.asarray(self.classes, dtype=object)[outputs.argmax(axis=1)]


def predict_arrays(model: Any, preprocessing: Preprocessing, inputs: np.ndarray) -> np.ndarray:
    """The model's outputs for encoded inputs: class probabilities, or values in target units.

    Returns:
        binary: shape (rows, 2), the probabilities of the two classes; multiclass:
        (rows, classes); regression: (rows,) in the target column's units.
    """
    from .functional import no_grad

    with no_grad():
        outputs = np.asarray(model(inputs).data, dtype=np.float64)
    target = preprocessing.target
    if target.task == "binary":
        positive = outputs[:, 0]
        return np.column_stack([1.0 - positive, positive])
    if target.task == "multiclass":
        return outputs
    return outputs[:, 0] * target.scale + target.mean


def as_table(data: Any, preprocessing: Preprocessing) -> CsvTable:
    """``data`` (DataFrame, dict of columns, or CSV path) as a table of the feature columns."""
    if isinstance(data, (str, os.PathLike)):
        return read_csv(data, decimal=preprocessing.decimal)
    if hasattr(data, "columns") and hasattr(data, "__getitem__"):  # a pandas DataFrame
        name = "the DataFrame"
        columns = {str(column): data[column].to_numpy() for column in data.columns}
    elif isinstance(data, Mapping):
        name = "the columns"
        columns = {str(key): np.asarray(value, dtype=object) for key, value in data.items()}
    else:
        raise TypeError(
            f"expected a pandas DataFrame, a dict of columns or a CSV path, got "
            f"{type(data).__name__}"
        )
    needed = {name: columns[name] for name in preprocessing.feature_columns if name in columns}
    lengths = {len(values) for values in needed.values()}
    if len(lengths) > 1:
        raise CsvError(f"{name}: the columns have different lengths ({sorted(lengths)})")
    header = tuple(columns)
    typed = {column: _typed_column(values) for column, values in columns.items()}
    return CsvTable(Path(name), header, typed, in_memory=True)


def _typed_column(values: np.ndarray) -> Column:
    array = np.asarray(values)
    if array.dtype.kind in "fiub":
        numbers = array.astype(np.float64)
        missing = np.isnan(numbers)
        finite = np.isfinite(numbers)
        numbers = np.where(finite, numbers, np.nan)
        text = np.empty(len(numbers), dtype=object)
        text[:] = ["" if gap else number_label(v) for v, gap in zip(numbers, missing)]
        return Column(numbers, missing, text)
    cells = [_cell_text(value) for value in array.tolist()]
    numbers, missing = classify_cells(cells, ".")
    text = np.empty(len(cells), dtype=object)
    text[:] = cells
    return Column(numbers, missing, text)


def _cell_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, (float, np.floating)):
        return number_label(float(value))
    return str(value).strip(BLANKS)


def from_loaded(network: Module, metadata: Mapping[str, Any], source: str) -> Module:
    """The loaded network, wrapped as a :class:`TabularModel` if its metadata holds a
    ``chainrule train`` preprocessing (as :func:`chainrule.load` returns it)."""
    document = metadata.get(PREPROCESSING_METADATA_KEY)
    if document is None:
        return network
    return TabularModel(network, Preprocessing.from_metadata(document, source), source)
