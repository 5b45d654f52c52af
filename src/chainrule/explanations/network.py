"""Draw a multi-layer perceptron as the handouts do: units in layers, weights on edges.

The drawing follows the Titanic figure of the assignment: layer k's units are
``x_i^(k)`` (inputs first, the output last), each layer but the output has a bias unit
fixed at 1 at its bottom (``x_{n_k+1}^(k)``), and the edge from unit j of layer k to
unit i of layer k+1 carries the weight ``w_{i,j}^(k)`` and its value. Only the network
contract is used — ``sizes``, ``activations`` and ``state_dict()`` — so the tensor MLP
and the neuron-level NeuronMLP draw the same.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..nn import NeuronMLP, get_activation, get_loss
from ..nn.handout_names import SHAPE_CONVENTION, handout_shape
from ..tensor import tensor
from . import render
from .diagram import Diagram, DiagramEdge, DiagramError, DiagramNode, format_number
from .render import EDGE_LABEL_SIZE, LINE_SPACING, text_width

POSITIVE_COLOR = "#1c5fb8"  # blue: a positive weight
NEGATIVE_COLOR = "#c92a2a"  # red: a negative weight
ZERO_COLOR = "#9a9a9a"
FADED_COLOR = "#c8c8c8"  # edges outside a highlighted unit's incoming weights
#: What ``weights=`` may show on each edge.
WEIGHT_LABELS = ("values", "names", "both")
_MIN_WIDTH, _MAX_WIDTH = 0.6, 4.5  # edge widths for the smallest and largest |w|


def draw_network(
    mlp: Any,
    *,
    weights: bool | str = True,
    color: bool = True,
    values_for: Sequence[float] | np.ndarray | None = None,
    rankdir: str = "LR",
    highlight: str | tuple[int, int] | None = None,
    inputs: Sequence[str] | None = None,
    target: float | Sequence[float] | None = None,
    loss: str = "log_loss",
) -> Diagram:
    """Draw an MLP with its units, bias units and weights, as in the handouts.

    Args:
        mlp: a :class:`chainrule.nn.MLP` or :class:`chainrule.nn.NeuronMLP` (anything
            with ``sizes``, ``activations`` and ``state_dict()`` holding
            ``layers.{k}.weight`` of shape (n_{k+2}, n_{k+1}) and ``layers.{k}.bias``).
        weights: what every edge's label shows: ``"both"`` the weight's name and value
            (``w_{1,2}^{(1)} = −10``), ``"names"`` the name only, ``"values"`` the
            value only (``−10``), ``False`` nothing. ``True`` means ``"both"``.
        color: colour edges by the weight's sign (blue positive, red negative) and
            make them wider the larger its magnitude.
        values_for: one input example (n_1 numbers): every unit then shows its value
            for it, computed with the network's weights and activations.
        rankdir: ``"LR"`` (layers as columns) or ``"TB"`` (layers as rows).
        highlight: a unit whose incoming weights to emphasise (the logistic regression
            it computes): ``"x1(2)"`` (unit 1 of layer 2; also ``"x_{1}^{(2)}"`` or
            ``"x₁⁽²⁾"``) or ``(2, 1)`` as (layer, unit), layers counted from 1 at the
            input. Those edges and the units at their ends are drawn highlighted; the
            other edges are faded and unlabelled.
        inputs: names of the input units (``["age", "male"]``), shown under x_j^(1).
        target: the example's target y (one number per output unit). With
            ``values_for``, every edge then also shows ∂L/∂w and every unit after the
            input its δ = ∂L/∂s, computed by chainrule's backward pass on the
            neuron-level network for that one example.
        loss: the loss L for ``target``: a name from :data:`chainrule.nn.LOSSES`
            that takes Values (``"log_loss"``, ``"square_loss"``), summed over outputs.

    Returns:
        a :class:`~chainrule.explanations.Diagram` (``.svg``, ``.save(path)``, …).
    """
    if rankdir not in _LABEL_FRACTIONS:
        raise DiagramError(f"rankdir must be one of 'LR', 'TB', not {rankdir!r}")
    shown = _weight_labels(weights)
    sizes, activations, layers = _read_network(mlp)
    target_unit = None if highlight is None else _highlighted_unit(highlight, sizes)
    unit_values = None if values_for is None else _forward(values_for, sizes, activations, layers)
    input_names = _input_names(inputs, sizes[0])
    gradients = None
    if target is not None:
        if values_for is None:
            raise DiagramError(
                "target needs values_for: ∂L/∂w and δ are computed for one example; "
                "pass values_for=[...] with the target"
            )
        gradients = _backprop(mlp, values_for, target, loss)
    largest = max((float(np.max(np.abs(w))) for w, _ in layers if w.size), default=0.0)
    largest = max(
        largest,
        max((float(np.max(np.abs(b))) for _, b in layers if b is not None and b.size), default=0.0),
    )

    nodes: list[DiagramNode] = []
    unit_ids: list[list[str]] = []  # per layer: unit ids, then the bias unit's
    depth = len(sizes)
    for k, size in enumerate(sizes, start=1):
        role = "input" if k == 1 else "output" if k == depth else "hidden"
        heading = f"layer {k}: {role}"
        if k > 1:
            heading += f", {_activation_name(activations[k - 2])}"
        nodes.append(
            DiagramNode(f"n{len(nodes)}", heading, heading, kind="heading", rank=k - 1, order=-1)
        )
        ids = []
        kind = {"input": "input_unit", "output": "output_unit"}.get(role, "unit")
        for i in range(1, size + 1):
            name = f"x_{{{i}}}^{{({k})}}"
            value = None if unit_values is None else float(unit_values[k - 1][i - 1])
            lines: tuple[str, ...] = () if value is None else (f"= {format_number(value)}",)
            if k == 1 and input_names is not None:
                lines = (input_names[i - 1], *lines)
            if gradients is not None and k > 1:
                lines = (*lines, f"δ = {format_number(gradients.deltas[k - 2][i - 1])}")
            node = DiagramNode(
                f"n{len(nodes)}", name, name, lines, kind, value=value, rank=k - 1, order=i
            )
            nodes.append(node)
            ids.append(node.id)
        if k < depth and layers[k - 1][1] is not None:
            name = f"x_{{{size + 1}}}^{{({k})}}"
            node = DiagramNode(
                f"n{len(nodes)}",
                name,
                name,
                ("= 1 (bias)",),
                "bias",
                1.0,
                rank=k - 1,
                order=size + 1,
            )
            nodes.append(node)
            ids.append(node.id)
        unit_ids.append(ids)

    low, high, single = _LABEL_FRACTIONS[rankdir]
    edges: list[DiagramEdge] = []
    label_sizes: list[tuple[float, float]] = []  # per layer: widest label along, across
    for k, (weight, bias) in enumerate(layers, start=1):
        sources = unit_ids[k - 1]
        targets = unit_ids[k][: sizes[k]]
        widest = 0.0
        line_count = 1
        for i, target_id in enumerate(targets, start=1):
            incoming = list(weight[i - 1])
            if bias is not None:
                incoming.append(bias[i - 1])
            if len(targets) == 1:
                fraction = single
            else:
                fraction = low + (high - low) * (i - 1) / (len(targets) - 1)
            for j, w in enumerate(incoming, start=1):
                name = f"w_{{{i},{j}}}^{{({k})}}"
                label = _weight_label(name, float(w), shown)
                if gradients is not None:
                    slope = format_number(gradients.weights[k - 1][i - 1][j - 1])
                    label = "\n".join(filter(None, (label, f"∂L/∂w = {slope}")))
                line_count = max(line_count, label.count("\n") + 1)
                widest = max(
                    widest, max(text_width(line, EDGE_LABEL_SIZE) for line in label.split("\n")) + 8
                )
                edges.append(
                    DiagramEdge(
                        f"e{len(edges)}",
                        sources[j - 1],
                        target_id,
                        value=float(w),
                        label=label,
                        name=name,
                        color=_weight_color(float(w)) if color else None,
                        width=_weight_width(float(w), largest) if color else None,
                        label_position=fraction,
                    )
                )
        tall = EDGE_LABEL_SIZE * LINE_SPACING * line_count + 4
        label_sizes.append((widest, tall) if rankdir == "LR" else (tall, widest))
    labelled = shown or gradients is not None
    rank_gaps, node_gap = _spacing(nodes, sizes, label_sizes, rankdir) if labelled else ({}, 34.0)
    # Highlighting draws its own colours, so the sign legend would not apply.
    caption = _caption(
        sizes, activations, color and target_unit is None, shown, bool(layers[0][1] is not None)
    )
    if gradients is not None:
        caption += (
            f"\nedges also: ∂L/∂w; units: δ = ∂L/∂s, for x = {_numbers(values_for)} and "
            f"y = {_numbers(target)} with L = {gradients.loss_name}"
        )
    if target_unit is not None:
        layer, unit = target_unit
        nodes, edges = _highlight_unit(nodes, edges, unit_ids[layer - 1][unit - 1])
        caption += f"\nhighlighted: the weights into x_{{{unit}}}^{{({layer})}}"
    return Diagram(
        nodes,
        edges,
        rankdir=rankdir,
        caption=caption,
        engine="python",  # Graphviz would not keep the layers' order or the label lines
        balance=False,
        node_gap=node_gap,
        rank_gaps=rank_gaps,
    )


# Where weight labels sit along their edges, as fractions from the source:
# (first target unit, last target unit, a layer with one unit). Labels of the edges
# into one unit share one fraction, so they lie on a line across the drawing, spread
# out as their sources are; each target unit gets its own line. Top to bottom, labels
# are wide across the drawing, so they stay near the sources, where edges are apart.
_LABEL_FRACTIONS: dict[str, tuple[float, float, float]] = {
    "LR": (0.2, 0.7, 0.4),
    "TB": (0.1, 0.35, 0.2),
}
_LABEL_PAD = 10.0


def _spacing(
    nodes: list[DiagramNode],
    sizes: list[int],
    label_sizes: list[tuple[float, float]],
    rankdir: str,
) -> tuple[dict[int, float], float]:
    """Gaps between layers and between units so that no two weight labels overlap."""
    low, high, single = _LABEL_FRACTIONS[rankdir]
    rank_gaps: dict[int, float] = {}
    for k, (along, _) in enumerate(label_sizes):
        targets = sizes[k + 1]
        if targets == 1:
            # The label sits between the layers, clear of both.
            needed = (along / 2 + _LABEL_PAD) / min(single, 1 - single)
        else:
            # One line per target unit, the lines a label apart, the outer ones clear of
            # the units at either end.
            needed = max(
                (along + _LABEL_PAD) / ((high - low) / (targets - 1)),
                (along / 2 + _LABEL_PAD) / min(low, 1 - high),
            )
        rank_gaps[k] = max(120.0, needed)
    # Across, neighbouring labels on one line are (1 − fraction) × the distance between
    # their sources apart: put the closest pair of units far enough apart for that.
    fraction = max(high if any(s > 1 for s in sizes[1:]) else 0.0, single)
    across = max(cross for _, cross in label_sizes)
    extents: list[float] = []
    for node in nodes:
        if node.kind != "heading":
            width, height, _ = render.measure_node(node)
            extents.append(height if rankdir == "LR" else width)
    closest = min(extents) / 2 + max(extents) / 2
    node_gap = max(34.0, (across + _LABEL_PAD) / (1 - fraction) - closest)
    return rank_gaps, node_gap


def _weight_color(w: float) -> str:
    if w > 0:
        return POSITIVE_COLOR
    if w < 0:
        return NEGATIVE_COLOR
    return ZERO_COLOR


def _weight_width(w: float, largest: float) -> float:
    if largest <= 0:
        return _MIN_WIDTH
    return _MIN_WIDTH + (_MAX_WIDTH - _MIN_WIDTH) * abs(w) / largest


def _activation_name(activation: Any) -> str:
    if activation is None:
        return "identity"
    if isinstance(activation, str):
        return activation
    return str(getattr(activation, "__name__", type(activation).__name__))


def _caption(
    sizes: list[int], activations: list[Any], color: bool, weights: str | None, bias: bool
) -> str:
    lines = [
        f"MLP {handout_shape(sizes, bias)} ({SHAPE_CONVENTION})",
        "w_{i,j}^{(k)}: the weight from unit j of layer k to unit i of layer k+1"
        + ("; the last unit of a layer below the output is its bias, fixed at 1" if bias else ""),
    ]
    if color:
        lines.append("edges: blue positive, red negative weights; width grows with |w|")
    if not weights:
        lines.append('weights hidden (weights="both", "names" or "values" shows them)')
    return "\n".join(lines)


def _weight_labels(weights: bool | str) -> str | None:
    """What weight labels show ("values", "names", "both"), or None for no labels."""
    if weights is True:
        return "both"
    if weights is False:
        return None
    if isinstance(weights, str) and weights in WEIGHT_LABELS:
        return weights
    choices = ", ".join(repr(choice) for choice in WEIGHT_LABELS)
    raise DiagramError(f"weights must be one of {choices}, True or False, not {weights!r}")


def _weight_label(name: str, value: float, shown: str | None) -> str:
    if shown is None:
        return ""
    if shown == "names":
        return name
    if shown == "values":
        return format_number(value)
    return f"{name} = {format_number(value)}"


_SCRIPT_DIGITS = str.maketrans("₀₁₂₃₄₅₆₇₈₉⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾", "01234567890123456789()")
_UNIT_NAME = re.compile(r"x(\d+)\((\d+)\)")


def _highlighted_unit(highlight: str | tuple[int, int], sizes: list[int]) -> tuple[int, int]:
    """(layer, unit), both from 1, of a unit given as ``"x1(2)"`` or ``(2, 1)``."""
    if isinstance(highlight, str):
        # x_{1}^{(2)}, x₁⁽²⁾ and x1(2) all name unit 1 of layer 2.
        plain = re.sub(r"[\s_^{}]", "", highlight.translate(_SCRIPT_DIGITS))
        match = _UNIT_NAME.fullmatch(plain)
        if match is None:
            raise DiagramError(
                f"highlight takes a unit such as 'x1(2)' (unit 1 of layer 2) or (layer, unit), "
                f"not {highlight!r}"
            )
        layer, unit = int(match.group(2)), int(match.group(1))
    elif (
        isinstance(highlight, tuple)
        and len(highlight) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in highlight)
    ):
        layer, unit = int(highlight[0]), int(highlight[1])
    else:
        raise DiagramError(
            f"highlight takes a unit such as 'x1(2)' or a (layer, unit) pair, not {highlight!r}"
        )
    if not 1 <= layer <= len(sizes):
        raise DiagramError(
            f"highlight: the network has layers 1 to {len(sizes)}, there is no layer {layer}"
        )
    if layer == 1:
        raise DiagramError(
            f"highlight: x{unit}({layer}) is an input unit, which no weight feeds; "
            "highlight a unit of layer 2 or later"
        )
    if not 1 <= unit <= sizes[layer - 1]:
        bias = " (the bias unit, which no weight feeds)" if unit == sizes[layer - 1] + 1 else ""
        raise DiagramError(
            f"highlight: layer {layer} has units 1 to {sizes[layer - 1]}, not {unit}{bias}"
        )
    return layer, unit


def _highlight_unit(
    nodes: list[DiagramNode], edges: list[DiagramEdge], unit_id: str
) -> tuple[list[DiagramNode], list[DiagramEdge]]:
    """Highlight the edges into one unit and the units at their ends; fade the others."""
    edges = [
        replace(edge, highlighted=True)
        if edge.target == unit_id
        else replace(edge, color=FADED_COLOR, width=0.8, label="")
        for edge in edges
    ]
    members = {edge.source for edge in edges if edge.highlighted} | {unit_id}
    nodes = [replace(node, highlighted=True) if node.id in members else node for node in nodes]
    return nodes, edges


def _read_network(
    mlp: Any,
) -> tuple[list[int], list[Any], list[tuple[np.ndarray, np.ndarray | None]]]:
    """Sizes, activations and (weight, bias) per layer, checked against each other."""
    missing = [a for a in ("sizes", "activations", "state_dict") if not hasattr(mlp, a)]
    if missing:
        raise TypeError(
            f"draw_network takes an MLP (chainrule.nn.MLP or NeuronMLP); "
            f"{type(mlp).__name__} has no {', '.join(missing)}"
        )
    sizes = [int(s) for s in mlp.sizes]
    activations = list(mlp.activations)
    if len(sizes) < 2:
        raise DiagramError(f"an MLP needs at least 2 layers, this one has sizes {sizes}")
    if len(activations) != len(sizes) - 1:
        raise DiagramError(
            f"the MLP has {len(sizes) - 1} layers after the input but {len(activations)} "
            "activations"
        )
    state = mlp.state_dict()
    layers: list[tuple[np.ndarray, np.ndarray | None]] = []
    for k in range(len(sizes) - 1):
        key = f"layers.{k}.weight"
        if key not in state:
            raise DiagramError(f"the MLP's state_dict has no {key!r} (keys: {', '.join(state)})")
        weight = np.asarray(state[key], dtype=np.float64)
        expected = (sizes[k + 1], sizes[k])
        if weight.shape != expected:
            raise DiagramError(
                f"{key} has shape {weight.shape}, expected {expected} from sizes {sizes}"
            )
        bias = state.get(f"layers.{k}.bias")
        if bias is not None:
            bias = np.asarray(bias, dtype=np.float64)
            if bias.shape != (sizes[k + 1],):
                raise DiagramError(
                    f"layers.{k}.bias has shape {bias.shape}, expected {(sizes[k + 1],)}"
                )
        layers.append((weight, bias))
    return sizes, activations, layers


def _forward(
    values_for: Sequence[float] | np.ndarray,
    sizes: list[int],
    activations: list[Any],
    layers: list[tuple[np.ndarray, np.ndarray | None]],
) -> list[np.ndarray]:
    """Every layer's unit values for one example, with the network's own activations."""
    x = np.asarray(values_for, dtype=np.float64)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.shape != (sizes[0],):
        raise DiagramError(
            f"values_for takes one example of {sizes[0]} numbers (the input layer's width), "
            f"got shape {x.shape}"
        )
    values = [x]
    for (weight, bias), activation in zip(layers, activations):
        s = weight @ values[-1] + (0.0 if bias is None else bias)
        values.append(_activate(activation, s))
    return values


def _activate(activation: Any, s: np.ndarray) -> np.ndarray:
    function = get_activation(activation)
    result = function(tensor(s))
    return np.asarray(getattr(result, "data", result), dtype=np.float64).reshape(s.shape)


def _input_names(inputs: Sequence[str] | None, count: int) -> list[str] | None:
    if inputs is None:
        return None
    if isinstance(inputs, str) or not all(isinstance(name, str) for name in inputs):
        raise DiagramError(f"inputs takes a list of names such as ['age', 'male'], not {inputs!r}")
    names = list(inputs)
    if len(names) != count:
        raise DiagramError(
            f"inputs names {len(names)} input unit(s) ({', '.join(names)}), but the network "
            f"has {count}; give one name per input"
        )
    return names


def _numbers(values: Any) -> str:
    array = np.ravel(np.asarray(values, dtype=np.float64))
    if array.size == 1:
        return format_number(float(array[0]))
    return "[" + ", ".join(format_number(float(v)) for v in array) + "]"


@dataclass(frozen=True)
class _Gradients:
    """∂L/∂w per layer (as weight rows, bias weight last) and δ = ∂L/∂s per layer."""

    weights: list[np.ndarray]
    deltas: list[np.ndarray]
    loss_name: str


def _backprop(mlp: Any, values_for: Any, target: Any, loss: str) -> _Gradients:
    """Backward on the neuron-level twin of ``mlp`` for one example and its target."""
    sizes = [int(size) for size in mlp.sizes]
    state = mlp.state_dict()
    bias = "layers.0.bias" in state
    activations = list(mlp.activations)
    output = activations[-1]
    twin = NeuronMLP(
        sizes,
        activations[:-1] if len(activations) > 1 else "sigmoid",
        None if output in (None, "identity") else output,
        bias,
        seed=0,
    )
    twin.load_state_dict(state)
    example = np.ravel(np.asarray(values_for, dtype=np.float64))
    units, sums = twin.trace(list(example))
    if not isinstance(loss, str):
        raise DiagramError(f"loss is a loss name such as 'log_loss', not {loss!r}")
    try:
        function = get_loss(loss, reduction="sum")
        value = function(units[-1], list(np.ravel(np.asarray(target, dtype=np.float64))))
    except (TypeError, ValueError) as error:
        raise DiagramError(f"draw_network: cannot compute the loss {loss!r}: {error}") from None
    value.backward()
    grads = twin.gradient_dict()
    weights = []
    for k in range(len(sizes) - 1):
        rows = grads[f"layers.{k}.weight"]
        if bias:
            rows = np.column_stack([rows, grads[f"layers.{k}.bias"]])
        weights.append(rows)
    deltas = [np.array([s.grad for s in layer]) for layer in sums]
    return _Gradients(weights, deltas, loss)
