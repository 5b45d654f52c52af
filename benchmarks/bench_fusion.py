"""How far fusing elementwise chains could take the 3→2→1 step: a measurement, not a feature.

Issue 9 asks, where Python dispatch of a flat list of numpy calls is the floor, to try
fusing elementwise chains (numba behind an optional extra) and to keep what wins. This
script measures the ceiling of that idea on the Titanic-sized row, where
``chainrule.compile(train_step)`` is still behind JAX jit: the same training step
(forward, mean log loss, backward, SGD; benchmarks/workloads.py's ``titanic`` row, same
data and initial weights) written with three numba kernels that fuse every elementwise
chain (bias + sigmoid; bias + sigmoid + log loss + its gradient; the sigmoid's backward
+ the bias gradient) around the same four BLAS products. It is written by hand for this
one network: chainrule does not generate such kernels (yet), and its results would not
be bit-identical to eager mode (numba's exp and log are not numpy's).

Sides, each timed interleaved in this process (medians of the rounds, one BLAS thread):
hand numpy (benchmarks/bench_peers.py's), chainrule ``compile(..., optimizer=)`` (the
flat replay), chainrule ``compile(train_step)``, and the hand-fused numba step. The fused
step's first 20 losses are checked against hand numpy's.

    pip install numba   # not a dependency of chainrule
    python benchmarks/bench_fusion.py [--rounds 9] [--dtype float32]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

_PINNED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
_BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(name in os.environ for name in _BLAS_VARIABLES) or any(
    os.environ.get(name) != value for name, value in _PINNED.items()
):  # the same BLAS set-up for every side: re-run without the overrides, one thread
    env = {k: v for k, v in os.environ.items() if k not in _BLAS_VARIABLES} | _PINNED
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_peers  # noqa: E402
from workloads import WORKLOADS  # noqa: E402


def make_fused(workload: Any, dtype: Any) -> tuple[Callable[[], float], float]:
    """The hand-fused numba step for the one-hidden-layer sigmoid network with log loss,
    and the seconds its first call spent compiling the kernels."""
    import numba

    @numba.njit(cache=False)
    def hidden_forward(z: Any, bias: Any, h: Any) -> None:  # h = σ(z + b)
        for i in range(z.shape[0]):
            for j in range(z.shape[1]):
                h[i, j] = 1.0 / (1.0 + math.exp(-(z[i, j] + bias[j])))

    @numba.njit(cache=False)
    def output_loss(z: Any, bias: Any, y: Any, delta: Any) -> float:
        # p = σ(z + b); the mean log loss; delta = (p − y)/n, its gradient at z
        n = z.shape[0]
        total = 0.0
        for i in range(n):
            p = 1.0 / (1.0 + math.exp(-(z[i, 0] + bias[0])))
            total -= y[i, 0] * math.log(p) + (1.0 - y[i, 0]) * math.log(1.0 - p)
            delta[i, 0] = (p - y[i, 0]) / n
        return total / n

    @numba.njit(cache=False)
    def hidden_backward(upstream: Any, h: Any, delta: Any, bias_grad: Any) -> None:
        # delta = upstream · σ'(z) = upstream · h(1 − h); the bias gradient sums it
        bias_grad[:] = 0.0
        for i in range(h.shape[0]):
            for j in range(h.shape[1]):
                value = upstream[i, j] * h[i, j] * (1.0 - h[i, j])
                delta[i, j] = value
                bias_grad[j] += value

    x, y = workload.data(dtype)
    (w1, b1), (w2, b2) = [(w.copy(), b.copy()) for w, b in workload.weights(dtype)]
    n, lr = x.shape[0], dtype(workload.lr)
    z1, h1 = np.empty((n, w1.shape[0]), dtype), np.empty((n, w1.shape[0]), dtype)
    z2, delta2 = np.empty((n, 1), dtype), np.empty((n, 1), dtype)
    upstream, delta1 = np.empty_like(h1), np.empty_like(h1)
    grad_w1, grad_w2 = np.empty_like(w1), np.empty_like(w2)
    grad_b1, grad_b2 = np.empty_like(b1), np.empty_like(b2)

    def step() -> float:
        np.dot(x, w1.T, z1)
        hidden_forward(z1, b1, h1)
        np.dot(h1, w2.T, z2)
        loss = output_loss(z2, b2, y, delta2)
        np.dot(delta2.T, h1, grad_w2)
        np.add.reduce(delta2, 0, None, grad_b2)
        np.dot(delta2, w2, upstream)
        hidden_backward(upstream, h1, delta1, grad_b1)
        np.dot(delta1.T, x, grad_w1)
        for weight, grad in ((w1, grad_w1), (b1, grad_b1), (w2, grad_w2), (b2, grad_b2)):
            weight -= lr * grad
        return float(loss)

    start = time.perf_counter()
    probe = [a.copy() for a in (w1, b1, w2, b2)]
    step()  # compiles the kernels
    compile_seconds = time.perf_counter() - start
    for array, kept in zip((w1, b1, w2, b2), probe):
        array[...] = kept  # back to the initial weights
    return step, compile_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=2000, help="steps per side per round")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    args = parser.parse_args()
    try:
        import numba
    except ImportError:
        sys.exit("bench_fusion.py needs numba: pip install numba")
    dtype = np.dtype(args.dtype).type
    workload = {w.name: w for w in WORKLOADS}["titanic"]

    fused, compile_seconds = make_fused(workload, dtype)
    numpy_side = bench_peers.make_numpy(workload, dtype)
    # The same 20 steps from the same weights: the fused kernels compute the same losses.
    reference = bench_peers.make_numpy(workload, dtype)
    fused_losses = [fused() for _ in range(20)]
    hand_losses = [reference.step() for _ in range(20)]
    worst = max(abs(a - b) / abs(b) for a, b in zip(fused_losses, hand_losses))
    if not worst <= (1e-4 if dtype is np.float32 else 1e-10):
        sys.exit(f"the fused step's losses drifted from hand numpy's by {worst:g} (relative)")

    sides: dict[str, Callable[[], Any]] = {
        "hand numpy": numpy_side.step,
        "chainrule compile(optimizer=)": bench_peers.make_chainrule_compiled(workload, dtype).step,
        "chainrule compile(step)": bench_peers.make_chainrule_compiled_step(workload, dtype).step,
        "numba, fused by hand": fused,
    }
    for step in sides.values():
        for _ in range(300):
            step()
    samples: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for _ in range(args.rounds):
        random.shuffle(names)
        for name in names:
            step = sides[name]
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            samples[name].append((time.perf_counter() - start) / args.steps * 1e6)

    print(f"# elementwise fusion on {workload.title}, {args.dtype}, one thread")
    print(f"numba {numba.__version__}, numpy {np.__version__}; {args.rounds} interleaved rounds")
    print(f"kernels compiled in {compile_seconds:.2f} s; the first 20 losses are within")
    print(f"{worst:.1e} (relative) of hand numpy's\n")
    base = statistics.median(samples["hand numpy"])
    print("| side | µs per step | ratio to hand numpy |")
    print("|---|---|---|")
    for name in sides:
        median = statistics.median(samples[name])
        print(f"| {name} | {median:.1f} | {median / base:.2f}× |")


if __name__ == "__main__":
    main()
