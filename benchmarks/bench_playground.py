"""The playground's live-training rate: frames per second over the WebSocket.

Starts the playground's server on 127.0.0.1 (a free port), opens a session with the
given preset, presses "play" and acknowledges every frame as the page does, for
``--seconds``; prints frames per second (the page's update rate), optimizer steps per
second, and the median time the server spent on one frame (training for about 40 ms,
then the snapshot: network, heat maps, losses). Then, with ``--clients N``, the same
for N sessions training at once (each client's rate and the total).

Usage::

    python benchmarks/bench_playground.py
    python benchmarks/bench_playground.py --preset spiral --seconds 5 --clients 4

The issue asks for at least 10 updates per second on the Titanic network.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import urllib.request

# Benchmarks run without OpenBLAS tuning variables, on every side alike.
for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    if variable in os.environ:
        os.environ.pop(variable)
        os.execv(sys.executable, [sys.executable, *sys.argv])

from websockets.sync.client import connect  # noqa: E402

from chainrule.playground.server import create_app, running_server  # noqa: E402


def _session(base: str, preset: str) -> str:
    request = urllib.request.Request(
        base + "/api/session",
        data=json.dumps({"preset": preset}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)["session"]


def _play(base: str, preset: str, seconds: float) -> dict[str, float]:
    sid = _session(base, preset)
    url = base.replace("http://", "ws://") + f"/api/session/{sid}/live"
    frame_times = []
    with connect(url) as socket:
        socket.send(json.dumps({"action": "play"}))
        start = time.perf_counter()
        frames = 0
        first_steps = None
        while True:
            frame = json.loads(socket.recv())
            frames += 1
            frame_times.append(frame["frame_seconds"])
            if first_steps is None:
                first_steps = frame["training"]["steps"]
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
            socket.send(json.dumps({"action": "next"}))
        socket.send(json.dumps({"action": "pause"}))
    steps = frame["training"]["steps"] - (first_steps or 0)
    return {
        "frames_per_second": frames / elapsed,
        "steps_per_second": steps / elapsed,
        "median_frame_ms": 1000 * statistics.median(frame_times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="titanic", help="the preset to train (default titanic)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--clients", type=int, default=1, help="also measure N sessions at once")
    args = parser.parse_args()
    with running_server(create_app()) as base:
        one = _play(base, args.preset, args.seconds)
        print(
            f"{args.preset}, one client: {one['frames_per_second']:.1f} frames/s, "
            f"{one['steps_per_second']:.0f} steps/s, median frame "
            f"{one['median_frame_ms']:.0f} ms (server side)"
        )
        if args.clients > 1:
            results: list[dict[str, float]] = []

            def run() -> None:
                results.append(_play(base, args.preset, args.seconds))

            threads = [threading.Thread(target=run) for _ in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            rates = [result["frames_per_second"] for result in results]
            print(
                f"{args.preset}, {args.clients} clients at once: "
                f"{statistics.median(rates):.1f} frames/s each (median), "
                f"{sum(rates):.1f} frames/s in all"
            )


if __name__ == "__main__":
    main()
