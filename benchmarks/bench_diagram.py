"""How the built-in diagram layout's time grows with the graph (a guard against quadratic work).

Builds residual-style tensor graphs of about 1 000 to 8 000 nodes, draws each with
``chainrule.draw(..., engine="python")`` (layout and SVG), takes the median of a few rounds
per size and prints the time per node and the fitted exponent of time against size
(1 is linear). Run: ``python benchmarks/bench_diagram.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

import chainrule as cr


def residual_graph(target_nodes: int) -> cr.Tensor:
    """A loss over repeated blocks h ← tanh(h W) + h, with about ``target_nodes`` nodes."""
    rng = np.random.default_rng(0)
    h = cr.tensor(rng.normal(size=(4, 3)), label="x")
    nodes = 1
    k = 0
    while nodes < target_nodes:
        w = cr.tensor(rng.normal(size=(3, 3)), requires_grad=True, label=f"W{k}")
        h = (h @ w).tanh() + h
        nodes += 4
        k += 1
    loss = (h * h).mean()
    loss.backward(retain_grads=True)
    return loss


def draw_seconds(loss: cr.Tensor) -> tuple[float, int]:
    """Wall time of laying out and rendering ``loss``'s diagram, and its node count."""
    start = time.perf_counter()
    diagram = cr.draw(loss, engine="python", max_nodes=100_000)
    _ = diagram.svg
    return time.perf_counter() - start, len(diagram.nodes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per size (median)")
    args = parser.parse_args()
    sizes, times = [], []
    print("| nodes | median seconds | µs per node |")
    print("|---:|---:|---:|")
    for target in (1_000, 2_000, 4_000, 8_000):
        loss = residual_graph(target)
        rounds = [draw_seconds(loss) for _ in range(args.rounds)]
        seconds = statistics.median(r[0] for r in rounds)
        nodes = rounds[0][1]
        sizes.append(nodes)
        times.append(seconds)
        print(f"| {nodes} | {seconds:.3f} | {1e6 * seconds / nodes:.1f} |")
    slope = np.polyfit([math.log(n) for n in sizes], [math.log(t) for t in times], 1)[0]
    print(f"\nfitted exponent of time against nodes: {slope:.2f} (1 = linear)")


if __name__ == "__main__":
    main()
