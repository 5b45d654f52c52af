"""Network drawings: units, bias units, weight labels and colours, unit values."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.explanations import render
from chainrule.explanations.diagram import DiagramError, parse_number
from chainrule.explanations.network import (
    FADED_COLOR,
    NEGATIVE_COLOR,
    POSITIVE_COLOR,
    ZERO_COLOR,
    draw_network,
)

# Assignment exercise 2: x_1^(2) "is female", x_2^(2) "is a young male", x_1^(3) survives.
HAND_WEIGHTS = {
    (1, 1, 1): 0.0,
    (1, 1, 2): -10.0,
    (1, 1, 3): 5.0,
    (1, 2, 1): -1.0,
    (1, 2, 2): 15.0,
    (1, 2, 3): -10.0,
    (2, 1, 1): 2.0,
    (2, 1, 2): 2.0,
    (2, 1, 3): -1.0,
}


class StandInMLP:
    """The smallest thing that follows the network contract: sizes, activations, state_dict."""

    def __init__(self, sizes: list[int], activations: list[Any], bias: bool = True) -> None:
        self.sizes = sizes
        self.activations = activations
        self.state: dict[str, np.ndarray] = {}
        for k in range(len(sizes) - 1):
            self.state[f"layers.{k}.weight"] = np.zeros((sizes[k + 1], sizes[k]))
            if bias:
                self.state[f"layers.{k}.bias"] = np.zeros(sizes[k + 1])

    def set(self, k: int, i: int, j: int, value: float) -> None:
        """Set the handout's w_{i,j}^{(k)} (j = n_k + 1 is the bias weight)."""
        weight = self.state[f"layers.{k - 1}.weight"]
        if j == weight.shape[1] + 1:
            self.state[f"layers.{k - 1}.bias"][i - 1] = value
        else:
            weight[i - 1, j - 1] = value

    def state_dict(self) -> dict[str, np.ndarray]:
        return {key: value.copy() for key, value in self.state.items()}


def titanic_stand_in() -> StandInMLP:
    """The Titanic network 2 inputs (+ bias) → 2 hidden → 1 output with the hand weights."""
    mlp = StandInMLP([2, 2, 1], ["sigmoid", "sigmoid"])
    for (k, i, j), value in HAND_WEIGHTS.items():
        mlp.set(k, i, j, value)
    return mlp


def sigmoid(s: float) -> float:
    return 1.0 / (1.0 + math.exp(-s))


def test_draw_network_labels_every_weight_with_its_handout_name() -> None:
    """Each edge from unit j of layer k to unit i of layer k+1 reads w_{i,j}^{(k)} = value."""
    d = draw_network(titanic_stand_in())
    assert len(d.edges) == 9  # exercise 1(a): the network has 9 weights
    names = {node.id: node.name for node in d.nodes}
    for edge in d.edges:
        source, target = names[edge.source], names[edge.target]
        k = int(source.split("^{(")[1].rstrip(")}"))
        j = int(source.split("_{")[1].split("}")[0])
        i = int(target.split("_{")[1].split("}")[0])
        assert edge.name == f"w_{{{i},{j}}}^{{({k})}}"
        assert edge.value == HAND_WEIGHTS[(k, i, j)]
        assert parse_number(edge.label.split(" = ")[1]) == HAND_WEIGHTS[(k, i, j)]
    labels = {edge.label for edge in d.edges}
    assert "w_{1,2}^{(1)} = −10" in labels and "w_{2,2}^{(1)} = 15" in labels
    assert render.plain_text("w_{1,2}^{(1)} = −10") == "w1,2(1) = −10"


