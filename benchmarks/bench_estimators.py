"""chainrule's scikit-learn estimators against scikit-learn's own MLP, on the same work.

Each row trains ``chainrule.sklearn.MLPClassifier``/``MLPRegressor`` and
``sklearn.neural_network``'s estimator of the same name with the same settings, data
and number of epochs (``tol`` never stops either early), timed interleaved in one
process: every round runs each side once in shuffled order, and the table shows the
median of the rounds and the ratio chainrule / scikit-learn. Read the ratio; absolute
times depend on the machine's load. Comparing the ratio of two commits (each measured
against scikit-learn in its own run) shows whether a change made the estimators slower.

    python benchmarks/bench_estimators.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

_BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(name in os.environ for name in _BLAS_VARIABLES):  # the same BLAS setup for every side
    env = {k: v for k, v in os.environ.items() if k not in _BLAS_VARIABLES}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

from sklearn import neural_network  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import chainrule.sklearn as chainrule_sklearn  # noqa: E402
from chainrule.datasets import load_titanic  # noqa: E402

# So many epochs without progress that neither side stops before max_iter.
_NEVER = 10**6


def _titanic() -> tuple[np.ndarray, np.ndarray]:
    """The 714 passengers' (age, male), standardised, and whether they survived."""
    passengers = load_titanic()
    X = np.column_stack([passengers.column("age"), passengers.column("male")])
    return (X - X.mean(axis=0)) / X.std(axis=0), passengers.target.astype(int)


def _workloads() -> dict[str, tuple[str, dict[str, Any], np.ndarray, np.ndarray, bool]]:
    """Name -> (estimator class name, settings, X, y, trained by partial_fit)."""
    X, y = _titanic()
    rng = np.random.default_rng(0)
    X6 = rng.normal(size=(714, 6))
    classes = rng.integers(0, 4, size=714)
    target = X6[:, 0] - 0.5 * X6[:, 1] ** 2
    common = {"tol": 0.0, "n_iter_no_change": _NEVER, "random_state": 0}
    return {
        "Titanic 3→2→1 sigmoid, batch 200, 200 epochs": (
            "MLPClassifier", {"hidden_layer_sizes": (2,), "activation": "logistic",
                              "max_iter": 200, **common}, X, y, False),
        "Titanic 3→16→1 relu, batch 32, 100 epochs": (
            "MLPClassifier", {"hidden_layer_sizes": (16,), "batch_size": 32,
                              "max_iter": 100, **common}, X, y, False),
        "Titanic 3→2→1 sigmoid, full batch, 500 epochs": (
            "MLPClassifier", {"hidden_layer_sizes": (2,), "activation": "logistic",
                              "batch_size": 714, "max_iter": 500, **common}, X, y, False),
        "4 classes 7→32→4, batch 64, 100 epochs": (
            "MLPClassifier", {"hidden_layer_sizes": (32,), "batch_size": 64,
                              "max_iter": 100, **common}, X6, classes, False),
        "regression 7→32→1, batch 64, 100 epochs": (
            "MLPRegressor", {"hidden_layer_sizes": (32,), "batch_size": 64,
                             "max_iter": 100, **common}, X6, target, False),
        "Titanic 3→16→1, 100 partial_fit calls of 100 rows": (
            "MLPClassifier", {"hidden_layer_sizes": (16,), **common}, X, y, True),
    }  # fmt: skip


def _trainer(
    module: Any, name: str, settings: dict[str, Any], X: np.ndarray, y: np.ndarray, partial: bool
) -> Callable[[], float]:
    """A function that trains a fresh estimator and returns the seconds it took."""
    estimator = getattr(module, name)

    def train() -> float:
        model = estimator(**settings)
        start = time.perf_counter()
        if partial:
            labels = np.unique(y)
            for call in range(100):
                rows = slice((call * 37) % 600, (call * 37) % 600 + 100)
                model.partial_fit(X[rows], y[rows], classes=labels)
        else:
            model.fit(X, y)
        return time.perf_counter() - start

    return train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (default 7)")
    rounds = parser.parse_args().rounds
    warnings.simplefilter("ignore", ConvergenceWarning)
    sides = {"chainrule": chainrule_sklearn, "scikit-learn": neural_network}
    print("| workload | chainrule ms | scikit-learn ms | chainrule / scikit-learn |")
    print("|---|---:|---:|---:|")
    for label, (name, settings, X, y, partial) in _workloads().items():
        trainers = {side: _trainer(module, name, settings, X, y, partial)
                    for side, module in sides.items()}  # fmt: skip
        for train in trainers.values():
            train()  # warm-up: imports, first allocations
        samples: dict[str, list[float]] = {side: [] for side in trainers}
        for _ in range(rounds):
            order = list(trainers)
            random.shuffle(order)
            for side in order:
                samples[side].append(trainers[side]())
        ours, theirs = (statistics.median(samples[side]) for side in sides)
        print(f"| {label} | {ours * 1e3:.0f} | {theirs * 1e3:.0f} | {ours / theirs:.2f} |")
    print(f"\nmedians of {rounds} interleaved rounds; `python benchmarks/bench_estimators.py`")


if __name__ == "__main__":
    main()
