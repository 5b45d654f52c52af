"""Quiz, exercise 1: the sigmoid neuron f(w, x) = σ(w₀ + w₁x₁ + w₂x₂), its gradient and one
gradient-descent step, with chainrule.

Run: python docs/tutorials/quiz_1_sigmoid_neuron.py [--out DIR]

1.1  the computation graph, every weight labelled (figures quiz_1_1_graph.svg, one node per
     value as the handouts draw graphs, and quiz_1_1_graph_ops.svg, one node per algebraic step)
1.2  ∂f/∂w_j by the chain rule against the handout's closed form e^(−s)·x_j/(1 + e^(−s))²
1.3  ∂L/∂w_j for the square loss L = (y − f)² against ∂L/∂f · ∂f/∂w_j, ∂L/∂f = −2(y − f)
1.4  one step of gradient descent, w ← w − η·∂L/∂w (figure quiz_1_4_gradient_descent.svg)
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from _tutorial import check, check_that, fmt, heading, output_folder, pyplot, save, show

import chainrule as cr
from chainrule import optim

# A point where the numbers are easy to follow by hand: s = 0.5 − 1·1.5 + 2·0.5 = 0,
# so f = σ(0) = 1/2 and σ'(0) = 1/4.
WEIGHTS = (0.5, -1.0, 2.0)
INPUTS = (1.5, 0.5)
TARGET = 1.0  # y, for the loss of 1.3 and 1.4
STEP_SIZE = 1.0  # η of 1.4
SUBSCRIPTS = "₀₁₂"


def sigmoid_neuron(w: list[cr.Value], inputs: tuple[float, ...]) -> cr.Value:
    """f(w, x) = 1/(1 + exp(−(w₀ + w₁x₁ + w₂x₂))) step by step, as the handout writes it."""
    x = [cr.Value(value, f"x{SUBSCRIPTS[j + 1]}") for j, value in enumerate(inputs)]
    s = w[0] + w[1] * x[0] + w[2] * x[1]
    s.label = "s"
    f = 1 / (1 + cr.exp(-s))
    f.label = "f"
    return f


def neuron(
    weights: tuple[float, ...], inputs: tuple[float, ...]
) -> tuple[cr.Value, list[cr.Value]]:
    """The neuron on new weight leaves w₀, w₁, w₂: returns f and the leaves."""
    w = [cr.Value(value, f"w{SUBSCRIPTS[j]}") for j, value in enumerate(weights)]
    return sigmoid_neuron(w, inputs), w


def closed_form_df_dw(weights: tuple[float, ...], inputs: tuple[float, ...]) -> np.ndarray:
    """The handout's ∂f/∂w_j = x_j·exp(−s)/(1 + exp(−s))² with x₀ = 1 (the intercept)."""
    s = weights[0] + weights[1] * inputs[0] + weights[2] * inputs[1]
    common = math.exp(-s) / (1 + math.exp(-s)) ** 2
    return np.array([1.0, *inputs]) * common


