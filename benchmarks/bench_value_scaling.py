"""How the scalar engine's backward time grows with graph size (issue 6, item 3).

Builds ``chainrule.Value`` graphs of about 10³, 10⁴, 10⁵ and 10⁶ op nodes — a long
recurrence h ← tanh(w·h + h_prev), so the graph is as deep as it is large, with fan-out
from every h — and times the forward build and ``backward()`` separately (median of a
few runs per size). The exponent is the least-squares slope of log(time) against
log(nodes): 1.0 means linear.

Usage::

    python benchmarks/bench_value_scaling.py
    python benchmarks/bench_value_scaling.py --max-nodes 100000 --repeats 5
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import machine_description, median


def build(nodes: int) -> tuple[object, int]:
    """A recurrence graph of about ``nodes`` op nodes; returns (output, op node count)."""
    import chainrule as cr

    rng = random.Random(0)
    previous, h = cr.Value(0.1), cr.Value(-0.2)
    count = 0
    while count < nodes:
        w = cr.Value(rng.uniform(-0.9, 0.9))
        previous, h = h, (w * h + previous).tanh()  # mul, add, tanh: three op nodes
        count += 3
    return h, count


def time_size(nodes: int, repeats: int) -> tuple[int, float, float]:
    forward_times, backward_times = [], []
    count = 0
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        out, count = build(nodes)
        middle = time.perf_counter()
        out.backward()  # type: ignore[attr-defined]
        end = time.perf_counter()
        forward_times.append(middle - start)
        backward_times.append(end - middle)
        del out
    return count, median(forward_times), median(backward_times)


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) against log(x)."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-nodes", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("# chainrule.Value: backward time against graph size")
    print()
    for line in machine_description():
        print(f"- {line}")
    print(f"- command: python benchmarks/bench_value_scaling.py {' '.join(sys.argv[1:])}".rstrip())
    print()
    print("| op nodes | forward (s) | backward (s) | backward µs/node |")
    print("|---|---|---|---|")
    sizes, forwards, backwards = [], [], []
    nodes = 1000
    while nodes <= args.max_nodes:
        count, forward, backward = time_size(nodes, args.repeats if nodes < 10**6 else 1)
        sizes.append(count)
        forwards.append(forward)
        backwards.append(backward)
        print(
            f"| {count:,} | {forward:.4f} | {backward:.4f} | {backward / count * 1e6:.2f} |",
            flush=True,
        )
        nodes *= 10
    print()
    if len(sizes) >= 2:
        print(f"- fitted exponent, backward: time ∝ nodes^{slope(sizes, backwards):.3f}")
        print(f"- fitted exponent, forward:  time ∝ nodes^{slope(sizes, forwards):.3f}")
    print()


if __name__ == "__main__":
    main()
