"""Assignment, exercise 2: weights set by hand so the Titanic MLP computes "female", "young male"
and "survives", checked unit by unit and on the 714 passengers.

Run: python docs/tutorials/assignment_2_hand_weights.py [--out DIR]

x₁⁽¹⁾ = age in years, x₂⁽¹⁾ = 1 if male else 0, x₃⁽¹⁾ = x₃⁽²⁾ = 1 (the bias units).

(a)  x₁⁽²⁾ = "is female": w₁,₂⁽¹⁾ = −10, w₁,₁⁽¹⁾ = 0, w₁,₃⁽¹⁾ = 5; σ(−5) = 0.0067, σ(5) = 0.9933
(b)  x₂⁽²⁾ = "is a male under 5": w₂,₂⁽¹⁾ = 15, w₂,₁⁽¹⁾ = −1, w₂,₃⁽¹⁾ = −10;
     σ(−11) ≈ 0, σ(4) = 0.982, σ(1) = 0.731, σ(−5) = 0.0067
(c)  x₁⁽³⁾ = "survives" (female or young male): w₁,₁⁽²⁾ = 2, w₁,₂⁽²⁾ = 2, w₁,₃⁽²⁾ = −1; σ(1) ≈ 0.73
and the hand-set network's accuracy on the Titanic passengers.
Figures: assignment_2_network.svg (the network with these weights, for a 4-year-old boy) and
assignment_2_units_by_age.svg (every unit against age, for men and for women).
"""

from __future__ import annotations

import numpy as np
from _tutorial import check, check_printed, check_that, heading, output_folder, pyplot, save

import chainrule as cr
from chainrule import nn
from chainrule.datasets import load_titanic
from chainrule.experiments import HANDOUT_WEIGHTS
from chainrule.functional import no_grad

# The solution's weights, copied from the handout.
HAND_WEIGHTS = {
    "w1[1,1]": 0.0,  # (a) x₁⁽²⁾: age does not matter
    "w1[1,2]": -10.0,  # (a) male pushes "is female" down
    "w1[1,3]": 5.0,  # (a) bias
    "w1[2,1]": -1.0,  # (b) x₂⁽²⁾: one year older, one unit lower
    "w1[2,2]": 15.0,  # (b) male pushes "young male" up
    "w1[2,3]": -10.0,  # (b) bias
    "w2[1,1]": 2.0,  # (c) x₁⁽³⁾: female
    "w2[1,2]": 2.0,  # (c) or young male
    "w2[1,3]": -1.0,  # (c) bias
}
YOUNG = 5.0  # (b)'s "male under the age of say 5"


def hand_network() -> nn.MLP:
    """The 3→2→1 sigmoid network of the handout with the weights above."""
    network = nn.MLP([2, 2, 1], activation="sigmoid", output_activation="sigmoid", seed=0)
    network.set_weights(HAND_WEIGHTS)
    return network


def unit(network: nn.MLP, age: float, male: float, layer: int, i: int) -> tuple[float, float]:
    """(s, σ(s)) of unit i of layer 2 or 3 for one passenger, from chainrule's forward pass."""
    with no_grad():
        values = network.layer_outputs([[age, male]])
        below = values[layer - 2]
        s = network.layers[layer - 2](below).data[0, i - 1]
        return float(s), float(values[layer - 1].data[0, i - 1])


