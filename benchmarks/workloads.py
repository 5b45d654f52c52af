"""The five training-step workloads every benchmark side runs, defined once.

Each workload fixes the architecture, the loss, the batch, the learning rate, the data
(seeded) and the initial weights (seeded, PyTorch's default uniform ±1/√fan_in), so that
every framework starts from the same numbers and must compute the same first loss.

Weights are ``[(W, b), ...]`` with ``W`` of shape (out, in) and ``b`` of shape (out,):
a layer computes ``x @ W.T + b``. Hidden layers apply ``activation``; the output layer
applies a sigmoid for the log loss, nothing for the MSE and the softmax cross-entropy
(which takes logits).

This file is also the place for environment hygiene shared by the scripts: re-running
without ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` and describing the machine.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

# Variables that change OpenBLAS's kernel choice; every side must run without them.
BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


@dataclass(frozen=True)
class Workload:
    """One row of the benchmark tables."""

    name: str
    title: str
    sizes: tuple[int, ...]
    activation: str  # hidden layers: "sigmoid" | "tanh" | "relu"
    loss: str  # "log_loss" (sigmoid output) | "mse" | "cross_entropy" (logits)
    batch: int
    lr: float
    small: bool  # pure-Python scalar engines (micrograd, chainrule Value) run it

    def data(self, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
        """The batch ``(x, y)``: y is (batch, 1) 0/1 floats for the log loss, (batch, out)
        floats for the MSE and integer class labels of shape (batch,) for cross-entropy."""
        rng = np.random.default_rng(1000 + self.sizes[0] + self.batch)
        n, features, outputs = self.batch, self.sizes[0], self.sizes[-1]
        x = rng.normal(size=(n, features))
        if self.loss == "log_loss":
            # A Titanic-like task: the label depends on the features, with noise.
            logits = x @ rng.normal(size=features)
            y = (rng.random(n) < 1 / (1 + np.exp(-logits))).astype(float)[:, None]
        elif self.loss == "mse":
            y = np.tanh(x @ rng.normal(size=(features, outputs)) / np.sqrt(features))
        else:
            x = rng.random(size=(n, features))  # pixel-like values in [0, 1)
            return x.astype(dtype), rng.integers(0, outputs, size=n)
        return x.astype(dtype), y.astype(dtype)

    def weights(self, dtype: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        """Initial (W, b) per layer, drawn in float64 and cast, so both dtypes agree."""
        rng = np.random.default_rng(7 + len(self.sizes) + self.sizes[1])
        layers = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            bound = 1.0 / np.sqrt(fan_in)
            weight = rng.uniform(-bound, bound, size=(fan_out, fan_in))
            bias = rng.uniform(-bound, bound, size=fan_out)
            layers.append((weight.astype(dtype), bias.astype(dtype)))
        return layers

    def reference_loss(self, dtype: Any) -> float:
        """The first loss in float64 numpy, the value every side must reproduce."""
        x, y = self.data(np.float64)
        h = x
        layers = self.weights(np.float64)
        for k, (weight, bias) in enumerate(layers):
            h = h @ weight.T + bias
            if k < len(layers) - 1:
                h = ACTIVATIONS[self.activation](h)
        return float(LOSSES[self.loss](h, y))

    @property
    def matmul_flops(self) -> int:
        """Floating-point operations (a multiply-add is two) of the step's matrix products:
        per layer the forward and the weight gradient, and the input gradient for every
        layer but the first, whose input is the data (the products of the BLAS limit)."""
        pairs = enumerate(zip(self.sizes[:-1], self.sizes[1:]))
        return sum(2 * self.batch * a * b * (3 if k else 2) for k, (a, b) in pairs)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
}


def _log_loss(z: np.ndarray, y: np.ndarray) -> float:
    p = _sigmoid(z)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _mse(z: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((z - y) ** 2))


def _cross_entropy(z: np.ndarray, labels: np.ndarray) -> float:
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


LOSSES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "log_loss": _log_loss,
    "mse": _mse,
    "cross_entropy": _cross_entropy,
}

WORKLOADS: list[Workload] = [
    Workload(
        "titanic",
        "3→2→1 sigmoid, log loss, batch 891",
        (3, 2, 1),
        "sigmoid",
        "log_loss",
        891,
        0.5,
        True,
    ),
    Workload(
        "tanh-256",
        "16→64→64→1 tanh, MSE, batch 256",
        (16, 64, 64, 1),
        "tanh",
        "mse",
        256,
        0.05,
        False,
    ),
    Workload(
        "tanh-16", "16→64→64→1 tanh, MSE, batch 16", (16, 64, 64, 1), "tanh", "mse", 16, 0.05, True
    ),
    Workload(
        "mnist",
        "784→256→256→10 relu, softmax CE, batch 128",
        (784, 256, 256, 10),
        "relu",
        "cross_entropy",
        128,
        0.05,
        False,
    ),
    Workload(
        "large",
        "1024→4096→4096→1024 relu, MSE, batch 512",
        (1024, 4096, 4096, 1024),
        "relu",
        "mse",
        512,
        0.01,
        False,
    ),
]


def workloads_named(names: str | None) -> list[Workload]:
    """The workloads in a comma-separated list of names (all of them for None)."""
    if not names:
        return list(WORKLOADS)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {w.name: w for w in WORKLOADS}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise SystemExit(f"unknown workload(s) {unknown}; known: {', '.join(known)}")
    return [known[n] for n in wanted]


# --- timing ------------------------------------------------------------------------------


def time_once(step: Callable[[], Any], inner: int) -> float:
    """Seconds per call of ``step``, averaged over ``inner`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(inner):
        step()
    return (time.perf_counter() - start) / inner


def inner_count(step: Callable[[], Any], budget: float = 0.02) -> int:
    """How many calls make one timing sample of about ``budget`` seconds (at least 1)."""
    elapsed = time_once(step, 1)
    return max(1, min(10_000, int(budget / max(elapsed, 1e-7))))


def median(values: list[float]) -> float:
    return statistics.median(values)


def interleaved_cpu_times(
    sides: dict[str, Callable[[], Any]], calls: int | dict[str, int], rounds: int
) -> dict[str, list[float]]:
    """µs of CPU time per call of each side, one figure per round of ``calls`` calls (one
    count for all, or a count per side), the sides interleaved round by round
    (``time.process_time``: other processes on a loaded machine bend it less than wall
    time)."""
    counts = calls if isinstance(calls, dict) else dict.fromkeys(sides, calls)
    times: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(rounds):
        for side, call in sides.items():
            start = time.process_time()
            for _ in range(counts[side]):
                call()
            times[side].append((time.process_time() - start) / counts[side] * 1e6)
    return times


# --- environment ----------------------------------------------------------------------------


def reexec_without_blas_overrides() -> None:
    """Run this script again without the OpenBLAS variables, if any is set."""
    if any(v in os.environ for v in BLAS_VARIABLES):
        env = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


def machine_description() -> list[str]:
    """Lines describing the CPU, Python, numpy and its BLAS (from threadpoolctl)."""
    lines = [f"python {platform.python_version()}, numpy {np.__version__}"]
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        fields = dict(
            (key.strip(), value.strip())
            for key, _, value in (line.partition(":") for line in lscpu.splitlines())
        )
        lines.insert(
            0,
            f"cpu: {fields.get('Model name', '?')}, {fields.get('CPU(s)', '?')} logical CPU(s), "
            f"{fields.get('Thread(s) per core', '?')} thread(s) per core",
        )
    except OSError:
        lines.insert(0, f"cpu: {platform.processor() or '?'} ({os.cpu_count()} CPUs)")
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            lines.append(
                f"blas: {pool.get('internal_api')} {pool.get('version')} "
                f"({pool.get('architecture', '?')}, {pool.get('num_threads')} threads) "
                f"{pool.get('filepath', '')}"
            )
    except ImportError:
        lines.append("blas: (install threadpoolctl to see which BLAS numpy uses)")
    unset = ", ".join(f"{v}={os.environ.get(v, 'unset')}" for v in BLAS_VARIABLES)
    lines.append(f"environment: {unset}")
    return lines


def import_time(module: str, repeats: int = 7) -> float | None:
    """Median wall time of ``python -c "import module"`` in fresh processes (seconds)."""
    env = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", f"import {module}"], env=env, capture_output=True, check=False
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            return None
        times.append(elapsed)
    return median(times)


def format_ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    ms = seconds * 1e3
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"
