"""The objective fit minimises: which loss, on which output, and the training step.

:func:`resolve_objective` matches the loss to the model's output activation (log loss
after a sigmoid is computed from the logits, cross-entropy after a softmax).
:class:`BatchLoss` is that loss as a pure function of arrays, the batch's weights and
the L2 penalty included, so that :func:`chainrule.compile` replays the whole step as a
flat list of numpy calls; the step functions run it and keep the batch's outputs for
the accuracy, so no second pass over the data is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..functional import no_grad
from ..tensor import Tensor
from ..value import Value
from ._errors import FitSettingError
from ._settings import check_lr

if TYPE_CHECKING:
    from ..compile import CompileStats
    from ..optim import Optimizer

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

# --- the objective: what is computed from the model and compared with y ----------------


@dataclass(frozen=True)
class Objective:
    """The loss as fit applies it, and how targets are checked and accuracy measured."""

    name: str
    function: Callable[[Any, Any], Any]
    labels: Literal["binary", "classes", "real"]
    on_logits: bool  # the loss takes model.forward_logits (pre-activation) outputs
    # How outputs become classes: "threshold" (p >= 0.5, i.e. logit >= 0), "argmax", or None.
    accuracy: Literal["threshold", "argmax"] | None
    # Which of nn.losses' formulas the loss is ("square", "log", "logit", "cross_entropy"),
    # so the step can apply it without re-checking targets; None for a user's own loss.
    kind: str | None = None


def _output_activation(model: Any) -> str | None:
    """The output activation's name ("sigmoid", "softmax", "identity", ...), None if unknown."""
    activations = getattr(model, "activations", None)
    if not isinstance(activations, Sequence) or not activations:
        return None
    from ..nn import activations as nn_activations

    last = activations[-1]
    try:
        function = nn_activations.get_activation(last)
    except (ValueError, TypeError):
        return None
    for name in ("sigmoid", "softmax", "identity"):
        if function is nn_activations.ACTIVATIONS[name]:
            return name
    return nn_activations.activation_name(last)


def resolve_objective(model: Any, loss: Any) -> Objective:
    from .. import nn

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
            return Objective(name, loss, "real", False, _accuracy_rule(output))

    if canonical == "log_loss":
        if output == "sigmoid" and has_logits:
            # NOTE: log loss of sigmoid(z) is computed from z: the same number, but
            # finite where sigmoid(z) rounds to 0 or 1.
            return Objective(
                "log_loss",
                nn.binary_cross_entropy_with_logits,
                "binary",
                True,
                "threshold",
                "logit",
            )
        if output not in (None, "sigmoid"):
            raise FitSettingError(
                f"loss {loss!r} needs probabilities, but the model's output activation is "
                f"{output!r}: build it with output_activation='sigmoid', or use "
                "loss='bce_with_logits'"
            )
        return Objective("log_loss", nn.log_loss, "binary", False, "threshold", "log")
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
            return Objective(canonical, function, "binary", on_logits, "threshold", "logit")
        return Objective(canonical, function, "classes", on_logits, "argmax", "cross_entropy")
    # Square loss: a regressor, or a sigmoid/softmax classifier trained by squared error
    # (accuracy is then reported when the targets are labels).
    return Objective("mse", nn.square_loss, "real", False, _accuracy_rule(output), "square")


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


def make_optimizer(
    model: Any, optimizer: Any, lr: Any, parameters: Sequence[Any] | None = None
) -> Optimizer:
    """The optimizer to train with (built only after every check has passed).

    Args:
        model: the model trained.
        optimizer: ``"sgd"``, ``"adam"`` or an optimizer instance (checked to hold
            the model's parameters).
        lr: the learning rate, or None for the optimizer's default (or its own).
        parameters: ``model.parameters()`` if the caller has them already.
    """
    from .. import optim

    if parameters is None:
        parameters = model.parameters()

    if isinstance(optimizer, str):
        key = optimizer.strip().lower()
        if key not in _DEFAULT_LR:
            raise FitSettingError(
                f"unknown optimizer {optimizer!r}; use 'sgd', 'adam' or a "
                "chainrule.optim optimizer instance"
            )
        rate = check_lr(_DEFAULT_LR[key] if lr is None else lr)
        return optim.SGD(parameters, lr=rate) if key == "sgd" else optim.Adam(parameters, lr=rate)
    if not (callable(getattr(optimizer, "step", None)) and hasattr(optimizer, "zero_grad")):
        raise FitSettingError(
            f"optimizer must be 'sgd', 'adam' or an optimizer with step() and zero_grad(), "
            f"not {type(optimizer).__name__}"
        )
    check_lr(optimizer.lr if lr is None else lr)
    own = {id(p) for p in getattr(optimizer, "params", ())}
    if not any(id(p) in own for p in parameters):
        raise FitSettingError(
            "the optimizer was built for other parameters than this model's: create it "
            "with optimizer=SGD(model.parameters(), lr=...)"
        )
    if lr is not None:
        optimizer.lr = float(lr)
    return optimizer


