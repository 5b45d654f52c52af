"""The two compiled forms against hand numpy, in one process, by CPU time.

Three sides per workload, built by bench_peers.py's own side makers (the same networks,
data, weights and steps): hand ``numpy``, ``flat`` (``chainrule.compile(loss,
optimizer=sgd)``) and ``step`` (``chainrule.compile(train_step)``, the form wrapping a
whole eager step). They run interleaved in one process, each round timing a block of
steps with ``time.process_time`` (CPU time, so other processes on a loaded machine
bend the figures less than wall time does); the table gives each side's fastest round
and the median over rounds of its ratio to numpy's round. Meant for before/after
comparisons of the replay path: run it once per checkout, e.g.

    python benchmarks/bench_replay.py --workloads titanic,tanh-16,mnist
    PYTHONPATH=/path/to/other/checkout/src python benchmarks/bench_replay.py
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from bench_peers import make_chainrule_compiled, make_chainrule_compiled_step, make_numpy
from workloads import interleaved_cpu_times, reexec_without_blas_overrides, workloads_named

SIDES = {
    "numpy": make_numpy,
    "flat": make_chainrule_compiled,
    "step": make_chainrule_compiled_step,
}


def measure(name: str, steps: int, rounds: int) -> dict[str, tuple[float, float]]:
    """Each side's fastest µs per step and median ratio to numpy on workload ``name``."""
    workload = workloads_named(name)[0]
    sides: dict[str, Callable[[], float]] = {
        side: make(workload, np.float32).step for side, make in SIDES.items()
    }
    for step in sides.values():
        for _ in range(5):  # record, plan and warm up
            step()
    block = steps if workload.small else max(1, steps // 50)
    times = interleaved_cpu_times(sides, block, rounds)
    result = {}
    for side, samples in times.items():
        ratios = sorted(a / b for a, b in zip(samples, times["numpy"]))
        result[side] = (min(samples), ratios[len(ratios) // 2])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="titanic,tanh-16,mnist")
    parser.add_argument("--steps", type=int, default=300, help="steps per round (small rows)")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds")
    arguments = parser.parse_args()
    reexec_without_blas_overrides()
    print("| workload | numpy µs | flat µs (ratio) | step µs (ratio) |")
    print("|---|---|---|---|")
    for name in arguments.workloads.split(","):
        figures = measure(name, arguments.steps, arguments.rounds)
        cells = [f"{figures['numpy'][0]:.1f}"] + [
            f"{figures[side][0]:.1f} ({figures[side][1]:.2f}×)" for side in ("flat", "step")
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
