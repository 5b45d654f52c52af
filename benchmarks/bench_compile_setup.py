"""What ``chainrule.compile``'s first call costs: recording the step and planning its program.

A compiled step's first call runs the step eagerly while recording it, then plans the
program (buffers, in-place instructions, each checked bit for bit against the op rows).
A short fit (``chainrule.fit`` records a fresh step each time) pays this on every run,
so it is measured here against one plain eager step of the same workload.

Sides, timed interleaved in one process (rounds in shuffled order, medians):

- ``eager step``: zero_grad, forward, loss, backward and SGD in eager mode;
- ``first call, optimizer=``: ``chainrule.compile(loss, optimizer=sgd)`` made afresh and
  called once (record + plan + the SGD step);
- ``first call, compile(step)``: ``chainrule.compile(train_step)`` made afresh and called
  once (record + plan, no flat form).

The ratio of a first call to the eager step is what to read: planning's own cost is the
ratio minus one.

    python benchmarks/bench_compile_setup.py [--workloads titanic,tanh-16,mnist] [--rounds 15]

The script re-executes itself without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE and runs BLAS on
one thread (unless OPENBLAS_NUM_THREADS is set).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# One BLAS thread (before numpy loads): the machines are shared, and a second thread
# spinning for a busy core turns the large rows' timings into noise.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
from bench_peers import (  # noqa: E402
    _chainrule_setup,
    chainrule_loss_function,
    chainrule_train_step,
)
from workloads import (  # noqa: E402
    Workload,
    format_ms,
    machine_description,
    median,
    reexec_without_blas_overrides,
    time_once,
    workloads_named,
)


def sides(workload: Workload, dtype: Any) -> dict[str, Callable[[], Any]]:
    """The three sides for one workload, each a call timing one unit of work."""
    cr, params, optimizer, x, y = _chainrule_setup(workload, dtype)
    loss_of = chainrule_loss_function(workload, params)

    train_step = chainrule_train_step(optimizer, loss_of)

    def eager() -> None:
        train_step(x, y)

    def first_call_flat() -> None:
        cr.compile(loss_of, optimizer=optimizer)(x, y)

    def first_call_step() -> None:
        cr.compile(train_step)(x, y)

    return {
        "eager step": eager,
        "first call, optimizer=": first_call_flat,
        "first call, compile(step)": first_call_step,
    }


def main() -> None:
    reexec_without_blas_overrides()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default="titanic,tanh-16,mnist")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--budget", type=float, default=0.05, help="seconds per sample")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    for line in machine_description():
        print(f"<!-- {line} -->")
    names = list(sides(workloads_named("titanic")[0], dtype))
    print(f"\n{args.dtype}, medians of {args.rounds} interleaved rounds, ms per call\n")
    print(
        "| workload | "
        + " | ".join(names)
        + " | "
        + " | ".join(f"{n} ÷ eager" for n in names[1:])
        + " |"
    )
    print("|---|" + "---|" * (2 * len(names) - 1))
    for workload in workloads_named(args.workloads):
        row = sides(workload, dtype)
        inner: dict[str, int] = {}
        for name, call in row.items():
            for _ in range(3):
                call()  # warm up: first imports, allocator pools
            elapsed = max(time_once(call, 1), 1e-6)
            inner[name] = max(1, int(args.budget / elapsed))
        samples: dict[str, list[float]] = {name: [] for name in row}
        for _ in range(args.rounds):
            order = list(row)
            random.shuffle(order)
            for name in order:
                samples[name].append(time_once(row[name], inner[name]))
        medians = {name: median(values) for name, values in samples.items()}
        eager = medians["eager step"]
        cells = [format_ms(medians[name]) for name in names]
        ratios = [f"{medians[name] / eager:.2f}×" for name in names[1:]]
        print(f"| {workload.title} | " + " | ".join(cells + ratios) + " |")


if __name__ == "__main__":
    main()
