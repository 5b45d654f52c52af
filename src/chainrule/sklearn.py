"""scikit-learn estimators trained by chainrule: :class:`MLPClassifier` and :class:`MLPRegressor`.

They take scikit-learn's parameter names (``hidden_layer_sizes``, ``activation``,
``solver``, ``alpha``, ``learning_rate_init``, ``batch_size``, ``max_iter``,
``early_stopping`` ...) and expose its fitted attributes (``coefs_``, ``intercepts_``,
``loss_curve_``, ``classes_``, ``n_features_in_`` ...), so they drop into a
``Pipeline``, ``GridSearchCV`` or ``cross_val_score``. Underneath, the network is a
:class:`chainrule.nn.MLP` (kept as ``network_``: draw it, explain it, save it with
:func:`chainrule.save`), trained by :mod:`chainrule.optim`'s ``SGD`` or ``Adam``.

The training follows scikit-learn's ``MLPClassifier``/``MLPRegressor`` so results
read the same way: the loss is the mean log loss (half the mean squared error for
regression) plus ``alpha / (2 · batch size) · Σ‖W‖²`` over the weight matrices (not
the biases); ``loss_curve_`` holds each epoch's loss averaged over its examples;
training stops when the loss (or, with ``early_stopping``, the validation score) has
not improved by ``tol`` for more than ``n_iter_no_change`` epochs, and a
``ConvergenceWarning`` says so when ``max_iter`` epochs were not enough.

Each batch's training step is :func:`chainrule.fit`'s own, on its batch loss stated
with scikit-learn's conventions: compiled with :func:`chainrule.compile`, recorded
once per batch length that recurs, then replayed into preallocated buffers, bit for
bit what eager mode computes (``fit`` gives the same weights and ``loss_curve_``
either way). The epochs run in chainrule's one training loop
(:func:`chainrule.training.run_epochs`, the loop of :func:`chainrule.fit`):
scikit-learn's stopping rule is one of its stopping rules, and a diverging loss is
caught there (the best weights are kept and :class:`TrainingDivergedError` names the
epoch).

``fit(X, y, sample_weight=)`` weighs examples as scikit-learn does: the objective of a
batch is ``(Σ sᵢ·lossᵢ + alpha/2 · Σ‖W‖²) / Σ sᵢ``; :class:`MLPClassifier` also takes
``class_weight`` (``"balanced"`` or ``{label: weight}``), multiplying the sample weights.

scikit-learn is an optional extra: ``pip install "chainrule[sklearn]"``.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.utils.class_weight import compute_sample_weight
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import (
        _check_sample_weight,
        check_is_fitted,
        check_random_state,
        column_or_1d,
        validate_data,
    )
except ImportError as error:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        'chainrule.sklearn needs scikit-learn 1.6 or newer: pip install "chainrule[sklearn]"'
    ) from error

from . import functions, nn, optim
from .errors import ChainruleError
from .functional import enable_grad, no_grad
from .training import History, run_epochs
from .training._objective import BatchLoss, TensorStep, resolve_objective

__all__ = ["InvalidParameterError", "MLPClassifier", "MLPRegressor", "TrainingDivergedError"]

# scikit-learn's activation names -> chainrule's.
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_SOLVERS = ("sgd", "adam")
# The float types the network computes in; anything else is converted to float64.
_FLOAT_DTYPES = (np.float64, np.float32)
# Whether fit and partial_fit run their per-batch step through chainrule.compile (the
# default) or eagerly. Both compute the same bits; the tests flip this to compare them.
_COMPILE_STEPS = True


class InvalidParameterError(ChainruleError, ValueError, TypeError):
    """A hyperparameter of an estimator is out of range or of the wrong type.

    It is both a ValueError and a TypeError, like scikit-learn's own
    ``InvalidParameterError``, so code that catches either keeps working.
    """


class TrainingDivergedError(ChainruleError, ValueError):
    """The training loss became NaN or infinite; the message says at which epoch."""


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, the training loop, prediction.

    Subclasses say how targets are encoded, which output activation and loss go with
    them, and how a validation set is scored.
    """

    def __init__(
        self,
        hidden_layer_sizes: int | Iterable[int] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate_init: float = 0.001,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
    ) -> None:
        # scikit-learn's rule: __init__ stores the parameters untouched; fit checks them.
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change

    def __getstate__(self) -> dict[str, Any]:
        """The estimator's state for copying and pickling, without its compiled step.

        The compiled step holds numpy calls bound to its buffers, which neither copy nor
        pickle; ``partial_fit`` on the copy records a new one for the same optimizer.
        """
        state = dict(super().__getstate__())  # a copy: object's state is the live __dict__
        state.pop("_step", None)
        state.pop("_weighted_step", None)
        return state

    # --- hooks the subclasses fill in ----------------------------------------------------

    def _validate_training_data(
        self, X: Any, y: Any, *, reset: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _encode_targets(
        self,
        y: np.ndarray,
        *,
        first_pass: bool,
        incremental: bool,
        classes: Any,
        dtype: np.dtype,
    ) -> np.ndarray:
        """Targets as the loss wants them; on the first pass also set the output attributes."""
        raise NotImplementedError

    def _output_activation(self) -> str | None:
        raise NotImplementedError

    def _loss_name(self) -> str:
        """The loss, as :func:`chainrule.fit` names it, that goes with the output layer."""
        raise NotImplementedError

    # How an example's loss combines its output units, and a factor on the data loss:
    # scikit-learn's conventions for each estimator (see BatchLoss).
    _loss_units: Literal["mean", "sum"] = "mean"
    _loss_scale = 1.0

    def _validation_score(self, logits: np.ndarray, targets: np.ndarray) -> float:
        raise NotImplementedError

    def _stratify_on(self, targets: np.ndarray) -> np.ndarray | None:
        return None

    # --- parameters ----------------------------------------------------------------------

    def _hidden_sizes(self) -> list[int]:
        sizes: Any = self.hidden_layer_sizes
        try:
            listed: list[Any] = [sizes] if _is_integer(sizes) else list(sizes)
        except TypeError:
            raise InvalidParameterError(
                f"hidden_layer_sizes must be an int or a sequence of ints (one width per "
                f"hidden layer), got {sizes!r}"
            ) from None
        for width in listed:
            if not _is_integer(width) or width < 1:
                raise InvalidParameterError(
                    f"hidden_layer_sizes must hold positive ints (one width per hidden "
                    f"layer), got {sizes!r}"
                )
        return [int(width) for width in listed]

    def _check_params(self) -> None:
        """Raise InvalidParameterError naming the first hyperparameter out of range."""
        if self.activation not in _ACTIVATIONS:
            raise InvalidParameterError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.solver not in _SOLVERS:
            hint = (
                " (chainrule trains with its gradient-descent optimizers; lbfgs is not one)"
                if self.solver == "lbfgs"
                else ""
            )
            raise InvalidParameterError(
                f"solver must be one of {list(_SOLVERS)}, got {self.solver!r}{hint}"
            )
        batch_size: Any = self.batch_size
        if not (batch_size == "auto" or (_is_integer(batch_size) and batch_size >= 1)):
            raise InvalidParameterError(
                f'batch_size must be "auto" or a positive int, got {batch_size!r}'
            )
        _check_real("alpha", self.alpha, low=0.0)
        _check_real("learning_rate_init", self.learning_rate_init, low=0.0, low_open=True)
        _check_real("tol", self.tol, low=0.0)
        _check_real("momentum", self.momentum, low=0.0, high=1.0)
        _check_real(
            "validation_fraction",
            self.validation_fraction,
            low=0.0,
            high=1.0,
            low_open=True,
            high_open=True,
        )
        _check_real("beta_1", self.beta_1, low=0.0, high=1.0, high_open=True)
        _check_real("beta_2", self.beta_2, low=0.0, high=1.0, high_open=True)
        _check_real("epsilon", self.epsilon, low=0.0, low_open=True)
        for name in ("max_iter", "n_iter_no_change"):
            value = getattr(self, name)
            if not _is_integer(value) or value < 1:
                raise InvalidParameterError(f"{name} must be a positive int, got {value!r}")
        for name in ("shuffle", "verbose", "warm_start", "early_stopping"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise InvalidParameterError(f"{name} must be True or False, got {value!r}")

    # --- training ------------------------------------------------------------------------

    def _example_weights(
        self, y: np.ndarray, sample_weight: Any, X: np.ndarray
    ) -> np.ndarray | None:
        """Each example's weight (sample_weight, times class_weight for classifiers)."""
        if sample_weight is None:
            return None
        # Refuses negative, NaN and all-zero weights, with scikit-learn's own messages.
        return _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)

    def _fit(
        self,
        X: Any,
        y: Any,
        *,
        incremental: bool,
        classes: Any = None,
        sample_weight: Any = None,
    ) -> _BaseMLP:
        self._check_params()
        hidden = self._hidden_sizes()
        if incremental and self.early_stopping:
            raise InvalidParameterError(
                "partial_fit does not support early_stopping=True: it trains one epoch on "
                "the data it is given, so there is no validation set to watch; set "
                "early_stopping=False"
            )
        fitted = hasattr(self, "network_")
        first_pass = not fitted or not (incremental or self.warm_start)
        X, y = self._validate_training_data(X, y, reset=first_pass)
        if first_pass:
            dtype = X.dtype
        else:
            self._check_architecture(hidden)
            dtype = self._network_dtype()
            X = X.astype(dtype, copy=False)
        targets = self._encode_targets(
            y, first_pass=first_pass, incremental=incremental, classes=classes, dtype=dtype
        )
        weights = self._example_weights(y, sample_weight, X)
        rng = check_random_state(self.random_state)

        if first_pass:
            sizes = [X.shape[1], *hidden, self.n_outputs_]
            self.network_ = nn.MLP(
                sizes,
                activation=_ACTIVATIONS[self.activation],
                output_activation=self._output_activation(),
                dtype=X.dtype.name,
                # A seed drawn from random_state: the same random_state, the same network.
                seed=int(rng.randint(np.iinfo(np.int32).max)),
            )
            self.n_layers_ = len(sizes)
            self.loss_curve_: list[float] = []
            self.t_ = 0
            self.n_iter_ = 0
            self._optimizer: optim.Optimizer | None = None
        if not incremental or first_pass:
            # Every call to fit gets its own stopping rule, counted from its first epoch.
            self.n_iter_ = 0
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_: list[float] | None = []
                self.best_validation_score_: float | None = -np.inf
                self.best_loss_: float | None = None
            else:
                self.validation_scores_ = None
                self.best_validation_score_ = None
                self.best_loss_ = min(self.loss_curve_, default=np.inf)
        # scikit-learn's rule: fit starts a new optimizer, partial_fit continues the last.
        if not incremental or self._optimizer is None:
            self._optimizer = self._make_optimizer()
        self._run_epochs(X, targets, weights, rng, incremental=incremental)
        self._publish_weights()
        return self

    def _check_architecture(self, hidden: list[int]) -> None:
        trained = list(self.network_.sizes[1:-1])
        if trained != hidden:
            raise InvalidParameterError(
                f"hidden_layer_sizes is {hidden} but the network being continued was built "
                f"with {trained}; set warm_start=False (or call fit) to start a new network"
            )

    def _network_dtype(self) -> np.dtype:
        return self.network_.dtype

    def _make_optimizer(self) -> optim.Optimizer:
        params = self.network_.parameters()
        if self.solver == "sgd":
            return optim.SGD(params, lr=self.learning_rate_init, momentum=self.momentum)
        return optim.Adam(
            params,
            lr=self.learning_rate_init,
            betas=(self.beta_1, self.beta_2),
            eps=self.epsilon,
        )

    def _batch_loss(self, weighted: bool, alpha: float) -> BatchLoss:
        """The objective of a batch: the data loss plus ``alpha / (2·n) · Σ‖W‖²`` over the
        weight matrices (not the biases), n the batch's examples (their total weight,
        with sample weights), as scikit-learn defines it."""
        objective = resolve_objective(self.network_, self._loss_name())
        return BatchLoss(
            objective,
            weighted=weighted,
            weight_decay=alpha,
            decayed=[layer.weight for layer in self.network_.layers],
            dtype=self._network_dtype(),
            max_rows=0,  # (cross-entropy's row positions grow to the batches it meets)
            units=self._loss_units,
            scale=self._loss_scale,
            decay_per_example=True,
        )

    def _training_step(self, weighted: bool) -> TensorStep:
        """One gradient step on a batch: ``step(X_batch, targets, weights) -> loss``.

        :func:`chainrule.fit`'s step: compiled (the default), a batch length that
        recurs is recorded by :func:`chainrule.compile` and then replayed into
        preallocated buffers, bit for bit what the eager step computes. The step is kept
        between partial_fit calls, with the optimizer it drives and the ``alpha`` it
        penalises by.
        """
        optimizer = self._optimizer
        assert optimizer is not None
        alpha = float(self.alpha)
        attribute = "_weighted_step" if weighted else "_step"
        step: TensorStep | None = getattr(self, attribute, None)
        if step is None or step.optimizer is not optimizer or step.loss.weight_decay != alpha:
            step = TensorStep(
                self.network_.forward_logits,
                self._batch_loss(weighted, alpha),
                optimizer,
                compiled=_COMPILE_STEPS,
                # partial_fit's batch lengths need not come back.
                recurring_only=True,
            )
            setattr(self, attribute, step)
        return step

    def _run_epochs(
        self,
        X: np.ndarray,
        targets: np.ndarray,
        weights: np.ndarray | None,
        rng: np.random.RandomState,
        *,
        incremental: bool,
    ) -> None:
        early_stopping = self.early_stopping and not incremental
        X_val = targets_val = None
        if early_stopping:
            X, targets, weights, X_val, targets_val = self._split_validation(
                X, targets, weights, rng
            )
        n_samples = X.shape[0]
        batch_size = self._batch_size(n_samples)
        step = self._training_step(weights is not None)
        total_weight = float(n_samples if weights is None else weights.sum())

        def train_epoch(epoch: int) -> dict[str, float]:
            order = rng.permutation(n_samples) if self.shuffle else np.arange(n_samples)
            total = 0.0
            for start in range(0, n_samples, batch_size):
                rows = order[start : start + batch_size]
                batch_weights = None if weights is None else weights[rows]
                share = float(len(rows) if batch_weights is None else batch_weights.sum())
                if share == 0.0:
                    continue  # every example of this batch has weight 0
                # Weighted by the batch's share so the epoch loss is a mean over examples.
                total += step(X[rows], targets[rows], batch_weights) * share
            self.n_iter_ += 1
            self.t_ += n_samples
            loss = total / total_weight
            logs = {"loss": loss}
            if not np.isfinite(loss):
                return logs  # the loop stops here; loss_ and loss_curve_ keep finite values
            self.loss_ = loss
            self.loss_curve_.append(loss)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            if early_stopping:
                assert X_val is not None and targets_val is not None
                logs["val_score"] = self._validation_score(self._logits(X_val), targets_val)
            return logs

        def training_objective() -> float:
            """The objective of the weights the network holds, on all training rows."""
            loss = step.loss
            with no_grad():
                return float(
                    loss(self.network_.forward_logits(X), *loss.arrays(targets, weights)).item()
                )

        history = History(monitor="val_score" if early_stopping else "loss")
        # NOTE: numpy's overflow warnings are silenced here because a diverging run is
        # caught by the loop and reported as one TrainingDivergedError that says what to do.
        with (
            enable_grad(),
            np.errstate(over="ignore", invalid="ignore", divide="ignore"),
        ):
            run_epochs(
                history,
                train_epoch,
                self.network_.parameters(),
                epochs=1 if incremental else self.max_iter,
                higher_is_better=early_stopping,
                restore_best=early_stopping,
                stop_rules=[self._stopping_rule(early_stopping)],
                measure=training_objective,
                first_epoch=self.n_iter_ + 1,
            )
        if history.interrupted:
            # Ctrl-C ends training, not the program: the best weights so far are kept.
            warnings.warn("Training interrupted by user.", UserWarning, stacklevel=4)
        if history.diverged or not all(
            np.isfinite(p.data).all() for p in self.network_.parameters()
        ):
            self._publish_weights()
            raise self._diverged(history)
        if (
            not incremental
            and history.stop_reason == "completed"
            and (self.n_iter_ == self.max_iter)
        ):
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,  # points at the caller of fit
            )

    def _stopping_rule(self, early_stopping: bool) -> Callable[[int, dict[str, float]], bool]:
        """scikit-learn's rule: stop after more than n_iter_no_change epochs without an
        improvement of tol in the training loss (the validation score, early stopping)."""

        def rule(epoch: int, logs: dict[str, float]) -> bool:
            if early_stopping:
                self._track_validation(logs["val_score"])
            else:
                self._track_training_loss()
            if self._no_improvement_count <= self.n_iter_no_change:
                return False
            if self.verbose:
                watched = "Validation score" if early_stopping else "Training loss"
                print(
                    f"{watched} did not improve more than tol={self.tol} for "
                    f"{self.n_iter_no_change} consecutive epochs. Stopping."
                )
            return True

        return rule

    def _diverged(self, history: History) -> TrainingDivergedError:
        if history.diverged:
            last = history.loss[-1] if history.loss else float("nan")
            what = (
                f"the training loss became {last}"
                if not np.isfinite(last)
                else f"the training loss reached {last:.4g}, far above its start"
            )
            epoch = history.diverged_epoch
        else:
            what, epoch = "the weights became NaN or infinite", self.n_iter_
        kept = (
            "the initial weights were kept"
            if history.best_epoch in (None, 0)
            else f"the weights of epoch {history.best_epoch} were kept"
        )
        return TrainingDivergedError(
            f"training diverged: {what} in epoch {epoch} ({kept}); scale the inputs (e.g. "
            "with sklearn.preprocessing.StandardScaler in a Pipeline) or use a smaller "
            f"learning_rate_init (now {self.learning_rate_init}, try "
            f"{self.learning_rate_init / 10:g})"
        )

    def _track_validation(self, score: float) -> bool:
        """Record a validation score, update the patience counter; True on a new best."""
        assert self.validation_scores_ is not None and self.best_validation_score_ is not None
        self.validation_scores_.append(score)
        if self.verbose:
            print(f"Validation score: {score:.6f}")
        if score < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            return True
        return False

    def _track_training_loss(self) -> None:
        # None after a fit with early stopping: partial_fit then starts a new record.
        best = np.inf if self.best_loss_ is None else self.best_loss_
        if self.loss_ > best - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        self.best_loss_ = min(best, self.loss_)

    def _split_validation(
        self,
        X: np.ndarray,
        targets: np.ndarray,
        weights: np.ndarray | None,
        rng: np.random.RandomState,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
        train_rows, val_rows = train_test_split(
            np.arange(X.shape[0]),
            test_size=self.validation_fraction,
            random_state=rng,
            stratify=self._stratify_on(targets),
        )
        if len(val_rows) < 2:
            raise ValueError(
                f"The validation set is too small: validation_fraction="
                f"{self.validation_fraction} of {X.shape[0]} samples leaves {len(val_rows)}. "
                "Increase 'validation_fraction' or the size of your dataset."
            )
        kept_weights = None if weights is None else weights[train_rows]
        return (
            X[train_rows],
            targets[train_rows],
            kept_weights,
            X[val_rows],
            targets[val_rows],
        )

    def _batch_size(self, n_samples: int) -> int:
        batch_size: Any = self.batch_size
        if batch_size == "auto":
            return min(200, n_samples)
        if batch_size > n_samples:
            warnings.warn(
                f"batch_size={batch_size} is larger than the {n_samples} training "
                f"samples; it is clipped to {n_samples}",
                UserWarning,
                stacklevel=5,  # points at the caller of fit
            )
            return n_samples
        return int(batch_size)

    def _publish_weights(self) -> None:
        # scikit-learn's layout: coefs_[k] is (n_in, n_out), the transpose of Linear.weight.
        layers = self.network_.layers
        self.coefs_ = [layer.weight.data.T.copy() for layer in layers]
        # Every layer has a bias: the estimators build their networks with bias=True.
        self.intercepts_ = [np.array(layer.bias.data) for layer in layers if layer.bias is not None]

    # --- prediction ----------------------------------------------------------------------

    def __sklearn_is_fitted__(self) -> bool:
        """Fitted once a network was trained (a fit that failed early leaves none)."""
        return hasattr(self, "network_")

    def _validated_input(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=_FLOAT_DTYPES)
        return X.astype(self._network_dtype(), copy=False)

    def _logits(self, X: np.ndarray) -> np.ndarray:
        """The network's output before its output activation, for validated input X."""
        with no_grad():
            return self.network_.forward_logits(X).data


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multi-layer perceptron classifier trained by chainrule, with scikit-learn's API.

    Binary problems get one sigmoid output unit and the log loss; more classes get
    a softmax output layer and the cross-entropy; a multilabel indicator matrix ``y``
    gets one sigmoid unit per label. Use it like ``sklearn.neural_network.MLPClassifier``::

        model = MLPClassifier(hidden_layer_sizes=(16,), random_state=0).fit(X, y)
        model.predict_proba(X_new)

    Args:
        hidden_layer_sizes: width of each hidden layer, e.g. ``(100,)`` or ``(32, 16)``;
            ``()`` gives logistic regression.
        activation: hidden-layer activation: ``"identity"``, ``"logistic"`` (the sigmoid),
            ``"tanh"`` or ``"relu"``.
        solver: ``"adam"`` (:class:`chainrule.optim.Adam`) or ``"sgd"``
            (:class:`chainrule.optim.SGD` with classical momentum).
        alpha: strength of the L2 penalty on the weights (not the biases).
        batch_size: examples per gradient step; ``"auto"`` is ``min(200, n_samples)``.
            A larger int is clipped to ``n_samples`` with a warning.
        learning_rate_init: the optimizer's learning rate (constant).
        max_iter: the most epochs ``fit`` runs (one pass over the data each).
        shuffle: shuffle the examples before each epoch.
        random_state: seeds the initial weights, the shuffling and the validation split;
            an int makes fits reproducible.
        tol: the improvement of the loss (or validation score) that counts as progress.
        verbose: print the loss after each epoch.
        warm_start: let ``fit`` continue from the previous fit's weights.
        momentum: momentum of the ``"sgd"`` solver, in [0, 1].
        early_stopping: hold out ``validation_fraction`` of the data, stop when its
            accuracy stops improving and keep the weights with the best accuracy.
        validation_fraction: share of the training data held out for early stopping.
        beta_1: Adam's decay rate of the first moment, in [0, 1).
        beta_2: Adam's decay rate of the second moment, in [0, 1).
        epsilon: Adam's numerical-stability constant.
        n_iter_no_change: stop after more than this many epochs without progress.
        class_weight: ``"balanced"`` (each class weighs n_samples / (n_classes · its
            count)), a dict ``{label: weight}`` (labels left out weigh 1), or None. It
            multiplies ``fit``'s ``sample_weight``. Not for multilabel ``y``.

    Attributes:
        classes_: the class labels (for multilabel ``y``, the label indices).
        network_: the trained :class:`chainrule.nn.MLP`.
        coefs_: weight matrices, ``coefs_[k]`` of shape (units in layer k, units in k+1).
        intercepts_: bias vectors, ``intercepts_[k]`` of shape (units in layer k+1,).
        loss_: the last epoch's training loss; ``loss_curve_`` every epoch's.
        best_loss_: the lowest training loss (None with early stopping).
        validation_scores_, best_validation_score_: validation accuracy per epoch and
            its best value (None without early stopping).
        n_iter_: epochs run by the last ``fit`` (plus one per ``partial_fit``).
        t_: training examples seen by the optimizer.
        n_features_in_, feature_names_in_: the input's width and column names (the
            latter only for input with string column names, such as a DataFrame).
        n_layers_, n_outputs_, out_activation_: network depth, output units and the
            output activation's scikit-learn name (``"logistic"`` or ``"softmax"``).
    """

    def __init__(
        self,
        hidden_layer_sizes: int | Iterable[int] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate_init: float = 0.001,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        class_weight: dict[Any, float] | str | None = None,
    ) -> None:
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate_init=learning_rate_init,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
        )
        self.class_weight = class_weight

    def fit(
        self,
        X: npt.ArrayLike,
        y: npt.ArrayLike,
        sample_weight: npt.ArrayLike | None = None,
    ) -> MLPClassifier:
        """Train the network on ``X`` and labels ``y``.

        Args:
            X: training inputs, shape (n_samples, n_features): array, list or DataFrame.
            y: class labels, shape (n_samples,) (any labels: ints, strings ...), or a
                0/1 indicator matrix (n_samples, n_labels) for multilabel problems.
            sample_weight: one weight (at least 0) per sample; None weighs all alike.

        Returns:
            The fitted estimator.
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def partial_fit(
        self,
        X: npt.ArrayLike,
        y: npt.ArrayLike,
        classes: npt.ArrayLike | None = None,
        sample_weight: npt.ArrayLike | None = None,
    ) -> MLPClassifier:
        """Train one epoch on ``X``, ``y``, continuing from the current weights and optimizer.

        Args:
            X: inputs, shape (n_samples, n_features).
            y: labels for ``X``.
            classes: every label the model will ever see; required on the first call
                (for single-label ``y``), since one batch need not contain them all.
            sample_weight: one weight (at least 0) per sample; None weighs all alike.

        Returns:
            The estimator.
        """
        return self._fit(X, y, incremental=True, classes=classes, sample_weight=sample_weight)

    def predict(self, X: npt.ArrayLike) -> np.ndarray:
        """Predicted class labels (the most probable class), shape (n_samples,).

        For multilabel models, a 0/1 matrix (n_samples, n_labels) with 1 where a
        label's probability is above one half.
        """
        probabilities = self.predict_proba(X)
        if self._multilabel:
            return (probabilities > 0.5).astype(int)
        return self.classes_[np.argmax(probabilities, axis=1)]

    def predict_proba(self, X: npt.ArrayLike) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order.

        Args:
            X: inputs, shape (n_samples, n_features).
        """
        logits = self._logits(self._validated_input(X))
        if self._multilabel:
            return functions.sigmoid(logits)
        if self.n_outputs_ == 1:
            positive = functions.sigmoid(logits)
            return np.hstack([1.0 - positive, positive])
        return functions.softmax(logits, axis=1).data

    def predict_log_proba(self, X: npt.ArrayLike) -> np.ndarray:
        """Logarithms of :meth:`predict_proba`, computed from the logits without underflow.

        Args:
            X: inputs, shape (n_samples, n_features).
        """
        logits = self._logits(self._validated_input(X))
        if self.n_outputs_ == 1 or self._multilabel:
            # log σ(z) = −softplus(−z) and log(1 − σ(z)) = −softplus(z).
            log_positive = -functions.softplus(-logits)
            if self._multilabel:
                return log_positive
            return np.hstack([-functions.softplus(logits), log_positive])
        return functions.log_softmax(logits, axis=1).data

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags: this classifier also takes multilabel indicator targets."""
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    # --- hooks ---------------------------------------------------------------------------

    def _validate_training_data(
        self, X: Any, y: Any, *, reset: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(self, X, y, reset=reset, multi_output=True, dtype=_FLOAT_DTYPES)
        if y.ndim == 2 and y.shape[1] == 1:
            # A column of labels is one label per row (warns as scikit-learn does).
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        return X, y

    def _encode_targets(
        self,
        y: np.ndarray,
        *,
        first_pass: bool,
        incremental: bool,
        classes: Any,
        dtype: np.dtype,
    ) -> np.ndarray:
        kind = type_of_target(y)
        multilabel = kind == "multilabel-indicator"
        if kind not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(
                f"MLPClassifier handles binary, multiclass and multilabel-indicator targets; "
                f"y is {kind!r} (for several multiclass outputs, wrap the classifier in "
                "sklearn.multioutput.MultiOutputClassifier)"
            )
        if first_pass:
            self._set_classes(y, multilabel=multilabel, incremental=incremental, classes=classes)
        else:
            self._check_same_kind(y, multilabel=multilabel, classes=classes)
        if not multilabel:
            unknown = np.setdiff1d(y, self.classes_)
            if len(unknown):
                raise ValueError(
                    f"y has labels {unknown.tolist()} that are not among the classes "
                    f"{self.classes_.tolist()}; pass every label in `classes` on the first "
                    "call to partial_fit, or call fit to start again"
                )
        if multilabel:
            return y.astype(dtype)
        indices = np.searchsorted(self.classes_, y)
        if self.n_outputs_ == 1:
            # One sigmoid unit: the target is 1 for classes_[1], 0 for classes_[0].
            return indices.reshape(-1, 1).astype(dtype)
        return indices

    def _set_classes(
        self, y: np.ndarray, *, multilabel: bool, incremental: bool, classes: Any
    ) -> None:
        if multilabel:
            labels = np.arange(y.shape[1])
        elif incremental:
            if classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit: every label "
                    "the model will see, e.g. classes=np.unique(y_all)"
                )
            labels = np.unique(column_or_1d(classes))
        else:
            labels = np.unique(y)
        if not multilabel and len(labels) < 2:
            raise ValueError(
                f"MLPClassifier needs samples of at least 2 classes in the data, but got "
                f"1 class: {labels[0]!r}"
            )
        self.classes_ = labels
        self._multilabel = multilabel
        self.n_outputs_ = len(labels) if (multilabel or len(labels) > 2) else 1
        self.out_activation_ = "logistic" if (multilabel or len(labels) == 2) else "softmax"

    def _check_same_kind(self, y: np.ndarray, *, multilabel: bool, classes: Any) -> None:
        def describe(is_multilabel: bool) -> str:
            return "a multilabel indicator matrix" if is_multilabel else "one label per row"

        if multilabel != self._multilabel:
            raise ValueError(
                f"y is {describe(multilabel)} but the model was trained on "
                f"{describe(self._multilabel)}; call fit to start again"
            )
        if multilabel and y.shape[1] != len(self.classes_):
            raise ValueError(
                f"y has {y.shape[1]} labels but the model was trained on "
                f"{len(self.classes_)}; give the same label columns"
            )
        if classes is not None and not multilabel:
            given = np.unique(column_or_1d(classes))
            if not np.array_equal(given, self.classes_):
                raise ValueError(
                    f"classes={given.tolist()} differs from the classes the model was "
                    f"trained on, {self.classes_.tolist()}; pass the same classes every time"
                )

    def _output_activation(self) -> str | None:
        return "softmax" if self.out_activation_ == "softmax" else "sigmoid"

    def _loss_name(self) -> str:
        # Cross-entropy after softmax, log loss after sigmoid: both from the logits.
        return "cross_entropy" if self.out_activation_ == "softmax" else "log_loss"

    # scikit-learn's log loss sums over an example's labels (a multilabel row).
    _loss_units: Literal["mean", "sum"] = "sum"

    def _example_weights(
        self, y: np.ndarray, sample_weight: Any, X: np.ndarray
    ) -> np.ndarray | None:
        weights = super()._example_weights(y, sample_weight, X)
        if self.class_weight is None:
            return weights
        if self._multilabel:
            raise InvalidParameterError(
                "class_weight is not supported for multilabel targets (each label is its "
                "own yes/no class); weigh examples with sample_weight instead"
            )
        if not (self.class_weight == "balanced" or isinstance(self.class_weight, dict)):
            raise InvalidParameterError(
                f'class_weight must be "balanced", a dict {{label: weight}} or None, got '
                f"{self.class_weight!r}"
            )
        per_class = compute_sample_weight(self.class_weight, y).astype(X.dtype)
        weights = per_class if weights is None else weights * per_class
        if not weights.any():
            raise ValueError("sample_weight and class_weight give every sample weight 0")
        return weights

    def _validation_score(self, logits: np.ndarray, targets: np.ndarray) -> float:
        if self.out_activation_ == "softmax":
            return float(accuracy_score(targets, np.argmax(logits, axis=1)))
        # σ(z) > 1/2 exactly when z > 0; a multilabel row counts only if all labels match.
        return float(accuracy_score(targets.astype(int), (logits > 0).astype(int)))

    def _stratify_on(self, targets: np.ndarray) -> np.ndarray | None:
        return None if self._multilabel else targets


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multi-layer perceptron regressor trained by chainrule, with scikit-learn's API.

    The output layer is linear, the loss half the mean squared error (as in
    scikit-learn), and ``y`` may have several columns (one output unit each).
    Use it like ``sklearn.neural_network.MLPRegressor``::

        model = MLPRegressor(hidden_layer_sizes=(32,), random_state=0).fit(X, y)
        model.predict(X_new)

    Args:
        hidden_layer_sizes: width of each hidden layer, e.g. ``(100,)`` or ``(32, 16)``;
            ``()`` gives linear regression.
        activation: hidden-layer activation: ``"identity"``, ``"logistic"`` (the sigmoid),
            ``"tanh"`` or ``"relu"``.
        solver: ``"adam"`` (:class:`chainrule.optim.Adam`) or ``"sgd"``
            (:class:`chainrule.optim.SGD` with classical momentum).
        alpha: strength of the L2 penalty on the weights (not the biases).
        batch_size: examples per gradient step; ``"auto"`` is ``min(200, n_samples)``.
            A larger int is clipped to ``n_samples`` with a warning.
        learning_rate_init: the optimizer's learning rate (constant).
        max_iter: the most epochs ``fit`` runs (one pass over the data each).
        shuffle: shuffle the examples before each epoch.
        random_state: seeds the initial weights, the shuffling and the validation split;
            an int makes fits reproducible.
        tol: the improvement of the loss (or validation score) that counts as progress.
        verbose: print the loss after each epoch.
        warm_start: let ``fit`` continue from the previous fit's weights.
        momentum: momentum of the ``"sgd"`` solver, in [0, 1].
        early_stopping: hold out ``validation_fraction`` of the data, stop when its R²
            stops improving and keep the weights with the best R².
        validation_fraction: share of the training data held out for early stopping.
        beta_1: Adam's decay rate of the first moment, in [0, 1).
        beta_2: Adam's decay rate of the second moment, in [0, 1).
        epsilon: Adam's numerical-stability constant.
        n_iter_no_change: stop after more than this many epochs without progress.

    Attributes:
        network_: the trained :class:`chainrule.nn.MLP`.
        coefs_: weight matrices, ``coefs_[k]`` of shape (units in layer k, units in k+1).
        intercepts_: bias vectors, ``intercepts_[k]`` of shape (units in layer k+1,).
        loss_: the last epoch's training loss; ``loss_curve_`` every epoch's.
        best_loss_: the lowest training loss (None with early stopping).
        validation_scores_, best_validation_score_: validation R² per epoch and its
            best value (None without early stopping).
        n_iter_: epochs run by the last ``fit`` (plus one per ``partial_fit``).
        t_: training examples seen by the optimizer.
        n_features_in_, feature_names_in_: the input's width and column names (the
            latter only for input with string column names, such as a DataFrame).
        n_layers_, n_outputs_, out_activation_: network depth, output units (columns
            of ``y``) and the output activation's name (``"identity"``).
    """

    def fit(
        self,
        X: npt.ArrayLike,
        y: npt.ArrayLike,
        sample_weight: npt.ArrayLike | None = None,
    ) -> MLPRegressor:
        """Train the network on ``X`` and targets ``y``.

        Args:
            X: training inputs, shape (n_samples, n_features): array, list or DataFrame.
            y: targets, shape (n_samples,) or (n_samples, n_outputs).
            sample_weight: one weight (at least 0) per sample; None weighs all alike.

        Returns:
            The fitted estimator.
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def partial_fit(
        self,
        X: npt.ArrayLike,
        y: npt.ArrayLike,
        sample_weight: npt.ArrayLike | None = None,
    ) -> MLPRegressor:
        """Train one epoch on ``X``, ``y``, continuing from the current weights and optimizer.

        Args:
            X: inputs, shape (n_samples, n_features).
            y: targets for ``X``.
            sample_weight: one weight (at least 0) per sample; None weighs all alike.

        Returns:
            The estimator.
        """
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X: npt.ArrayLike) -> np.ndarray:
        """Predicted targets: shape (n_samples,) for one output, else (n_samples, n_outputs).

        Args:
            X: inputs, shape (n_samples, n_features).
        """
        outputs = self._logits(self._validated_input(X))
        return outputs.ravel() if self.n_outputs_ == 1 else outputs

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags: this regressor predicts several targets at once."""
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    # --- hooks ---------------------------------------------------------------------------

    def _validate_training_data(
        self, X: Any, y: Any, *, reset: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(
            self, X, y, reset=reset, multi_output=True, y_numeric=True, dtype=_FLOAT_DTYPES
        )
        return X, y

    def _encode_targets(
        self,
        y: np.ndarray,
        *,
        first_pass: bool,
        incremental: bool,
        classes: Any,
        dtype: np.dtype,
    ) -> np.ndarray:
        targets = y.reshape(-1, 1) if y.ndim == 1 else y
        if first_pass:
            self.n_outputs_ = targets.shape[1]
            self.out_activation_ = "identity"
        elif targets.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {targets.shape[1]} columns but the model was trained on "
                f"{self.n_outputs_}; give the same target columns"
            )
        return targets.astype(dtype, copy=False)

    def _output_activation(self) -> str | None:
        return None

    def _loss_name(self) -> str:
        return "mse"

    # Half the squared error, as scikit-learn's MLPRegressor, so alpha means the same.
    _loss_scale = 0.5

    def _validation_score(self, logits: np.ndarray, targets: np.ndarray) -> float:
        return float(r2_score(targets, logits))


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_real(
    name: str,
    value: Any,
    *,
    low: float,
    high: float = np.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise InvalidParameterError unless ``value`` is a real number in the interval."""
    is_real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    above = is_real and (value > low if low_open else value >= low)
    below = is_real and (value < high if high_open else value <= high)
    if not (above and below and np.isfinite(value)):
        interval = (
            f"{'(' if low_open else '['}{low}, {high}{')' if high_open or high == np.inf else ']'}"
        )
        raise InvalidParameterError(f"{name} must be a real number in {interval}, got {value!r}")
