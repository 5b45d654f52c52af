"""How close a step's matrix products run to what this machine's BLAS can do.

On a row bound by matrix products (784→256→256→10 and larger) every framework built on
a BLAS pays the same products; being ahead there means running them faster. This script
times, in one process on one thread and one CPU, by CPU time, interleaved:

- the row's BLAS limit (bench_peers.py's side: the step's products alone, into
  preallocated arrays) and its rate in GFLOP/s;
- a square float32/float64 product large enough to reach the BLAS's best rate on this
  core (``--square``, default 2048), the ceiling;
- hand numpy's whole step and ``chainrule.compile(loss, optimizer=)``'s, and the share of
  each that the products take.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_blas_ceiling.py --workloads mnist,large
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from bench_peers import make_blas_limit, make_chainrule_compiled, make_numpy
from workloads import (
    interleaved_cpu_times,
    machine_description,
    reexec_without_blas_overrides,
    workloads_named,
)


def square_product(size: int, dtype: Any) -> Callable[[], Any]:
    """One size × size product into a preallocated array: the BLAS's best case."""
    rng = np.random.default_rng(0)
    left, right = (rng.standard_normal((size, size)).astype(dtype) for _ in range(2))
    out: np.ndarray = np.empty((size, size), dtype)
    return lambda: np.dot(left, right, out=out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="mnist")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--square", type=int, default=2048, help="side of the square product")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds")
    parser.add_argument("--cpu", type=int, default=0, help="the one CPU to run on")
    arguments = parser.parse_args()
    reexec_without_blas_overrides()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {arguments.cpu})
    dtype = np.dtype(arguments.dtype).type
    for line in machine_description():
        print(f"- {line}")
    print(
        f"- one BLAS thread, pinned to CPU {arguments.cpu}; {arguments.dtype}; "
        f"median CPU time of {arguments.rounds} interleaved rounds"
    )
    print()

    square = square_product(arguments.square, dtype)
    square_flops = 2 * arguments.square**3
    print(
        "| workload | products GFLOP | BLAS limit ms | its GFLOP/s | square GFLOP/s "
        "| limit / square rate | hand numpy ms (products' share) "
        "| compile(optimizer=) ms (products' share) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for workload in workloads_named(arguments.workloads):
        sides = {
            "limit": make_blas_limit(workload, dtype).step,
            "square": square,
            "numpy": make_numpy(workload, dtype).step,
            "compiled": make_chainrule_compiled(workload, dtype).step,
        }
        for call in sides.values():
            for _ in range(3):  # warm up; compile records and plans its step
                call()
        once = interleaved_cpu_times(sides, 1, 3)
        # About 50 ms of each side per round (at least one call: the square takes longer).
        calls = {side: max(1, int(50_000 / max(min(t), 1.0))) for side, t in once.items()}
        times = interleaved_cpu_times(sides, calls, arguments.rounds)
        ms = {side: statistics.median(samples) / 1e3 for side, samples in times.items()}
        rate = workload.matmul_flops / (ms["limit"] / 1e3) / 1e9
        square_rate = square_flops / (ms["square"] / 1e3) / 1e9
        print(
            f"| {workload.title} | {workload.matmul_flops / 1e9:.3f} | {ms['limit']:.3f} "
            f"| {rate:.1f} | {square_rate:.1f} | {rate / square_rate:.2f} "
            f"| {ms['numpy']:.3f} ({ms['limit'] / ms['numpy']:.0%}) "
            f"| {ms['compiled']:.3f} ({ms['limit'] / ms['compiled']:.0%}) |"
        )


if __name__ == "__main__":
    main()
