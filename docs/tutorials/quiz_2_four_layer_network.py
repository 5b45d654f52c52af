"""Quiz, exercise 2: backpropagation by hand through the 4→2→3→1 network, checked by chainrule.

Run: python docs/tutorials/quiz_2_four_layer_network.py [--out DIR]

The network: x ∈ R⁴; Z⁽²⁾ = W⁽¹⁾x (+ b⁽¹⁾), V⁽²⁾ = g(Z⁽²⁾); Z⁽³⁾ = W⁽²⁾V⁽²⁾ + b⁽²⁾,
V⁽³⁾ = h(Z⁽³⁾); ŷ = W⁽³⁾V⁽³⁾ + b⁽³⁾, with g = tanh, h = σ and the loss C(y, ŷ) = (y − ŷ)².

The exercise says the input layer gets no bias (so the graph of 2.1 has b⁽²⁾ and b⁽³⁾
only), while the solution's equations carry a b⁽¹⁾ in Z⁽²⁾ = W⁽¹⁾x + b⁽¹⁾ and 2.6 asks for
∂C/∂b⁽¹⁾. Every check below runs on both networks: "as stated" and "as solved".

2.1      the computation graph: quiz_2_1_network.svg (units and weights, as the handouts
         draw networks) and quiz_2_1_dataflow.svg (W⁽¹⁾, W⁽²⁾, W⁽³⁾, b⁽²⁾, b⁽³⁾ as nodes,
         every edge labelled with its partial, every node with its value and ∂C/∂node)
2.2      the forward pass layer by layer equals chainrule's MLP
2.3–2.6  the gradients layer by layer, from the solution's formulas, equal backprop's
2.7      paths against backprop: quiz_2_7_paths_vs_backprop.svg
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from _tutorial import check, check_that, heading, output_folder, pyplot, save, show, table

import chainrule as cr
from chainrule import nn
from chainrule.explanations.paths import mlp_path_count

SIZES = [4, 2, 3, 1]
ACTIVATIONS = ["tanh", "sigmoid"]  # the quiz's g and h
X = np.array([1.0, -1.0, 0.5, 2.0])
Y = 1.0
PRETTY = {
    "y_hat": "ŷ",
    "W1": "W⁽¹⁾",
    "b1": "b⁽¹⁾",
    "Z2": "Z⁽²⁾",
    "W2": "W⁽²⁾",
    "b2": "b⁽²⁾",
    "Z3": "Z⁽³⁾",
    "W3": "W⁽³⁾",
    "b3": "b⁽³⁾",
}


@dataclass
class Weights:
    """The quiz's parameters; ``b1`` is None for the network as stated (no input bias)."""

    W1: np.ndarray
    b1: np.ndarray | None
    W2: np.ndarray
    b2: np.ndarray
    W3: np.ndarray
    b3: np.ndarray


def quiz_weights(with_input_bias: bool) -> Weights:
    """Weights of ±1/2 and ±1, easy to follow by hand, drawn from a fixed seed."""
    rng = np.random.default_rng(4)

    def halves(*shape: int) -> np.ndarray:
        return rng.choice([-1.0, -0.5, 0.5, 1.0], size=shape)

    W1, b1 = halves(2, 4), halves(2)
    return Weights(
        W1, b1 if with_input_bias else None, halves(3, 2), halves(3), halves(1, 3), halves(1)
    )


@dataclass
class Forward:
    """The quiz's graph: every tensor of the forward pass, labelled as the quiz names it."""

    params: dict[str, cr.Tensor]
    Z2: cr.Tensor
    V2: cr.Tensor
    Z3: cr.Tensor
    V3: cr.Tensor
    y_hat: cr.Tensor
    C: cr.Tensor


def forward_layer_by_layer(weights: Weights) -> Forward:
    """Quiz 2.2's relations, one line per layer, as chainrule tensors."""
    params = {
        name: cr.tensor(value, requires_grad=True, label=label)
        for name, label, value in (
            ("W1", "W^{(1)}", weights.W1),
            ("b1", "b^{(1)}", weights.b1),
            ("W2", "W^{(2)}", weights.W2),
            ("b2", "b^{(2)}", weights.b2),
            ("W3", "W^{(3)}", weights.W3),
            ("b3", "b^{(3)}", weights.b3),
        )
        if value is not None
    }
    x = cr.tensor(X, label="x")
    y = cr.tensor([Y], label="y")
    Z2 = params["W1"] @ x
    if "b1" in params:
        Z2 = Z2 + params["b1"]
    V2 = Z2.tanh()  # g
    Z3 = params["W2"] @ V2 + params["b2"]
    V3 = Z3.sigmoid()  # h
    y_hat = params["W3"] @ V3 + params["b3"]
    C = ((y - y_hat) ** 2).sum()
    for tensor, label in ((Z2, "Z^{(2)}"), (V2, "V^{(2)}"), (Z3, "Z^{(3)}"), (V3, "V^{(3)}")):
        tensor.label = label
    y_hat.label, C.label = "ŷ", "C"
    return Forward(params, Z2, V2, Z3, V3, y_hat, C)


