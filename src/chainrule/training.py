"""The training loop: ``fit(model, X, y, ...)`` returns a :class:`History`.

Everything the user hands in is checked before the first weight moves: NaN or Inf
in the data (counted per column), labels the loss cannot take, lengths that do
not match, and settings out of range. Each problem raises a :class:`FitError`
subclass that says what is wrong, where, and what to do.

A training step is one function ``step(batch_X, batch_y) -> loss`` built by
:func:`_make_step` (or :func:`_make_value_step` for the neuron-level network):
forward, loss, backward, optimizer update. The epoch loop around it does no
per-batch work beyond slicing the batch and adding up the loss, so a faster
step (a compiled one) can replace it without touching anything else.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import ChainruleError
from .functional import no_grad
from .tensor import Tensor
from .value import Value

if TYPE_CHECKING:
    from .nn import Module
    from .optim import Optimizer

__all__ = [
    "FitError",
    "FitSettingError",
    "History",
    "LabelError",
    "LengthMismatchError",
    "NonFiniteInputError",
    "fit",
]

#: ``step(batch_X, batch_y) -> mean loss of the batch``: one forward, backward and update.
StepFunction = Callable[[np.ndarray, np.ndarray], float]
Callback = Callable[[int, dict[str, float]], "bool | None"]

_DEFAULT_LR = {"sgd": 0.1, "adam": 0.001}

# Loss names fit accepts -> the canonical loss they stand for.
_LOSS_NAMES = {
    "mse": "mse",
    "mse_loss": "mse",
    "square": "mse",
    "square_loss": "mse",
    "log_loss": "log_loss",
    "bce": "log_loss",
    "binary_cross_entropy": "log_loss",
    "bce_with_logits": "bce_with_logits",
    "binary_cross_entropy_with_logits": "bce_with_logits",
    "cross_entropy": "cross_entropy",
}

# --- errors ---------------------------------------------------------------------------


class FitError(ChainruleError, ValueError):
    """Base class of the input and setting problems ``fit`` finds before training."""


class NonFiniteInputError(FitError):
    """The data holds NaN or Inf; the message counts them per column."""


class LabelError(FitError):
    """A target the loss cannot take: not 0/1 for a binary loss, not a class index."""


class LengthMismatchError(FitError):
    """X and y (or the validation X and y) have different numbers of rows."""


class FitSettingError(FitError):
    """A setting of ``fit`` is out of range: batch size, learning rate, epochs, ..."""


# --- history --------------------------------------------------------------------------


@dataclass
class History:
    """What happened during :func:`fit`, one entry per completed epoch.

    Attributes:
        epoch: the epoch numbers, from 1.
        loss: the training loss of each epoch, the mean over its examples (each batch's
            loss is computed before that batch's update, as in Keras).
        val_loss: the validation loss after each epoch (empty without validation data).
        accuracy: for classifiers, the fraction of training examples classified right
            after each epoch (sigmoid outputs at the 0.5 threshold, softmax by argmax);
            empty for regressors.
        val_accuracy: the same on the validation data.
        monitor: the quantity watched for the best epoch, ``"val_loss"`` or ``"loss"``.
        best_epoch: the epoch with the lowest ``monitor`` value (None before any).
        stopped_early: training ended before ``epochs``: early stopping, a callback,
            or a diverged loss.
        diverged: the training loss became NaN or Inf; the best weights were restored.
        interrupted: Ctrl-C (KeyboardInterrupt) stopped training; the best weights
            were restored.
    """

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    monitor: str = "loss"
    best_epoch: int | None = None
    stopped_early: bool = False
    diverged: bool = False
    interrupted: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Every attribute as plain Python lists and numbers (JSON-ready)."""
        return asdict(self)

    def _record(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        self.loss.append(logs["loss"])
        for key in ("val_loss", "accuracy", "val_accuracy"):
            if key in logs:
                getattr(self, key).append(logs[key])


# --- the objective: what is computed from the model and compared with y ----------------


@dataclass(frozen=True)
class _Objective:
    """The loss as fit applies it, and how targets are checked and accuracy measured."""

    name: str
    function: Callable[[Any, Any], Any]
    labels: Literal["binary", "classes", "real"]
    on_logits: bool  # the loss takes model.forward_logits (pre-activation) outputs
    # How outputs become classes: "threshold" (p >= 0.5, i.e. logit >= 0), "argmax", or None.
    accuracy: Literal["threshold", "argmax"] | None


def _output_activation(model: Any) -> str | None:
    """The output activation's name ("sigmoid", "softmax", "identity", ...), None if unknown."""
    activations = getattr(model, "activations", None)
    if not isinstance(activations, Sequence) or not activations:
        return None
    from .nn import activations as nn_activations

    last = activations[-1]
    try:
        function = nn_activations.get_activation(last)
    except (ValueError, TypeError):
        return None
    for name in ("sigmoid", "softmax", "identity"):
        if function is nn_activations.ACTIVATIONS[name]:
            return name
    return nn_activations.activation_name(last)


def _resolve_objective(model: Any, loss: Any) -> _Objective:
    from . import nn

    output = _output_activation(model)
    has_logits = callable(getattr(model, "forward_logits", None))
    squashed = output in ("sigmoid", "softmax")

    if isinstance(loss, str):
        key = loss.strip().lower()
        if key == "auto":
            key = {"sigmoid": "log_loss", "softmax": "cross_entropy"}.get(output or "", "mse")
        canonical = _LOSS_NAMES.get(key)
        if canonical is None:
            raise FitSettingError(
                f"unknown loss {loss!r}; known losses: 'auto', "
                f"{', '.join(repr(n) for n in sorted(_LOSS_NAMES))}, or pass a callable "
                "loss(prediction, target)"
            )
    else:
        canonical = _canonical_loss_of(loss, nn)
        if canonical is None:
            if not callable(loss):
                raise FitSettingError(
                    f"loss must be a name or a callable loss(prediction, target), "
                    f"not {type(loss).__name__}"
                )
            # A user's own loss: it gets the model's output; targets are only checked
            # for NaN/Inf.
            name = getattr(loss, "__name__", type(loss).__name__)
            return _Objective(name, loss, "real", False, _accuracy_rule(output))

    if canonical == "log_loss":
        if output == "sigmoid" and has_logits:
            # NOTE: log loss of sigmoid(z) is computed from z: the same number, but
            # finite where sigmoid(z) rounds to 0 or 1.
            return _Objective(
                "log_loss", nn.binary_cross_entropy_with_logits, "binary", True, "threshold"
            )
        if output not in (None, "sigmoid"):
            raise FitSettingError(
                f"loss {loss!r} needs probabilities, but the model's output activation is "
                f"{output!r}: build it with output_activation='sigmoid', or use "
                "loss='bce_with_logits'"
            )
        return _Objective("log_loss", nn.log_loss, "binary", False, "threshold")
    if canonical in ("bce_with_logits", "cross_entropy"):
        if output == "softmax" and canonical == "bce_with_logits":
            raise FitSettingError(
                "loss 'bce_with_logits' is for independent 0/1 outputs, but the model "
                "ends in softmax: use loss='cross_entropy'"
            )
        on_logits = squashed
        if on_logits and not has_logits:
            raise FitSettingError(
                f"loss {canonical!r} needs the outputs before the {output} activation, "
                f"but {type(model).__name__} has no forward_logits()"
            )
        function = (
            nn.binary_cross_entropy_with_logits
            if canonical == "bce_with_logits"
            else nn.cross_entropy
        )
        if canonical == "bce_with_logits":
            return _Objective(canonical, function, "binary", on_logits, "threshold")
        return _Objective(canonical, function, "classes", on_logits, "argmax")
    # Square loss: a regressor, or a sigmoid/softmax classifier trained by squared error
    # (accuracy is then reported when the targets are labels).
    return _Objective("mse", nn.square_loss, "real", False, _accuracy_rule(output))


def _accuracy_rule(output: str | None) -> Literal["threshold", "argmax"] | None:
    """How a model with this output activation classifies: sigmoid by threshold, softmax
    by argmax; other outputs are regressors."""
    if output == "sigmoid":
        return "threshold"
    if output == "softmax":
        return "argmax"
    return None


def _canonical_loss_of(loss: Any, nn: Any) -> str | None:
    """The canonical name of one of chainrule.nn's loss functions or modules, else None."""
    functions = {
        "square_loss": "mse",
        "mse_loss": "mse",
        "log_loss": "log_loss",
        "binary_cross_entropy": "log_loss",
        "binary_cross_entropy_with_logits": "bce_with_logits",
        "cross_entropy": "cross_entropy",
    }
    for name, canonical in functions.items():
        if loss is getattr(nn, name, None):
            return canonical
    modules = {
        "MSELoss": "mse",
        "BCELoss": "log_loss",
        "BCEWithLogitsLoss": "bce_with_logits",
        "CrossEntropyLoss": "cross_entropy",
    }
    for name, canonical in modules.items():
        cls = getattr(nn, name, None)
        if isinstance(cls, type) and isinstance(loss, cls):
            if getattr(loss, "reduction", "mean") != "mean":
                return None  # a summed loss is the user's choice: apply it as given
            return canonical
    return None


# --- turning X and y into checked arrays -----------------------------------------------


def _is_pandas(obj: Any) -> bool:
    # Checked by module name so pandas is never imported for numpy or list input.
    return type(obj).__module__.split(".", 1)[0] == "pandas"


def _features(X: Any, what: str, dtype: np.dtype) -> tuple[np.ndarray, list[str] | None]:
    """X as a 2-D float array of ``dtype`` and its column names (pandas only)."""
    columns: list[str] | None = None
    if _is_pandas(X):
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


def _targets(
    y: Any, what: str, objective: _Objective, n_outputs: int, dtype: np.dtype
) -> np.ndarray:
    """y as the array the loss takes: (n, outputs) numbers, or (n,) class indices."""
    if _is_pandas(y):
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


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_positive_int(value: Any, name: str, hint: str) -> int:
    if not _is_integer(value) or value < 1:
        raise FitSettingError(f"{name} must be a whole number of at least 1, got {value!r}; {hint}")
    return int(value)


def _check_lr(lr: Any) -> float:
    if not isinstance(lr, numbers.Real) or isinstance(lr, bool) or not math.isfinite(lr) or lr <= 0:
        raise FitSettingError(
            f"the learning rate must be a positive number, got lr={lr!r}; try 0.1 for "
            "'sgd' or 0.001 for 'adam'"
        )
    return float(lr)


def _make_optimizer(model: Any, optimizer: Any, lr: Any) -> Optimizer:
    """The optimizer to train with (built only after every check has passed)."""
    from . import optim

    if isinstance(optimizer, str):
        key = optimizer.strip().lower()
        if key not in _DEFAULT_LR:
            raise FitSettingError(
                f"unknown optimizer {optimizer!r}; use 'sgd', 'adam' or a "
                "chainrule.optim optimizer instance"
            )
        rate = _check_lr(_DEFAULT_LR[key] if lr is None else lr)
        return (
            optim.SGD(model.parameters(), lr=rate)
            if key == "sgd"
            else optim.Adam(model.parameters(), lr=rate)
        )
    if not (callable(getattr(optimizer, "step", None)) and hasattr(optimizer, "zero_grad")):
        raise FitSettingError(
            f"optimizer must be 'sgd', 'adam' or an optimizer with step() and zero_grad(), "
            f"not {type(optimizer).__name__}"
        )
    _check_lr(optimizer.lr if lr is None else lr)
    own = {id(p) for p in getattr(optimizer, "params", ())}
    if not any(id(p) in own for p in model.parameters()):
        raise FitSettingError(
            "the optimizer was built for other parameters than this model's: create it "
            "with optimizer=SGD(model.parameters(), lr=...)"
        )
    if lr is not None:
        optimizer.lr = float(lr)
    return optimizer


# --- the parts of the loop --------------------------------------------------------------


def _model_dtype(parameters: Sequence[Any]) -> np.dtype:
    for parameter in parameters:
        if isinstance(parameter, Tensor):
            return parameter.data.dtype
    return np.dtype(np.float64)


def _is_value_model(parameters: Sequence[Any]) -> bool:
    return bool(parameters) and isinstance(parameters[0], Value)


def _make_step(
    forward: Callable[[np.ndarray], Tensor],
    loss_function: Callable[[Any, Any], Any],
    optimizer: Optimizer,
    compiled: bool = True,
) -> StepFunction:
    """One gradient step on a batch of a tensor-level model; returns the batch's loss.

    Compiled, the step is recorded on the first batch of each shape and then replayed
    into preallocated buffers: bit for bit what the eager step computes.
    """
    if compiled:
        from .compiler import compile as compile_step

        replay = compile_step(
            lambda batch_X, batch_y: loss_function(forward(batch_X), batch_y),
            optimizer=optimizer,
        )

        def compiled_step(batch_X: np.ndarray, batch_y: np.ndarray) -> float:
            return float(replay(batch_X, batch_y).data)

        return compiled_step

    zero_grad = optimizer.zero_grad
    update = optimizer.step

    def step(batch_X: np.ndarray, batch_y: np.ndarray) -> float:
        zero_grad()
        loss = loss_function(forward(batch_X), batch_y)
        loss.backward()
        update()
        return float(loss.data)

    return step


def _value_outputs(forward: Callable[[Any], Any], batch_X: np.ndarray) -> list[list[Value]]:
    """The neuron-level network's output units for every row: one graph per example."""
    return [list(forward(row)) for row in batch_X.tolist()]


def _value_mean_loss(
    outputs: list[list[Value]], loss_function: Callable[[Any, Any], Any], batch_y: np.ndarray
) -> Value:
    """The batch's mean loss as one Value: the handouts' sum over examples, divided by n."""
    total: Value | None = None
    for units, target in zip(outputs, batch_y.tolist()):
        term = loss_function(units, target)  # the mean over this example's output units
        total = term if total is None else total + term
    assert total is not None  # batches are never empty
    return total * (1.0 / len(outputs))


def _make_value_step(
    forward: Callable[[Any], Any],
    loss_function: Callable[[Any, Any], Any],
    optimizer: Optimizer,
) -> StepFunction:
    """One gradient step of the neuron-level network on a batch; returns its mean loss."""

    def step(batch_X: np.ndarray, batch_y: np.ndarray) -> float:
        optimizer.zero_grad()
        loss = _value_mean_loss(_value_outputs(forward, batch_X), loss_function, batch_y)
        loss.backward()
        optimizer.step()
        return float(loss.data)

    return step


class _BestWeights:
    """A copy of the parameters kept in place, so saving and restoring allocate nothing."""

    def __init__(self, parameters: Sequence[Any]) -> None:
        self._parameters = list(parameters)
        self._saved: list[Any] = [
            p.data.copy() if isinstance(p, Tensor) else p.data for p in self._parameters
        ]

    def save(self) -> None:
        for index, parameter in enumerate(self._parameters):
            if isinstance(parameter, Tensor):
                np.copyto(self._saved[index], parameter.data)
            else:
                self._saved[index] = parameter.data

    def restore(self) -> None:
        for saved, parameter in zip(self._saved, self._parameters):
            if isinstance(parameter, Tensor) and parameter.data.flags.writeable:
                # In place: anything holding the parameter arrays (a compiled step) sees it.
                parameter.data[...] = saved
            elif isinstance(parameter, Tensor):
                parameter.data = saved.copy()
            else:
                parameter.data = saved


def _progress_text(logs: dict[str, float]) -> str:
    """The losses shown beside the progress bar: ``loss=0.1234 val_loss=0.2345``."""
    text = f"loss={logs['loss']:.4g}"
    if "val_loss" in logs:
        text += f" val_loss={logs['val_loss']:.4g}"
    return text


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def _progress_bar(epochs: int, enabled: bool) -> Any:
    """A tqdm bar over the epochs, or None (off, not a terminal, or tqdm missing)."""
    if not enabled or not _stderr_is_terminal():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None  # progress is an optional extra: train silently without it
    return tqdm(total=epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True)


# --- fit ------------------------------------------------------------------------------


def fit(
    model: Module,
    X: Any,
    y: Any,
    *,
    loss: Any = "auto",
    optimizer: Any = "sgd",
    lr: float | None = None,
    epochs: int = 100,
    batch_size: int | None = None,
    validation_split: float = 0.0,
    validation_data: tuple[Any, Any] | None = None,
    early_stopping: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    callbacks: Iterable[Callback] = (),
    progress: bool = True,
    compiled: bool = True,
) -> History:
    """Train ``model`` on ``X``, ``y`` by gradient descent and return its :class:`History`.

    Every argument is checked before the first weight moves; a problem raises a
    :class:`FitError` subclass naming it. With the same ``seed`` (and the same
    initial weights) two runs give bit-identical losses and weights.

    Args:
        model: a chainrule.nn module: an ``MLP`` (or any tensor-level module whose
            ``forward`` takes a 2-D array) or a neuron-level ``NeuronMLP``.
        X: the inputs, one row per example: a numpy array, nested lists, or a pandas
            DataFrame/Series. A 1-D X is one feature per example.
        y: the targets, one per row of X: numbers for a regressor, 0/1 labels for a
            sigmoid output, class indices 0..k-1 (or one-hot rows) for a softmax output.
        loss: ``"auto"`` (log loss after a sigmoid output, cross-entropy after a
            softmax, square loss otherwise), a name (``"mse"``, ``"square"``,
            ``"log_loss"``, ``"bce"``, ``"bce_with_logits"``, ``"cross_entropy"``), a
            chainrule.nn loss function or module, or your own ``loss(prediction, y)``
            returning the batch's mean loss. Log loss after a sigmoid output is
            computed from the logits (the same value, but finite for confident outputs).
        optimizer: ``"sgd"`` (plain gradient descent), ``"adam"``, or a
            chainrule.optim optimizer built on ``model.parameters()``.
        lr: the learning rate (default 0.1 for ``"sgd"``, 0.001 for ``"adam"``); given
            with an optimizer instance, it replaces the instance's ``lr``.
        epochs: how many passes over the training data (at least 1).
        batch_size: examples per step; None means the whole training set (full-batch
            gradient descent, as in the handouts). The last batch may be smaller.
        validation_split: the fraction (0 to 1) of examples held out, chosen at
            random with ``seed``, to measure ``val_loss`` on.
        validation_data: ``(X_val, y_val)`` to measure ``val_loss`` on instead.
        early_stopping: a patience: stop after this many epochs without a lower
            validation loss (training loss without validation data) and restore the
            weights of the best epoch.
        shuffle: visit the examples in a new random order every epoch (minibatches).
        seed: seeds the validation split and the shuffling.
        callbacks: functions ``callback(epoch, logs)`` called after every epoch with
            ``logs`` holding ``loss`` (and ``val_loss``, ``accuracy``,
            ``val_accuracy`` when measured); returning True stops training.
        progress: show a progress bar with the current loss (needs tqdm, the
            ``progress`` extra, and a terminal on standard error).
        compiled: record the training step once and replay it into preallocated
            buffers (:func:`chainrule.compile`); bit for bit what the eager step
            computes, only faster. False runs every step eagerly. The neuron-level
            network always runs eagerly.

    Returns:
        The :class:`History`. Ctrl-C during training does not raise: it stops, restores
        the best weights, and returns the history with ``interrupted=True``.
    """
    parameters = model.parameters()
    if not parameters:
        raise FitSettingError(f"{type(model).__name__} has no parameters to train")
    value_model = _is_value_model(parameters)
    dtype = _model_dtype(parameters)
    epochs = _check_positive_int(epochs, "epochs", "it counts passes over the data")
    if early_stopping is False:
        early_stopping = None
    if early_stopping is not None:
        early_stopping = _check_positive_int(
            early_stopping, "early_stopping", "it is the patience, in epochs"
        )
    if lr is not None:
        _check_lr(lr)
    callbacks = list(callbacks)
    for callback in callbacks:
        if not callable(callback):
            raise FitSettingError(
                f"each callback must be a function callback(epoch, logs), got {callback!r}"
            )

    objective = _resolve_objective(model, loss)
    if value_model and objective.labels == "classes":
        raise FitSettingError(
            f"{type(model).__name__} is trained one example at a time with elementwise losses; "
            "cross-entropy needs a tensor-level network: train nn.MLP (NeuronMLP.to_mlp())"
        )
    # Logit losses read the output before the output activation.
    forward = model.forward_logits if objective.on_logits else model.__call__  # type: ignore[attr-defined]

    features, columns = _features(X, "X", dtype)
    n_inputs, n_outputs = _widths(model, features, forward, value_model)
    if features.shape[1] != n_inputs:
        raise FitError(
            f"X has {features.shape[1]} columns but the model takes {n_inputs} inputs"
            + (f" (X's columns: {columns})" if columns else "")
        )
    targets = _targets(y, "y", objective, n_outputs, dtype)
    if len(targets) != len(features):
        raise LengthMismatchError(
            f"X has {len(features)} rows but y has {len(targets)}: give one target per example"
        )

    rng = np.random.default_rng(seed)
    train_X, train_y, val_X, val_y = _split(
        features,
        targets,
        validation_split,
        validation_data,
        rng,
        lambda v: _validation_arrays(v, objective, n_inputs, n_outputs, dtype),
    )
    n_train = len(train_X)
    if batch_size is None:
        batch_size = n_train
    elif not _is_integer(batch_size) or batch_size < 1 or batch_size > n_train:
        held_out = (
            f" ({len(features) - n_train} are held out for validation)"
            if (val_X is not None and validation_data is None)
            else ""
        )
        raise FitSettingError(
            f"batch_size must be a whole number from 1 to the {n_train} training "
            f"examples{held_out}, got {batch_size!r}; use None for full-batch training"
        )
    batch_size = int(batch_size)

    accuracy_rule = objective.accuracy
    if accuracy_rule == "threshold" and not _are_binary(train_y):
        accuracy_rule = None  # a sigmoid regressor: its targets are not labels

    # Everything is checked: only now is anything built that could change the model.
    optimizer_instance = _make_optimizer(model, optimizer, lr)
    if value_model:
        step = _make_value_step(forward, objective.function, optimizer_instance)
    else:
        step = _make_step(forward, objective.function, optimizer_instance, compiled)

    def evaluate(
        inputs: np.ndarray, goals: np.ndarray, with_loss: bool = True
    ) -> tuple[float, float | None]:
        """(loss, accuracy) of the current weights on a data set, recording no graph."""
        loss_value = math.nan
        with no_grad():
            if value_model:
                rows = _value_outputs(forward, inputs)
                if with_loss:
                    loss_value = float(_value_mean_loss(rows, objective.function, goals).data)
                outputs = np.array([[unit.data for unit in row] for row in rows])
            else:
                out = forward(inputs)
                if with_loss:
                    loss_value = float(objective.function(out, goals).data)
                outputs = out.data
        return loss_value, _accuracy(outputs, goals, accuracy_rule, objective.on_logits)

    history = History(monitor="val_loss" if val_X is not None else "loss")
    _train(
        history,
        step,
        evaluate,
        parameters,
        train_X,
        train_y,
        val_X,
        val_y,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=shuffle,
        rng=rng,
        early_stopping=early_stopping,
        callbacks=callbacks,
        measure_accuracy=accuracy_rule is not None,
        progress=progress,
    )
    return history


def _widths(
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


def _validation_arrays(
    data: Any, objective: _Objective, n_inputs: int, n_outputs: int, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise FitSettingError(
            f"validation_data must be a pair (X_val, y_val), got {type(data).__name__}"
        )
    val_X, columns = _features(data[0], "validation X", dtype)
    if val_X.shape[1] != n_inputs:
        raise FitError(
            f"validation X has {val_X.shape[1]} columns but the model takes {n_inputs} inputs"
            + (f" (its columns: {columns})" if columns else "")
        )
    val_y = _targets(data[1], "validation y", objective, n_outputs, dtype)
    if len(val_y) != len(val_X):
        raise LengthMismatchError(
            f"validation X has {len(val_X)} rows but validation y has {len(val_y)}"
        )
    return val_X, val_y


def _split(
    features: np.ndarray,
    targets: np.ndarray,
    validation_split: Any,
    validation_data: Any,
    rng: np.random.Generator,
    prepare: Callable[[Any], tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Training and validation arrays: given validation data, or a random held-out part."""
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
        val_X, val_y = prepare(validation_data)
        return features, targets, val_X, val_y
    if not validation_split:
        return features, targets, None, None
    n = len(features)
    n_val = round(n * float(validation_split))
    if n_val < 1 or n_val >= n:
        raise FitSettingError(
            f"validation_split={validation_split} of {n} examples leaves "
            f"{n - n_val} for training and {n_val} for validation; both need at least one"
        )
    order = rng.permutation(n)
    held, kept = order[:n_val], order[n_val:]
    return features[kept], targets[kept], features[held], targets[held]


def _are_binary(targets: np.ndarray) -> bool:
    return bool(((targets == 0) | (targets == 1)).all())


def _accuracy(
    outputs: np.ndarray,
    targets: np.ndarray,
    rule: Literal["threshold", "argmax"] | None,
    on_logits: bool,
) -> float | None:
    """The fraction of examples (of output units, for several sigmoid outputs) right."""
    if rule is None:
        return None
    if rule == "threshold":
        # sigmoid(z) >= 0.5 exactly when z >= 0
        predicted = outputs >= (0.0 if on_logits else 0.5)
        return float(np.mean(predicted == (targets == 1)))
    classes = targets if targets.ndim == 1 else targets.argmax(axis=1)
    return float(np.mean(outputs.argmax(axis=1) == classes))


def _train(
    history: History,
    step: StepFunction,
    evaluate: Callable[..., tuple[float, float | None]],
    parameters: Sequence[Any],
    train_X: np.ndarray,
    train_y: np.ndarray,
    val_X: np.ndarray | None,
    val_y: np.ndarray | None,
    *,
    epochs: int,
    batch_size: int,
    shuffle: bool,
    rng: np.random.Generator,
    early_stopping: int | None,
    callbacks: list[Callback],
    measure_accuracy: bool,
    progress: bool,
) -> None:
    """The epoch loop; fills ``history`` in place so an interruption keeps what was done."""
    n_train = len(train_X)
    bounds = [(start, min(start + batch_size, n_train)) for start in range(0, n_train, batch_size)]
    full_batch = len(bounds) == 1
    best = _BestWeights(parameters)
    best_value = math.inf
    epochs_without_improvement = 0
    bar = _progress_bar(epochs, progress)
    try:
        for epoch in range(1, epochs + 1):
            if shuffle and not full_batch:
                # One gather per epoch; the batches below are views into it.
                order = rng.permutation(n_train)
                epoch_X, epoch_y = train_X[order], train_y[order]
            else:
                epoch_X, epoch_y = train_X, train_y
            if full_batch:
                total = step(epoch_X, epoch_y) * n_train
            else:
                total = 0.0
                for start, stop in bounds:
                    total += step(epoch_X[start:stop], epoch_y[start:stop]) * (stop - start)
            logs = {"loss": total / n_train}
            if measure_accuracy:
                _, train_accuracy = evaluate(train_X, train_y, with_loss=False)
                if train_accuracy is not None:
                    logs["accuracy"] = train_accuracy
            if val_X is not None and val_y is not None:
                logs["val_loss"], val_accuracy = evaluate(val_X, val_y)
                if val_accuracy is not None:
                    logs["val_accuracy"] = val_accuracy
            history._record(epoch, logs)

            if not math.isfinite(logs["loss"]):
                history.diverged = history.stopped_early = True
                break
            monitored = logs[history.monitor]
            if monitored < best_value:
                best_value = monitored
                history.best_epoch = epoch
                best.save()
                epochs_without_improvement = 0
            else:
                epochs_without_improvement += 1
            if bar is not None:
                bar.set_postfix_str(_progress_text(logs), refresh=False)
                bar.update(1)
            stop = False
            for callback in callbacks:
                stop = bool(callback(epoch, logs)) or stop
            if stop or (
                early_stopping is not None and epochs_without_improvement >= early_stopping
            ):
                history.stopped_early = True
                break
    except KeyboardInterrupt:
        history.interrupted = True
    finally:
        if bar is not None:
            bar.close()
    if history.interrupted or history.diverged or early_stopping is not None:
        best.restore()
