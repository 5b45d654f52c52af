"""Turning what the user hands to ``fit`` into checked arrays, before any weight moves.

NaN or Inf in the data (counted per column), labels the loss cannot take, lengths that
do not match, weights that are not weights, and settings out of range each raise a
:class:`~chainrule.training.FitError` kind that says what is wrong, where, and what
to do.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..functional import no_grad
from ._errors import FitError, FitSettingError, LabelError, LengthMismatchError, NonFiniteInputError
from ._objective import Objective

# The settings' checks live below both this module and the objective; fit finds them here.
from ._settings import check_lr as check_lr
from ._settings import check_positive_int as check_positive_int
from ._settings import is_integer as is_integer

#: (X, y, sample weights or None) of the training or the validation data.
Split = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]

# --- turning X and y into checked arrays -----------------------------------------------


def is_pandas(obj: Any) -> bool:
    # Checked by module name so pandas is never imported for numpy or list input.
    return type(obj).__module__.split(".", 1)[0] == "pandas"


def features(X: Any, what: str, dtype: np.dtype) -> tuple[np.ndarray, list[str] | None]:
    """X as a 2-D float array of ``dtype`` and its column names (pandas only)."""
    columns: list[str] | None = None
    if is_pandas(X):
        X, columns = _pandas_features(X, what)
    else:
        try:
            X = np.asarray(X)
        except ValueError as error:  # ragged nested lists
            raise FitError(
                f"{what} must be a table of numbers with the same number of columns in every "
                f"row ({error})"
            ) from None
    if X.dtype == np.bool_:
        X = X.astype(dtype)
    if X.dtype.kind not in "iuf":
        raise FitError(
            f"{what} must hold numbers, but its dtype is {X.dtype}; encode text and "
            "categories as numbers first"
        )
    if X.ndim == 1:
        X = X.reshape(-1, 1)  # one feature per example
    if X.ndim != 2:
        raise FitError(
            f"{what} must be 2-D (rows = examples, columns = features), got shape {X.shape}"
        )
    if X.shape[0] == 0:
        raise FitError(f"{what} has no rows: there is nothing to train on")
    if X.dtype.kind == "f":
        _check_finite(X, what, columns)
    with np.errstate(over="ignore"):
        converted = X.astype(dtype, copy=False)
    if converted is not X and not np.isfinite(converted).all():
        _check_finite(converted, what, columns, note=f" (too large for {dtype})")
    return converted, columns


def _pandas_features(X: Any, what: str) -> tuple[np.ndarray, list[str]]:
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if hasattr(X, "columns"):  # DataFrame
        columns = [str(c) for c in X.columns]
        kinds = list(X.dtypes)
    else:  # Series: one feature
        columns = [str(X.name) if X.name is not None else "0"]
        kinds = [X.dtype]
    bad = [
        c for c, kind in zip(columns, kinds) if not (is_numeric_dtype(kind) or is_bool_dtype(kind))
    ]
    if bad:
        raise FitError(
            f"{what} has non-numeric columns {bad}; encode them as numbers first (for "
            "example with pandas.get_dummies)"
        )
    # Nullable pandas columns (Int64, Float64, boolean) hold pd.NA: make it NaN so the
    # finiteness check reports it.
    array = X.to_numpy(dtype=np.float64, na_value=np.nan)
    return array, columns


def _check_finite(array: np.ndarray, what: str, columns: list[str] | None, note: str = "") -> None:
    # One reduction answers the common case without an (n, d) mask: a NaN or Inf makes
    # the sum NaN or Inf. A sum that overflowed on finite values comes here too, and the
    # full scan below then finds nothing to report.
    with np.errstate(all="ignore"):
        if np.isfinite(np.add.reduce(array, axis=None)):
            return
    finite = np.isfinite(array)
    if finite.all():
        return
    nans = np.isnan(array)
    infs = ~finite & ~nans
    if array.ndim == 1:
        nans, infs = nans.reshape(-1, 1), infs.reshape(-1, 1)
    nan_per_column = nans.sum(axis=0)
    inf_per_column = infs.sum(axis=0)
    parts = []
    for index in np.flatnonzero(nan_per_column + inf_per_column):
        name = repr(columns[index]) if columns else str(index)
        counts = []
        if nan_per_column[index]:
            counts.append(f"{nan_per_column[index]} NaN")
        if inf_per_column[index]:
            counts.append(f"{inf_per_column[index]} Inf")
        parts.append(f"column {name}: {', '.join(counts)}")
    shown = parts[:10] + ([f"... and {len(parts) - 10} more columns"] if len(parts) > 10 else [])
    raise NonFiniteInputError(
        f"{what} has {int(nans.sum())} NaN and {int(infs.sum())} Inf values{note} "
        f"({'; '.join(shown)}); remove or fill them in before training"
    )


def targets(y: Any, what: str, objective: Objective, n_outputs: int, dtype: np.dtype) -> np.ndarray:
    """y as the array the loss takes: (n, outputs) numbers, or (n,) class indices."""
    if is_pandas(y):
        y = y.to_numpy(dtype=np.float64, na_value=np.nan) if _numeric_pandas(y) else y.to_numpy()
    else:
        try:
            y = np.asarray(y)
        except ValueError as error:
            raise FitError(f"{what} must be numbers, one row per example ({error})") from None
    if y.dtype == np.bool_:
        y = y.astype(np.float64)
    if y.dtype.kind not in "iuf":
        raise LabelError(
            f"{what} must hold numbers, but its dtype is {y.dtype}; encode class names as "
            "0, 1, ... first"
        )
    if y.ndim == 0 or y.ndim > 2:
        raise FitError(f"{what} must be 1-D or 2-D, got shape {y.shape}")
    if y.dtype.kind == "f":
        _check_finite(y, what, None)

    if objective.labels == "classes":
        return _class_targets(y, what, n_outputs, dtype)

    if y.ndim == 1:
        y = y.reshape(-1, 1)
    if y.shape[1] != n_outputs:
        raise FitError(f"{what} has {y.shape[1]} columns but the model has {n_outputs} outputs")
    if objective.labels == "binary":
        outside = ~((y == 0) | (y == 1))
        if outside.any():
            examples = ", ".join(f"{v:g}" for v in np.unique(y[outside])[:5])
            raise LabelError(
                f"{what} has {int(outside.sum())} labels outside {{0, 1}} (values such as "
                f"{examples}); loss {objective.name!r} needs 0/1 labels — recode them, or "
                "use loss='cross_entropy' with a softmax output for more than two classes"
            )
    with np.errstate(over="ignore"):
        converted = y.astype(dtype)
    if not np.isfinite(converted).all():
        _check_finite(converted, what, None, note=f" (too large for {dtype})")
    return converted


def _numeric_pandas(obj: Any) -> bool:
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    kinds = list(obj.dtypes) if hasattr(obj, "columns") else [obj.dtype]
    return all(is_numeric_dtype(k) or is_bool_dtype(k) for k in kinds)


def _class_targets(y: np.ndarray, what: str, n_outputs: int, dtype: np.dtype) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2:  # one-hot (or soft) targets, one column per class
        if y.shape[1] != n_outputs:
            raise FitError(f"{what} has {y.shape[1]} columns but the model has {n_outputs} classes")
        if ((y < 0) | (y > 1)).any() or not np.allclose(y.sum(axis=1), 1.0):
            raise LabelError(
                f"{what} is 2-D, so it must be one-hot (each row 0s and 1s summing to 1); "
                "or give class indices 0, 1, ... as a 1-D array"
            )
        return y.astype(dtype)
    if y.dtype.kind == "f":
        fractional = y != np.round(y)
        if fractional.any():
            row = int(np.flatnonzero(fractional)[0])
            raise LabelError(
                f"{what} has {int(fractional.sum())} non-integer class labels (row {row} is "
                f"{y[row]:g}); cross-entropy needs class indices 0 to {n_outputs - 1}"
            )
    outside = (y < 0) | (y >= n_outputs)
    if outside.any():
        examples = ", ".join(f"{v:g}" for v in np.unique(y[outside])[:5])
        raise LabelError(
            f"{what} has {int(outside.sum())} class labels outside 0 to {n_outputs - 1} "
            f"(values such as {examples}); the model has {n_outputs} outputs, one per class"
        )
    return y.astype(np.intp)


# --- settings -------------------------------------------------------------------------


def widths(
    model: Any, features: np.ndarray, forward: Callable[[Any], Any], value_model: bool
) -> tuple[int, int]:
    """The model's number of inputs and outputs."""
    sizes = getattr(model, "sizes", None)
    if isinstance(sizes, Sequence) and len(sizes) >= 2:
        return int(sizes[0]), int(sizes[-1])
    # A module without sizes: ask it, on one example, without recording a graph.
    with no_grad():
        if value_model:
            return features.shape[1], len(list(forward(features[0].tolist())))
        out = forward(features[:1])
    return features.shape[1], int(np.shape(out.data)[-1])


