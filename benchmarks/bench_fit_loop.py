"""What chainrule.fit's epoch loop costs on top of its own compiled step, and fit against a
hand-written numpy loop doing the same steps.

Five sides per workload, timed interleaved in one process (rounds in shuffled order,
medians): ``fit`` on a fresh model (the whole loop: batching, accuracy from the step's
outputs, best weights, History, and recording the step), ``fit`` again on one model
(the compiled step it kept from its first fit), the same with a callback that does
nothing (any callback makes fit copy the best weights after every improving epoch
instead of deferring the copy, so later fit/copying is what the deferral saves where
an epoch is one step), ``step`` (fit's own compiled step
called in a bare Python loop over the same batches) and ``numpy`` (forward, loss,
backward and SGD written by hand). The ratios later fit/step (the loop's overhead) and
fit/numpy are what to read; absolute times depend on the machine's load.

    python benchmarks/bench_fit_loop.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

_BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(name in os.environ for name in _BLAS_VARIABLES):  # the same BLAS setup for every side
    env = {k: v for k, v in os.environ.items() if k not in _BLAS_VARIABLES}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import chainrule as cr  # noqa: E402
from chainrule import nn, optim  # noqa: E402
from chainrule.training._objective import BatchLoss, TensorStep, resolve_objective  # noqa: E402


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class Workload:
    """A network, its data, batch size and learning rate, and the three ways to train it."""

    def __init__(self, name: str, sizes: list[int], hidden: str, output: str, rows: int,
                 batch: int | None, lr: float, epochs: int) -> None:  # fmt: skip
        self.name, self.sizes, self.hidden, self.output = name, sizes, hidden, output
        self.batch, self.lr, self.epochs = batch, lr, epochs
        self._kept: dict[str, nn.MLP] = {}  # the models of the later-fit sides, by side
        rng = np.random.default_rng(0)
        self.X = rng.normal(size=(rows, sizes[0]))
        if output == "sigmoid":
            self.y = (self.X[:, 0] + self.X[:, 1] > 0).astype(float)
        else:
            self.y = rng.integers(0, sizes[-1], size=rows)

    def model(self) -> nn.MLP:
        return nn.MLP(self.sizes, activation=self.hidden, output_activation=self.output, seed=0)

    def fit(self) -> float:
        """A first fit of a fresh model: recording and planning its step included."""
        return self._fit(self.model())

    def fit_again(self) -> float:
        """A later fit of one model: the compiled step it kept from its first fit."""
        return self._fit_kept("again", ())

    def fit_copying(self) -> float:
        """A later fit with a callback that does nothing, which turns off the deferred
        copy of the best weights: fit copies them after every improving epoch."""
        return self._fit_kept("copying", (lambda epoch, logs: None,))

    def _fit_kept(self, side: str, callbacks: Sequence[Callable[..., None]]) -> float:
        """A later fit of the side's own model (fitted once first, untimed)."""
        model = self._kept.get(side)
        if model is None:
            model = self._kept[side] = self.model()
            self._fit(model, callbacks)
        return self._fit(model, callbacks)

    def _fit(self, model: nn.MLP, callbacks: Sequence[Callable[..., None]] = ()) -> float:
        start = time.perf_counter()
        cr.fit(model, self.X, self.y, lr=self.lr, epochs=self.epochs, batch_size=self.batch,
               shuffle=False, progress=False, callbacks=callbacks)  # fmt: skip
        return time.perf_counter() - start

    def step(self) -> float:
        model = self.model()
        objective = resolve_objective(model, "auto")
        loss = BatchLoss(objective, weighted=False, weight_decay=0.0, decayed=(),
                         dtype=np.dtype(np.float64), max_rows=len(self.X))  # fmt: skip
        forward = model.forward_logits
        step = TensorStep(forward, loss, optim.SGD(model.parameters(), lr=self.lr), True)
        targets = self.y.reshape(-1, 1) if self.output == "sigmoid" else self.y
        batch = self.batch or len(self.X)
        bounds = [(s, min(s + batch, len(self.X))) for s in range(0, len(self.X), batch)]
        start = time.perf_counter()
        for _ in range(self.epochs):
            for lo, hi in bounds:
                step(self.X[lo:hi], targets[lo:hi], None)
        return time.perf_counter() - start

    def numpy(self) -> float:
        state = self.model().state_dict()
        weights = [state[f"layers.{k}.weight"].T.copy() for k in range(len(self.sizes) - 1)]
        biases = [state[f"layers.{k}.bias"].copy() for k in range(len(self.sizes) - 1)]
        act = {"sigmoid": _sigmoid, "relu": lambda z: np.maximum(z, 0.0)}[self.hidden]
        batch = self.batch or len(self.X)
        start = time.perf_counter()
        for _ in range(self.epochs):
            for lo in range(0, len(self.X), batch):
                x, y = self.X[lo : lo + batch], self.y[lo : lo + batch]
                layers = [x]
                for W, b in zip(weights[:-1], biases[:-1]):
                    layers.append(act(layers[-1] @ W + b))
                z = layers[-1] @ weights[-1] + biases[-1]
                n = len(x)
                if self.output == "sigmoid":
                    float(np.mean(np.logaddexp(0.0, z) - y[:, None] * z))
                    delta = (_sigmoid(z) - y[:, None]) / n
                else:
                    shifted = z - z.max(axis=1, keepdims=True)
                    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
                    float(-np.mean(log_p[np.arange(n), y]))
                    delta = np.exp(log_p)
                    delta[np.arange(n), y] -= 1.0
                    delta /= n
                for k in range(len(weights) - 1, -1, -1):
                    grad_W, grad_b = layers[k].T @ delta, delta.sum(axis=0)
                    if k:
                        h = layers[k]
                        local = h * (1 - h) if self.hidden == "sigmoid" else (h > 0)
                        delta = (delta @ weights[k].T) * local
                    weights[k] -= self.lr * grad_W
                    biases[k] -= self.lr * grad_b
        return time.perf_counter() - start


WORKLOADS = [
    Workload("3→2→1 sigmoid, full batch 891", [2, 2, 1], "sigmoid", "sigmoid", 891, None, 0.5, 300),
    Workload(
        "784→256→256→10 relu, batch 128", [784, 256, 256, 10], "relu", "softmax", 1024, 128, 0.05, 3
    ),
    Workload(
        "784→256→256→10 relu, one batch of 128",
        [784, 256, 256, 10],
        "relu",
        "softmax",
        128,
        None,
        0.05,
        20,
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median)")
    rounds = parser.parse_args().rounds
    print("| workload | first fit ms/epoch | later fit ms/epoch | step loop ms/epoch | "
          "numpy ms/epoch | later fit/step | later fit/numpy | first fit/numpy | "
          "later fit/copying |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for workload in WORKLOADS:
        sides: dict[str, Callable[[], float]] = {
            "fit": workload.fit, "again": workload.fit_again, "copying": workload.fit_copying,
            "step": workload.step, "numpy": workload.numpy,
        }  # fmt: skip
        for side in sides.values():
            side()  # warm up
        times: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(rounds):
            order = list(sides)
            random.shuffle(order)
            for name in order:
                times[name].append(sides[name]() / workload.epochs * 1e3)
        med = {name: float(np.median(values)) for name, values in times.items()}
        print(f"| {workload.name} | {med['fit']:.3f} | {med['again']:.3f} | {med['step']:.3f} "
              f"| {med['numpy']:.3f} | {med['again'] / med['step']:.2f} "
              f"| {med['again'] / med['numpy']:.2f} "
              f"| {med['fit'] / med['numpy']:.2f} "
              f"| {med['again'] / med['copying']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
