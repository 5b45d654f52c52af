"""The playground's server: every endpoint, good and bad input, sessions, sharing, saving."""

from __future__ import annotations

import base64
import math

import numpy as np
import pytest

pytest.importorskip(
    "starlette", reason='the playground tests need: pip install "chainrule[playground]"'
)
pytest.importorskip("httpx2", reason="Starlette's test client needs httpx2 (the test extra)")

from starlette.testclient import TestClient

import chainrule as cr
from chainrule import nn
from chainrule.experiments.titanic import HANDOUT_WEIGHTS
from chainrule.playground import data as datasets
from chainrule.playground.server import MAX_JSON_BYTES, create_app
from chainrule.playground.session import PRESETS


@pytest.fixture(scope="module")
def client() -> TestClient:
    """One app for the module; each test makes its own sessions."""
    with TestClient(create_app()) as test_client:
        yield test_client


def _new(client: TestClient, **body: object) -> dict:
    response = client.post("/api/session", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _unit(snapshot: dict, name: str) -> dict:
    for layer in snapshot["network"]["layers"]:
        for unit in layer:
            if unit["name"] == name:
                return unit
    raise AssertionError(name)


def _error(response) -> str:
    assert response.status_code == 400, response.text
    return response.json()["error"]


def test_index_serves_the_page_and_its_assets(client: TestClient) -> None:
    """GET / is the page, and its script and styles are served from the package."""
    page = client.get("/")
    assert page.status_code == 200 and "<title>chainrule playground</title>" in page.text
    assert "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    listing = client.get("/api/presets").json()
    assert listing["presets"] == list(PRESETS)


def test_session_exercise_two_preset_reproduces_the_handout(client: TestClient) -> None:
    """The hand-weights preset gives σ(−5) = 0.0067 for a man of 30, σ(5) = 0.9933 for a woman."""
    snap = _new(client)
    assert snap["preset"] == "titanic_hand"
    assert snap["example"]["inputs"] == [30.0, 1.0]
    assert _unit(snap, "x2[1]")["x"] == pytest.approx(1 / (1 + math.exp(5)))
    assert f"{_unit(snap, 'x2[1]')['x']:.4f}" == "0.0067"
    weights = {w["name"]: w["value"] for w in snap["network"]["weights"]}
    assert weights == HANDOUT_WEIGHTS
    rows = snap["example"]["rows"]
    assert rows == 714
    # A woman: flip through the rows until one is female.
    for row in range(rows):
        woman = client.post(
            f"/api/session/{snap['session']}/settings", json={"example": row}
        ).json()
        if woman["example"]["inputs"][1] == 0.0:
            break
    assert f"{_unit(woman, 'x2[1]')['x']:.4f}" == "0.9933"


def test_weight_edit_changes_units_and_is_checked(client: TestClient) -> None:
    """Setting w1[2,1] changes s and x of its unit; bad names and values are refused by name."""
    snap = _new(client)
    sid = snap["session"]
    after = client.post(f"/api/session/{sid}/weight", json={"name": "w1[2,1]", "value": 0.0}).json()
    # s_2^(2) = 0·30 + 15·1 − 10 = 5 for the man of 30.
    assert _unit(after, "x2[2]")["s"] == pytest.approx(5.0)
    assert "not a weight" in _error(
        client.post(f"/api/session/{sid}/weight", json={"name": "w9[1,1]", "value": 1})
    )
    assert "must be a number" in _error(
        client.post(f"/api/session/{sid}/weight", json={"name": "w1[1,1]", "value": "1"})
    )
    assert "from -100 to 100" in _error(
        client.post(f"/api/session/{sid}/weight", json={"name": "w1[1,1]", "value": 1e9})
    )


def test_network_gradients_match_the_tensor_mlp(client: TestClient) -> None:
    """∂l/∂w and δ on the page equal the tensor MLP's backward for the same example."""
    snap = _new(client)
    model = nn.MLP([2, 2, 1], activation="sigmoid", output_activation="sigmoid")
    model.set_weights(HANDOUT_WEIGHTS)
    loss = nn.log_loss(model([[30.0, 1.0]]), [[0.0]])
    loss.backward()
    expected = model.get_gradients()
    shown = {w["name"]: w["grad"] for w in snap["network"]["weights"]}
    for name, value in expected.items():
        assert shown[name] == pytest.approx(value, rel=1e-9, abs=1e-15)
    # δ of the output unit is ∂l/∂s = σ(s) − y for log loss.
    output = _unit(snap, "x3[1]")
    assert output["delta"] == pytest.approx(output["x"] - 0.0)


def test_train_endpoint_lowers_loss_and_refuses_bad_requests(client: TestClient) -> None:
    """Training steps lower the training loss; a bad request names what is wrong."""
    snap = _new(client, preset="titanic")
    sid = snap["session"]
    before = snap["training"]["history"]["loss"][-1]
    after = client.post(f"/api/session/{sid}/train", json={"steps": 60}).json()
    assert after["training"]["steps"] == 60
    assert after["training"]["history"]["loss"][-1] < before
    epoch = client.post(f"/api/session/{sid}/train", json={"epochs": 1}).json()
    assert epoch["training"]["epoch"] == after["training"]["epoch"] + 1
    assert "steps" in _error(client.post(f"/api/session/{sid}/train", json={"steps": 0}))
    assert "train takes" in _error(client.post(f"/api/session/{sid}/train", json={"runs": 1}))
    reset = client.post(f"/api/session/{sid}/reset").json()
    assert reset["training"]["steps"] == 0
    assert reset["training"]["history"]["loss"][-1] == pytest.approx(before)
    randomized = client.post(f"/api/session/{sid}/randomize").json()
    assert randomized["settings"]["seed"] == snap["settings"]["seed"] + 1


def test_settings_endpoint_checks_every_field(client: TestClient) -> None:
    """Settings change training (minibatches, Adam, momentum); unknown or bad fields are refused."""
    sid = _new(client, preset="gaussians")["session"]
    snap = client.post(
        f"/api/session/{sid}/settings",
        json={"optimizer": "momentum", "lr": 0.1, "batch_size": 16, "validation_split": 0.5},
    ).json()
    assert snap["settings"]["batch_size"] == 16
    assert snap["data"]["validation_rows"] == 100
    trained = client.post(f"/api/session/{sid}/train", json={"epochs": 2}).json()
    assert trained["training"]["steps"] == 2 * math.ceil(100 / 16)
    assert "unknown setting" in _error(client.post(f"/api/session/{sid}/settings", json={"eta": 1}))
    assert "settings.lr" in _error(client.post(f"/api/session/{sid}/settings", json={"lr": -1}))
    assert "cross-entropy needs a softmax" in _error(
        client.post(f"/api/session/{sid}/settings", json={"loss": "cross_entropy"})
    )
    assert "settings.example" in _error(
        client.post(f"/api/session/{sid}/settings", json={"example": 5000})
    )
    assert "different inputs" in _error(
        client.post(f"/api/session/{sid}/settings", json={"heat_x": 1, "heat_y": 1})
    )


def test_presets_and_data_sets_load(client: TestClient) -> None:
    """Every preset loads; the 2-D sets have 200 points of two classes; unknown names fail."""
    sid = _new(client)["session"]
    for name in PRESETS:
        snap = client.post(f"/api/session/{sid}/preset", json={"name": name}).json()
        assert snap["preset"] == name
    for name in ("circle", "exclusive_or", "gaussians", "spiral"):
        dataset = datasets.preset_data(name)
        assert dataset.X.shape == (200, 2) and set(np.unique(dataset.y)) == {0.0, 1.0}
    snap = client.post(f"/api/session/{sid}/data", json={"name": "circle"}).json()
    assert snap["data"]["name"] == "circle" and snap["architecture"]["hidden"] == [8, 8]
    assert "unknown" not in snap and "preset" in _error(
        client.post(f"/api/session/{sid}/preset", json={"name": "mnist"})
    )
    assert "data" in _error(client.post(f"/api/session/{sid}/data", json={"name": "mnist"}))


def test_architecture_endpoint_rebuilds_and_refuses_bad_shapes(client: TestClient) -> None:
    """Layers and activations can be changed; too many units or unknown activations are refused."""
    sid = _new(client, preset="xor")["session"]
    snap = client.post(
        f"/api/session/{sid}/architecture",
        json={"hidden": [3, 2], "activations": ["tanh", "relu"], "output_activation": "sigmoid"},
    ).json()
    assert snap["architecture"]["sizes"] == [2, 3, 2, 1]
    assert len(snap["heatmaps"]["maps"]) == 3 + 2 + 1
    assert "hidden[0]" in _error(
        client.post(f"/api/session/{sid}/architecture", json={"hidden": [99]})
    )
    assert "activations[0]" in _error(
        client.post(
            f"/api/session/{sid}/architecture", json={"hidden": [2], "activations": ["magic"]}
        )
    )
    assert "softmax output needs" in _error(
        client.post(
            f"/api/session/{sid}/architecture",
            json={"hidden": [2], "activations": ["tanh"], "output_activation": "softmax"},
        )
    )
    # A refused change leaves the network as it was.
    assert client.get(f"/api/session/{sid}").json()["architecture"]["sizes"] == [2, 3, 2, 1]


def test_heatmaps_cover_every_unit_with_points(client: TestClient) -> None:
    """Heat maps give every hidden and output unit on a grid over the two chosen inputs."""
    snap = _new(client)
    heat = snap["heatmaps"]
    assert [m["unit"] for m in heat["maps"]] == ["x2[1]", "x2[2]", "x3[1]"]
    assert heat["x_input"] == "age" and heat["y_input"] == "male"
    values = np.array(heat["maps"][0]["values"], dtype=float)
    assert values.shape == (heat["size"], heat["size"])
    # Unit 1 is "is female": near 1 on the female row (y = 0) and near 0 on the male row.
    assert values[0].mean() > 0.9 and values[-1].mean() < 0.1
    assert len(heat["points"]) == 357 and heat["held_at_mean"] == []


def test_dataflow_backward_steps_end_with_backward_gradients(client: TestClient) -> None:
    """Each backward step's sum equals the adjoint, and the leaf adjoints are backward()'s."""
    sid = _new(client)["session"]
    flow = client.get(f"/api/session/{sid}/dataflow").json()
    assert flow["nodes"] and flow["edges"] and flow["forward"]
    assert len(flow["backward"]) == sum(1 for n in flow["nodes"] if n["kind"] != "constant")
    for step in flow["backward"]:
        assert step["sum"] == pytest.approx(step["adjoint"], rel=1e-12, abs=1e-300)
    leaves = {s["name"]: s["adjoint"] for s in flow["backward"] if s["name"] in flow["gradients"]}
    assert leaves == flow["gradients"]
    model = nn.MLP([2, 2, 1], activation="sigmoid", output_activation="sigmoid")
    model.set_weights(HANDOUT_WEIGHTS)
    nn.log_loss(model([[30.0, 1.0]]), [[0.0]]).backward()
    for name, value in model.get_gradients().items():
        assert leaves[name] == pytest.approx(value, rel=1e-12)


def test_dataflow_refuses_networks_too_large_to_read(client: TestClient) -> None:
    """The step-by-step diagram is refused for big networks with a message saying why."""
    sid = _new(client, preset="spiral")["session"]
    assert "step-by-step diagram" in _error(client.get(f"/api/session/{sid}/dataflow"))


def test_paths_endpoint_sums_to_backprop(client: TestClient) -> None:
    """Path sums for w1[1,2] add up to the backprop gradient; an unknown weight is refused."""
    sid = _new(client)["session"]
    answer = client.get(f"/api/session/{sid}/paths", params={"weight": "w1[1,2]"}).json()
    assert answer["path_count"] == len(answer["paths"]) >= 1
    assert answer["agrees"] is True
    assert sum(path["product"] for path in answer["paths"]) == pytest.approx(answer["backprop"])
    assert answer["backprop_multiply_adds"] > 0
    assert "not a weight" in _error(
        client.get(f"/api/session/{sid}/paths", params={"weight": "w5[1,1]"})
    )


def test_state_round_trips_and_is_validated_field_by_field(client: TestClient) -> None:
    """An exported state restores architecture, weights and settings; bad fields are named."""
    sid = _new(client, preset="circle")["session"]
    client.post(f"/api/session/{sid}/weight", json={"name": "w1[1,1]", "value": 3.25})
    client.post(f"/api/session/{sid}/settings", json={"lr": 0.125})
    state = client.get(f"/api/session/{sid}/state").json()
    restored = _new(client, state=state)
    assert {w["name"]: w["value"] for w in restored["network"]["weights"]} == state["weights"]
    assert restored["settings"]["lr"] == 0.125 and restored["data"]["name"] == "circle"
    # The URL form the page uses is base64 of the same JSON: it restores too.
    other = _new(client)["session"]
    answer = client.post(f"/api/session/{other}/state", json=state).json()
    assert answer["architecture"] == restored["architecture"]
    for field, value, message in (
        ("settings", {**state["settings"], "lr": "fast"}, "state.settings.lr"),
        ("hidden", [3, "x"], "state.hidden[1]"),
        ("weights", {**state["weights"], "w1[1,1]": None}, "state.weights.w1[1,1]"),
        ("weights", {"w1[1,1]": 1.0}, "state.weights"),
        ("format", "something", "state.format"),
        ("data", "mnist", "state.data"),
    ):
        bad = {**state, field: value}
        assert message in _error(client.post(f"/api/session/{other}/state", json=bad))
    assert "unknown field" in _error(
        client.post(f"/api/session/{other}/state", json={**state, "code": "print(1)"})
    )
    # A refused state leaves the session as it was.
    assert client.get(f"/api/session/{other}").json()["data"]["name"] == "circle"
    assert base64.urlsafe_b64encode(b"{}")  # the page's encoding is plain base64url


def test_model_endpoint_writes_a_file_chainrule_load_reads(client: TestClient, tmp_path) -> None:
    """ "Save model" gives a model file whose weights chainrule.load reads back exactly."""
    sid = _new(client)["session"]
    response = client.get(f"/api/session/{sid}/model")
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    path = tmp_path / "model.safetensors"
    path.write_bytes(response.content)
    model, metadata = cr.load(path, with_metadata=True)
    assert model.get_weights() == HANDOUT_WEIGHTS
    assert metadata["playground"]["input_names"] == ["age", "male"]


def test_upload_reads_csv_and_reports_located_errors(client: TestClient) -> None:
    """An upload is encoded as by chainrule train; a bad cell is named by file, line and column."""
    sid = _new(client)["session"]
    good = b"height,weight,kind\n1.0,2.0,a\n2.0,1.5,b\n3.0,0.5,a\n4.0,2.5,b\n5.0,1.0,a\n"
    answer = client.post(
        f"/api/session/{sid}/upload", params={"name": "../plants.csv"}, content=good
    ).json()
    assert answer == {"file": "plants.csv", "columns": ["height", "weight", "kind"], "rows": 5}
    snap = client.post(
        f"/api/session/{sid}/data", json={"target": "kind", "inputs": ["height", "weight"]}
    ).json()
    assert snap["data"]["name"] == "upload" and snap["data"]["task"] == "binary"
    assert snap["architecture"]["sizes"][0] == 2
    bad = b"height,weight,kind\n1.0,2.0,a\n2.0,abc,b\n3.0,0.5,a\n4.0,2.5,b\n5.0,1.0,a\n"
    client.post(f"/api/session/{sid}/upload", params={"name": "bad.csv"}, content=bad)
    message = _error(
        client.post(f"/api/session/{sid}/data", json={"target": "kind", "inputs": ["weight"]})
    )
    assert message.startswith("bad.csv, line 3, column 'weight' (2): 'abc' is not a number")
    ragged = b"a,b\n1,2\n3\n"
    message = _error(
        client.post(f"/api/session/{sid}/upload", params={"name": "r.csv"}, content=ragged)
    )
    assert message.startswith("r.csv, line 3: 1 cells")
    assert "target" in _error(
        client.post(f"/api/session/{sid}/data", json={"target": 3, "inputs": []})
    )
    big = b"a,b\n" + b"1,2\n" * (datasets.MAX_UPLOAD_BYTES // 4 + 10)
    response = client.post(f"/api/session/{sid}/upload", params={"name": "big.csv"}, content=big)
    assert response.status_code == 413 and "limit" in response.json()["error"]


def test_upload_with_missing_cells_leaves_those_rows_out(client: TestClient) -> None:
    """A missing cell in a used column costs its row (chainrule train --impute drop), and
    the page says how many rows were left out, instead of suggesting an option it lacks."""
    sid = _new(client)["session"]
    gappy = b"height,weight,kind\n1.0,,a\n2.0,1.5,b\n,0.5,a\n4.0,2.5,b\n5.0,1.0,a\n6.0,2.0,b\n"
    client.post(f"/api/session/{sid}/upload", params={"name": "gappy.csv"}, content=gappy)
    snap = client.post(
        f"/api/session/{sid}/data", json={"target": "kind", "inputs": ["height", "weight"]}
    ).json()
    assert snap["data"]["rows"] == 4
    assert "dropped 2 of 6 rows with missing values" in snap["data"]["title"]
    # A column without gaps keeps every row.
    snap = client.post(
        f"/api/session/{sid}/data", json={"target": "kind", "inputs": ["weight"]}
    ).json()
    assert snap["data"]["rows"] == 5
    empty = b"height,kind\n,a\n,b\n"
    client.post(f"/api/session/{sid}/upload", params={"name": "empty.csv"}, content=empty)
    message = _error(
        client.post(f"/api/session/{sid}/data", json={"target": "kind", "inputs": ["height"]})
    )
    assert "every row has a missing value" in message and "--impute" not in message


def test_bad_bodies_and_unknown_sessions_get_clear_errors(client: TestClient) -> None:
    """Non-JSON bodies, NaN, huge bodies and unknown sessions answer with a message, not a crash."""
    sid = _new(client)["session"]
    assert "not valid JSON" in _error(
        client.post(f"/api/session/{sid}/settings", content=b"{lr: 1}")
    )
    assert "not valid JSON" in _error(
        client.post(f"/api/session/{sid}/settings", content=b'{"lr": NaN}')
    )
    assert "JSON object" in _error(client.post(f"/api/session/{sid}/settings", content=b"[1]"))
    huge = client.post(f"/api/session/{sid}/state", content=b" " * (MAX_JSON_BYTES + 1))
    assert huge.status_code == 413
    missing = client.get("/api/session/nope")
    assert missing.status_code == 404 and "reload the page" in missing.json()["error"]


def test_sessions_are_independent(client: TestClient) -> None:
    """Training one session leaves another's weights and history untouched."""
    first = _new(client, preset="titanic")
    second = _new(client, preset="titanic")
    client.post(f"/api/session/{first['session']}/train", json={"steps": 20})
    again = client.get(f"/api/session/{second['session']}").json()
    assert again["network"]["weights"] == second["network"]["weights"]
    assert again["training"]["steps"] == 0


def test_live_websocket_streams_training_frames(client: TestClient) -> None:
    """Play sends a frame per acknowledgement; pause stops it; a bad message gets an error."""
    sid = _new(client, preset="titanic")["session"]
    with client.websocket_connect(f"/api/session/{sid}/live") as socket:
        socket.send_json({"action": "play"})
        first = socket.receive_json()
        socket.send_json({"action": "next"})
        second = socket.receive_json()
        assert second["training"]["steps"] > first["training"]["steps"] > 0
        assert "points" not in first["heatmaps"]
        socket.send_json({"action": "pause"})
        assert socket.receive_json() == {"paused": True}
        socket.send_json({"action": "next"})  # a late acknowledgement after pause sends nothing
        socket.send_json({"action": "jump"})
        assert "error" in socket.receive_json()
    with client.websocket_connect("/api/session/nope/live") as socket:
        assert "expired" in socket.receive_json()["error"]


def test_server_errors_are_logged_and_reported(client: TestClient, monkeypatch, caplog) -> None:
    """An unexpected failure answers 500 with a message for the page and logs a traceback."""
    from chainrule.playground.session import Session

    sid = _new(client)["session"]

    def broken(self, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(Session, "reset", broken)
    with caplog.at_level("ERROR", logger="chainrule.playground"):
        response = client.post(f"/api/session/{sid}/reset")
    assert response.status_code == 500 and "boom" in response.json()["error"]
    assert any("reset" in record.getMessage() for record in caplog.records)


def test_model_of_an_upload_predicts_from_csv(client: TestClient, tmp_path, capsys) -> None:
    """A model saved after an upload carries chainrule train's preprocessing: predict reads CSV."""
    from chainrule.cli.main import main

    sid = _new(client)["session"]
    table = b"height,weight,kind\n1.0,2.0,a\n2.0,1.5,b\n3.0,0.5,a\n4.0,2.5,b\n5.0,1.0,a\n"
    client.post(f"/api/session/{sid}/upload", params={"name": "plants.csv"}, content=table)
    client.post(f"/api/session/{sid}/data", json={"target": "kind", "inputs": ["height", "weight"]})
    model_file = tmp_path / "plants.safetensors"
    model_file.write_bytes(client.get(f"/api/session/{sid}/model").content)
    new_rows = tmp_path / "new.csv"
    new_rows.write_bytes(table)
    capsys.readouterr()
    assert main(["predict", str(model_file), str(new_rows)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "predicted_kind,probability_a,probability_b" and len(lines) == 6
