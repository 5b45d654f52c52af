"""Assignment, exercise 1: the Titanic MLP's weights, and the logistic regressions inside it.

Run: python docs/tutorials/assignment_1_mlp_weights.py [--out DIR]

The network: inputs x₁⁽¹⁾ = age, x₂⁽¹⁾ = male and the bias unit x₃⁽¹⁾ = 1; two sigmoid hidden
units x₁⁽²⁾, x₂⁽²⁾ and the bias unit x₃⁽²⁾ = 1; one sigmoid output x₁⁽³⁾ = P(survived).

(a)  how many weights? The handout: 9, 6 into the hidden units and 3 into the output
     (figure assignment_1a_weights.svg: every edge named w_{i,j}^{(k)})
(b)  where is logistic regression? Three of them: into x₁⁽²⁾, into x₂⁽²⁾ and into x₁⁽³⁾
     (figures assignment_1b_logistic_{1,2,3}.svg); each computes σ(w·x) on its own inputs
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from _tutorial import check, check_that, fmt, heading, output_folder, redraw, save, sigmoid

import chainrule as cr
from chainrule import nn

SIZES = [2, 2, 1]
PASSENGERS = np.array([[4.0, 1.0], [30.0, 1.0], [30.0, 0.0], [62.0, 0.0]])  # (age, male)
FADED = "#c8c8c8"


def main() -> None:
    out = output_folder(__doc__.splitlines()[0])
    # Any weights will do for counting and for finding the logistic regressions; these
    # are chainrule's seeded initial weights.
    model = nn.MLP(SIZES, activation="sigmoid", output_activation="sigmoid", seed=1)

    heading("Assignment 1(a) — how many weights are there to tune?")
    shapes = [(name, p.shape) for name, p in model.named_parameters()]
    print(f"  parameters: {shapes}")
    count = sum(p.data.size for p in model.parameters())
    check_that("the MLP has 9 weights to tune", count == 9, f"{count}")
    into_hidden = model.layers[0].weight.data.size + model.layers[0].bias.data.size
    into_output = model.layers[1].weight.data.size + model.layers[1].bias.data.size
    check_that(
        "6 connect the 3 input units (age, male, bias) to the 2 hidden summation units",
        into_hidden == 6 == 3 * 2,
    )
    check_that("3 connect the 3 hidden units (2 and the bias) to the output", into_output == 3)
    names = model.weight_names()
    print(f"  by handout name: {', '.join(names)}")
    check_that("one handout name per weight", len(names) == count)
    neurons = nn.NeuronMLP.from_mlp(model)
    check_that(
        "the neuron-level network (one Value per weight) has the same 9",
        len(neurons.parameters()) == 9,
    )

    drawing = cr.draw_network(model, color=False)
    # Names only: the exercise is about which weights there are, not their values.
    named = [replace(edge, label=edge.name or "") for edge in drawing.edges]
    drawing = redraw(
        drawing,
        edges=named,
        caption="w_{i,j}^{(k)}: the weight from unit j of layer k to unit i of layer k+1; "
        "9 weights: 6 into layer 2, 3 into layer 3",
    )
    save(drawing, out, "assignment_1a_weights.svg")
    drawn = sorted(edge.name for edge in drawing.edges)
    expected = sorted(f"w_{{{i},{j}}}^{{({k})}}" for k, i, j in _indices(names))
    check_that(
        "the drawing has 9 edges, one per weight, named as in the handout", drawn == expected
    )

    heading("Assignment 1(b) — where does logistic regression show up?")
    layers = model.layer_outputs(PASSENGERS)
    hidden = layers[1].data
    output = layers[2].data[:, 0]
    weights = model.get_weights()
    regressions = [
        ("x₁⁽²⁾", "x_{1}^{(2)}", 1, 1, PASSENGERS, hidden[:, 0]),
        ("x₂⁽²⁾", "x_{2}^{(2)}", 1, 2, PASSENGERS, hidden[:, 1]),
        ("x₁⁽³⁾", "x_{1}^{(3)}", 2, 1, hidden, output),
    ]
    full = cr.draw_network(model)
    for number, (pretty, unit, k, i, inputs, unit_values) in enumerate(regressions, start=1):
        w = np.array([weights[f"w{k}[{i},{j}]"] for j in (1, 2, 3)])
        print(f"  logistic regression {number}: {pretty} = σ(w·x), w = {fmt(w)}")
        # The sub-network on its own: a one-layer MLP, i.e. logistic regression.
        single = nn.MLP([2, 1], output_activation="sigmoid", seed=0)
        single.set_weights({f"w1[1,{j}]": float(w[j - 1]) for j in (1, 2, 3)})
        alone = single(inputs).data[:, 0]
        check(f"{pretty} inside the MLP equals the logistic regression alone", unit_values, alone)
        with_bias = np.column_stack([inputs, np.ones(len(inputs))])
        check(
            f"{pretty} = σ(w₁x₁ + w₂x₂ + w₃·1), evaluated in numpy",
            unit_values,
            sigmoid(with_bias @ w),
        )

        target = full.node(unit)
        edges = [
            replace(edge, highlighted=True)
            if edge.target == target.id
            else replace(edge, color=FADED, width=0.8, label="")
            for edge in full.edges
        ]
        members = {edge.source for edge in edges if edge.highlighted} | {target.id}
        nodes = [replace(node, highlighted=node.id in members) for node in full.nodes]
        check_that(
            f"its sub-network has 3 inputs (2 units and a bias) and 3 weights into {pretty}",
            len(members) == 4 and sum(edge.highlighted for edge in edges) == 3,
        )
        caption = (
            f"logistic regression {number} of 3: {pretty} = σ(w·x) over the units feeding it"
            + ("; the two below feed the one above" if k == 2 else "")
        )
        save(
            redraw(full, nodes=nodes, edges=edges, caption=caption),
            out,
            f"assignment_1b_logistic_{number}.svg",
        )


def _indices(names: list[str]) -> list[tuple[int, int, int]]:
    """(k, i, j) of each handout name ``w{k}[{i},{j}]``."""
    from chainrule.nn.handout_names import parse_weight_name

    return [parse_weight_name(name) for name in names]


if __name__ == "__main__":
    main()