def chainrule_mlp(weights: Weights) -> nn.MLP:
    """The same network as a chainrule MLP (with no bias into Z⁽²⁾ when there is no b⁽¹⁾)."""
    model = nn.MLP(SIZES, activation=ACTIVATIONS, seed=0)
    if weights.b1 is None:
        # As stated: the input layer has no bias unit, so the first layer has no bias.
        model.layers[0] = nn.Linear(SIZES[0], SIZES[1], bias=False, seed=0)
    state = {
        "layers.0.weight": weights.W1,
        "layers.1.weight": weights.W2,
        "layers.1.bias": weights.b2,
        "layers.2.weight": weights.W3,
        "layers.2.bias": weights.b3,
    }
    if weights.b1 is not None:
        state["layers.0.bias"] = weights.b1
    model.load_state_dict(state)
    return model


def g(z: np.ndarray) -> np.ndarray:
    """The quiz's g (here tanh), in numpy."""
    return np.tanh(z)


def g_prime(z: np.ndarray) -> np.ndarray:
    """g'(z) = 1 − tanh(z)²."""
    return 1 - np.tanh(z) ** 2


def h(z: np.ndarray) -> np.ndarray:
    """The quiz's h (here σ), in numpy."""
    return 1 / (1 + np.exp(-z))


def h_prime(z: np.ndarray) -> np.ndarray:
    """h'(z) = σ(z)(1 − σ(z))."""
    return h(z) * (1 - h(z))


def by_hand(weights: Weights, f: Forward) -> dict[str, np.ndarray]:
    """Quiz 2.3–2.6 in numpy: the solution's formulas, each layer reusing the one after it.

    Only the forward values (Z, V, ŷ) come from the graph; no adjoint does.
    """
    Z2, Z3, y_hat = f.Z2.data, f.Z3.data, f.y_hat.data
    dC_dyhat = -2 * (Y - y_hat)  # C = (y − ŷ)²
    grads = {"y_hat": dC_dyhat}
    # 2.3: ∂C/∂W_j⁽³⁾ = ∂C/∂ŷ · h(Z_j⁽³⁾), ∂C/∂b⁽³⁾ = ∂C/∂ŷ
    grads["W3"] = dC_dyhat[:, None] * h(Z3)[None, :]
    grads["b3"] = dC_dyhat
    # 2.4: ∂C/∂Z_j⁽³⁾ = ∂C/∂V_j⁽³⁾ · h'(Z_j⁽³⁾), with ∂C/∂V_j⁽³⁾ = ∂C/∂ŷ · W_j⁽³⁾
    grads["Z3"] = dC_dyhat * weights.W3[0] * h_prime(Z3)
    # 2.5: ∂C/∂W_ij⁽²⁾ = ∂C/∂Z_i⁽³⁾ · g(Z_j⁽²⁾), ∂C/∂b_i⁽²⁾ = ∂C/∂Z_i⁽³⁾,
    #      ∂C/∂Z_j⁽²⁾ = (Σ_k ∂C/∂Z_k⁽³⁾ · W_kj⁽²⁾) · g'(Z_j⁽²⁾)
    grads["W2"] = np.outer(grads["Z3"], g(Z2))
    grads["b2"] = grads["Z3"]
    grads["Z2"] = np.array(
        [
            sum(grads["Z3"][k] * weights.W2[k, j] for k in range(3)) * g_prime(Z2[j])
            for j in range(2)
        ]
    )
    # 2.6: ∂C/∂W_ij⁽¹⁾ = ∂C/∂Z_i⁽²⁾ · x_j, ∂C/∂b_i⁽¹⁾ = ∂C/∂Z_i⁽²⁾
    grads["W1"] = np.outer(grads["Z2"], X)
    if weights.b1 is not None:
        grads["b1"] = grads["Z2"]
    return grads