def test_draw_network_colours_by_sign_and_widths_by_magnitude() -> None:
    """Blue positive, red negative, grey zero; wider for larger |w|; plain when color=False."""
    d = draw_network(titanic_stand_in())
    by_value = {edge.value: edge for edge in d.edges}
    assert by_value[15.0].color == POSITIVE_COLOR and by_value[5.0].color == POSITIVE_COLOR
    assert by_value[-10.0].color == NEGATIVE_COLOR and by_value[-1.0].color == NEGATIVE_COLOR
    assert by_value[0.0].color == ZERO_COLOR
    ordered = sorted(d.edges, key=lambda e: abs(e.value or 0.0))
    widths = [e.width or 0.0 for e in ordered]
    assert widths == sorted(widths) and widths[0] < widths[-1]
    assert by_value[15.0].width == max(widths)
    plain = draw_network(titanic_stand_in(), color=False)
    assert all(e.color is None and e.width is None for e in plain.edges)
    assert f'stroke="{NEGATIVE_COLOR}"' in d.svg and NEGATIVE_COLOR not in plain.svg


def test_draw_network_has_bias_units_at_the_bottom_of_each_layer() -> None:
    """Layers 1..m−1 end with a bias unit x_{n_k+1}^{(k)} fixed at 1; the output has none."""
    d = draw_network(titanic_stand_in())
    bias = [n for n in d.nodes if n.kind == "bias"]
    assert [n.name for n in bias] == ["x_{3}^{(1)}", "x_{3}^{(2)}"]
    assert all(n.value == 1.0 and n.lines == ("= 1 (bias)",) for n in bias)
    layout = d.layout()
    index = {n.id: i for i, n in enumerate(d.nodes)}
    for unit in bias:
        same_layer = [n for n in d.nodes if n.rank == unit.rank and n.kind != "heading"]
        lowest = max(same_layer, key=lambda n: layout.nodes[index[n.id]].y)
        assert lowest is unit
    assert [n.kind for n in d.nodes if n.rank == 2] == ["heading", "output_unit"]
    no_bias = draw_network(StandInMLP([3, 2], ["identity"], bias=False))
    assert not [n for n in no_bias.nodes if n.kind == "bias"] and len(no_bias.edges) == 6


def test_draw_network_values_for_shows_the_forward_pass() -> None:
    """values_for=x puts each unit's value on it, matching the handout's sigmoid sums."""
    for age, male in ((4.0, 1.0), (30.0, 0.0), (30.0, 1.0)):
        d = draw_network(titanic_stand_in(), values_for=[age, male])
        female = sigmoid(0 * age - 10 * male + 5)
        young_male = sigmoid(-1 * age + 15 * male - 10)
        survives = sigmoid(2 * female + 2 * young_male - 1)
        expected = {
            "x_{1}^{(1)}": age,
            "x_{2}^{(1)}": male,
            "x_{1}^{(2)}": female,
            "x_{2}^{(2)}": young_male,
            "x_{1}^{(3)}": survives,
        }
        for name, value in expected.items():
            node = d.node(name)
            assert node.value == pytest.approx(value, rel=1e-12)
            assert parse_number(node.lines[0].removeprefix("= ")) == pytest.approx(value, rel=1e-3)
    # A 4-year-old boy: "young male" fires (σ(1) ≈ 0.731), "female" does not (σ(−5)).
    boy = draw_network(titanic_stand_in(), values_for=np.array([[4.0, 1.0]]))
    assert boy.node("x_{2}^{(2)}").lines == ("= 0.7311",)
    assert boy.node("x_{1}^{(2)}").lines == ("= 0.006693",)


def test_draw_network_weights_false_hides_labels() -> None:
    """weights=False draws the edges without labels (for networks too big to label)."""
    d = draw_network(titanic_stand_in(), weights=False)
    assert all(edge.label == "" for edge in d.edges)
    assert "weights hidden" in (d.caption or "")


