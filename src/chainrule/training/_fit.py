"""``fit(model, X, y, ...)``: check everything, build the step, run the one epoch loop."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import optim
from ..functional import no_grad
from . import _inputs as inputs
from ._errors import (
    FitError,
    FitSettingError,
    LengthMismatchError,
    NoProgressWarning,
    TrainingDivergedWarning,
)
from ._history import History
from ._loop import Callback, EarlyStopping, make_schedule, run_epochs
from ._objective import (
    BatchLoss,
    Objective,
    TensorStep,
    ValueStep,
    accuracy,
    decayed_parameters,
    is_value_model,
    make_optimizer,
    model_dtype,
    resolve_objective,
    value_outputs,
)
from ._progress import Progress
from ._reuse import kept_step

if TYPE_CHECKING:
    from ..nn import Module

__all__ = ["fit"]

# A classifier whose loss fell by less than this fraction over at least this many
# epochs, and that predicts one class for every example, "made no progress".
_FLAT_FRACTION = 0.01
_FLAT_EPOCHS = 5


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
    validation_data: tuple[Any, ...] | None = None,
    early_stopping: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    callbacks: Iterable[Callback] = (),
    progress: bool = True,
    compiled: bool = True,
    sample_weight: Any = None,
    class_weight: Any = None,
    weight_decay: float = 0.0,
    lr_schedule: Any = None,
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
        validation_data: ``(X_val, y_val)`` (or ``(X_val, y_val, sample_weight_val)``)
            to measure ``val_loss`` on instead.
        early_stopping: a patience: stop after this many epochs without a lower
            validation loss (training loss without validation data) and restore the
            weights of the best epoch (``History.best_epoch``, ``History.best_loss``).
        shuffle: visit the examples in a new random order every epoch (minibatches).
        seed: seeds the validation split and the shuffling.
        callbacks: functions ``callback(epoch, logs)`` called after every epoch with
            ``logs`` holding ``loss`` (and ``val_loss``, ``accuracy``,
            ``val_accuracy`` when measured); returning True stops training.
        progress: show a progress bar with the current loss (needs tqdm, the
            ``progress`` extra, and a terminal on standard error or a Jupyter notebook).
        compiled: record the training step once and replay it into preallocated
            buffers (:func:`chainrule.compile`); bit for bit what the eager step
            computes, only faster. False runs every step eagerly. The neuron-level
            network always runs eagerly.
        sample_weight: one weight (at least 0) per example: the loss of a batch is
            ``Σ w_i·loss_i / Σ w_i``. Held-out examples of ``validation_split`` keep
            their weights in ``val_loss``.
        class_weight: ``"balanced"`` (each class weighs n / (classes · its count)) or a
            mapping class -> weight (0/1 for a sigmoid output, class indices for a
            softmax); multiplies ``sample_weight``. It weights the training loss only.
        weight_decay: the L2 penalty ``weight_decay / 2 · Σ ‖W‖²`` over the weight
            matrices (not the biases), added to the training loss (0: none).
        lr_schedule: ``"step"`` (the rate halves every quarter of the epochs),
            ``"cosine"`` (from ``lr`` down towards 0 along a half cosine), or a function
            ``epoch -> factor`` (epochs from 1); the rate of an epoch is ``lr × factor``.

    Returns:
        The :class:`History`. Training stops by itself (and the best weights come back)
        when the loss diverges: NaN or Inf, or above ten times the first epoch's loss
        for three epochs in a row; a :class:`TrainingDivergedWarning` names the epoch
        and a smaller learning rate to try. Ctrl-C during training does not raise: it
        stops, restores the best weights, and returns the history with
        ``interrupted=True``.
    """
    parameters = model.parameters()
    if not parameters:
        raise FitSettingError(f"{type(model).__name__} has no parameters to train")
    value_model = is_value_model(parameters)
    dtype = model_dtype(parameters)
    epochs = inputs.check_positive_int(epochs, "epochs", "it counts passes over the data")
    if early_stopping is False:
        early_stopping = None
    if early_stopping is not None:
        early_stopping = inputs.check_positive_int(
            early_stopping, "early_stopping", "it is the patience, in epochs"
        )
    if lr is not None:
        inputs.check_lr(lr)
    weight_decay = _check_weight_decay(weight_decay)
    schedule = make_schedule(lr_schedule, epochs)
    callbacks = list(callbacks)
    for callback in callbacks:
        if not callable(callback):
            raise FitSettingError(
                f"each callback must be a function callback(epoch, logs), got {callback!r}"
            )

    objective = resolve_objective(model, loss)
    if value_model and objective.labels == "classes":
        raise FitSettingError(
            f"{type(model).__name__} is trained one example at a time with elementwise losses; "
            "cross-entropy needs a tensor-level network: train nn.MLP (NeuronMLP.to_mlp())"
        )
    # Logit losses read the output before the output activation.
    forward = model.forward_logits if objective.on_logits else model.__call__  # type: ignore[attr-defined]

    features, targets, weights, (n_inputs, n_outputs) = _training_arrays(
        model, X, y, objective, forward, value_model, dtype, sample_weight, class_weight
    )

    rng = np.random.default_rng(seed)
    train, validation = inputs.split(
        features,
        targets,
        weights,
        validation_split,
        validation_data,
        rng,
        lambda v: inputs.validation_arrays(v, objective, n_inputs, n_outputs, dtype),
    )
    n_train = len(train[0])
    held_out = len(features) - n_train if validation_data is None else 0
    batch_size = _check_batch_size(batch_size, n_train, held_out)

    accuracy_rule = objective.accuracy
    if accuracy_rule == "threshold" and not inputs.are_binary(train[1]):
        accuracy_rule = None  # a sigmoid regressor: its targets are not labels

    # Everything is checked: only now is anything built that could change the model.
    optimizer_instance = make_optimizer(model, optimizer, lr, parameters)
    batch_loss = BatchLoss(
        objective,
        weighted=weights is not None,
        weight_decay=weight_decay,
        decayed=decayed_parameters(model, value_model, parameters) if weight_decay else (),
        dtype=dtype,
        max_rows=max(n_train, 0 if validation is None else len(validation[0])),
    )
    history = History(monitor="val_loss" if validation is not None else "loss")
    with (
        np.errstate(all="ignore"),  # a blow-up is reported by the loop, not by numpy
        _training_step(model, parameters, forward, batch_loss, optimizer_instance,
                       on_logits=objective.on_logits, value_model=value_model,
                       compiled=compiled) as step,
    ):  # fmt: skip
        trainer = _Trainer(
            step, batch_loss, forward, objective, value_model, accuracy_rule, train, validation,
            batch_size=batch_size, shuffle=shuffle, rng=rng,
        )  # fmt: skip
        run_epochs(
            history,
            trainer.epoch,
            parameters,
            epochs=epochs,
            restore_best=early_stopping is not None,
            stop_rules=[EarlyStopping(early_stopping, history.monitor)] if early_stopping else [],
            callbacks=callbacks,
            progress=Progress(epochs, "epoch", enabled=progress),
            measure=trainer.training_loss,
            optimizer=optimizer_instance,
            schedule=schedule,
            # Only around chainrule's own optimizers: the update then runs nothing else
            # that could raise KeyboardInterrupt while the best weights are not copied.
            call_before_update=trainer.call_before_update
            if trainer.one_step_epochs and type(optimizer_instance) in (optim.SGD, optim.Adam)
            else None,
        )
    if history.diverged:
        warnings.warn(_divergence_message(history, optimizer_instance), TrainingDivergedWarning,
                      stacklevel=2)  # fmt: skip
    elif accuracy_rule is not None and not history.interrupted:
        _warn_if_no_progress(history, trainer, optimizer_instance)
    return history