def main() -> None:
    out = output_folder(__doc__.splitlines()[0])
    rng = np.random.default_rng(0)
    # The closed forms are also checked away from the friendly point above.
    random_points = [(tuple(rng.normal(size=3)), tuple(rng.normal(size=2) * 2)) for _ in range(5)]

    heading("Quiz 1.1 — the computation graph of f(w, x) = σ(w₀ + w₁x₁ + w₂x₂)")
    f, w = neuron(WEIGHTS, INPUTS)
    f.backward()
    diagram = cr.draw(f, engine="python")
    save(diagram, out, "quiz_1_1_graph.svg")
    save(cr.draw(f, fold_ops=False, engine="python"), out, "quiz_1_1_graph_ops.svg")
    s = sum(wj * xj for wj, xj in zip(WEIGHTS, (1.0, *INPUTS)))
    check("f(w, x) = 1/(1 + exp(−s)) at the point", f.data, 1 / (1 + math.exp(-s)))
    leaves = sorted(node.name for node in diagram.nodes if node.kind == "leaf")
    check_that(
        "the graph's labelled leaves are the three weights and two inputs",
        leaves == sorted(["w₀", "w₁", "w₂", "x₁", "x₂"]),
        ", ".join(leaves),
    )
    # "Explicitly label where each weight value comes from": each weight enters the graph
    # through one edge, whose partial is the input it multiplies (1 for the intercept).
    for j, weight in enumerate(w):
        edges = [e for e in diagram.edges if e.source == diagram.node(weight.label).id]
        multiplies = "1" if j == 0 else f"x{SUBSCRIPTS[j]}"
        check_that(
            f"{weight.label} enters through one edge labelled ∂/∂{weight.label} = {multiplies}",
            len(edges) == 1 and edges[0].symbol == multiplies,
            edges[0].label if edges else "no edge",
        )

    heading("Quiz 1.2 — ∂f/∂w_j by the chain rule")
    print("  handout: ∂f/∂w_j = x_j·exp(−s)/(1 + exp(−s))², x₀ = 1, s = w₀ + w₁x₁ + w₂x₂")
    check(
        "∂f/∂(w₀, w₁, w₂) at the point", [wj.grad for wj in w], closed_form_df_dw(WEIGHTS, INPUTS)
    )
    for weights, inputs in random_points:
        g, w_random = neuron(weights, inputs)
        g.backward()
        check(
            f"∂f/∂w at w = {fmt(weights, 2)}, x = {fmt(inputs, 2)}",
            [wj.grad for wj in w_random],
            closed_form_df_dw(weights, inputs),
        )
    # The chain rule of the handout's solution, ∂f/∂(−s) · ∂(−s)/∂w_j, is the one path
    # from w_j to f; chainrule lists its edge partials.
    explanation = cr.explain(f, w[1])
    show(explanation)
    check_that("one path leads from w₁ to f", explanation.path_count == 1)
    check("the product along it equals backprop's ∂f/∂w₁", explanation.total, w[1].grad)

    import sympy

    symbols = {name: sympy.Symbol(name, real=True) for name in ("w₀", "w₁", "w₂", "x₁", "x₂")}
    s_symbolic = symbols["w₀"] + symbols["w₁"] * symbols["x₁"] + symbols["w₂"] * symbols["x₂"]
    common = sympy.exp(-s_symbolic) / (1 + sympy.exp(-s_symbolic)) ** 2
    for name, factor in (("w₀", 1), ("w₁", symbols["x₁"]), ("w₂", symbols["x₂"])):
        derivative = cr.symbolic(f, name)
        print(f"  chainrule.symbolic(f, {name!r}) = {derivative}")
        check_that(
            f"it equals the handout's ∂f/∂{name} symbolically",
            sympy.simplify(derivative - factor * common) == 0,
        )

    heading("Quiz 1.3 — ∂L/∂w_j for the square loss L = (y − f)²")
    f, w = neuron(WEIGHTS, INPUTS)
    loss = (TARGET - f) ** 2
    loss.backward()
    print(f"  at y = {TARGET}: L = {loss.data:.6g}")
    check("∂L/∂f = −2(y − f(w, x))", f.grad, -2 * (TARGET - f.data))
    check(
        "∂L/∂w_j = ∂L/∂f · ∂f/∂w_j for j = 0, 1, 2",
        [wj.grad for wj in w],
        -2 * (TARGET - f.data) * closed_form_df_dw(WEIGHTS, INPUTS),
    )
    for weights, inputs in random_points:
        g, w_random = neuron(weights, inputs)
        ((TARGET - g) ** 2).backward()
        check(
            f"∂L/∂w at w = {fmt(weights, 2)}, x = {fmt(inputs, 2)}",
            [wj.grad for wj in w_random],
            -2 * (TARGET - g.data) * closed_form_df_dw(weights, inputs),
        )

    heading("Quiz 1.4 — one step of gradient descent, w ← w − η·∂L/∂w")
    f, w = neuron(WEIGHTS, INPUTS)
    before = (TARGET - f) ** 2
    before.backward()
    gradient = -2 * (TARGET - f.data) * closed_form_df_dw(WEIGHTS, INPUTS)
    optimizer = optim.SGD(w, lr=STEP_SIZE)
    optimizer.step()
    print(f"  η = {STEP_SIZE}: w = {WEIGHTS} becomes {tuple(round(wj.data, 6) for wj in w)}")
    check(
        "optim.SGD's step is the handout's update w^(t+1) = w^(t) − η·∂L/∂w^(t)",
        [wj.data for wj in w],
        np.array(WEIGHTS) - STEP_SIZE * gradient,
    )
    f_after, _ = neuron(tuple(wj.data for wj in w), INPUTS)
    after = (TARGET - f_after.data) ** 2
    check_that("the step lowers the loss", after < before.data, f"{before.data:.4g} → {after:.4g}")

    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6, 3.6))
    for step_size in (0.25, 1.0, 4.0):
        _, weights = neuron(WEIGHTS, INPUTS)
        optimizer = optim.SGD(weights, lr=step_size)
        losses = []
        for _ in range(30):
            # A new graph every step, on the optimizer's own leaves, which it updates.
            loss_step = (TARGET - sigmoid_neuron(weights, INPUTS)) ** 2
            losses.append(loss_step.data)
            optimizer.zero_grad()
            loss_step.backward()
            optimizer.step()
        axis.plot(range(len(losses)), losses, marker="o", markersize=3, label=f"η = {step_size}")
        check_that(
            f"30 steps with η = {step_size} keep lowering the loss",
            all(b <= a for a, b in itertools.pairwise(losses)),
            f"{losses[0]:.4g} → {losses[-1]:.4g}",
        )
    axis.set_xlabel("gradient-descent step t")
    axis.set_ylabel("L = (y − f(w⁽ᵗ⁾, x))²")
    axis.set_title(f"Quiz 1.4: gradient descent on one example (x = {INPUTS}, y = {TARGET:g})")
    axis.set_yscale("log")
    axis.legend()
    axis.grid(alpha=0.3)
    save(figure, out, "quiz_1_4_gradient_descent.svg")


if __name__ == "__main__":
    main()
