"""chainrule.sklearn: scikit-learn's estimator checks, pipelines, search, and what fit learns."""

from __future__ import annotations

import importlib
import sys
import warnings
from copy import deepcopy
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")

from sklearn.datasets import make_blobs, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import chainrule as cr  # noqa: E402
import chainrule.sklearn as chainrule_sklearn  # noqa: E402
from chainrule.sklearn import (  # noqa: E402
    InvalidParameterError,
    MLPClassifier,
    MLPRegressor,
    TrainingDivergedError,
)

# Small networks and a higher learning rate than the default keep every check fast
# while still learning the checks' easy problems to the accuracy they demand.
_CHECKED = [
    MLPClassifier(hidden_layer_sizes=(10,), learning_rate_init=0.05, max_iter=60, random_state=0),
    MLPRegressor(hidden_layer_sizes=(10,), learning_rate_init=0.05, max_iter=60, random_state=0),
]


@parametrize_with_checks(_CHECKED)
def test_sklearn_estimator_checks(estimator: Any, check: Any) -> None:
    """Both estimators pass every one of scikit-learn's estimator checks."""
    # As scikit-learn's own test_common does: the checks fit with few iterations on
    # purpose, so the ConvergenceWarning fit rightly gives is expected there.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# Blob centres far apart compared with their spread: the classes are separable.
_CENTRES = np.array([[-3.0, 0.0], [3.0, 0.0], [0.0, 4.0], [0.0, -4.0]])


def _blobs(n: int = 200, centers: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_blobs(n_samples=n, centers=_CENTRES[:centers], cluster_std=0.7, random_state=seed)
    return X, y


def _forward_numpy(
    model: MLPClassifier | MLPRegressor, X: np.ndarray, activation: Any
) -> np.ndarray:
    """The output layer's pre-activation from coefs_ and intercepts_, in plain numpy."""
    h = X
    for k, (W, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        h = h @ W + b
        if k < len(model.coefs_) - 1:
            h = activation(h)
    return h


def test_classifier_learns_separable_blobs() -> None:
    """Three well-separated blobs are classified perfectly on held-out data."""
    X, y = _blobs(300)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    model = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0)
    model.fit(X_train, y_train)
    assert model.score(X_test, y_test) == 1.0
    assert model.loss_curve_[-1] < 0.5 * model.loss_curve_[0]


def test_classifier_binary_has_one_sigmoid_output() -> None:
    """Two classes use one logistic output unit; predict_proba has two columns summing to 1."""
    X, y = _blobs(200, centers=2)
    labels = np.where(y == 1, "spam", "ham")
    model = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, random_state=0)
    model.fit(X, labels)
    assert model.n_outputs_ == 1 and model.out_activation_ == "logistic"
    assert list(model.classes_) == ["ham", "spam"]
    proba = model.predict_proba(X)
    assert proba.shape == (200, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    z = _forward_numpy(model, X, lambda h: np.maximum(h, 0.0))[:, 0]
    np.testing.assert_allclose(proba[:, 1], 1.0 / (1.0 + np.exp(-z)), rtol=1e-12)
    assert model.score(X, labels) == 1.0


def test_classifier_multiclass_probabilities_are_softmax() -> None:
    """With three classes predict_proba is the softmax of the numpy forward pass of coefs_."""
    X, y = _blobs(150)
    model = MLPClassifier(hidden_layer_sizes=(6, 5), activation="tanh", max_iter=20)
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        model.fit(X, y)
    z = _forward_numpy(model, X, np.tanh)
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=1e-10)
    np.testing.assert_allclose(model.predict_log_proba(X), np.log(expected), rtol=1e-10)
    np.testing.assert_array_equal(model.predict(X), model.classes_[expected.argmax(axis=1)])