def test_draw_network_weights_option_picks_names_values_or_both() -> None:
    """weights="values" shows numbers, "names" the handout names, "both" and True both."""
    by_option = {
        option: [e.label for e in draw_network(titanic_stand_in(), weights=option).edges]
        for option in ("values", "names", "both", True, False)
    }
    names = [f"w_{{{i},{j}}}^{{({k})}}" for (k, i, j) in HAND_WEIGHTS]
    values = [render_number(v) for v in HAND_WEIGHTS.values()]
    assert by_option["names"] == names
    assert by_option["values"] == values
    assert by_option["both"] == [f"{n} = {v}" for n, v in zip(names, values)]
    assert by_option[True] == by_option["both"]
    assert by_option[False] == [""] * 9
    with pytest.raises(DiagramError, match="weights must be one of 'values', 'names', 'both'"):
        draw_network(titanic_stand_in(), weights="labels")


def render_number(value: float) -> str:
    """A weight as the drawing prints it (integers without .0, a real minus sign)."""
    return f"{value:g}".replace("-", "−")


@pytest.mark.parametrize("unit", ["x2(2)", "x_{2}^{(2)}", "x₂⁽²⁾", (2, 2)])
def test_draw_network_highlight_emphasises_a_units_incoming_weights(unit: Any) -> None:
    """highlight=x₂⁽²⁾ marks its 3 incoming weights and their units; the rest is faded."""
    d = draw_network(titanic_stand_in(), highlight=unit)
    target = d.node("x_{2}^{(2)}")
    into = [e for e in d.edges if e.target == target.id]
    assert len(into) == 3 and all(e.highlighted for e in into)
    others = [e for e in d.edges if e.target != target.id]
    assert not any(e.highlighted for e in others)
    assert all(e.color == FADED_COLOR and e.label == "" for e in others)
    assert {e.label for e in into} == {
        "w_{2,1}^{(1)} = −1",
        "w_{2,2}^{(1)} = 15",
        "w_{2,3}^{(1)} = −10",
    }
    marked = {n.name for n in d.nodes if n.highlighted}
    assert marked == {"x_{1}^{(1)}", "x_{2}^{(1)}", "x_{3}^{(1)}", "x_{2}^{(2)}"}
    assert "highlighted: the weights into x_{2}^{(2)}" in (d.caption or "")
    assert 'class="edge highlighted"' in d.svg


def test_draw_network_highlight_refuses_units_without_incoming_weights() -> None:
    """Input units, bias units, missing layers and unreadable names are refused clearly."""
    mlp = titanic_stand_in()
    with pytest.raises(DiagramError, match="input unit"):
        draw_network(mlp, highlight="x1(1)")
    with pytest.raises(DiagramError, match=r"layer 2 has units 1 to 2, not 3 \(the bias unit"):
        draw_network(mlp, highlight=(2, 3))
    with pytest.raises(DiagramError, match="there is no layer 4"):
        draw_network(mlp, highlight="x1(4)")
    with pytest.raises(DiagramError, match="such as 'x1\\(2\\)'"):
        draw_network(mlp, highlight="unit 1")
    with pytest.raises(DiagramError, match="a \\(layer, unit\\) pair"):
        draw_network(mlp, highlight=(2,))  # type: ignore[arg-type]


