"""Assignment, exercise 5: the backpropagation equations (9)–(11) for a sigmoid MLP, checked
on the Titanic network and on a random deeper MLP.

Run: python docs/tutorials/assignment_5_backprop.py [--out DIR]

Notation of the handout: x^(k) are layer k's units with the bias unit 1 appended, w_i^(k) the
weights into unit i of layer k+1, s_i^(k+1) = w_i^(k)ᵀx^(k) and x_i^(k+1) = σ(s_i^(k+1)); the
loss l = −y·ln x₁^(m) − (1 − y)·ln(1 − x₁^(m)) follows the output x₁^(m).

(a)  ∇_{w_i^(k)} l = x^(k)·σ(s_i^(k+1))(1 − σ(s_i^(k+1)))·∂l/∂x_i^(k+1)               (9), (10)
(b)  ∂l/∂x_i^(k) = Σ_j w_{j,i}^(k)·σ(s_j^(k+1))(1 − σ(s_j^(k+1)))·∂l/∂x_j^(k+1)          (11)
(c)  ∂l/∂x₁^(m) = −y/x₁^(m) + (1 − y)/(1 − x₁^(m)), read off the loss's dataflow graph
Figures: assignment_5_titanic_dataflow.svg (the Titanic network neuron by neuron, weights into
a unit as one vector as in the handout's Figure 2, the paths from w₁^(1) highlighted) and
assignment_5c_output_loss.svg (view 3: the output unit and the loss).
"""

from __future__ import annotations

import numpy as np
from _tutorial import check, check_that, heading, log_loss_node, output_folder, save, show, sigmoid

import chainrule as cr
from chainrule import nn
from chainrule.experiments import HANDOUT_WEIGHTS
from chainrule.graph import topological_order

BOY = np.array([4.0, 1.0])  # a 4-year-old boy (age, male), who survived: y = 1
SURVIVED = 1.0
DEEP_SIZES = [3, 4, 4, 3, 1]


def sigma_prime(s: np.ndarray | float) -> np.ndarray:
    """σ'(s) = σ(s)(1 − σ(s))."""
    return sigmoid(s) * (1 - sigmoid(s))


def titanic_per_neuron() -> tuple[cr.Tensor, dict[str, cr.Tensor]]:
    """The Titanic network with the weights into each unit as one vector leaf (Figure 2's
    view): returns the loss and the labelled nodes."""
    weight = np.array([[HANDOUT_WEIGHTS[f"w1[{i},{j}]"] for j in (1, 2, 3)] for i in (1, 2)])
    output_weight = [HANDOUT_WEIGHTS[f"w2[1,{j}]"] for j in (1, 2, 3)]
    nodes: dict[str, cr.Tensor] = {"x1": cr.tensor([*BOY, 1.0], label="x^{(1)}")}
    for i in (1, 2):
        w = cr.tensor(weight[i - 1], requires_grad=True, label=f"w_{{{i}}}^{{(1)}}")
        s = w @ nodes["x1"]
        s.label = f"s_{{{i}}}^{{(2)}}"
        unit = s.sigmoid()
        unit.label = f"x_{{{i}}}^{{(2)}}"
        nodes |= {f"w{i}": w, f"s{i}": s, f"h{i}": unit}
    # Layer 2's units are separate nodes, so the output's weights are three scalar leaves.
    w2 = [
        cr.tensor(value, requires_grad=True, label=f"w_{{1,{j}}}^{{(2)}}")
        for j, value in enumerate(output_weight, start=1)
    ]
    s_out = w2[0] * nodes["h1"] + w2[1] * nodes["h2"] + w2[2]
    s_out.label = "s_{1}^{(3)}"
    output = s_out.sigmoid()
    output.label = "x_{1}^{(3)}"
    nodes |= {"s_out": s_out, "out": output, **{f"v{j}": w for j, w in enumerate(w2, start=1)}}
    return log_loss_node(output, SURVIVED), nodes


