"""The playground server under 50 concurrent clients on 127.0.0.1: no error, no lost update."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest

pytest.importorskip(
    "uvicorn", reason='the playground tests need: pip install "chainrule[playground]"'
)
websockets_client = pytest.importorskip("websockets.sync.client")

from chainrule.playground.server import create_app, running_server  # noqa: E402

CLIENTS = 50
ROUNDS = 2
STEPS = 4
LIVE_FRAMES = 2


def _post(base: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.load(response)


def _get(base: str, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(base + path, timeout=120) as response:
        return json.load(response)


def test_server_serves_fifty_concurrent_training_clients() -> None:
    """50 clients each train their own session (half of them live over WebSockets) while polling."""
    results: dict[int, dict[str, Any]] = {}
    failures: list[str] = []
    with running_server(create_app()) as base:

        def client(number: int) -> None:
            try:
                snap = _post(base, "/api/session", {"preset": "titanic"})
                sid = snap["session"]
                expected = 0
                for _ in range(ROUNDS):
                    _post(base, f"/api/session/{sid}/train", {"steps": STEPS})
                    expected += STEPS
                    polled = _get(base, f"/api/session/{sid}")
                    if polled["training"]["steps"] != expected:
                        failures.append(f"client {number}: lost an update ({polled['training']})")
                live_steps = 0
                if number % 2:
                    url = base.replace("http://", "ws://") + f"/api/session/{sid}/live"
                    with websockets_client.connect(url, open_timeout=120) as socket:
                        socket.send(json.dumps({"action": "play"}))
                        for _ in range(LIVE_FRAMES):
                            frame = json.loads(socket.recv(timeout=120))
                            socket.send(json.dumps({"action": "next"}))
                        socket.send(json.dumps({"action": "pause"}))
                        while "paused" not in (message := json.loads(socket.recv(timeout=120))):
                            frame = message
                        live_steps = frame["training"]["steps"] - expected
                results[number] = {"sid": sid, "final": _get(base, f"/api/session/{sid}")}
                results[number]["expected_at_least"] = expected + live_steps
            except Exception as error:  # collected and reported below
                failures.append(f"client {number}: {type(error).__name__}: {error}")

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not any(thread.is_alive() for thread in threads)
        # The server still answers after the load.
        assert _post(base, "/api/session", {})["preset"] == "titanic_hand"
    assert failures == []
    assert len(results) == CLIENTS
    assert len({result["sid"] for result in results.values()}) == CLIENTS
    for number, result in results.items():
        steps = result["final"]["training"]["steps"]
        assert steps >= result["expected_at_least"], number
        if number % 2 == 0:
            assert steps == ROUNDS * STEPS  # nobody else's training reached this session
