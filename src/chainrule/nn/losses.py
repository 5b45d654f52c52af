"""Loss functions, built from chainrule's ops so every loss can be drawn and explained.

Each loss is ``f(prediction, target, reduction="mean")``. ``prediction`` is a Tensor
(any array is taken as a Tensor without gradient); the elementwise losses also take
a Value, or a list of Values such as :meth:`NeuronMLP.forward` returns. ``target`` is
an array, a Tensor, a list or a number and must have the prediction's shape, except
that a target of shape (n,) fits a prediction of shape (n, 1) (axes of length 1 may
differ). ``reduction`` is ``"mean"`` (over every element; over examples for
``cross_entropy``), ``"sum"``, or ``"none"`` (the unreduced losses).

The Module forms (:class:`MSELoss`, :class:`BCELoss`, :class:`BCEWithLogitsLoss`,
:class:`CrossEntropyLoss`) hold the reduction; :func:`get_loss` finds one by name.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from .. import functions, ops
from ..errors import ChainruleError, ShapeError
from ..ops import Op
from ..tensor import Tensor
from ..value import Value
from .modules import Module

LossFunction = Callable[..., Any]

_REDUCTIONS = ("mean", "sum", "none")

# NOTE: log of a probability is clamped at −100 (p ≥ e^−100), as PyTorch's BCELoss
# does: a sigmoid output that rounded to exactly 0 or 1 then gives a large finite
# loss instead of inf, and 0·log(0) never turns into NaN.
_SMALLEST_PROBABILITY = math.exp(-100.0)


class TargetError(ChainruleError, ValueError):
    """A loss's target holds values the loss cannot take (labels, classes, NaN)."""


# --- elementwise formulas: each works on Values and on Tensors ---------------------------


def loss_node(op: Op, prediction: Any, target: Any) -> Any:
    """One loss op on a prediction and its target: a Value, or a Tensor elementwise.

    Args:
        op: :data:`chainrule.ops.SQUARE_LOSS` or :data:`chainrule.ops.LOG_LOSS`.
        prediction: a Value or a Tensor.
        target: a number or Value (for a Value prediction), or a Tensor or array.
    """
    if isinstance(prediction, Value):
        goal = target if isinstance(target, Value) else Value(float(target), label="y")
        return Value._apply(op, (prediction, goal))
    return prediction._binary(op, target, op.name)


def _square_formula(prediction: Any, target: Any) -> Any:
    # One op, (y − ŷ)², so a diagram shows one loss node with the partial −2(y − ŷ).
    return loss_node(ops.SQUARE_LOSS, prediction, target)


def _log_formula(probability: Any, target: Any) -> Any:
    # One op, −[y·log z + (1−y)·log(1−z)] with its logs clamped at −100 (see the NOTE
    # beside ops.LOG_LOSS), so a diagram shows one loss node with the handout's partial.
    return loss_node(ops.LOG_LOSS, probability, target)


def _logit_formula(logit: Any, target: Any) -> Any:
    # NOTE: −[y·log σ(z) + (1−y)·log(1−σ(z))] equals softplus(z) − y·z exactly. The
    # composite through sigmoid rounds σ(z) to 0 or 1 for |z| ≳ 37 and then loses
    # everything; softplus (its own op, exact for any z) keeps the loss and its
    # gradient σ(z) − y correct for logits of ±1e4 and beyond.
    return functions.softplus(logit) - target * logit


# --- target checks -----------------------------------------------------------------------


def _check_reduction(reduction: str, loss: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"{loss}: reduction must be one of {', '.join(map(repr, _REDUCTIONS))}, "
            f"got {reduction!r}"
        )


def _numeric(data: Any, what: str, loss: str) -> np.ndarray:
    array = np.asarray(data.data if isinstance(data, (Tensor, Value)) else data)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{loss}: the {what} must hold numbers, got dtype {array.dtype}")
    return array


def _check_finite(array: np.ndarray, loss: str) -> None:
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return
    bad = ~np.isfinite(array)
    first = tuple(int(k) for k in np.argwhere(bad)[0])
    raise TargetError(
        f"{loss}: the target holds {int(bad.sum())} NaN or infinite value(s), the first "
        f"at index {first}; drop or fill them before computing the loss"
    )


def _check_binary(target: np.ndarray, prediction: np.ndarray, loss: str) -> None:
    bad = (target != 0) & (target != 1)
    if bad.any():
        first = tuple(int(k) for k in np.argwhere(bad)[0])
        examples = ", ".join(f"{v:g}" for v in np.unique(target[bad])[:5])
        raise TargetError(
            f"{loss} takes labels 0 or 1; the target holds {int(bad.sum())} other value(s) "
            f"({examples}), the first at index {first}. Map your two classes to 0 and 1 "
            "(e.g. y == positive_class)"
        )


