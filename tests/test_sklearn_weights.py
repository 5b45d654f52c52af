"""Tests for sample_weight and class_weight in chainrule's scikit-learn estimators, and for
their divergence handling and threads through chainrule's training loop."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import make_blobs, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.class_weight import compute_sample_weight

import chainrule.sklearn as chainrule_sklearn
from chainrule import Tensor, gradcheck
from chainrule.sklearn import (
    InvalidParameterError,
    MLPClassifier,
    MLPRegressor,
    TrainingDivergedError,
)


def _quiet_fit(model: Any, *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args, **kwargs)


def _blobs() -> tuple[np.ndarray, np.ndarray]:
    return make_blobs(n_samples=60, centers=[[-2, 0], [2, 0], [0, 3]], cluster_std=0.8,
                      random_state=0)  # fmt: skip


def test_regressor_integer_sample_weight_equals_repeated_samples() -> None:
    """Weights as repeat counts give the repeated data's objective, alpha penalty included
    (scikit-learn's (Σ sᵢ·lossᵢ + α/2·‖W‖²) / Σ s), and the same training (full batch)."""
    X, y = make_regression(n_samples=30, n_features=3, noise=0.5, random_state=0)
    counts = np.arange(30) % 3 + 1
    settings = dict(hidden_layer_sizes=(4,), solver="sgd", momentum=0.0, alpha=0.5,
                    learning_rate_init=1e-3, max_iter=5, shuffle=False,
                    random_state=0)  # fmt: skip
    weighted = _quiet_fit(MLPRegressor(**settings), X, y, sample_weight=counts)
    repeated = _quiet_fit(MLPRegressor(**settings), np.repeat(X, counts, axis=0),
                          np.repeat(y, counts))  # fmt: skip
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-10)
    for a, b in zip(weighted.coefs_, repeated.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_classifier_class_weight_equals_its_sample_weights() -> None:
    """class_weight="balanced" or a dict trains exactly as the sample weights it implies."""
    X, y = _blobs()
    keep = (y != 2) | (np.arange(len(y)) % 4 == 0)  # make class 2 rare
    X, y = X[keep], y[keep]
    settings = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    for class_weight in ("balanced", {2: 4.0, 0: 0.5}):
        by_class = _quiet_fit(MLPClassifier(class_weight=class_weight, **settings), X, y)
        by_sample = _quiet_fit(MLPClassifier(**settings), X, y,
                               sample_weight=compute_sample_weight(class_weight, y))  # fmt: skip
        assert by_class.loss_curve_ == by_sample.loss_curve_


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("problem", ["binary", "multiclass", "regressor"])
def test_weighted_data_loss_matches_hand_computation_and_gradcheck(problem: str) -> None:
    """Each estimator's weighted loss is Σ sᵢ·lossᵢ / Σ s and has the numerical gradient."""
    X, labels = _blobs()
    shares = np.array([0.1, 0.4, 0.0, 0.2, 0.3])
    rows = np.arange(5)
    logits = np.random.default_rng(1).normal(size=(5, {"binary": 1}.get(problem, 3)))
    model: Any
    if problem == "regressor":
        model = _quiet_fit(MLPRegressor(hidden_layer_sizes=(), max_iter=1), X, X[:, [0, 1, 0]])
        targets = X[:5, [0, 1, 0]]
        per_example = 0.5 * ((targets - logits) ** 2).mean(axis=1)
    elif problem == "binary":
        model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(), max_iter=1), X, labels % 2)
        targets = (labels[:5] % 2).reshape(-1, 1).astype(float)
        per_example = (_softplus(logits) - targets * logits).sum(axis=1)
    else:
        model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(), max_iter=1), X, labels)
        targets = labels[:5]
        per_example = -_log_softmax(logits)[rows, targets]
    loss = model._batch_loss(weighted=True, alpha=0.0)
    value = loss(Tensor(logits), *loss.arrays(targets, shares)).item()
    assert value == pytest.approx(float(np.sum(shares * per_example)), rel=1e-13)
    result = gradcheck(
        lambda z: loss(z, *loss.arrays(targets, shares)),
        Tensor(logits, requires_grad=True),
    )
    assert result.ok, result.report


def test_weighted_fit_compiled_matches_eager_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With sample weights the compiled step still replays flat and equals eager training."""
    X, y = _blobs()
    weights = np.linspace(0.5, 2.0, len(y))
    make = lambda: MLPClassifier(hidden_layer_sizes=(6,), batch_size=16, alpha=0.01,  # noqa: E731
                                 max_iter=4, random_state=0)  # fmt: skip
    compiled = _quiet_fit(make(), X, y, sample_weight=weights)
    monkeypatch.setattr(chainrule_sklearn, "_COMPILE_STEPS", False)
    eager = _quiet_fit(make(), X, y, sample_weight=weights)
    assert compiled.loss_curve_ == eager.loss_curve_
    for a, b in zip(compiled.coefs_, eager.coefs_):
        assert a.tobytes() == b.tobytes()
    assert compiled._weighted_step.stats.flat_replays > 0


def test_bad_sample_and_class_weights_are_refused() -> None:
    """Negative or all-zero sample weights and unknown class_weight values raise clearly."""
    X, y = _blobs()
    with pytest.raises(ValueError, match=r"(?i)negative"):
        MLPClassifier(max_iter=1).fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="non-zero"):
        MLPClassifier(max_iter=1).fit(X, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(InvalidParameterError, match="class_weight must be"):
        MLPClassifier(max_iter=1, class_weight="even").fit(X, y)


def test_divergence_keeps_the_best_weights_and_names_the_epoch() -> None:
    """A diverging estimator stops in the shared loop: the error names the epoch and a
    smaller learning_rate_init, and the estimator keeps finite, usable weights."""
    X, y = make_regression(n_samples=50, n_features=2, random_state=0)
    model = MLPRegressor(solver="sgd", learning_rate_init=10.0, momentum=0.0, max_iter=50)
    with pytest.raises(TrainingDivergedError, match=r"in epoch \d+ .*try 1\b"):
        model.fit(X * 1e3, y * 1e3)
    assert all(np.isfinite(w).all() for w in model.coefs_ + model.intercepts_)
    assert np.isfinite(model.predict(X)).all()


# catch_warnings is not thread-safe: the filter is set once for the whole test instead.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_estimators_trained_in_threads_match_sequential_training() -> None:
    """Issue 13 item 5: estimators fitted in four threads at once (the training loop keeps
    no process-wide state) give the bits of one-by-one training."""
    from concurrent.futures import ThreadPoolExecutor

    X, y = _blobs()
    weights = np.linspace(0.5, 1.5, len(y))

    def train(seed: int) -> list[bytes]:
        model = MLPClassifier(hidden_layer_sizes=(5,), batch_size=16, max_iter=6,
                              random_state=seed, early_stopping=seed % 2 == 1)  # fmt: skip
        model.fit(X, y, sample_weight=weights)
        return [w.tobytes() for w in model.coefs_ + model.intercepts_]

    seeds = [0, 1, 2, 3]
    sequential = [train(seed) for seed in seeds]
    with ThreadPoolExecutor(max_workers=4) as pool:
        at_once = list(pool.map(train, seeds))
    assert at_once == sequential