@contextmanager
def _training_step(
    model: Any,
    parameters: list[Any],
    forward: Callable[[Any], Any],
    batch_loss: BatchLoss,
    optimizer: Any,
    *,
    on_logits: bool,
    value_model: bool,
    compiled: bool,
) -> Iterator[TensorStep | ValueStep]:
    """The step fit trains with: the model's compiled step kept from its last fit when
    it computes the same (else a new one, kept for the next fit), an eager one when
    ``compiled`` is False, the neuron-level step for a NeuronMLP."""
    if value_model:
        yield ValueStep(forward, batch_loss, optimizer)
    elif not compiled:
        yield TensorStep(forward, batch_loss, optimizer, compiled=False)
    else:
        with kept_step(model, parameters, forward, batch_loss, optimizer,
                       on_logits=on_logits) as step:  # fmt: skip
            yield step


def _training_arrays(
    model: Any,
    X: Any,
    y: Any,
    objective: Objective,
    forward: Callable[[Any], Any],
    value_model: bool,
    dtype: np.dtype,
    sample_weight: Any,
    class_weight: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, tuple[int, int]]:
    """X, y and the example weights as checked arrays (before any split), and the
    model's numbers of inputs and outputs."""
    features, columns = inputs.features(X, "X", dtype)
    n_inputs, n_outputs = inputs.widths(model, features, forward, value_model)
    if features.shape[1] != n_inputs:
        raise FitError(
            f"X has {features.shape[1]} columns but the model takes {n_inputs} inputs"
            + (f" (X's columns: {columns})" if columns else "")
        )
    targets = inputs.targets(y, "y", objective, n_outputs, dtype)
    if len(targets) != len(features):
        raise LengthMismatchError(
            f"X has {len(features)} rows but y has {len(targets)}: give one target per example"
        )
    weights = inputs.example_weights(sample_weight, class_weight, targets, objective, dtype)
    if weights is not None and objective.kind is None:
        raise FitSettingError(
            "sample_weight and class_weight need one of fit's own losses (a name such as "
            "'mse' or 'log_loss'): a custom loss returns one number per batch, which "
            "cannot be weighted per example"
        )
    return features, targets, weights, (n_inputs, n_outputs)