def _check_probabilities(target: np.ndarray, prediction: np.ndarray, loss: str) -> None:
    _check_binary(target, prediction, loss)
    outside = (prediction < 0) | (prediction > 1)
    if outside.any():
        raise ValueError(
            f"{loss} takes predicted probabilities in [0, 1] (e.g. a sigmoid output); "
            f"{int(outside.sum())} prediction(s) lie outside, from {prediction.min():g} to "
            f"{prediction.max():g}. For raw scores use binary_cross_entropy_with_logits"
        )


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(n for n in shape if n != 1)


def _target_tensor(prediction: Tensor, target: Any, loss: str) -> Tensor:
    """``target`` as a Tensor of the prediction's shape and dtype (checked)."""
    array = _numeric(target, "target", loss)
    # Axes of length 1 may differ: a target (n,) fits a single-output prediction (n, 1).
    fits = array.shape == prediction.shape or (
        array.size == prediction.data.size and _squeezed(array.shape) == _squeezed(prediction.shape)
    )
    if not fits:
        raise ShapeError(
            f"{loss}: the prediction has shape {prediction.shape} but the target has "
            f"shape {array.shape}; they must match (a target of shape (n,) also fits a "
            "prediction of shape (n, 1))"
        )
    _check_finite(array, loss)
    if isinstance(target, Tensor) and target.requires_grad:
        return target if target.shape == prediction.shape else target.reshape(prediction.shape)
    return Tensor(array.reshape(prediction.shape).astype(prediction.data.dtype))


def _value_targets(target: Any, count: int, loss: str) -> list[Any]:
    """``target`` as one number or Value per prediction Value (checked)."""
    if isinstance(target, (Value, numbers.Real)):
        items: list[Any] = [target]
    elif isinstance(target, (Tensor, np.ndarray)):
        items = list(np.asarray(getattr(target, "data", target)).ravel())
    elif isinstance(target, Sequence) and not isinstance(target, (str, bytes)):
        items = list(target)
    else:
        raise TypeError(f"{loss}: the target is a number or a list of numbers, not {target!r}")
    if len(items) != count:
        raise ShapeError(
            f"{loss}: {count} predicted Value(s) but {len(items)} target value(s); give one "
            "target per output unit"
        )
    checked: list[Any] = []
    for item in items:
        if isinstance(item, Value):
            checked.append(item)
        elif isinstance(item, numbers.Real):
            checked.append(float(item))
        else:
            raise TypeError(f"{loss}: target values are numbers or Values, not {item!r}")
    _check_finite(np.array([float(item) for item in checked]), loss)
    return checked


def _reduce_values(losses: list[Value], reduction: str) -> Any:
    if reduction == "none":
        return losses
    total = losses[0]
    for term in losses[1:]:
        total = total + term
    if reduction == "mean" and len(losses) > 1:
        total = total * (1.0 / len(losses))
    return total


def _reduce_tensor(losses: Tensor, reduction: str, loss: str) -> Tensor:
    if reduction == "none":
        return losses
    if losses.data.size == 0:
        raise ValueError(f"{loss}: the batch is empty; there is nothing to average or sum")
    return losses.mean() if reduction == "mean" else losses.sum()


def _is_value_list(prediction: Any) -> bool:
    return (
        isinstance(prediction, (list, tuple))
        and len(prediction) > 0
        and all(isinstance(unit, Value) for unit in prediction)
    )


def _elementwise_loss(
    loss: str,
    formula: Callable[[Any, Any], Any],
    prediction: Any,
    target: Any,
    reduction: str,
    check: Callable[[np.ndarray, np.ndarray, str], None] | None = None,
) -> Any:
    _check_reduction(reduction, loss)
    if isinstance(prediction, Value) or _is_value_list(prediction):
        units = [prediction] if isinstance(prediction, Value) else list(prediction)
        targets = _value_targets(target, len(units), loss)
        if check is not None:
            check(np.array([float(t) for t in targets]), np.array([u.data for u in units]), loss)
        # Number targets become leaf Values named as in the handouts (y, or y_i for
        # several outputs), so a diagram's loss node reads −y/z + (1−y)/(1−z).
        names = ["y"] if len(units) == 1 else [f"y_{i}" for i in range(1, len(units) + 1)]
        goals = [
            goal if isinstance(goal, Value) else Value(goal, label=name)
            for goal, name in zip(targets, names)
        ]
        losses = [formula(unit, goal) for unit, goal in zip(units, goals)]
        for loss_value, name in zip(losses, names):
            loss_value.label = name.replace("y", "L")  # the handouts' L, or L_i per output
        if isinstance(prediction, Value):
            return losses[0]
        return _reduce_values(losses, reduction)
    if not isinstance(prediction, Tensor):
        prediction = Tensor(_numeric(prediction, "prediction", loss).astype(np.float64))
    goal = _target_tensor(prediction, target, loss)
    if check is not None:
        check(goal.data, prediction.data, loss)
    return _reduce_tensor(formula(prediction, goal), reduction, loss)


