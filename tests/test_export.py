"""Leaving chainrule (issue 12 item 7): ONNX export checked against onnxruntime, PyTorch
exchange checked by equal outputs, and grid search on a Dask cluster."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule
from chainrule import nn
from chainrule.cli.main import main
from chainrule.export import ExportError, export_onnx, from_torch

needs_onnx = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="needs chainrule[onnx]",
)
needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="needs chainrule[torch]"
)

_NETWORKS = [
    pytest.param(lambda d: nn.MLP([3, 5, 2], "tanh", "softmax", dtype=d, seed=0), id="mlp-softmax"),
    pytest.param(
        lambda d: nn.MLP([3, 4, 4, 1], ["relu", "softplus"], "sigmoid", dtype=d, seed=1),
        id="mlp-mixed",
    ),
    pytest.param(
        lambda d: nn.MLP([3, 2], "identity", bias=False, dtype=d, seed=2), id="linear-mlp"
    ),
    pytest.param(
        lambda d: nn.Sequential(
            nn.Linear(3, 4, dtype=d, seed=3), nn.Sigmoid(), nn.Linear(4, 2, dtype=d, seed=4)
        ),
        id="sequential",
    ),
]


def _rows(dtype: str) -> np.ndarray:
    return (np.random.default_rng(5).normal(size=(9, 3)) * 4).astype(dtype)


def _session(path: Path) -> Any:
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@needs_onnx
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("make", _NETWORKS)
def test_export_onnx_gives_the_same_outputs_in_onnxruntime(
    tmp_path: Path, make: Any, dtype: str
) -> None:
    """onnxruntime runs the exported network to within 1e-5 of chainrule's forward pass."""
    network = make(dtype)
    path = chainrule.export_onnx(network, tmp_path / "m.onnx")
    x = _rows(dtype)
    (got,) = _session(path).run(None, {"input": x})
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, network(x).data, rtol=1e-5, atol=1e-5)


@needs_onnx
def test_export_onnx_neuron_mlp_matches_its_tensor_twin(tmp_path: Path) -> None:
    """A NeuronMLP exports like the MLP with the same weights."""
    neurons = nn.NeuronMLP([2, 3, 1], "tanh", "sigmoid", seed=0)
    x = _rows("float64")[:, :2]
    (got,) = _session(export_onnx(neurons, tmp_path / "n.onnx")).run(None, {"input": x})
    twin = nn.MLP([2, 3, 1], "tanh", "sigmoid", seed=0)
    np.testing.assert_allclose(got, twin(x).data, rtol=1e-5, atol=1e-5)


def test_export_refuses_an_unnamed_python_activation(tmp_path: Path) -> None:
    """An activation given as an arbitrary Python function has no ONNX counterpart."""
    network = nn.MLP([2, 2, 1], activation=lambda h: h * 2, seed=0)
    with pytest.raises(ExportError, match="layer 1's activation"):
        export_onnx(network, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def _write_csv(path: Path, regression: bool) -> Path:
    rng = np.random.default_rng(0)
    header = ["age", "fare", "sex", "port", "price" if regression else "survived"]
    rows = []
    for _ in range(80):
        age, fare = rng.uniform(1, 80), rng.uniform(5, 200)
        sex, port = rng.choice(["male", "female"]), rng.choice(["S", "C", "Q"])
        if regression:
            target = f"{3 * age + (10 if sex == 'male' else 0) + rng.normal():.3f}"
        else:
            target = "yes" if (sex == "female") != (age < 10) else "no"
        rows.append([f"{age:.1f}", f"{fare:.2f}", sex, port, target])
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def _trained(tmp_path: Path, regression: bool, *options: str) -> tuple[Path, Path]:
    data = _write_csv(tmp_path / "data.csv", regression)
    model = tmp_path / "data.model"
    target = "price" if regression else "survived"
    arguments = ["train", str(data), "--target", target, "--epochs", "5", "--save", str(model)]
    assert main([*arguments, *options]) == 0
    return data, model


def _predictions(model: Path, data: Path, tmp_path: Path) -> list[dict[str, str]]:
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(model), str(data), "-o", str(out)]) == 0
    with out.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _column_feeds(session: Any, data: Path) -> dict[str, np.ndarray]:
    with data.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    feeds = {}
    for graph_input in session.get_inputs():
        cells = [row[graph_input.name] for row in rows]
        if graph_input.type == "tensor(string)":
            feeds[graph_input.name] = np.array(cells, dtype=object).reshape(-1, 1)
        else:  # a missing number is NaN
            numbers = [float(cell) if cell not in ("", "NA") else np.nan for cell in cells]
            feeds[graph_input.name] = np.array(numbers).reshape(-1, 1)
    return feeds


