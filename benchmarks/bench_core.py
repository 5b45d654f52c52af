"""The core engine's benchmark (issue 2): chainrule against hand-written numpy.

Prints, from one run:

1. the time of one training step (forward + loss + backward + SGD update) with
   chainrule Tensors in eager mode, with ``chainrule.compile``, and with a hand-written
   numpy step, and their ratios, for the five workloads in float32 and float64
   (the same workers as bench_peers.py: each side in its own process, samples
   interleaved, medians);
2. scalar ``Value`` operations per second (forward + backward) against a plain-Python
   micrograd-style reference written below;
3. the time of ``python -c "import chainrule"`` (median of fresh processes).

Usage::

    python benchmarks/bench_core.py
    python benchmarks/bench_core.py --workloads tanh-16,large --repeats 9

The script re-executes itself without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_peers import THREADS, bench_workload
from workloads import (
    format_ms,
    import_time,
    machine_description,
    median,
    reexec_without_blas_overrides,
    workloads_named,
)

TARGETS = {"titanic": 3.0, "tanh-256": 3.0, "tanh-16": 3.0, "mnist": 1.5, "large": 1.5}


# --- a micrograd-style reference: closures over plain floats ------------------------------


class RefValue:
    """The smallest scalar autodiff node: data, grad, parents and a backward closure."""

    __slots__ = ("_backward", "_parents", "data", "grad")

    def __init__(self, data: float, parents: tuple[RefValue, ...] = ()) -> None:
        self.data = data
        self.grad = 0.0
        self._parents = parents
        self._backward: Callable[[], None] = lambda: None

    def __add__(self, other: RefValue) -> RefValue:
        out = RefValue(self.data + other.data, (self, other))

        def _backward() -> None:
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other: RefValue) -> RefValue:
        out = RefValue(self.data * other.data, (self, other))

        def _backward() -> None:
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def tanh(self) -> RefValue:
        out = RefValue(math.tanh(self.data), (self,))

        def _backward() -> None:
            self.grad += (1 - out.data * out.data) * out.grad

        out._backward = _backward
        return out

    def backward(self) -> None:
        # Iterative topological sort, so deep graphs work (micrograd's recursion would not).
        order: list[RefValue] = []
        seen: set[int] = set()
        stack: list[tuple[RefValue, bool]] = [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((parent, False) for parent in node._parents)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()


def neuron_layer_graph(value: Callable[[float], Any], width: int, depth: int) -> tuple[Any, int]:
    """A dense tanh network on scalars (width inputs, depth layers): returns (sum of
    outputs, number of op nodes). Both engines build exactly this graph."""
    rng = random.Random(0)
    h = [value(rng.uniform(-1, 1)) for _ in range(width)]
    nodes = 0
    for _ in range(depth):
        weights = [[value(rng.uniform(-0.5, 0.5)) for _ in range(width)] for _ in range(width)]
        new = []
        for row in weights:
            total = row[0] * h[0]
            for w, v in zip(row[1:], h[1:]):
                total = total + w * v
            new.append(total.tanh())
            nodes += 2 * width
        h = new
    out = h[0]
    for v in h[1:]:
        out = out + v
    return out, nodes + width - 1


def value_throughput(repeats: int) -> dict[str, float]:
    """Op nodes per second, forward + backward, for chainrule.Value and the reference."""
    import chainrule as cr

    engines: dict[str, Callable[[float], Any]] = {
        "chainrule.Value": cr.Value,
        "reference": RefValue,
    }
    samples: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(repeats):
        names = list(engines)
        random.shuffle(names)
        for name in names:
            start = time.perf_counter()
            out, nodes = neuron_layer_graph(engines[name], width=24, depth=4)
            out.backward()
            samples[name].append(nodes / (time.perf_counter() - start))
    return {name: median(values) for name, values in samples.items()}


def main() -> None:
    reexec_without_blas_overrides()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", help="comma-separated names (default: all)")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--threads", type=int, help="threads per side for BLAS (default: OpenBLAS's own)"
    )
    args = parser.parse_args()
    THREADS[0] = args.threads

    print("# chainrule core benchmark: one training step against hand-written numpy")
    print()
    for line in machine_description():
        print(f"- {line}")
    print(f"- command: python benchmarks/bench_core.py {' '.join(sys.argv[1:])}".rstrip())
    if args.threads is not None:
        print(f"- threads per side: {args.threads}")
    print()
    sides = ["numpy", "chainrule eager", "chainrule compiled"]
    for dtype_name in args.dtypes.split(","):
        print(f"## {dtype_name}: median ms per step")
        print()
        print(
            "| workload | hand numpy | chainrule eager | eager / numpy | target "
            "| compiled | compiled / numpy |"
        )
        print("|---|---|---|---|---|---|---|")
        for workload in workloads_named(args.workloads):
            repeats = args.repeats if workload.name != "large" else max(3, args.repeats // 3)
            medians, notes = bench_workload(workload, dtype_name, sides, repeats)
            base = medians.get("numpy")
            eager = medians.get("chainrule eager")
            compiled = medians.get("chainrule compiled")
            eager_ratio = f"{eager / base:.2f}×" if eager and base else "—"
            compiled_ratio = f"{compiled / base:.2f}×" if compiled and base else "—"
            print(
                f"| {workload.title} | {format_ms(base)} | {format_ms(eager)} | {eager_ratio} | "
                f"≤ {TARGETS[workload.name]:g}× | {format_ms(compiled)} | {compiled_ratio} |",
                flush=True,
            )
            for note in notes:
                print(f"<!-- {note} -->")
        print()

    print("## scalar Value: op nodes per second, forward + backward (median of 7)")
    print()
    rates = value_throughput(7)
    for name, rate in rates.items():
        print(f"- {name}: {rate:,.0f} nodes/s")
    print(
        "- chainrule.Value / micrograd-style reference: "
        f"{rates['chainrule.Value'] / rates['reference']:.2f}×"
    )
    print()
    seconds = import_time("chainrule", repeats=9)
    numpy_seconds = import_time("numpy", repeats=9)
    print("## import time (median of 9 fresh processes)")
    print()
    print(
        f"- python -c 'import chainrule': {seconds:.3f} s (target ≤ 0.2 s)"
        if seconds
        else "- failed"
    )
    if numpy_seconds:
        print(f"- python -c 'import numpy': {numpy_seconds:.3f} s")
    print()


if __name__ == "__main__":
    main()