# --- the losses ----------------------------------------------------------------------------


def square_loss(prediction: Any, target: Any, reduction: str = "mean") -> Any:
    """The square loss (y − ŷ)², the quiz's L(y, ŷ); its mean is the MSE.

    Args:
        prediction: ŷ: a Tensor, a Value, or a list of Values.
        target: y, with the prediction's shape (numbers, an array or a Tensor).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    return _elementwise_loss("square_loss", _square_formula, prediction, target, reduction)


def mse_loss(prediction: Any, target: Any, reduction: str = "mean") -> Any:
    """Mean squared error: :func:`square_loss` (the same function under PyTorch's name)."""
    return _elementwise_loss("mse_loss", _square_formula, prediction, target, reduction)


def log_loss(prediction: Any, target: Any, reduction: str = "mean") -> Any:
    """The log loss −[y·log p + (1−y)·log(1−p)] on probabilities (assignment eq. 7).

    Args:
        prediction: p in [0, 1] (e.g. a sigmoid output): a Tensor, Value or list of Values.
        target: labels y in {0, 1}, with the prediction's shape.
        reduction: ``"mean"``, ``"sum"`` (the assignment's sum over examples) or ``"none"``.

    For network outputs prefer :func:`binary_cross_entropy_with_logits` on the
    logits, which stays exact where σ rounds to 0 or 1; here each log is clamped at
    −100 so the loss stays finite.
    """
    return _elementwise_loss(
        "log_loss", _log_formula, prediction, target, reduction, _check_probabilities
    )


def binary_cross_entropy(prediction: Any, target: Any, reduction: str = "mean") -> Any:
    """Binary cross-entropy on probabilities: :func:`log_loss` under PyTorch's name."""
    return _elementwise_loss(
        "binary_cross_entropy", _log_formula, prediction, target, reduction, _check_probabilities
    )


def binary_cross_entropy_with_logits(logits: Any, target: Any, reduction: str = "mean") -> Any:
    """The log loss of σ(z), computed from the logit z as softplus(z) − y·z.

    Args:
        logits: z (before the sigmoid): a Tensor, Value or list of Values.
        target: labels y in {0, 1}, with the logits' shape.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Finite and exact for any logit (±1e4 included); its gradient is σ(z) − y.
    """
    return _elementwise_loss(
        "binary_cross_entropy_with_logits",
        _logit_formula,
        logits,
        target,
        reduction,
        _check_binary,
    )


def cross_entropy(logits: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy −log softmax(z)[class] from logits, for several classes.

    Args:
        logits: a Tensor (or array) of shape (batch, classes), or (classes,) for one
            example.
        target: class indices 0..classes−1 of shape (batch,), or one-hot / class
            probability rows of shape (batch, classes).
        reduction: ``"mean"`` (over examples), ``"sum"`` or ``"none"`` (one loss per
            example).
    """
    name = "cross_entropy"
    _check_reduction(reduction, name)
    if isinstance(logits, Value) or _is_value_list(logits):
        raise TypeError(
            "cross_entropy takes a Tensor of logits of shape (batch, classes); for Values "
            "use a softmax output layer with log_loss per unit"
        )
    z = logits if isinstance(logits, Tensor) else Tensor(_numeric(logits, "logits", name))
    goal = _numeric(target, "target", name)
    if z.ndim == 1:
        # One example: a class index, or one probability row over the classes.
        classes = z.shape[0]
        z = z.reshape(1, classes)
        if goal.ndim == 0:
            goal = goal.reshape(1)
        elif goal.shape == (classes,) and classes > 1:
            goal = goal.reshape(1, classes)
    if z.ndim != 2:
        raise ShapeError(
            f"cross_entropy takes logits of shape (batch, classes), got shape {z.shape}"
        )
    batch, classes = z.shape
    # NOTE: log_softmax is one op computing z − logsumexp(z) with the max subtracted;
    # log(softmax(z)) would underflow to log(0) = −inf for a logit gap beyond ~745.
    log_probabilities = z.log_softmax(axis=-1)
    if goal.ndim == 2:
        if goal.shape != z.shape:
            raise ShapeError(
                f"cross_entropy: logits have shape {z.shape} but the one-hot target has "
                f"shape {goal.shape}; they must match"
            )
        _check_finite(goal, name)
        _check_distribution(goal, name)
        weights = Tensor(goal.astype(z.data.dtype))
        losses = -(log_probabilities * weights).sum(axis=1)
    elif goal.ndim == 1:
        if goal.shape[0] != batch:
            raise ShapeError(
                f"cross_entropy: logits have shape {z.shape} ({batch} examples) but the "
                f"class target has shape {goal.shape}; give one class index per example"
            )
        indices = _class_indices(goal, classes, name)
        losses = -log_probabilities[np.arange(batch), indices]
    else:
        raise ShapeError(
            f"cross_entropy: target of shape {goal.shape} fits neither class indices "
            f"({batch},) nor one-hot rows {z.shape}"
        )
    return _reduce_tensor(losses, reduction, name)


def _class_indices(target: np.ndarray, classes: int, loss: str) -> np.ndarray:
    if target.dtype.kind == "b":
        raise TargetError(f"{loss}: class targets are integers 0..{classes - 1}, not booleans")
    _check_finite(target, loss)
    if target.dtype.kind == "f" and not np.all(target == np.round(target)):
        raise TargetError(
            f"{loss}: class targets must be whole numbers 0..{classes - 1}; got fractional "
            "values (for class probabilities give rows of shape (batch, classes))"
        )
    bad = (target < 0) | (target >= classes)
    if bad.any():
        first = int(np.argwhere(bad)[0][0])
        examples = ", ".join(f"{v:g}" for v in np.unique(target[bad])[:5])
        raise TargetError(
            f"{loss}: class indices run from 0 to {classes - 1} (the logits have {classes} "
            f"columns); the target holds {int(bad.sum())} out-of-range value(s) ({examples}), "
            f"the first at index {first}"
        )
    return target.astype(np.intp)


def _check_distribution(target: np.ndarray, loss: str) -> None:
    if np.any((target < 0) | (target > 1)):
        raise TargetError(f"{loss}: one-hot target rows must hold values in [0, 1]")
    sums = target.sum(axis=1)
    off = np.abs(sums - 1.0) > 1e-6
    if off.any():
        row = int(np.argwhere(off)[0][0])
        raise TargetError(
            f"{loss}: each one-hot target row must sum to 1; row {row} sums to {sums[row]:g}"
        )


# --- Module forms and lookup by name -------------------------------------------------------


class _Loss(Module):
    """A loss as a Module: ``loss(prediction, target)`` with a fixed reduction."""

    _function: ClassVar[LossFunction]

    def __init__(self, reduction: str = "mean") -> None:
        _check_reduction(reduction, type(self).__name__)
        self.reduction = reduction

    def forward(self, prediction: Any, target: Any) -> Any:
        """The loss of ``prediction`` against ``target``."""
        return type(self)._function(prediction, target, reduction=self.reduction)

    def config(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "reduction": self.reduction}


class MSELoss(_Loss):
    """Square loss (y − ŷ)², averaged (``reduction="mean"``) or summed."""

    _function = staticmethod(square_loss)


class BCELoss(_Loss):
    """Log loss on probabilities in [0, 1] with labels 0 or 1."""

    _function = staticmethod(log_loss)


class BCEWithLogitsLoss(_Loss):
    """Log loss of σ(z) from logits z; stable for any z."""

    _function = staticmethod(binary_cross_entropy_with_logits)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy from logits with class-index or one-hot targets."""

    _function = staticmethod(cross_entropy)


#: Loss modules by name (``get_loss``).
LOSSES: dict[str, type[_Loss]] = {
    "mse": MSELoss,
    "mse_loss": MSELoss,
    "square": MSELoss,
    "square_loss": MSELoss,
    "log_loss": BCELoss,
    "bce": BCELoss,
    "binary_cross_entropy": BCELoss,
    "bce_with_logits": BCEWithLogitsLoss,
    "binary_cross_entropy_with_logits": BCEWithLogitsLoss,
    "cross_entropy": CrossEntropyLoss,
}


def get_loss(loss: str | LossFunction, reduction: str = "mean") -> LossFunction:
    """A loss Module by name, e.g. ``get_loss("bce_with_logits")``; callables pass through.

    Args:
        loss: one of the names in :data:`LOSSES` (case does not matter), or a callable
            ``(prediction, target) -> loss`` (a loss Module or function), returned as is.
        reduction: the reduction of a loss made from a name.

    Raises:
        ValueError: for an unknown name; the message lists the known ones.
    """
    if isinstance(loss, str):
        cls = LOSSES.get(loss.strip().lower())
        if cls is None:
            raise ValueError(
                f"unknown loss {loss!r}; known losses: {', '.join(sorted(LOSSES))} "
                "(or pass a callable)"
            )
        return cls(reduction)
    if callable(loss):
        return loss
    raise TypeError(f"a loss is a name or a callable, not {type(loss).__name__}: {loss!r}")