# --- the parts of the loop --------------------------------------------------------------


def model_dtype(parameters: Sequence[Any]) -> np.dtype:
    for parameter in parameters:
        if isinstance(parameter, Tensor):
            return parameter.data.dtype
    return np.dtype(np.float64)


def is_value_model(parameters: Sequence[Any]) -> bool:
    return bool(parameters) and isinstance(parameters[0], Value)


def accuracy(
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


# --- the batch loss as a pure function of arrays -----------------------------------------


def _formula(kind: str) -> Callable[[Any, Any], Any]:
    """nn.losses' elementwise formula for a loss kind (one definition of each loss)."""
    from ..nn import losses

    formulas: dict[str, Callable[[Any, Any], Any]] = {
        "square": losses._square_formula,
        "log": losses._log_formula,
        "logit": losses._logit_formula,
    }
    return formulas[kind]


class BatchLoss:
    """The loss of a batch from arrays only: ``loss(outputs, *arrays(batch_y, batch_w))``.

    Targets were checked once by fit, so the formulas of :mod:`chainrule.nn.losses` are
    applied without checking them again on every batch, and every array the loss reads
    is an argument (the targets, the weights, the row positions of cross-entropy): a
    step compiled with ``chainrule.compile(..., optimizer=)`` then replays flat.

    Unweighted, the loss is the mean over the batch's examples (and output units), the
    same bits as the nn loss function. With weights ``w``, each example's loss (its mean
    over output units) counts ``w_i / Σ w`` of the batch: ``Σ w_i·loss_i / Σ w_i``.
    The L2 penalty ``weight_decay / 2 · Σ ‖W‖²`` over the weight matrices is added.

    The last three arguments state another trainer's conventions (fit uses the
    defaults; the scikit-learn estimators state scikit-learn's):

    Args:
        units: how an example's loss combines its output units: their ``"mean"``, or
            their ``"sum"`` (scikit-learn's log loss over several labels).
        scale: a factor on the data loss (½ for scikit-learn's half squared error).
        decay_per_example: divide the penalty by the batch's examples (their total
            weight, when weighted), as scikit-learn's ``alpha / (2·n) · Σ‖W‖²``.
    """

    def __init__(
        self,
        objective: Objective,
        *,
        weighted: bool,
        weight_decay: float,
        decayed: Sequence[Any],
        dtype: np.dtype,
        max_rows: int,
        units: Literal["mean", "sum"] = "mean",
        scale: float = 1.0,
        decay_per_example: bool = False,
    ) -> None:
        self.objective = objective
        self.weighted = weighted
        self.weight_decay = float(weight_decay)
        self.decayed = list(decayed)
        self.dtype = dtype
        self.kind = objective.kind
        self.units = units
        self.scale = float(scale)
        self.decay_per_example = decay_per_example
        self._formula = _formula(self.kind) if self.kind not in (None, "cross_entropy") else None
        self._positions = np.arange(max_rows)

    def arrays(self, batch_y: np.ndarray, batch_w: np.ndarray | None) -> tuple[np.ndarray, ...]:
        """The arrays the loss of this batch reads, in the order ``__call__`` takes them
        (weighted when ``batch_w`` is given)."""
        arrays = self._loss_arrays(batch_y, batch_w)
        if batch_w is not None and self.decay_per_example and self.weight_decay:
            # Σ w changes from batch to batch, so the penalty's factor is an argument too.
            factor = 0.5 * self.weight_decay / float(batch_w.sum())
            return (np.array(factor, dtype=self.dtype), *arrays)
        return arrays

    def _loss_arrays(
        self, batch_y: np.ndarray, batch_w: np.ndarray | None
    ) -> tuple[np.ndarray, ...]:
        front: tuple[np.ndarray, ...] = (batch_y,)
        if self.kind == "cross_entropy" and batch_y.ndim == 1:
            if len(batch_y) > len(self._positions):
                self._positions = np.arange(len(batch_y))
            front = (self._positions[: len(batch_y)], batch_y)
        if batch_w is None:
            return front
        share = batch_w / batch_w.sum()
        if self.kind != "cross_entropy":
            if self.units == "mean":
                # Each output unit of an example gets 1/units of its share: the example's
                # loss is the mean over its units, as unweighted.
                units = batch_y.shape[1] if batch_y.ndim == 2 else 1
                share = share / units
            share = share.reshape(-1, 1)
        return (*front, share.astype(self.dtype, copy=False))

    def __call__(self, outputs: Any, *arrays: np.ndarray) -> Any:
        """The batch's training loss from :meth:`arrays`, the L2 penalty included."""
        factor: Any = 0.5 * self.weight_decay
        if self.decay_per_example and self.weight_decay:
            if self.weighted:
                factor, arrays = Tensor(arrays[0]), arrays[1:]
            else:
                factor = 0.5 * self.weight_decay / outputs.shape[0]
        loss = self._data_loss(outputs, arrays, self.weighted)
        if self.weight_decay:
            penalty = sum((w * w).sum() for w in self.decayed)
            loss = loss + penalty * factor
        return loss

    def data_loss(self, outputs: Tensor, batch_y: np.ndarray, batch_w: np.ndarray | None) -> Tensor:
        """The loss of outputs on targets (weighted by ``batch_w`` if given), no penalty:
        what validation and the kept weights are measured by."""
        return self._data_loss(outputs, self._loss_arrays(batch_y, batch_w), batch_w is not None)

    def _data_loss(self, outputs: Tensor, arrays: tuple[np.ndarray, ...], weighted: bool) -> Tensor:
        if self.kind is None:  # a user's loss: given the outputs and targets as they are
            if weighted:
                raise FitSettingError(
                    "sample_weight and class_weight need one of fit's own losses (a name "
                    "such as 'mse' or 'log_loss'); a custom loss returns one number per "
                    "batch, which cannot be weighted per example"
                )
            return self.objective.function(outputs, arrays[0])
        weights = Tensor(arrays[-1]) if weighted else None
        if self.kind == "cross_entropy":
            # NOTE: the ops, in order, of nn.cross_entropy (log_softmax, pick, negate).
            log_probabilities = outputs.log_softmax(axis=-1)
            if (
                arrays[0].ndim == 1
                and len(arrays) >= 2
                and arrays[0].dtype.kind in "iu"
                and (arrays[1].ndim == 1)
            ):
                losses = -log_probabilities[arrays[0], arrays[1]]
            else:  # one-hot rows
                losses = -(log_probabilities * Tensor(arrays[0])).sum(axis=1)
        else:
            assert self._formula is not None
            losses = self._formula(outputs, Tensor(arrays[0]))
        if weights is not None:
            loss = (losses * weights).sum()
        elif self.units == "sum" and losses.ndim == 2:
            loss = losses.sum() * (1.0 / losses.shape[0])
        else:
            loss = losses.mean()
        return loss * self.scale if self.scale != 1.0 else loss

    def value_loss(
        self,
        rows: list[list[Value]],
        batch_y: np.ndarray,
        batch_w: np.ndarray | None,
        penalised: bool = True,
    ) -> Value:
        """The neuron-level network's batch loss: the handouts' sum over examples / n
        (weighted by ``batch_w`` if given; with the L2 penalty unless ``penalised`` is
        False)."""
        function = self.objective.function
        total: Value | None = None
        shares = None if batch_w is None else (batch_w / batch_w.sum()).tolist()
        for index, (units, target) in enumerate(zip(rows, batch_y.tolist())):
            term = function(units, target)  # the mean over this example's output units
            if shares is not None:
                term = term * shares[index]
            total = term if total is None else total + term
        assert total is not None  # batches are never empty
        loss = total if shares is not None else total * (1.0 / len(rows))
        if self.weight_decay and penalised:
            penalty = self.decayed[0] * self.decayed[0]
            for weight in self.decayed[1:]:
                penalty = penalty + weight * weight
            loss = loss + penalty * (0.5 * self.weight_decay)
        return loss


def decayed_parameters(
    model: Any, value_model: bool, parameters: Sequence[Any] | None = None
) -> list[Any]:
    """The parameters weight decay applies to: the weights, not the biases
    (``parameters``: ``model.parameters()`` if the caller has them already)."""
    if value_model:
        # NeuronMLP.weights[k][i] is unit i's row of incoming weights, its bias weight last.
        rows = [row for layer in getattr(model, "weights", ()) for row in layer]
        if getattr(model, "bias", False):
            return [weight for row in rows for weight in row[:-1]]
        return [weight for row in rows for weight in row]
    if parameters is None:
        parameters = model.parameters()
    return [p for p in parameters if p.data.ndim >= 2]


# --- training steps ----------------------------------------------------------------------


class TensorStep:
    """One gradient step of a tensor-level model on a batch; returns the batch's loss.

    Compiled (the default), the step is recorded on the first batch of each shape and
    then replayed flat into preallocated buffers: bit for bit what the eager step
    computes. After each call, :attr:`outputs` holds the model's outputs on the batch
    (before the update) when it can be read without another forward pass, else None.
    A compiled step outlives one fit: :meth:`rebind` trains it with another fit's
    optimizer (and that fit's loss and forward) on the programs already recorded.

    Args:
        forward: the model's forward pass (or its logits) on a batch of inputs.
        loss: the batch loss the step minimises.
        optimizer: the optimizer that updates the parameters after each step.
        compiled: record and replay the step (else every step runs eagerly).
        recurring_only: record a batch length only when it comes back (the first batch
            of a length runs eagerly), and stop recording once recordings outweigh
            replays: for callers such as ``partial_fit`` whose lengths need not recur.
    """

    def __init__(
        self,
        forward: Callable[[np.ndarray], Tensor],
        loss: BatchLoss,
        optimizer: Optimizer,
        compiled: bool,
        recurring_only: bool = False,
    ) -> None:
        self.forward = forward
        self.loss = loss
        self.optimizer = optimizer
        self.outputs: np.ndarray | None = None
        self._recurring_only = recurring_only
        self._lengths: set[int] = set()  # batch lengths met (with recurring_only)
        # The output tensor the compiled program writes, per batch length, and whether
        # its buffer was checked to still hold the outputs after the step.
        self._traced: dict[int, Tensor] = {}
        self._checked: dict[int, bool] = {}
        # Batch lengths whose check could not ride on the compiled step's own first-replay
        # verification (which runs the eager forward anyway): they run a forward of their own.
        self._unverified: set[int] = set()
        self._replay: Any = None
        self._fresh: np.ndarray | None = None
        self._expecting = False
        self._expected: np.ndarray | None = None
        self._before_update: Callable[[float], None] | None = None
        if compiled:
            from .. import compile as compile_step

            self._replay = compile_step(self._objective, optimizer=optimizer)

    @property
    def compiled(self) -> bool:
        """Whether the step replays recorded programs (False: every step runs eagerly)."""
        return self._replay is not None

    def rebind(
        self,
        forward: Callable[[np.ndarray], Tensor],
        loss: BatchLoss,
        optimizer: Optimizer,
        *,
        check_again: bool,
    ) -> None:
        """Train with another fit's optimizer, loss and forward on the recorded programs.

        Args:
            forward: the model's forward (the same computation the programs recorded).
            loss: a BatchLoss computing what the recorded one computed (same objective,
                weighting, weight decay and dtype; its row count may differ).
            optimizer: the optimizer whose ``step()`` follows each replayed backward.
            check_again: compare the next flat replay of every program with an eager
                call bit for bit again (when the forward may read numbers other than
                the parameters, which may have changed since the programs were recorded).
        """
        self.forward = forward
        self.loss = loss
        self.optimizer = optimizer
        self.outputs = None
        if self._replay is not None:
            self._replay.optimizer = optimizer
            if check_again:
                self._replay.check_again()

    def call_before_update(self, hook: Callable[[float], None] | None) -> None:
        """Call ``hook(loss)`` in every step, once the batch's loss is known and before
        the optimizer changes the parameters (None: stop calling it)."""
        self._before_update = hook
        if self._replay is not None:
            self._replay.before_update = hook

    def release(self) -> None:
        """Drop the references to one fit's model, loss and optimizer (kept between fits)."""
        self.forward = _unbound_forward
        self.outputs = None
        self.call_before_update(None)
        self._fresh = self._expected = None

    def _objective(self, batch_X: np.ndarray, *arrays: np.ndarray) -> Tensor:
        outputs = self.forward(batch_X)
        rows = len(batch_X)
        if outputs.requires_grad:  # a recording (not a verifying, gradient-free call)
            self._traced[rows] = outputs
            self._checked.pop(rows, None)  # a new program: its buffers are checked anew
            # Copied now: a new recording then plans new buffers for the tensors.
            self._fresh = outputs.data.copy()
        elif self._expecting:
            # The compiled step's first-replay check runs the eager forward before the
            # update: its outputs are what the traced buffer must hold after the step.
            self._expected = outputs.data.copy()
        return self.loss(outputs, *arrays)

    @property
    def stats(self) -> CompileStats | None:
        """The compiled step's counts (recordings, replays ...); None when eager."""
        return None if self._replay is None else self._replay.stats

    def _runs_compiled(self, rows: int) -> bool:
        if self._replay is None:
            return False
        if not self._recurring_only:
            return True
        if rows not in self._lengths:
            self._lengths.add(rows)
            return False  # recording costs about two eager steps: only for lengths that recur
        stats = self._replay.stats
        return stats.traces <= self._replay.max_traces or stats.replays >= 4 * stats.traces

    def __call__(self, batch_X: np.ndarray, batch_y: np.ndarray, batch_w: Any) -> float:
        arrays = self.loss.arrays(batch_y, batch_w)
        if not self._runs_compiled(len(batch_X)):
            self.optimizer.zero_grad()
            outputs = self.forward(batch_X)
            loss = self.loss(outputs, *arrays)
            loss.backward()
            value = float(loss.data)
            if self._before_update is not None:
                self._before_update(value)
            self.optimizer.step()
            self.outputs = outputs.data
            return value
        rows = len(batch_X)
        checked = self._checked.get(rows)
        unchecked = checked is None and rows in self._traced
        self._expected = None
        if unchecked and rows in self._unverified:
            # Is the traced output buffer still the outputs after a replay (the program
            # may reuse it for a later value)? Compared bit for bit, once per shape.
            with no_grad():
                self._expected = self.forward(batch_X).data.copy()
        self._fresh = None
        self._expecting = unchecked
        try:
            value = float(self._replay(batch_X, *arrays).data)
        finally:
            self._expecting = False
        if self._fresh is not None:  # fn ran (a recording): its outputs were copied
            self.outputs = self._fresh
            return value
        traced = self._traced.get(rows)
        if unchecked and traced is not None:
            expected = self._expected
            if expected is None:  # no eager forward ran: check with one of our own next time
                self._unverified.add(rows)
            else:
                checked = self._checked[rows] = bool(
                    traced.data.shape == expected.shape
                    and traced.data.tobytes() == expected.tobytes()
                )
        self.outputs = traced.data if (checked and traced is not None) else None
        return value


def _unbound_forward(batch_X: np.ndarray) -> Tensor:
    raise RuntimeError("this training step is not bound to a model: call rebind() first")


class ValueStep:
    """One gradient step of the neuron-level network on a batch; returns its loss."""

    def __init__(self, forward: Callable[[Any], Any], loss: BatchLoss, optimizer: Optimizer):
        self.forward = forward
        self.loss = loss
        self.optimizer = optimizer
        self.outputs: np.ndarray | None = None

    def __call__(self, batch_X: np.ndarray, batch_y: np.ndarray, batch_w: Any) -> float:
        self.optimizer.zero_grad()
        rows = value_outputs(self.forward, batch_X)
        loss = self.loss.value_loss(rows, batch_y, batch_w)
        loss.backward()
        self.optimizer.step()
        self.outputs = np.array([[unit.data for unit in row] for row in rows])
        return float(loss.data)


def value_outputs(forward: Callable[[Any], Any], batch_X: np.ndarray) -> list[list[Value]]:
    """The neuron-level network's output units for every row: one graph per example."""
    return [list(forward(row)) for row in batch_X.tolist()]