def _check_batch_size(batch_size: Any, n_train: int, held_out: int) -> int:
    """The batch size as an int from 1 to the training examples (None: all of them)."""
    if batch_size is None:
        return n_train
    if not inputs.is_integer(batch_size) or batch_size < 1 or batch_size > n_train:
        note = f" ({held_out} are held out for validation)" if held_out else ""
        raise FitSettingError(
            f"batch_size must be a whole number from 1 to the {n_train} training "
            f"examples{note}, got {batch_size!r}; use None for full-batch training"
        )
    return int(batch_size)


def _check_weight_decay(weight_decay: Any) -> float:
    if (
        not isinstance(weight_decay, (int, float, np.floating, np.integer))
        or isinstance(weight_decay, bool)
        or not math.isfinite(float(weight_decay))
        or weight_decay < 0
    ):
        raise FitSettingError(
            f"weight_decay must be a number of at least 0 (the L2 penalty's strength), got "
            f"{weight_decay!r}; try 1e-4"
        )
    return float(weight_decay)


class _Trainer:
    """One epoch of fit over batches, and the measurements fit makes around it."""

    def __init__(
        self,
        step: TensorStep | ValueStep,
        batch_loss: BatchLoss,
        forward: Callable[[Any], Any],
        objective: Objective,
        value_model: bool,
        accuracy_rule: Any,
        train: inputs.Split,
        validation: inputs.Split | None,
        *,
        batch_size: int,
        shuffle: bool,
        rng: np.random.Generator,
    ) -> None:
        self.step = step
        self.batch_loss = batch_loss
        self.forward = forward
        self.objective = objective
        self.value_model = value_model
        self.accuracy_rule = accuracy_rule
        self.train = train
        self.validation = validation
        self.shuffle = shuffle
        self.rng = rng
        n_train = len(train[0])
        self.bounds = [
            (start, min(start + batch_size, n_train)) for start in range(0, n_train, batch_size)
        ]
        weights = train[2]
        self.total_weight = float(n_train if weights is None else weights.sum())
        # What a right prediction is, once per fit: 0/1 labels as booleans (threshold
        # rule) or class indices (argmax); and where sigmoid outputs are cut.
        self.truth: np.ndarray | None = None
        if accuracy_rule == "threshold":
            self.truth = train[1] == 1
        elif accuracy_rule == "argmax":
            self.truth = train[1] if train[1].ndim == 1 else train[1].argmax(axis=1)
        self.cut = 0.0 if objective.on_logits else 0.5
        # Every epoch one step of a tensor-level model on all training rows: the step
        # can tell the loop the epoch's loss before it changes the weights.
        self.one_step_epochs = len(self.bounds) == 1 and isinstance(step, TensorStep)

    def call_before_update(self, hook: Callable[[float], None] | None) -> None:
        """Have each (one-step) epoch call ``hook`` with the loss it will log, before its
        step changes the weights (None: stop). See run_epochs."""
        step = self.step
        assert isinstance(step, TensorStep) and self.one_step_epochs
        if hook is None:
            step.call_before_update(None)
            return
        total_weight = self.total_weight
        # epoch() logs (0.0 + step loss · share) / total weight; the one batch's share is
        # the total weight (the same sum of the same weights).
        step.call_before_update(lambda value: hook((0.0 + value * total_weight) / total_weight))

    def epoch(self, epoch: int) -> dict[str, float]:
        """Train one epoch; its logs: loss, accuracy (from the same forward passes) and
        the validation measurements after it."""
        train_X, train_y, train_w = self.train
        truth = self.truth
        full_batch = len(self.bounds) == 1
        if self.shuffle and not full_batch:
            # One gather per epoch; the batches below are views into it.
            order = self.rng.permutation(len(train_X))
            train_X, train_y = train_X[order], train_y[order]
            train_w = None if train_w is None else train_w[order]
            truth = None if truth is None else truth[order]
        step = self.step
        rule = self.accuracy_rule
        total = 0.0
        correct = 0  # right predictions (output units, for several sigmoid outputs)
        for start, stop in self.bounds:
            batch_y = train_y[start:stop]
            if train_w is None:
                batch_w = None
                share = float(stop - start)
            else:
                batch_w = train_w[start:stop]
                share = float(batch_w.sum())
                if share == 0.0:
                    continue  # no example of this batch counts: nothing to learn from it
            total += step(train_X[start:stop], batch_y, batch_w) * share
            if rule is not None:
                assert truth is not None
                outputs = step.outputs
                if outputs is None:  # not readable from the step: measure after the epoch
                    rule = None
                elif rule == "threshold":
                    correct += np.count_nonzero((outputs >= self.cut) == truth[start:stop])
                else:
                    correct += np.count_nonzero(outputs.argmax(axis=1) == truth[start:stop])
        logs = {"loss": total / self.total_weight}
        if self.accuracy_rule is not None:
            if rule is None:
                logs["accuracy"] = self.evaluate(self.train[0], self.train[1], None)[1] or 0.0
            else:
                assert truth is not None
                logs["accuracy"] = correct / truth.size
        if self.validation is not None:
            val_X, val_y, val_w = self.validation
            logs["val_loss"], val_accuracy = self.evaluate(val_X, val_y, val_w)
            if val_accuracy is not None:
                logs["val_accuracy"] = val_accuracy
        return logs

    def evaluate(
        self, inputs_: np.ndarray, goals: np.ndarray, weights: np.ndarray | None
    ) -> tuple[float, float | None]:
        """(loss, accuracy) of the current weights on a data set, recording no graph.

        The loss is the data loss (no L2 penalty), weighted by ``weights`` if given.
        """
        loss_value = self._data_loss(inputs_, goals, weights)
        return loss_value[0], accuracy(
            loss_value[1], goals, self.accuracy_rule, self.objective.on_logits
        )

    def _data_loss(
        self, inputs_: np.ndarray, goals: np.ndarray, weights: np.ndarray | None
    ) -> tuple[float, np.ndarray]:
        batch_loss = self.batch_loss
        with no_grad():
            if self.value_model:
                rows = value_outputs(self.forward, inputs_)
                value = float(batch_loss.value_loss(rows, goals, weights, penalised=False).data)
                return value, np.array([[unit.data for unit in row] for row in rows])
            out = self.forward(inputs_)
            return float(batch_loss.data_loss(out, goals, weights).data), out.data

    def training_loss(self) -> float:
        """The training objective of the current weights (a forward pass over the data)."""
        train_X, train_y, train_w = self.train
        value = self._data_loss(train_X, train_y, train_w)[0]
        if self.batch_loss.weight_decay:
            penalty = sum(float(np.sum(np.square(p.data))) for p in self.batch_loss.decayed)
            value += 0.5 * self.batch_loss.weight_decay * penalty
        return value