def validation_arrays(
    data: Any, objective: Objective, n_inputs: int, n_outputs: int, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise FitSettingError(
            "validation_data must be a pair (X_val, y_val) or a triple (X_val, y_val, "
            f"sample_weight_val), got {type(data).__name__}"
            + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else "")
        )
    val_X, columns = features(data[0], "validation X", dtype)
    if val_X.shape[1] != n_inputs:
        raise FitError(
            f"validation X has {val_X.shape[1]} columns but the model takes {n_inputs} inputs"
            + (f" (its columns: {columns})" if columns else "")
        )
    val_y = targets(data[1], "validation y", objective, n_outputs, dtype)
    if len(val_y) != len(val_X):
        raise LengthMismatchError(
            f"validation X has {len(val_X)} rows but validation y has {len(val_y)}"
        )
    val_w = None
    if len(data) == 3 and data[2] is not None:
        val_w = _sample_weight(data[2], len(val_X), "the validation sample_weight", dtype)
    return val_X, val_y, val_w


def split(
    features: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray | None,
    validation_split: Any,
    validation_data: Any,
    rng: np.random.Generator,
    prepare: Callable[[Any], tuple[np.ndarray, np.ndarray, np.ndarray | None]],
) -> tuple[Split, Split | None]:
    """Training and validation (X, y, weights): given validation data, or a random
    held-out part (whose weights, if any, weight the validation loss)."""
    if (
        not isinstance(validation_split, numbers.Real)
        or isinstance(validation_split, bool)
        or not 0.0 <= float(validation_split) < 1.0
    ):
        raise FitSettingError(
            f"validation_split must be a fraction from 0 to below 1, got {validation_split!r}"
        )
    if validation_data is not None:
        if validation_split:
            raise FitSettingError("give validation_split or validation_data, not both")
        return (features, targets, weights), prepare(validation_data)
    if not validation_split:
        return (features, targets, weights), None
    n = len(features)
    n_val = round(n * float(validation_split))
    if n_val < 1 or n_val >= n:
        raise FitSettingError(
            f"validation_split={validation_split} of {n} examples leaves "
            f"{n - n_val} for training and {n_val} for validation; both need at least one"
        )
    order = rng.permutation(n)
    held, kept = order[:n_val], order[n_val:]
    return (
        (features[kept], targets[kept], None if weights is None else weights[kept]),
        (features[held], targets[held], None if weights is None else weights[held]),
    )