@needs_onnx
def test_cli_export_classifier_keeps_the_preprocessing(tmp_path: Path) -> None:
    """`chainrule export` of a trained classifier takes raw columns (numbers and category
    strings) and gives chainrule predict's probabilities (to 1e-5) and labels."""
    data, model = _trained(tmp_path, regression=False)
    onnx_path = tmp_path / "model.onnx"
    assert main(["export", str(model), "--onnx", str(onnx_path)]) == 0
    session = _session(onnx_path)
    assert [i.name for i in session.get_inputs()] == ["age", "fare", "sex", "port"]
    probabilities, labels = session.run(["probabilities", "label"], _column_feeds(session, data))
    expected = _predictions(model, data, tmp_path)
    np.testing.assert_allclose(
        probabilities[:, 1], [float(row["probability_yes"]) for row in expected], atol=1e-5
    )
    assert list(labels) == [row["predicted_survived"] for row in expected]


@needs_onnx
def test_export_onnx_regression_predicts_in_target_units(tmp_path: Path) -> None:
    """export_onnx of a loaded command-line regression model (a TabularModel) gives
    chainrule predict's values."""
    data, model = _trained(tmp_path, regression=True)
    session = _session(export_onnx(chainrule.load(model), tmp_path / "model.onnx"))
    (prediction,) = session.run(["prediction"], _column_feeds(session, data))
    expected = [float(row["predicted_price"]) for row in _predictions(model, data, tmp_path)]
    np.testing.assert_allclose(prediction[:, 0], expected, rtol=1e-5, atol=1e-5)


@needs_onnx
def test_export_onnx_unknown_category_gets_no_one_hot_input(tmp_path: Path) -> None:
    """A category not seen in training encodes as all zeros, as chainrule predict does."""
    data, model = _trained(tmp_path, regression=False)
    session = _session(export_onnx(model, tmp_path / "model.onnx"))
    feeds = _column_feeds(session, data)
    feeds["port"][:] = "Atlantis"
    network = chainrule.load(model)
    from chainrule.cli.predict import load_trained

    _, preprocessing = load_trained(model)
    inputs = np.column_stack(
        [
            (feeds["age"][:, 0] - preprocessing.features[0].mean) / preprocessing.features[0].scale,
            (feeds["fare"][:, 0] - preprocessing.features[1].mean)
            / preprocessing.features[1].scale,
            (feeds["sex"][:, 0] == "female").astype(float),
            (feeds["sex"][:, 0] == "male").astype(float),
            np.zeros((len(feeds["port"]), 3)),
        ]
    )
    (probabilities,) = session.run(["probabilities"], feeds)
    np.testing.assert_allclose(probabilities[:, 1], network(inputs).data[:, 0], atol=1e-5)


@needs_onnx
def test_export_onnx_fills_missing_cells_as_predict_does(tmp_path: Path) -> None:
    """A model trained with --impute: NaN numbers and missing-cell strings ("", "NA") in
    the graph's inputs get the stored fill values, as chainrule predict fills them."""
    data, model = _trained(tmp_path, False, "--impute", "median")
    with data.open(newline="") as handle:
        rows = list(csv.reader(handle))
    for index, row in enumerate(rows[1:], start=1):
        if index % 3 == 0:
            row[0] = ""  # age
        if index % 4 == 0:
            row[3] = "NA" if index % 8 else ""  # port
    holes = tmp_path / "holes.csv"
    with holes.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    session = _session(export_onnx(model, tmp_path / "model.onnx"))
    (probabilities,) = session.run(["probabilities"], _column_feeds(session, holes))
    expected = _predictions(model, holes, tmp_path)
    np.testing.assert_allclose(
        probabilities[:, 1], [float(row["probability_yes"]) for row in expected], atol=1e-5
    )