def _divergence_message(history: History, optimizer: Any) -> str:
    epoch = history.diverged_epoch
    last = history.loss[-1] if history.loss else math.nan
    how = (
        "became NaN or infinite"
        if not math.isfinite(last)
        else (f"reached {last:.4g}, far above the first epoch's {history.loss[0]:.4g}")
    )
    rate = float(getattr(optimizer, "lr", math.nan))
    kept = (
        "the initial weights were kept"
        if history.best_epoch == 0
        else f"the weights of epoch {history.best_epoch} were restored"
    )
    loss_text = "" if history.best_loss is None else f" ({history.monitor} {history.best_loss:.4g})"
    return (
        f"training diverged at epoch {epoch}: the loss {how}; {kept}{loss_text}. Try a "
        f"smaller learning rate, such as lr={rate / 10:g} (now {rate:g}), or scale the inputs"
    )


def _warn_if_no_progress(history: History, trainer: _Trainer, optimizer: Any) -> None:
    """Warn when a classifier's loss stayed flat and it predicts one class for everything."""
    losses = history.loss
    if len(losses) < _FLAT_EPOCHS or not all(math.isfinite(v) for v in losses):
        return
    start = losses[0]
    if start <= 0 or (start - min(losses)) > _FLAT_FRACTION * start:
        return
    train_X, train_y, _ = trainer.train
    with no_grad():
        _, outputs = trainer._data_loss(train_X, train_y, None)
    if outputs.shape[1] == 1:
        predicted = outputs[:, 0] >= (0.0 if trainer.objective.on_logits else 0.5)
    else:
        predicted = outputs.argmax(axis=1)
    if len(np.unique(predicted)) > 1:
        return
    spread = float(np.max(np.abs(train_X))) if train_X.size else 0.0
    scale_hint = (
        f"the inputs reach {spread:.3g} in size: standardise each column (subtract its mean, "
        "divide by its standard deviation)"
        if spread > 10
        else "standardise each input column"
    )
    optimizer_name = type(optimizer).__name__
    adam_hint = "" if optimizer_name == "Adam" else ", or use optimizer='adam'"
    warnings.warn(
        f"training made no progress: the loss stayed near {start:.4g} for {len(losses)} "
        f"epochs and the model predicts the same class for every example; {scale_hint}"
        f"{adam_hint}",
        NoProgressWarning,
        stacklevel=3,
    )