def main() -> None:
    out = output_folder(__doc__.splitlines()[0])
    variants = {"as stated": quiz_weights(False), "as solved": quiz_weights(True)}
    forwards = {}
    for name, weights in variants.items():
        f = forward_layer_by_layer(weights)
        f.C.backward(retain_grads=True)
        forwards[name] = f

    heading("Quiz 2.1 — the computation graph of the 4→2→3→1 network")
    stated = variants["as stated"]
    network = cr.draw_network(chainrule_mlp(stated), values_for=X)
    save(network, out, "quiz_2_1_network.svg")
    units = [n for n in network.nodes if n.kind in ("input_unit", "unit", "output_unit")]
    bias_units = [n.name for n in network.nodes if n.kind == "bias"]
    check_that("the network drawing has 4 + 2 + 3 + 1 units", len(units) == sum(SIZES))
    check_that(
        "bias units only after the input layer: b⁽²⁾ in layer 2, b⁽³⁾ in layer 3",
        bias_units == ["x_{3}^{(2)}", "x_{4}^{(3)}"],
        ", ".join(bias_units),
    )
    check_that(
        "4·2 + (2+1)·3 + (3+1)·1 = 21 weighted edges",
        len(network.edges) == 21,
        f"{len(network.edges)} drawn",
    )
    dataflow = cr.draw(forwards["as stated"].C, rankdir="TB", engine="python")
    save(dataflow, out, "quiz_2_1_dataflow.svg")
    leaves = sorted(n.name for n in dataflow.nodes if n.kind == "leaf")
    check_that(
        "its leaves are the data x, y and the parameters W⁽¹⁾, W⁽²⁾, W⁽³⁾, b⁽²⁾, b⁽³⁾",
        leaves == sorted(["x", "y", "W^{(1)}", "W^{(2)}", "W^{(3)}", "b^{(2)}", "b^{(3)}"]),
        ", ".join(leaves),
    )

    heading("Quiz 2.2 — the relations between layers: the forward pass layer by layer")
    print("  Z⁽²⁾ = W⁽¹⁾x (+ b⁽¹⁾), V⁽²⁾ = g(Z⁽²⁾), Z⁽³⁾ = W⁽²⁾V⁽²⁾ + b⁽²⁾, V⁽³⁾ = h(Z⁽³⁾),")
    print("  ŷ = W⁽³⁾V⁽³⁾ + b⁽³⁾, computed one line per layer, against chainrule.nn.MLP")
    for name, weights in variants.items():
        f = forwards[name]
        model = chainrule_mlp(weights)
        _, v2, v3, _ = model.layer_outputs(X)
        check(f"{name}: V⁽²⁾ equals the MLP's layer 2", f.V2.data, v2.data[0])
        check(f"{name}: V⁽³⁾ equals the MLP's layer 3", f.V3.data, v3.data[0])
        check(f"{name}: ŷ equals the MLP's output", f.y_hat.data, model(X).data[0])

    steps = {
        "Quiz 2.3 — ∂C/∂W⁽³⁾ = ∂C/∂ŷ · h(Z⁽³⁾) and ∂C/∂b⁽³⁾ = ∂C/∂ŷ": ["y_hat", "W3", "b3"],
        "Quiz 2.4 — ∂C/∂Z_j⁽³⁾ = ∂C/∂ŷ · W_j⁽³⁾ · h'(Z_j⁽³⁾)": ["Z3"],
        "Quiz 2.5 — ∂C/∂W⁽²⁾, ∂C/∂b⁽²⁾ and ∂C/∂Z⁽²⁾ from ∂C/∂Z⁽³⁾": ["W2", "b2", "Z2"],
        "Quiz 2.6 — ∂C/∂W⁽¹⁾ = ∂C/∂Z⁽²⁾ xᵀ and ∂C/∂b⁽¹⁾ = ∂C/∂Z⁽²⁾": ["W1", "b1"],
    }
    hand = {name: by_hand(variants[name], forwards[name]) for name in variants}
    for title, keys in steps.items():
        heading(title)
        for name in variants:
            f, grads = forwards[name], hand[name]
            backprop = {
                **{key: tensor.grad for key, tensor in f.params.items()},
                "y_hat": f.y_hat.grad,
                "Z3": f.Z3.grad,
                "Z2": f.Z2.grad,
            }
            for key in keys:
                if key == "b1" and key not in grads:
                    print(f"  {name}: there is no b⁽¹⁾")
                    continue
                check(
                    f"{name}: ∂C/∂{PRETTY[key]} by hand equals backprop's",
                    grads[key],
                    backprop[key],
                )
        if "Z3" in keys:
            # The solution's last step writes ∂C/∂V_j⁽³⁾ = ∂C/∂ŷ, dropping ∂ŷ/∂V_j⁽³⁾ = W_j⁽³⁾.
            f = forwards["as stated"]
            literal = f.y_hat.grad * h_prime(f.Z3.data)
            check_that(
                "note: the solution's final form ∂C/∂ŷ · h'(Z_j⁽³⁾) omits the factor W_j⁽³⁾ "
                "(it differs from backprop unless W_j⁽³⁾ = 1)",
                not np.allclose(literal, f.Z3.grad),
            )
        if "Z2" in keys:
            print(
                "  note: with W⁽²⁾ of shape 3×2 (Z⁽³⁾ = W⁽²⁾V⁽²⁾), ∂Z_k⁽³⁾/∂V_j⁽²⁾ = W_kj⁽²⁾; the "
                "solution's sum writes W_jk⁽²⁾, and ∂C/∂b_j⁽²⁾ runs over j = 1, 2, 3"
            )

    heading("Quiz 2.7 — how much work do the paths take, and how much does backprop?")
    model = nn.NeuronMLP(SIZES, activation=ACTIVATIONS, seed=0)
    model.load_state_dict(chainrule_mlp(variants["as solved"]).state_dict())
    inputs = [cr.Value(value, f"x{j + 1}") for j, value in enumerate(X)]
    (y_hat,) = model(inputs)
    C = (Y - y_hat) ** 2
    C.label = "C"
    C.backward()
    explanation = cr.explain(C, inputs[0])
    show(explanation.format(max_rows=2))
    check_that(
        "2·3·1 = 6 paths lead from x₁ to C (a path picks one unit in each later layer)",
        explanation.path_count == 6 == mlp_path_count(SIZES, 1),
    )
    check("their sum equals backprop's ∂C/∂x₁", explanation.total, inputs[0].grad)
    first_weight = model.weights[0][0][0]
    by_weight = cr.explain(C, first_weight, max_paths=0)
    check_that(
        "3·1 = 3 paths lead from the weight w⁽¹⁾₁,₁ to C",
        by_weight.path_count == 3 == mlp_path_count(SIZES, 2),
    )

    width, rows, depths = 4, [], list(range(2, 10))
    counts, path_costs, backprop_costs = [], [], []
    for depth in depths:
        sizes = [width] * (depth - 1) + [1]
        deep = nn.NeuronMLP(sizes, activation="tanh", seed=depth)
        xs = [cr.Value(0.1 * (j + 1), f"x{j + 1}") for j in range(width)]
        (out_unit,) = deep(xs)
        loss = (Y - out_unit) ** 2
        loss.backward()
        result = cr.explain(loss, xs[0], max_paths=2_000)
        if result.total is not None:
            check(f"depth {depth}: the path sum equals backprop", result.total, xs[0].grad)
        counts.append(result.path_count)
        path_costs.append(result.path_factor_count)
        backprop_costs.append(result.backprop_multiply_adds)
        rows.append(
            (
                depth,
                f"{result.path_count:,}",
                f"{result.path_factor_count:,}",
                f"{result.backprop_multiply_adds:,}",
            )
        )
    show(
        table(
            [
                ("layers m", "paths from x₁", "path-sum multiply-adds", "backprop multiply-adds"),
                *rows,
            ]
        )
    )
    check_that(
        f"the paths multiply by the width {width} with every layer: 4^(m−2)",
        counts
        == [width ** (m - 2) for m in depths]
        == [mlp_path_count([width] * (m - 1) + [1], 1) for m in depths],
    )
    increments = np.diff(backprop_costs)
    check_that(
        "backprop's work grows by the same amount with every layer (linear in depth)",
        bool(np.all(increments == increments[0])),
        f"+{increments[0]} multiply-adds per layer",
    )
    check_that(
        "beyond a few layers the path sum costs more than backprop, and ever more",
        path_costs[-1] > 100 * backprop_costs[-1],
        f"{path_costs[-1]:,} against {backprop_costs[-1]:,} at m = {depths[-1]}",
    )

    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 3.8))
    axis.plot(depths, counts, marker="o", label="paths from x₁ to the loss")
    axis.plot(depths, path_costs, marker="s", label="multiply-adds of the path sum")
    axis.plot(depths, backprop_costs, marker="^", label="multiply-adds of backprop (all gradients)")
    axis.set_yscale("log")
    axis.set_xlabel(f"layers m (MLP {width}→{width}→…→{width}→1)")
    axis.set_ylabel("count")
    axis.set_title("Quiz 2.7: paths multiply with depth, backprop's work adds up")
    axis.grid(alpha=0.3)
    axis.legend()
    save(figure, out, "quiz_2_7_paths_vs_backprop.svg")


if __name__ == "__main__":
    main()