def main() -> None:
    out = output_folder(__doc__.splitlines()[0])
    network = hand_network()
    check_that(
        "these are the weights chainrule's Titanic experiment uses (chainrule.experiments)",
        network.get_weights() == HANDOUT_WEIGHTS,
    )

    heading("Assignment 2(a) — x₁⁽²⁾ encodes 'is female'")
    s, value = unit(network, 30.0, 1.0, 2, 1)
    check("a man: s = −10 + 5", s, -5.0)
    check_printed("x₁⁽²⁾ = σ(−5) for a man", value, "0.0067")
    s, value = unit(network, 30.0, 0.0, 2, 1)
    check("a woman: s = 5", s, 5.0)
    check_printed("x₁⁽²⁾ = σ(5) for a woman", value, "0.9933")
    at_all_ages = [unit(network, age, 0.0, 2, 1)[1] for age in (0.5, 10.0, 40.0, 80.0)]
    check("w₁,₁⁽¹⁾ = 0: a woman's x₁⁽²⁾ is the same at every age", at_all_ages, [value] * 4)

    heading("Assignment 2(b) — x₂⁽²⁾ encodes 'is a male under 5'")
    print("  (the solution calls this unit x₁⁽²⁾ in its worked numbers; it is x₂⁽²⁾)")
    cases = [
        ("a girl of 1: s = −1 − 10 = −11", 1.0, 0.0, -11.0, "0.0000"),
        ("a boy of 1: s = 15 − 1 − 10 = 4", 1.0, 1.0, 4.0, "0.982"),
        ("a boy of 4: s = 15 − 4 − 10 = 1", 4.0, 1.0, 1.0, "0.731"),
        ("a boy of 10: s = 15 − 10 − 10 = −5", 10.0, 1.0, -5.0, "0.0067"),
    ]
    for what, age, male, expected_s, printed in cases:
        s, value = unit(network, age, male, 2, 2)
        check(what, s, expected_s)
        argument = f"{expected_s:g}".replace("-", "−")
        handout = "≈ 0" if expected_s < -10 else printed
        check_printed(f"x₂⁽²⁾ = σ({argument}), handout {handout}", value, printed)
    older_women = [unit(network, age, 0.0, 2, 2)[1] for age in (2.0, 20.0, 60.0)]
    check_that(
        "older female passengers have even lower values",
        all(v < unit(network, 1.0, 0.0, 2, 2)[1] for v in older_women),
    )

    heading("Assignment 2(c) — x₁⁽³⁾ predicts survival: female or young male")
    with no_grad():
        output_layer = network.layers[1]
        for hidden, name in (
            ([1.0, 0.0], "x₁⁽²⁾ = 1, x₂⁽²⁾ = 0"),
            ([0.0, 1.0], "x₁⁽²⁾ = 0, x₂⁽²⁾ = 1"),
        ):
            s = float(output_layer(cr.tensor([hidden])).data[0, 0])
            check(f"{name}: s = 2 − 1", s, 1.0)
            check_printed(f"{name}: x₁⁽³⁾ = σ(1)", float(cr.tensor(s).sigmoid().item()), "0.73")
    passengers = {
        "a woman of 30": (30.0, 0.0, True),
        "a girl of 3": (3.0, 0.0, True),
        "a boy of 1": (1.0, 1.0, True),
        "a boy of 4": (4.0, 1.0, True),
        "a boy of 10": (10.0, 1.0, False),
        "a man of 30": (30.0, 1.0, False),
    }
    for name, (age, male, survives) in passengers.items():
        p = unit(network, age, male, 3, 1)[1]
        check_that(
            f"{name}: x₁⁽³⁾ = {p:.3f} is {'above' if survives else 'below'} 1/2",
            (p > 0.5) == survives,
        )

    heading("Assignment 2 — the hand-set network on the Titanic passengers")
    data = load_titanic()  # the 714 passengers whose age is recorded
    age, male = data.data[:, 0], data.data[:, 1]
    survived = data.target
    with no_grad():
        _, hidden, output = network.layer_outputs(np.column_stack([age, male]))
    predicted = output.data[:, 0] > 0.5
    female, young_male = male == 0, (male == 1) & (age < YOUNG)
    check_that(
        "x₁⁽²⁾ > 1/2 exactly for the female passengers",
        bool(np.all((hidden.data[:, 0] > 0.5) == female)),
    )
    check_that(
        f"x₂⁽²⁾ > 1/2 exactly for the males under {YOUNG:g}",
        bool(np.all((hidden.data[:, 1] > 0.5) == young_male)),
    )
    check_that(
        "the network predicts survival exactly for 'female or male under 5'",
        bool(np.all(predicted == (female | young_male))),
    )
    right = int(np.sum(predicted == (survived == 1)))
    women_survive = int(np.sum(female == (survived == 1)))
    print(f"  accuracy: {right} of {len(survived)} passengers right = {right / len(survived):.1%}")
    print(f"  'women survive' alone: {women_survive} right = {women_survive / len(survived):.1%}")
    check_that(
        "the hand-set network beats the rule 'women survive' (the young boys)",
        right > women_survive,
        f"{right} against {women_survive}",
    )

    network_drawing = cr.draw_network(network, values_for=[4.0, 1.0])
    save(network_drawing, out, "assignment_2_network.svg")
    check_printed(
        "the drawing shows the boy's x₂⁽²⁾ = σ(1)",
        network_drawing.node("x_{2}^{(2)}").value,
        "0.731",
    )
    check(
        "and his x₁⁽³⁾ = σ(2·0.0067 + 2·0.731 − 1), the network's own output",
        network_drawing.node("x_{1}^{(3)}").value,
        unit(network, 4.0, 1.0, 3, 1)[1],
    )

    plt = pyplot()
    ages = np.linspace(0.0, 80.0, 321)
    figure, axes = plt.subplots(1, 3, figsize=(11, 3.6), sharey=True)
    titles = ["(a) x₁⁽²⁾: is female", "(b) x₂⁽²⁾: is a male under 5", "(c) x₁⁽³⁾: survives"]
    for sex, style in ((1.0, "-"), (0.0, "--")):
        with no_grad():
            _, hidden, output = network.layer_outputs(
                np.column_stack([ages, np.full_like(ages, sex)])
            )
        curves = [hidden.data[:, 0], hidden.data[:, 1], output.data[:, 0]]
        for axis, curve in zip(axes, curves):
            axis.plot(ages, curve, style, label="male" if sex else "female")
    for axis, title in zip(axes, titles):
        axis.set_title(title)
        axis.set_xlabel("age (years)")
        axis.axhline(0.5, color="grey", linewidth=0.6)
        axis.grid(alpha=0.3)
    for age, printed in ((1.0, "σ(4) = 0.982"), (4.0, "σ(1) = 0.731"), (10.0, "σ(−5) = 0.0067")):
        value = unit(network, age, 1.0, 2, 2)[1]
        axes[1].plot([age], [value], "ko", markersize=3)
        axes[1].annotate(printed, (age, value), textcoords="offset points", xytext=(8, 2))
    axes[0].set_ylabel("unit value")
    axes[0].legend()
    save(
        figure,
        out,
        "assignment_2_units_by_age.svg",
        title="Assignment 2: the hand-set units, for every age",
    )


if __name__ == "__main__":
    main()