def test_draw_network_svg_and_png_are_readable(tmp_path: Path) -> None:
    """The SVG parses and shows units, headings and weights; the PNG is written."""
    d = draw_network(titanic_stand_in(), values_for=[4, 1])
    root = ET.fromstring(d.svg)
    texts = [
        "".join(t.itertext()).replace("\u00a0", " ") for t in root.iter() if t.tag.endswith("}text")
    ]
    for node in d.nodes:
        assert render.plain_text(node.title) in texts
    for edge in d.edges:
        assert render.plain_text(edge.label) in texts
    assert "layer 2: hidden, sigmoid" in texts and "layer 3: output, sigmoid" in texts
    d.save(tmp_path / "titanic.png")
    assert (tmp_path / "titanic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_draw_network_lays_layers_out_in_order() -> None:
    """LR: layer k is a column left of layer k+1, units top to bottom; TB: rows."""
    for rankdir, along, across in (("LR", "x", "y"), ("TB", "y", "x")):
        d = draw_network(titanic_stand_in(), rankdir=rankdir)
        layout = d.layout()
        place = {n.id: layout.nodes[i] for i, n in enumerate(d.nodes)}
        for edge in d.edges:
            assert getattr(place[edge.target], along) > getattr(place[edge.source], along)
        first_layer = [n for n in d.nodes if n.rank == 0 and n.kind != "heading"]
        positions = [getattr(place[n.id], across) for n in first_layer]
        assert positions == sorted(positions)
        extent = "height" if rankdir == "LR" else "width"
        heading_places = [place[n.id] for n in d.nodes if n.kind == "heading"]
        # Headings sit in one line before the units: their inner edges line up.
        inner = [getattr(p, across) + getattr(p, extent) / 2 for p in heading_places]
        assert max(inner) - min(inner) < 1e-9
        units = [place[n.id] for n in d.nodes if n.kind != "heading"]
        assert max(inner) < min(getattr(p, across) - getattr(p, extent) / 2 for p in units)


def test_draw_network_matches_a_real_mlp_and_neuron_mlp() -> None:
    """chainrule.nn.MLP and NeuronMLP with set_weights draw the same labels and values."""
    mlp = cr.nn.MLP([2, 2, 1], activation="sigmoid", output_activation="sigmoid", seed=0)
    mlp.set_weights({f"w{k}[{i},{j}]": v for (k, i, j), v in HAND_WEIGHTS.items()})
    neurons = cr.nn.NeuronMLP.from_mlp(mlp)
    stand_in = draw_network(titanic_stand_in(), values_for=[4, 1])
    for model in (mlp, neurons):
        d = draw_network(model, values_for=[4, 1])
        assert [e.label for e in d.edges] == [e.label for e in stand_in.edges]
        assert [n.label for n in d.nodes] == [n.label for n in stand_in.nodes]
    output = mlp(cr.tensor([[4.0, 1.0]])).item()
    assert draw_network(mlp, values_for=[4, 1]).node("x_{1}^{(3)}").value == pytest.approx(output)


def test_draw_network_uses_the_networks_own_activations() -> None:
    """Unit values follow each layer's activation, named or callable (relu, identity, tanh)."""
    model = StandInMLP([1, 2, 1], ["relu", cr.tanh])
    model.set(1, 1, 1, 2.0)
    model.set(1, 2, 1, -3.0)
    model.set(2, 1, 1, 1.0)
    model.set(2, 1, 2, 1.0)
    model.set(2, 1, 3, 0.5)
    d = draw_network(model, values_for=[1.5])
    assert d.node("x_{1}^{(2)}").value == 3.0
    assert d.node("x_{2}^{(2)}").value == 0.0
    assert d.node("x_{1}^{(3)}").value == pytest.approx(math.tanh(3.5))
    assert d.node("layer 3: output, tanh").kind == "heading"


def test_draw_network_refuses_what_is_not_an_mlp() -> None:
    """Wrong objects, shapes and inputs are refused with what was expected."""
    with pytest.raises(TypeError, match="has no sizes, activations, state_dict"):
        draw_network(object())
    broken = titanic_stand_in()
    broken.state["layers.0.weight"] = np.zeros((3, 2))
    shapes = r"layers.0.weight has shape \(3, 2\), expected \(2, 2\)"
    with pytest.raises(DiagramError, match=shapes):
        draw_network(broken)
    with pytest.raises(DiagramError, match="one example of 2 numbers"):
        draw_network(titanic_stand_in(), values_for=[1, 2, 3])
    with pytest.raises(DiagramError, match="2 layers after the input but 1 activations"):
        draw_network(StandInMLP([2, 2, 1], ["sigmoid"]))


def _unit_line(diagram: Any, title: str, prefix: str) -> str:
    node = next(node for node in diagram.nodes if node.title == title)
    return next(line for line in node.lines if line.startswith(prefix))


def test_draw_network_names_the_inputs() -> None:
    """inputs=["age", "male"] shows each name under its input unit; a wrong count is refused."""
    diagram = draw_network(titanic_stand_in(), inputs=["age", "male"])
    assert _unit_line(diagram, "x_{1}^{(1)}", "age") == "age"
    assert _unit_line(diagram, "x_{2}^{(1)}", "male") == "male"
    with pytest.raises(DiagramError, match="one name per input"):
        draw_network(titanic_stand_in(), inputs=["age"])


def test_draw_network_shows_gradients_and_deltas_for_one_example() -> None:
    """target= adds ∂L/∂w on edges and δ = ∂L/∂s on units, the handout's closed forms."""
    x, y = [4.0, 1.0], 1.0
    diagram = draw_network(titanic_stand_in(), values_for=x, target=y, loss="log_loss")
    h1, h2 = sigmoid(0 * 4 - 10 * 1 + 5), sigmoid(-1 * 4 + 15 * 1 - 10)
    p = sigmoid(2 * h1 + 2 * h2 - 1)
    delta_out = p - y  # sigmoid output with the log loss
    delta_hidden = [delta_out * 2 * h * (1 - h) for h in (h1, h2)]
    shown_out = _unit_line(diagram, "x_{1}^{(3)}", "δ")
    assert parse_number(shown_out.split("= ")[1]) == pytest.approx(delta_out, rel=1e-3)
    for unit, expected in zip((1, 2), delta_hidden):
        line = _unit_line(diagram, f"x_{{{unit}}}^{{(2)}}", "δ")
        assert parse_number(line.split("= ")[1]) == pytest.approx(expected, rel=1e-3)
    slopes = {
        edge.name: parse_number(edge.label.split("∂L/∂w = ")[1])
        for edge in diagram.edges
        if edge.name is not None
    }
    assert slopes["w_{1,2}^{(2)}"] == pytest.approx(delta_out * h2, rel=1e-3)
    assert slopes["w_{2,1}^{(1)}"] == pytest.approx(delta_hidden[1] * 4.0, rel=1e-3)
    assert slopes["w_{2,3}^{(1)}"] == pytest.approx(delta_hidden[1], rel=1e-3)
    assert "δ = ∂L/∂s" in diagram.caption and "log_loss" in diagram.caption


def test_draw_network_gradients_agree_with_the_tensor_backward() -> None:
    """The drawn ∂L/∂w equal the tensor MLP's own gradients for the square loss."""
    mlp = cr.nn.MLP([2, 3, 1], activation="tanh", output_activation="sigmoid", seed=3)
    x, y = [0.4, -1.2], 0.0
    cr.nn.square_loss(mlp(cr.tensor([x])), [[y]], reduction="sum").backward()
    expected = mlp.get_gradients()
    diagram = draw_network(mlp, values_for=x, target=y, loss="square_loss", weights="names")
    for edge in diagram.edges:
        i, j, k = (int(n) for n in re.findall(r"\d+", edge.name or ""))  # w_{i,j}^{(k)}
        drawn = parse_number(edge.label.split("∂L/∂w = ")[1])
        assert drawn == pytest.approx(expected[f"w{k}[{i},{j}]"], rel=2e-3, abs=1e-6)


def test_draw_network_target_needs_an_example() -> None:
    """target without values_for is refused with a message saying what to pass."""
    with pytest.raises(DiagramError, match="values_for"):
        draw_network(titanic_stand_in(), target=1.0)


def test_draw_network_caption_names_the_shape_convention() -> None:
    """The caption writes the handouts' 3→2→1 for sizes [2, 2, 1] and says why."""
    caption = draw_network(titanic_stand_in()).caption
    assert "MLP 3→2→1" in caption
    assert "input width counts the bias unit" in caption
