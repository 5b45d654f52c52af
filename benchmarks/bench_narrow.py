"""The arithmetic of narrow layers: chainrule's kernels against numpy's own calls.

Two kernels, each timed against the numpy call it replaces, interleaved, medians of
rounds of ``time.process_time``:

* ``sum``: summing an adjoint over its rows (a bias gradient), by
  ``chainrule._broadcast.leading_sum_steps`` (a transposed copy summed pairwise for
  narrow arrays) against ``np.add.reduce(g, axis=0, out=)``;
* ``add``: the compiled forward of ``h + b`` for a row ``b`` broadcast down ``h``, by the
  ADD row's ``forward_into`` (complex pairs for a last axis of 2) against
  ``np.add(h, b, out=)``;

the transposed sum against numpy's reduce either side of the limits where the sum
switches strategy; then the whole compiled 3→2→1 Titanic step
(``chainrule.compile(train_step)``), planned with these kernels and planned with
numpy's calls in their place, against hand numpy.
Ratios below 1 mean chainrule's kernel is faster. Run:

    python benchmarks/bench_narrow.py
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from bench_peers import make_chainrule_compiled_step, make_numpy
from workloads import interleaved_cpu_times, reexec_without_blas_overrides, workloads_named

from chainrule import _broadcast, ops

SHAPES = [(891, 2), (891, 1), (16, 64), (128, 256), (128, 10)]


def median_ratio(times: dict[str, list[float]], side: str, reference: str) -> float:
    return statistics.median(a / b for a, b in zip(times[side], times[reference]))


def run_all(steps: list[Callable[[], Any]]) -> Callable[[], None]:
    def run() -> None:
        for step in steps:
            step()

    return run


def kernel_rows(calls: int, rounds: int) -> None:
    """The two kernels against numpy's calls, per shape and dtype."""
    print("| shape | dtype | reduce µs | sum µs (ratio) | np.add µs | add µs (ratio) |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for rows, columns in SHAPES:
        for dtype in (np.float32, np.float64):
            g = rng.normal(size=(rows, columns)).astype(dtype)
            b = rng.normal(size=columns).astype(dtype)
            out, summed = np.empty_like(g), np.empty(columns, dtype)
            assert ops.ADD.forward_into is not None
            sides = {
                # Each side runs its bound calls the same way, as a compiled program does.
                "reduce": run_all([functools.partial(np.add.reduce, g, 0, None, summed)]),
                "sum": run_all(_broadcast.leading_sum_steps(g, 1, summed)),
                "np.add": run_all([functools.partial(np.add, g, b, out=out)]),
                "add": run_all(ops.ADD.forward_into([g, b], {}, out)),
            }
            times = interleaved_cpu_times(sides, calls, rounds)
            fastest = {side: min(samples) for side, samples in times.items()}
            print(
                f"| ({rows}, {columns}) | {np.dtype(dtype).name} | {fastest['reduce']:.2f} | "
                f"{fastest['sum']:.2f} ({median_ratio(times, 'sum', 'reduce'):.2f}×) | "
                f"{fastest['np.add']:.2f} | {fastest['add']:.2f} "
                f"({median_ratio(times, 'add', 'np.add'):.2f}×) |"
            )


#: Shapes either side of the limits in chainrule._broadcast (NARROW_ROWS, NARROW_COLUMNS).
CROSSOVER = [(32, 2), (64, 2), (128, 2), (891, 8), (891, 16), (891, 32), (10000, 16)]


def crossover_rows(calls: int, rounds: int) -> None:
    """The transposed sum and numpy's reduce on shapes around the chosen limits."""
    print("\n| shape (float32) | reduce µs | transposed µs (ratio) | chosen |")
    print("|---|---|---|---|")
    rng = np.random.default_rng(1)
    for rows, columns in CROSSOVER:
        g = rng.normal(size=(rows, columns)).astype(np.float32)
        summed = np.empty(columns, np.float32)
        with mock.patch.object(_broadcast, "sums_through_transpose", lambda r, c: True):
            transposed = run_all(_broadcast.leading_sum_steps(g, 1, summed))
        sides = {
            "reduce": run_all([functools.partial(np.add.reduce, g, 0, None, summed)]),
            "transposed": transposed,
        }
        times = interleaved_cpu_times(sides, max(1, calls // max(1, rows // 891)), rounds)
        chosen = "transposed" if _broadcast.sums_through_transpose(rows, columns) else "reduce"
        print(
            f"| ({rows}, {columns}) | {min(times['reduce']):.2f} | "
            f"{min(times['transposed']):.2f} ({median_ratio(times, 'transposed', 'reduce'):.2f}×) "
            f"| {chosen} |"
        )


@contextmanager
def numpy_calls() -> Iterator[None]:
    """Plan with numpy's own calls: no transposed sums, no complex pairs."""
    with (
        mock.patch.object(_broadcast, "sums_through_transpose", lambda rows, columns: False),
        mock.patch.object(ops, "_as_pairs", lambda ins, out: None),
    ):
        yield


def whole_step(steps: int, rounds: int) -> None:
    """The compiled Titanic step planned with and without the narrow kernels."""
    workload = workloads_named("titanic")[0]
    sides = {"numpy": make_numpy(workload, np.float32).step}
    with numpy_calls():
        before = make_chainrule_compiled_step(workload, np.float32).step
        for _ in range(5):  # record and plan while numpy's calls stand in
            before()
    sides["numpy calls"] = before
    sides["narrow kernels"] = make_chainrule_compiled_step(workload, np.float32).step
    for step in sides.values():
        for _ in range(5):
            step()
    times = interleaved_cpu_times(sides, steps, rounds)
    print("\n| compiled 3→2→1 step, float32, batch 891 | µs | ratio to hand numpy |")
    print("|---|---|---|")
    for side, samples in times.items():
        ratio = median_ratio(times, side, "numpy")
        print(f"| {side} | {min(samples):.1f} | {ratio:.2f}× |")
    change = median_ratio(times, "narrow kernels", "numpy calls")
    print(f"\nnarrow kernels / numpy calls, whole step: {change:.2f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round (kernels)")
    parser.add_argument("--steps", type=int, default=300, help="steps per round (whole step)")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds")
    arguments = parser.parse_args()
    reexec_without_blas_overrides()
    kernel_rows(arguments.calls, arguments.rounds)
    crossover_rows(arguments.calls, arguments.rounds)
    whole_step(arguments.steps, arguments.rounds)


if __name__ == "__main__":
    main()