def are_binary(targets: np.ndarray) -> bool:
    return bool(((targets == 0) | (targets == 1)).all())


# --- example weights ------------------------------------------------------------------------


def _sample_weight(weights: Any, n_rows: int, what: str, dtype: np.dtype) -> np.ndarray:
    """One non-negative finite weight per row, not all zero, as a 1-D array of ``dtype``."""
    if is_pandas(weights):
        weights = weights.to_numpy(dtype=np.float64, na_value=np.nan)
    try:
        array = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise FitSettingError(f"{what} must be numbers, one per example") from None
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or len(array) != n_rows:
        raise LengthMismatchError(
            f"{what} has shape {array.shape} but there are {n_rows} examples: give one "
            "weight per example (a 1-D array)"
        )
    bad = ~np.isfinite(array) | (array < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise FitSettingError(
            f"{what} has {int(bad.sum())} weights that are negative, NaN or Inf (row {row} is "
            f"{array[row]!r}); weights must be finite numbers of at least 0"
        )
    if not array.any():
        raise FitSettingError(f"{what} is all zeros: no example would count in the loss")
    return array.astype(dtype)


def _example_classes(targets: np.ndarray, objective: Objective) -> np.ndarray | None:
    """The class of every training example, or None when the targets are not classes."""
    if objective.labels == "classes":
        return targets if targets.ndim == 1 else targets.argmax(axis=1)
    if targets.ndim == 2 and targets.shape[1] == 1 and are_binary(targets):
        return targets[:, 0].astype(np.intp)
    return None


def example_weights(
    sample_weight: Any,
    class_weight: Any,
    targets: np.ndarray,
    objective: Objective,
    dtype: np.dtype,
) -> np.ndarray | None:
    """Each training example's weight in the loss: sample_weight × its class's weight.

    ``class_weight`` is ``"balanced"`` (each class weighs n / (classes · its count), as
    in scikit-learn) or a mapping class -> weight (classes left out weigh 1). None
    when neither is given, so unweighted training pays nothing for the option.
    """
    if sample_weight is None and class_weight is None:
        return None
    n_rows = len(targets)
    weights = (
        np.ones(n_rows, dtype)
        if sample_weight is None
        else _sample_weight(sample_weight, n_rows, "sample_weight", dtype)
    )
    if class_weight is None:
        return weights
    classes = _example_classes(targets, objective)
    if classes is None:
        raise FitSettingError(
            "class_weight is for classifiers (0/1 labels of one sigmoid output, or class "
            "indices of a softmax output); these targets are not classes — use "
            "sample_weight instead"
        )
    present, counts = np.unique(classes, return_counts=True)
    if isinstance(class_weight, str):
        if class_weight.strip().lower() != "balanced":
            raise FitSettingError(
                f"class_weight must be 'balanced' or a mapping class -> weight, got "
                f"{class_weight!r}"
            )
        per_class = dict(zip(present.tolist(), (n_rows / (len(present) * counts)).tolist()))
    elif isinstance(class_weight, Mapping):
        per_class = {}
        n_classes = (
            2
            if objective.labels == "binary"
            else int(targets.shape[1])
            if (targets.ndim == 2)
            else None
        )
        for key, value in class_weight.items():
            label = (
                int(key)
                if isinstance(key, numbers.Integral)
                or (isinstance(key, float) and float(key).is_integer())
                else None
            )
            known = label is not None and label >= 0 and (n_classes is None or label < n_classes)
            if not known:
                raise FitSettingError(
                    f"class_weight has a key {key!r} that is not a class: the classes are "
                    + ("0 and 1" if objective.labels == "binary" else "the indices 0, 1, ...")
                )
            if (
                not isinstance(value, numbers.Real)
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value < 0
            ):
                raise FitSettingError(
                    f"class_weight[{key!r}] is {value!r}; a class weight is a finite number "
                    "of at least 0"
                )
            per_class[label] = float(value)
    else:
        raise FitSettingError(
            f"class_weight must be 'balanced' or a mapping class -> weight, not "
            f"{type(class_weight).__name__}"
        )
    factors = np.array([per_class.get(int(c), 1.0) for c in present.tolist()])
    weights = weights * factors[np.searchsorted(present, classes)].astype(dtype)
    if not weights.any():
        raise FitSettingError("sample_weight and class_weight together give every example weight 0")
    return weights