@needs_onnx
def test_export_onnx_without_preprocessing_is_the_bare_network(tmp_path: Path) -> None:
    """--no-preprocessing exports the network with one 'input' and one 'output'."""
    _, model = _trained(tmp_path, regression=False)
    onnx_path = tmp_path / "bare.onnx"
    assert main(["export", str(model), "--onnx", str(onnx_path), "--no-preprocessing"]) == 0
    session = _session(onnx_path)
    assert [i.name for i in session.get_inputs()] == ["input"]
    x = _rows("float64")[:, :1].repeat(7, axis=1)
    (got,) = session.run(None, {"input": x})
    np.testing.assert_allclose(got, chainrule.load(model)(x).data, atol=1e-5)


def test_cli_export_bad_paths_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing model, a missing output folder and a folder as output are one-line errors."""
    model = chainrule.save(nn.MLP([2, 1], seed=0), tmp_path / "m.model")
    cases = [
        ([str(tmp_path / "none.model"), "--onnx", str(tmp_path / "o.onnx")], "none.model"),
        ([str(model), "--onnx", str(tmp_path / "no" / "o.onnx")], "there is no folder"),
        ([str(model), "--onnx", str(tmp_path)], "it is a folder"),
    ]
    for arguments, message in cases:
        assert main(["export", *arguments]) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1 and "Traceback" not in error


# --- PyTorch ------------------------------------------------------------------------------


@needs_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("make", _NETWORKS)
def test_to_torch_gives_the_same_outputs(make: Any, dtype: str) -> None:
    """model.to_torch() computes the same outputs as the chainrule network, in its dtype."""
    import torch

    network = make(dtype)
    module = network.to_torch()
    x = _rows(dtype)
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, network(x).data, rtol=1e-6, atol=1e-6)


@needs_torch
def test_from_torch_round_trips_weights_bit_for_bit() -> None:
    """MLP.from_torch(model.to_torch()) has the original weights, bit for bit."""
    network = nn.MLP([3, 4, 4, 2], ["relu", "tanh"], "softmax", seed=0)
    back = nn.MLP.from_torch(network.to_torch())
    assert back.config() == network.config()
    for name, value in network.state_dict().items():
        assert back.state_dict()[name].tobytes() == value.tobytes()


@needs_torch
def test_from_torch_reads_a_network_built_in_torch() -> None:
    """A torch Sequential built by hand (and trained or not) becomes an MLP with equal outputs."""
    import torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2), torch.nn.Sigmoid()
    )
    network = from_torch(module)
    x = _rows("float32")
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(network(x).data, expected, rtol=1e-6, atol=1e-6)


@needs_torch
def test_from_torch_refuses_modules_that_are_not_an_mlp() -> None:
    """A convolution, a softmax in a hidden layer or mixed biases are refused by name."""
    import torch

    with pytest.raises(ExportError, match="Conv1d"):
        from_torch(torch.nn.Sequential(torch.nn.Conv1d(1, 1, 1)))
    with pytest.raises(ExportError, match="softmax is supported only after the last"):
        from_torch(
            torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Softmax(-1), torch.nn.Linear(2, 1))
        )
    with pytest.raises(ExportError, match="bias"):
        from_torch(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1, bias=False)))


# --- Dask ---------------------------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="needs chainrule[dask]")
def test_grid_search_on_a_dask_cluster_matches_n_jobs_1() -> None:
    """GridSearchCV over the estimators, run through joblib's dask backend on a 2-worker
    LocalCluster, picks the same best parameters and score as a plain n_jobs=1 search."""
    import joblib
    from distributed import Client, LocalCluster
    from sklearn.model_selection import GridSearchCV

    from chainrule.sklearn import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int)
    grid = {"hidden_layer_sizes": [(4,), (16,)], "learning_rate_init": [0.003, 0.03]}  # 4 x 2 fits

    def search(n_jobs: int) -> GridSearchCV:
        # A loose tol stops each fit after some tens of epochs, with no ConvergenceWarning.
        estimator = MLPClassifier(max_iter=200, tol=1e-2, n_iter_no_change=5, random_state=0)
        return GridSearchCV(estimator, grid, cv=2, n_jobs=n_jobs).fit(X, y)

    local = search(n_jobs=1)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster),
        joblib.parallel_backend("dask"),
    ):
        distributed = search(n_jobs=-1)  # every fit is a task on the cluster
    assert distributed.best_params_ == local.best_params_
    assert distributed.best_score_ == local.best_score_
    np.testing.assert_array_equal(
        distributed.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