def main() -> None:
    out = output_folder(__doc__.splitlines()[0])

    heading("Assignment 5 — the Titanic network neuron by neuron (a 4-year-old boy who survived)")
    loss, nodes = titanic_per_neuron()
    loss.backward(retain_grads=True)
    diagram = cr.draw(loss, highlight=nodes["w1"], rankdir="TB", engine="python")
    save(diagram, out, "assignment_5_titanic_dataflow.svg")
    x1 = np.array([*BOY, 1.0])
    weight = np.array([[HANDOUT_WEIGHTS[f"w1[{i},{j}]"] for j in (1, 2, 3)] for i in (1, 2)])
    w_out = np.array([HANDOUT_WEIGHTS[f"w2[1,{j}]"] for j in (1, 2, 3)])
    # The forward pass and then equations (c), (11), (9), in numpy from the weights alone.
    s2 = weight @ x1
    x2 = np.append(sigmoid(s2), 1.0)
    s3 = w_out @ x2
    x3 = sigmoid(s3)
    dl_dx3 = -SURVIVED / x3 + (1 - SURVIVED) / (1 - x3)  # (c)
    dl_dx2 = w_out[:2] * sigma_prime(s3) * dl_dx3  # (11), one term: one unit in layer 3
    check("(c) ∂l/∂x₁⁽³⁾ = −y/x₁⁽³⁾ + (1 − y)/(1 − x₁⁽³⁾)", nodes["out"].grad, dl_dx3)
    check(
        "(11) ∂l/∂x_i⁽²⁾ = w₁,ᵢ⁽²⁾·σ'(s₁⁽³⁾)·∂l/∂x₁⁽³⁾",
        [nodes["h1"].grad, nodes["h2"].grad],
        dl_dx2,
    )
    check(
        "(9) ∇_{w₁⁽²⁾} l = x⁽²⁾·σ'(s₁⁽³⁾)·∂l/∂x₁⁽³⁾",
        [nodes[f"v{j}"].grad for j in (1, 2, 3)],
        x2 * sigma_prime(s3) * dl_dx3,
    )
    for i in (1, 2):
        check(
            f"(9) ∇_{{w_{i}⁽¹⁾}} l = x⁽¹⁾·σ'(s_{i}⁽²⁾)·∂l/∂x_{i}⁽²⁾",
            nodes[f"w{i}"].grad,
            x1 * sigma_prime(s2[i - 1]) * dl_dx2[i - 1],
        )
    check(
        "(10) the same with s written out: x⁽¹⁾·σ(w₁⁽¹⁾ᵀx⁽¹⁾)(1 − σ(w₁⁽¹⁾ᵀx⁽¹⁾))·∂l/∂x₁⁽²⁾",
        nodes["w1"].grad,
        x1 * sigmoid(weight[0] @ x1) * (1 - sigmoid(weight[0] @ x1)) * dl_dx2[0],
    )
    edges = {
        (diagram.node(e.source).name, diagram.node(e.target).name): e.symbol for e in diagram.edges
    }
    check_that(
        "the drawing's edge w₁⁽¹⁾ → s₁⁽²⁾ carries x⁽¹⁾ᵀ, eq. (9)'s first factor",
        edges.get(("w_{1}^{(1)}", "s_{1}^{(2)}")) == "x^{(1)}ᵀ",
        str(edges.get(("w_{1}^{(1)}", "s_{1}^{(2)}"))),
    )
    explanation = cr.explain(loss, nodes["w1"])
    check("the paths from w₁⁽¹⁾ to l add up to eq. (9)", explanation.total, nodes["w1"].grad)
    matches = cr.nn.MLP([2, 2, 1], activation="sigmoid", output_activation="sigmoid", seed=0)
    matches.set_weights(HANDOUT_WEIGHTS)
    mlp_loss = nn.log_loss(matches(BOY[None, :]), [[SURVIVED]], reduction="sum")
    mlp_loss.backward()
    check(
        "chainrule's MLP gives the same ∇_{w₁⁽¹⁾} l (w1[1,1], w1[1,2], w1[1,3])",
        [matches.get_gradients()[f"w1[1,{j}]"] for j in (1, 2, 3)],
        nodes["w1"].grad,
    )

    heading("Assignment 5(c) — view 3: the output unit, the loss, and ∂l/∂x₁⁽ᵐ⁾")
    output_unit = cr.Value(float(x3), "x₁⁽ᵐ⁾")
    small = log_loss_node(output_unit, SURVIVED)
    small.backward()
    save(
        cr.draw(small, highlight=output_unit, engine="python"), out, "assignment_5c_output_loss.svg"
    )
    view_3 = cr.explain(small, output_unit)
    show(view_3)
    check(
        "the paths from x₁⁽ᵐ⁾ to l add up to −y/x₁⁽ᵐ⁾ + (1 − y)/(1 − x₁⁽ᵐ⁾)", view_3.total, dl_dx3
    )
    for y_value in (0.0, 1.0):
        for x_value in (0.1, 0.5, 0.93):
            unit = cr.Value(x_value)
            log_loss_node(unit, y_value).backward()
            check(
                f"y = {y_value:g}, x₁⁽ᵐ⁾ = {x_value:g}: ∂l/∂x₁⁽ᵐ⁾",
                unit.grad,
                -y_value / x_value + (1 - y_value) / (1 - x_value),
            )

    heading(f"Assignment 5(a), (b) — every layer of a random MLP {'→'.join(map(str, DEEP_SIZES))}")
    rng = np.random.default_rng(5)
    deep = nn.NeuronMLP(DEEP_SIZES, activation="sigmoid", output_activation="sigmoid", seed=5)
    example = rng.normal(size=DEEP_SIZES[0])
    inputs = [cr.Value(float(v), f"x1[{j}]") for j, v in enumerate(example, start=1)]
    layers = deep.layer_outputs(inputs)
    deep_loss = log_loss_node(layers[-1][0], 0.0)
    deep_loss.backward()
    by_label = {node.label: node for node in topological_order(deep_loss) if node.label}
    m = len(DEEP_SIZES)
    count_9 = count_11 = 0
    for k in range(1, m):
        x_k = np.array([unit.data for unit in layers[k - 1]] + [1.0])  # with the bias unit
        weights_k = np.array([[w.data for w in row] for row in deep.weights[k - 1]])
        s_next = np.array([by_label[f"s{k + 1}[{i}]"].data for i in range(1, DEEP_SIZES[k] + 1)])
        dl_dx_next = np.array([unit.grad for unit in layers[k]])
        check("s⁽ᵏ⁺¹⁾ = W⁽ᵏ⁾x⁽ᵏ⁾ (the forward pass)", s_next, weights_k @ x_k)
        backprop_9 = np.array([[w.grad for w in row] for row in deep.weights[k - 1]])
        equation_9 = np.array(
            [x_k * sigma_prime(s_next[i]) * dl_dx_next[i] for i in range(DEEP_SIZES[k])]
        )
        equation_10 = np.array(
            [
                x_k
                * sigmoid(weights_k[i] @ x_k)
                * (1 - sigmoid(weights_k[i] @ x_k))
                * dl_dx_next[i]
                for i in range(DEEP_SIZES[k])
            ]
        )
        check(
            f"k = {k}: eq. (9) = backprop's ∇_{{w_i^(k)}} l for i = 1…{DEEP_SIZES[k]}",
            equation_9,
            backprop_9,
        )
        check(f"k = {k}: eq. (10) likewise", equation_10, backprop_9)
        count_9 += len(equation_9)
        equation_11 = [
            sum(
                weights_k[j, i] * sigma_prime(s_next[j]) * dl_dx_next[j]
                for j in range(DEEP_SIZES[k])
            )
            for i in range(DEEP_SIZES[k - 1])
        ]
        check(
            f"k = {k}: eq. (11) = backprop's ∂l/∂x_i^(k) for i = 1…{DEEP_SIZES[k - 1]}",
            equation_11,
            [unit.grad for unit in layers[k - 1]],
        )
        count_11 += len(equation_11)
    check_that(
        f"eqs. (9), (10) hold for all {count_9} units with weights, "
        f"eq. (11) for all {count_11} units",
        count_9 == sum(DEEP_SIZES[1:]) and count_11 == sum(DEEP_SIZES[:-1]),
    )

    # Backprop's adjoints themselves, against central differences of the loss.
    eps = 1e-6
    names = deep.weight_names()
    original = deep.get_weights()
    analytic = deep.get_gradients()
    worst = 0.0
    for name in names:
        values = []
        for shift in (eps, -eps):
            deep.set_weights({name: original[name] + shift})
            (unit_out,) = deep(list(example))
            values.append(float(log_loss_node(unit_out, 0.0).data))
        deep.set_weights({name: original[name]})
        worst = max(worst, abs((values[0] - values[1]) / (2 * eps) - analytic[name]))
    check_that(
        f"all {len(names)} weight gradients agree with central differences",
        worst < 1e-7,
        f"largest difference {worst:.1e}",
    )


if __name__ == "__main__":
    main()