def test_classifier_predict_log_proba_is_finite_when_confident() -> None:
    """predict_log_proba stays finite where predict_proba rounds to exactly 0 or 1."""
    X, y = _blobs(100, centers=2)
    model = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    with pytest.warns(ConvergenceWarning):
        model.fit(X, y)
    far = X[:3] * 1e4
    log_proba = model.predict_log_proba(far)
    assert np.isfinite(log_proba).all()
    np.testing.assert_allclose(np.exp(log_proba), model.predict_proba(far), atol=1e-300)


def test_regressor_learns_linear_function() -> None:
    """A noiseless linear target is fitted to R² above 0.999 on held-out data."""
    X, y = make_regression(n_samples=400, n_features=4, noise=0.0, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y / y.std(), random_state=0)
    model = MLPRegressor(
        hidden_layer_sizes=(), learning_rate_init=0.05, max_iter=500, tol=1e-8, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    assert model.score(X_test, y_test) > 0.999
    assert model.predict(X_test).shape == (len(X_test),)


def test_regressor_multi_output() -> None:
    """Two target columns give two output units and predictions of shape (n, 2)."""
    X, y = make_regression(n_samples=300, n_features=3, n_targets=2, random_state=1)
    y = y / y.std(axis=0)
    model = MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=0.02, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    assert model.n_outputs_ == 2
    assert model.predict(X).shape == (300, 2)
    assert model.score(X, y) > 0.98


def test_coefs_have_sklearn_shapes() -> None:
    """coefs_[k] is (n_in, n_out) and intercepts_[k] is (n_out,) for every layer."""
    X, y = _blobs(60, centers=4)
    model = MLPClassifier(hidden_layer_sizes=(7, 5), max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning):
        model.fit(X, y)
    assert [W.shape for W in model.coefs_] == [(2, 7), (7, 5), (5, 4)]
    assert [b.shape for b in model.intercepts_] == [(7,), (5,), (4,)]
    assert model.n_layers_ == 4 and model.n_features_in_ == 2
    # They are the trained network's weights, in scikit-learn's (transposed) layout.
    for W, b, layer in zip(model.coefs_, model.intercepts_, model.network_.layers):
        np.testing.assert_array_equal(W, layer.weight.data.T)
        np.testing.assert_array_equal(b, layer.bias.data)


def test_loss_curve_is_scikit_learns_objective() -> None:
    """loss_curve_ is the mean log loss / half MSE plus alpha/(2n)·Σ‖W‖², as scikit-learn's."""
    X, y = _blobs(50)
    Xr, yr = make_regression(n_samples=50, n_features=2, n_targets=2, random_state=0)
    relu = lambda h: np.maximum(h, 0.0)  # noqa: E731
    # A learning rate so small the weights do not move: the first epoch's loss is then
    # the objective at the final weights, which numpy can recompute from coefs_.
    settings = dict(
        hidden_layer_sizes=(5,), alpha=0.3, batch_size=50, learning_rate_init=1e-14, max_iter=1
    )
    penalty = lambda m: 0.3 / (2 * 50) * sum((W**2).sum() for W in m.coefs_)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier = MLPClassifier(**settings, random_state=0).fit(X, y)
        binary = MLPClassifier(**settings, random_state=0).fit(X, y == 0)
        regressor = MLPRegressor(**settings, random_state=0).fit(Xr, yr)

    z = _forward_numpy(classifier, X, relu)
    log_proba = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    expected = -log_proba[np.arange(50), y].mean() + penalty(classifier)
    np.testing.assert_allclose(classifier.loss_curve_[0], expected, rtol=1e-9)

    p = 1.0 / (1.0 + np.exp(-_forward_numpy(binary, X, relu)[:, 0]))
    t = (y == 0).astype(float)
    expected = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean() + penalty(binary)
    np.testing.assert_allclose(binary.loss_curve_[0], expected, rtol=1e-9)

    residual = _forward_numpy(regressor, Xr, relu) - yr
    expected = 0.5 * (residual**2).mean() + penalty(regressor)
    np.testing.assert_allclose(regressor.loss_curve_[0], expected, rtol=1e-9)


def test_random_state_reproduces_training() -> None:
    """The same random_state gives identical weights and losses; another seed does not."""
    X, y = _blobs(120)
    settings = dict(hidden_layer_sizes=(6,), batch_size=16, max_iter=15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        first = MLPClassifier(**settings, random_state=3).fit(X, y)
        second = MLPClassifier(**settings, random_state=3).fit(X, y)
        other = MLPClassifier(**settings, random_state=4).fit(X, y)
    assert first.loss_curve_ == second.loss_curve_
    for a, b in zip(first.coefs_ + first.intercepts_, second.coefs_ + second.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert first.loss_curve_ != other.loss_curve_


def test_pipeline_with_standard_scaler() -> None:
    """In a Pipeline behind StandardScaler the classifier learns badly scaled features."""
    X, y = _blobs(200)
    X = X * np.array([1000.0, 0.001])  # scales no network could train on directly
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    pipeline = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0),
    )
    pipeline.fit(X_train, y_train)
    assert pipeline.score(X_test, y_test) == 1.0


def test_grid_search_picks_parameters_by_cross_validation() -> None:
    """GridSearchCV clones, fits and scores the regressor over a small grid."""
    X, y = make_regression(n_samples=120, n_features=3, noise=0.1, random_state=0)
    search = GridSearchCV(
        MLPRegressor(max_iter=60, random_state=0),
        {"learning_rate_init": [1e-5, 0.05], "hidden_layer_sizes": [(4,), (8,)]},
        cv=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y / y.std())
    # A learning rate of 1e-5 cannot get anywhere in 60 epochs; 0.05 can.
    assert search.best_params_["learning_rate_init"] == 0.05
    assert search.best_score_ > 0.9
    assert len(search.cv_results_["mean_test_score"]) == 4


def test_dataframe_input_records_feature_names() -> None:
    """A DataFrame sets feature_names_in_ and predicts like the same numbers as an array."""
    X, y = _blobs(80)
    frame = pd.DataFrame(X, columns=["age", "fare"])
    settings = dict(hidden_layer_sizes=(5,), max_iter=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        from_frame = MLPClassifier(**settings).fit(frame, pd.Series(y))
        from_array = MLPClassifier(**settings).fit(X, y)
    assert list(from_frame.feature_names_in_) == ["age", "fare"]
    assert not hasattr(from_array, "feature_names_in_")
    np.testing.assert_array_equal(from_frame.predict_proba(frame), from_array.predict_proba(X))
    with pytest.raises(ValueError, match="Feature names unseen at fit time"):
        from_frame.predict(frame[["fare", "age"]].rename(columns={"age": "sex"}))


def test_partial_fit_trains_incrementally() -> None:
    """partial_fit needs classes first, then each call is one epoch that lowers the loss."""
    X, y = _blobs(200)
    model = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        model.partial_fit(X, y)
    model.partial_fit(X[:100], y[:100], classes=[0, 1, 2])
    for _ in range(30):
        model.partial_fit(X, y)
    assert model.n_iter_ == 31
    assert model.t_ == 100 + 30 * 200
    assert model.loss_curve_[-1] < model.loss_curve_[1]
    assert model.score(X, y) > 0.95
    with pytest.raises(ValueError, match=r"labels \[7\]"):
        model.partial_fit(X[:2], [0, 7])
    with pytest.raises(ValueError, match="differs from the classes"):
        model.partial_fit(X, y, classes=[0, 1])


def test_partial_fit_regressor_keeps_the_optimizer() -> None:
    """Successive partial_fit calls continue one Adam run instead of restarting it."""
    X, y = make_regression(n_samples=100, n_features=2, random_state=0)
    model = MLPRegressor(hidden_layer_sizes=(4,), random_state=0)
    model.partial_fit(X, y)
    optimizer = model._optimizer
    model.partial_fit(X, y)
    assert model._optimizer is optimizer
    assert model.n_iter_ == 2 and len(model.loss_curve_) == 2


def test_early_stopping_keeps_the_best_validation_weights() -> None:
    """With early_stopping the validation score decides when to stop and which weights stay."""
    # Overlapping blobs and small batches: the validation accuracy goes up and down.
    X, y = make_blobs(n_samples=300, centers=[[-1.0, 0.0], [1.0, 0.0], [0.0, 1.5]], random_state=0)
    model = MLPClassifier(
        hidden_layer_sizes=(16,),
        learning_rate_init=0.05,
        batch_size=10,
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=5,
        random_state=0,
    )
    model.fit(X, y)
    assert model.n_iter_ < model.max_iter
    assert model.best_loss_ is None
    assert len(model.validation_scores_) == model.n_iter_
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert model.validation_scores_[-1] < model.best_validation_score_
    # The held-out rows, drawn as fit draws them: random_state first seeds the network,
    # then splits. The weights kept are those of the best epoch, not the last.
    rng = np.random.RandomState(0)
    rng.randint(np.iinfo(np.int32).max)
    _, held_out = train_test_split(np.arange(300), test_size=0.2, random_state=rng, stratify=y)
    assert model.score(X[held_out], y[held_out]) == model.best_validation_score_
    with pytest.raises(InvalidParameterError, match="early_stopping"):
        model.partial_fit(X, y)


def test_max_iter_without_convergence_warns() -> None:
    """Stopping at max_iter gives ConvergenceWarning; stopping on tol gives none."""
    X, y = make_regression(n_samples=50, n_features=2, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\)"):
        MLPRegressor(max_iter=3).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quick = MLPRegressor(tol=1e6, n_iter_no_change=2, max_iter=50).fit(X, y)
    # Only the first epoch improves on "no loss yet"; an improvement of a million never
    # happens after it, so training stops once n_iter_no_change is exceeded (as sklearn).
    assert quick.n_iter_ == 1 + 3


def test_sgd_solver_with_momentum_learns() -> None:
    """solver='sgd' trains with chainrule's SGD and momentum."""
    X, y = _blobs(200)
    model = MLPClassifier(
        hidden_layer_sizes=(8,),
        solver="sgd",
        learning_rate_init=0.05,
        momentum=0.9,
        random_state=0,
    )
    model.fit(X, y)
    assert isinstance(model._optimizer, cr.optim.SGD)
    assert model.score(X, y) == 1.0


def test_warm_start_continues_from_previous_weights() -> None:
    """With warm_start a second fit starts where the first left off and extends loss_curve_."""
    X, y = _blobs(150)
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
        network = model.network_
        first_curve = list(model.loss_curve_)
        model.fit(X, y)
    assert model.network_ is network
    assert len(model.loss_curve_) == 10 and model.loss_curve_[:5] == first_curve
    assert model.loss_curve_[5] < first_curve[0]
    model.set_params(hidden_layer_sizes=(9,))
    with pytest.raises(InvalidParameterError, match="hidden_layer_sizes"):
        model.fit(X, y)


def test_multilabel_indicator_targets() -> None:
    """A 0/1 indicator matrix trains one sigmoid unit per label and predicts a 0/1 matrix."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, X.sum(axis=1) > 0]).astype(int)
    model = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.02, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, Y)
    assert model.out_activation_ == "logistic" and model.n_outputs_ == 3
    assert model.predict(X).shape == (200, 3)
    assert model.predict_proba(X).shape == (200, 3)
    assert model.score(X, Y) > 0.9  # subset accuracy: every label of a row right


def test_float32_input_trains_a_float32_network() -> None:
    """float32 X gives a float32 network and coefficients, as scikit-learn's MLP."""
    X, y = _blobs(60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3).fit(X.astype(np.float32), y)
    assert model.network_.dtype == np.float32
    assert all(W.dtype == np.float32 for W in model.coefs_)
    assert model.predict_proba(X).dtype == np.float32


def test_network_is_a_chainrule_mlp() -> None:
    """network_ is a chainrule MLP whose forward pass gives predict_proba."""
    X, y = _blobs(60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(hidden_layer_sizes=(4,), activation="logistic", max_iter=3)
        model.fit(X, y)
    assert isinstance(model.network_, cr.nn.MLP)
    assert model.network_.sizes == [2, 4, 3]
    with cr.no_grad():
        np.testing.assert_allclose(model.network_(X).data, model.predict_proba(X), rtol=1e-12)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("hidden_layer_sizes", (10, 0)),
        ("hidden_layer_sizes", "wide"),
        ("activation", "sigmoid"),
        ("solver", "lbfgs"),
        ("alpha", -1.0),
        ("batch_size", 0),
        ("learning_rate_init", 0.0),
        ("max_iter", 0),
        ("tol", -1e-3),
        ("momentum", 1.5),
        ("validation_fraction", 1.0),
        ("n_iter_no_change", 0),
        ("beta_1", 1.0),
        ("epsilon", 0.0),
        ("shuffle", "yes"),
    ],
)
def test_invalid_parameter_is_named(name: str, value: Any) -> None:
    """A hyperparameter out of range fails in fit with an error naming it."""
    X, y = _blobs(20)
    with pytest.raises(InvalidParameterError, match=name):
        MLPClassifier(**{name: value}).fit(X, y)


def test_unfitted_estimator_refuses_to_predict() -> None:
    """predict before fit raises scikit-learn's NotFittedError."""
    with pytest.raises(NotFittedError):
        MLPRegressor().predict(np.zeros((2, 3)))


def test_one_class_is_refused() -> None:
    """A classifier given a single class says it needs at least two."""
    with pytest.raises(ValueError, match="at least 2 classes"):
        MLPClassifier().fit(np.zeros((5, 2)), np.ones(5))


def test_large_batch_size_is_clipped_with_a_warning() -> None:
    """A batch_size above the number of samples warns and trains full-batch."""
    X, y = make_regression(n_samples=30, n_features=2, random_state=0)
    model = MLPRegressor(batch_size=100, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(UserWarning, match="clipped to 30"):
            model.fit(X, y)
    assert model.t_ == 60


def test_divergence_raises_a_clear_error() -> None:
    """A loss that overflows stops training with TrainingDivergedError saying what to do."""
    X, y = make_regression(n_samples=50, n_features=2, random_state=0)
    model = MLPRegressor(solver="sgd", learning_rate_init=10.0, momentum=0.0, max_iter=50)
    with pytest.raises(TrainingDivergedError, match="StandardScaler"):
        model.fit(X * 1e3, y * 1e3)


def test_verbose_prints_the_loss_of_each_epoch(capsys: pytest.CaptureFixture[str]) -> None:
    """verbose=True prints one line per epoch with the loss recorded in loss_curve_."""
    X, y = make_regression(n_samples=40, n_features=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, verbose=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"Iteration {k + 1}, loss = {model.loss_curve_[k]:.8f}" for k in range(2)]


def test_missing_scikit_learn_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without scikit-learn, importing chainrule.sklearn names the extra to install."""
    for name in [name for name in sys.modules if name == "sklearn" or name.startswith("sklearn.")]:
        monkeypatch.setitem(sys.modules, name, None)  # None makes the import fail
    monkeypatch.delitem(sys.modules, "chainrule.sklearn")
    with pytest.raises(ImportError, match=r'pip install "chainrule\[sklearn\]"'):
        importlib.import_module("chainrule.sklearn")


def test_failed_first_fit_leaves_the_estimator_unfitted() -> None:
    """A fit refused after the input was read still counts as not fitted."""
    model = MLPClassifier()
    with pytest.raises(ValueError, match="at least 2 classes"):
        model.fit(np.zeros((4, 2)), ["a"] * 4)
    with pytest.raises(NotFittedError):
        model.predict(np.zeros((1, 2)))


# --- the compiled training step ---------------------------------------------------------------


def _fit_pair(
    monkeypatch: pytest.MonkeyPatch, make: Any, X: np.ndarray, y: np.ndarray
) -> tuple[Any, Any]:
    """The same estimator fitted with the compiled step (the default) and eagerly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        compiled = make().fit(X, y)
        monkeypatch.setattr(chainrule_sklearn, "_COMPILE_STEPS", False)
        eager = make().fit(X, y)
        monkeypatch.setattr(chainrule_sklearn, "_COMPILE_STEPS", True)
    return compiled, eager


def _assert_same_training(compiled: Any, eager: Any) -> None:
    """Identical loss curves and weights, to the last bit."""
    assert compiled.loss_curve_ == eager.loss_curve_
    assert len(compiled.coefs_) == len(eager.coefs_)
    for a, b in zip(compiled.coefs_ + compiled.intercepts_, eager.coefs_ + eager.intercepts_):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("problem", ["binary", "multiclass", "multilabel", "regressor"])
def test_compiled_fit_matches_eager_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, problem: str, solver: str
) -> None:
    """fit's compiled step replays without calling the loss and trains exactly as eager mode."""
    X, labels = _blobs(130, centers=4)
    targets = {
        "binary": labels % 2,
        "multiclass": labels,
        "multilabel": np.stack([labels % 2, labels // 2, (labels == 3).astype(int)], axis=1),
        "regressor": np.stack([X[:, 0] - X[:, 1], X[:, 0] * 0.5], axis=1),
    }[problem]
    estimator = MLPRegressor if problem == "regressor" else MLPClassifier
    # 130 rows in batches of 32: four full batches and a last one of 2 each epoch.
    settings = dict(hidden_layer_sizes=(7, 5), solver=solver, alpha=0.01, batch_size=32)
    make = lambda: estimator(**settings, learning_rate_init=0.01, max_iter=8, random_state=0)  # noqa: E731
    compiled, eager = _fit_pair(monkeypatch, make, X, targets)
    _assert_same_training(compiled, eager)
    assert eager._step.stats is None
    stats = compiled._step.stats
    # Two batch shapes, each run eagerly once, then recorded once; after that every step
    # is a flat replay, which does not call the loss function.
    assert stats.traces == 2 and stats.eager_calls == 0
    assert stats.flat_replays == stats.replays == 8 * 5 - 4
    assert stats.notes == []


def test_compiled_fit_matches_eager_in_float32_with_early_stopping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """float32, no shuffling and early stopping (best weights put back) agree with eager mode."""
    X, y = make_blobs(n_samples=200, centers=[[-1.0, 0.0], [1.0, 0.0], [0.0, 1.5]], random_state=0)
    make = lambda: MLPClassifier(  # noqa: E731
        hidden_layer_sizes=(8,),
        learning_rate_init=0.05,
        batch_size=16,
        shuffle=False,
        early_stopping=True,
        n_iter_no_change=3,
        max_iter=25,
        random_state=0,
    )
    compiled, eager = _fit_pair(monkeypatch, make, X.astype(np.float32), y)
    _assert_same_training(compiled, eager)
    assert compiled.coefs_[0].dtype == np.float32
    assert compiled.validation_scores_ == eager.validation_scores_
    assert compiled._step.stats.flat_replays > 0


def test_partial_fit_compiled_matches_eager_and_keeps_its_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """partial_fit reuses one compiled step with the optimizer, follows set_params, equals eager."""
    X, y = make_regression(n_samples=120, n_features=3, n_targets=2, random_state=0)
    y = y / y.std(axis=0)
    chunks = [(0, 50), (50, 100), (0, 50), (20, 120), (0, 50), (50, 100)]

    def train() -> MLPRegressor:
        model = MLPRegressor(hidden_layer_sizes=(6,), batch_size=20, random_state=0)
        for number, (start, stop) in enumerate(chunks):
            if number == 4:
                model.set_params(alpha=0.5)  # the compiled step must see the new penalty
            model.partial_fit(X[start:stop], y[start:stop])
        return model

    compiled = train()
    monkeypatch.setattr(chainrule_sklearn, "_COMPILE_STEPS", False)
    eager = train()
    _assert_same_training(compiled, eager)
    stats = compiled._step.stats
    assert stats.flat_replays > 0
    # One step for the calls since alpha changed: batches of 20 and 10.
    assert stats.traces == 2

    # A copy continues the same optimizer run with a new compiled step of its own.
    monkeypatch.setattr(chainrule_sklearn, "_COMPILE_STEPS", True)
    copy = deepcopy(compiled)
    assert not hasattr(copy, "_step")
    copy.partial_fit(X, y)
    compiled.partial_fit(X, y)
    _assert_same_training(copy, compiled)
    assert copy._step.stats.flat_replays > 0


def test_partial_fit_compiles_only_batch_lengths_that_recur() -> None:
    """A batch length seen once runs eagerly; cycling through many lengths stops recording."""
    X, y = _blobs(300)
    model = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
    model.partial_fit(X[:30], y[:30], classes=[0, 1, 2])
    for length in range(31, 61):  # every call a single batch of a new length
        model.partial_fit(X[:length], y[:length])
    assert model._step.stats.traces == 0
    for _ in range(3):
        for length in range(31, 61):  # 30 lengths, more than a compiled step keeps
            model.partial_fit(X[:length], y[:length])
    kept = 8  # the recordings chainrule.compile keeps (its max_traces)
    assert model._step.stats.traces == kept + 1
    model.partial_fit(X[:40], y[:40])
    model.partial_fit(X[:40], y[:40])
    assert model._step.stats.traces == kept + 1
    assert model.n_iter_ == 1 + 30 + 90 + 2


@pytest.mark.parametrize("problem", ["binary", "multiclass", "multilabel", "regressor"])
def test_objective_is_the_nn_losses_bit_for_bit(problem: str) -> None:
    """The estimators' batch objective and its gradients equal chainrule.nn's losses exactly."""
    X, labels = _blobs(40, centers=4)
    y = {
        "binary": labels % 2,
        "multiclass": labels,
        "multilabel": np.stack([labels % 2, labels // 2], axis=1),
        "regressor": X @ np.array([[1.0, -1.0], [0.5, 2.0]]),
    }[problem]
    estimator = MLPRegressor if problem == "regressor" else MLPClassifier
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = estimator(hidden_layer_sizes=(5,), max_iter=1, random_state=0).fit(X, y)
    network = model.network_
    if problem == "multiclass":
        targets = np.searchsorted(model.classes_, y)
        library = lambda z: cr.nn.cross_entropy(z, targets)  # noqa: E731
    elif problem == "regressor":
        targets = y
        library = lambda z: cr.nn.mse_loss(z, targets) * 0.5  # noqa: E731
    else:
        targets = y.reshape(40, -1).astype(np.float64)
        library = lambda z: (  # noqa: E731
            cr.nn.binary_cross_entropy_with_logits(z, targets, reduction="sum") * (1.0 / 40)
        )

    def gradients(loss: Any) -> list[bytes]:
        network.zero_grad()
        loss.backward()
        return [bytes(loss.data.tobytes())] + [p.grad.tobytes() for p in network.parameters()]

    loss = model._batch_loss(weighted=False, alpha=0.0)
    ours = loss(network.forward_logits(X), *loss.arrays(targets, None))
    theirs = library(network.forward_logits(X))
    assert gradients(ours) == gradients(theirs)
