"""PNG figures of the Titanic experiment (needs the ``plot`` extra, matplotlib).

Figures are drawn with matplotlib's object-oriented API on the Agg canvas, so making
them never touches pyplot's global state or opens a window, and each PNG is written
atomically (a temporary file in the same folder, renamed into place).
"""

from __future__ import annotations

import io
import math
import os
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from .._files import write_bytes_atomically
from ..explanations.network import NEGATIVE_COLOR, POSITIVE_COLOR, ZERO_COLOR
from ..functional import no_grad
from ..nn.handout_names import handout_shape
from .titanic import AGE_GRID, TitanicResults

#: The files :func:`write_figures` makes, in order.
FIGURE_FILES = ("loss_curves.png", "hidden_units.png", "network.png")

_MEN_COLOUR = "#1f77b4"
_WOMEN_COLOUR = "#d62728"


def _matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            'the Titanic figures need matplotlib: pip install "chainrule[plot]"'
        ) from None
    return Figure, FigureCanvasAgg


def write_figures(results: TitanicResults, folder: str | os.PathLike[str]) -> list[Path]:
    """Draw the experiment's figures into ``folder`` (created if needed).

    Args:
        results: what :func:`chainrule.experiments.run_titanic_experiment` returned.
        folder: where to write :data:`FIGURE_FILES`.

    Returns:
        The paths written.

    Raises:
        ImportError: matplotlib is not installed (names the extra to install).
        NotADirectoryError: ``folder`` exists and is a file.
    """
    figure_class, canvas_class = _matplotlib()
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"--out {target} is a file, not a folder")
    # Draw everything before creating the folder or any file: a drawing error
    # leaves nothing behind.
    drawings = [
        _loss_curves(figure_class, results),
        _hidden_units(figure_class, results),
        _networks(figure_class, results),
    ]
    images = []
    for figure in drawings:
        canvas_class(figure)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=120)
        images.append(buffer.getvalue())
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, image in zip(FIGURE_FILES, images):
        path = target / name
        write_bytes_atomically(path, image)
        written.append(path)
    return written


def _loss_curves(figure_class: Any, results: TitanicResults) -> Any:
    figure = figure_class(figsize=(7.5, 4.5), layout="constrained")
    axes = figure.add_subplot()
    for name, curve in results.logistic_curves.items():
        axes.plot(np.arange(1, len(curve) + 1), curve, label=name, linewidth=2)
    for index, restart in enumerate(results.restarts_all):
        best = index == results.best_restart
        axes.plot(
            np.arange(1, len(restart.loss_curve) + 1),
            restart.loss_curve,
            color="black" if best else "grey",
            alpha=1.0 if best else 0.5,
            linewidth=2 if best else 1,
            label=f"MLP 3→{results.hidden}→1, {'best start' if best else 'other starts'}"
            if best or index == (1 if results.best_restart == 0 else 0)
            else None,
        )
    axes.set_xscale("log")
    axes.set_xlabel("epoch (full batch)")
    axes.set_ylabel("mean log loss")
    axes.set_title(f"Training on the {results.passengers} Titanic passengers with an age")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    return figure


def _grid_layers(results: TitanicResults, male: float) -> tuple[np.ndarray, np.ndarray]:
    grid = np.column_stack([AGE_GRID, np.full(AGE_GRID.shape, male)])
    with no_grad():
        layers = results.network.layer_outputs(grid)
    return np.asarray(layers[1].data), np.asarray(layers[-1].data[:, 0])


def _hidden_units(figure_class: Any, results: TitanicResults) -> Any:
    panels = results.hidden + 1
    columns = min(panels, 3)
    rows = math.ceil(panels / columns)
    figure = figure_class(figsize=(4.2 * columns, 3.4 * rows), layout="constrained")
    hidden_men, output_men = _grid_layers(results, 1.0)
    hidden_women, output_women = _grid_layers(results, 0.0)
    for panel in range(panels):
        axes = figure.add_subplot(rows, columns, panel + 1)
        if panel < results.hidden:
            unit = results.hidden_units[panel]
            men, women = hidden_men[:, panel], hidden_women[:, panel]
            # The title says what the curves show: where the unit is on (> 0.5), per sex.
            title = f"hidden unit x{panel + 1}(2), on (> 0.5) for: {unit.description}"
            axes.set_title(textwrap.fill(title, 44), fontsize=9)
            axes.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
        else:
            men, women = output_men, output_women
            axes.set_title("output x1(3): probability of survival", fontsize=10)
            axes.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
        axes.plot(AGE_GRID, men, color=_MEN_COLOUR, label="men", linewidth=2)
        axes.plot(AGE_GRID, women, color=_WOMEN_COLOUR, label="women", linewidth=2)
        axes.axvline(results.young_age, color="grey", linewidth=0.8, linestyle="--")
        axes.set_xlabel("age (years)")
        axes.set_ylim(-0.05, 1.05)
        axes.grid(True, alpha=0.3)
        if panel == 0:
            axes.legend(fontsize=8)
    figure.suptitle(
        f"What the trained network computes (dashed: young = under {results.young_age:g})"
    )
    return figure


def _networks(figure_class: Any, results: TitanicResults) -> Any:
    figure = figure_class(figsize=(13, 6.2), layout="constrained")
    learned = figure.add_subplot(1, 2, 1)
    hand = figure.add_subplot(1, 2, 2)
    _draw_network(learned, results.network.get_weights(), results.hidden)
    learned.set_title(f"learned by backprop (age in years)\n{_shape(results.hidden)}", fontsize=10)
    _draw_network(hand, results.hand_network.get_weights(), 2)
    hand.set_title(f"hand-set, exercise 2 (a)-(c)\n{_shape(2)}", fontsize=10)
    figure.legend(
        handles=_legend_handles(),
        loc="outside lower center",
        ncols=3,
        fontsize=9,
        frameon=False,
    )
    return figure


def _shape(hidden: int) -> str:
    shape = handout_shape([2, hidden, 1], bias=True)
    return f"MLP {shape}, as the handouts count: the inputs are age, male and the bias unit"


def _legend_handles() -> list[Any]:
    from matplotlib.lines import Line2D  # matplotlib is an optional extra

    return [
        Line2D([], [], color=POSITIVE_COLOR, linewidth=2.5, label="positive weight"),
        Line2D([], [], color=NEGATIVE_COLOR, linewidth=2.5, label="negative weight"),
        Line2D([], [], color="black", linewidth=0, label="line width grows with |w|"),
    ]


# Node radius in data units (the axes keep equal scales), and how far along an edge,
# from its source, each weight label sits: labels of edges into one target share a
# fraction, and each target gets its own, so no label lies on a node or on another.
_RADIUS = 0.16
_LABEL_FRACTIONS = (0.3, 0.55, 0.42)


def _draw_network(axes: Any, weights: dict[str, float], hidden: int) -> None:
    """Draw the 3→hidden→1 network with every weight on its edge (handout layout).

    Colours are :func:`chainrule.draw_network`'s: blue positive, red negative weights.
    """
    from matplotlib.patches import Circle  # matplotlib is an optional extra

    inputs = ["age\nx1(1)", "male\nx2(1)", "1 (bias)\nx3(1)"]
    hiddens = [f"x{i}(2)" for i in range(1, hidden + 1)] + ["1 (bias)\n" + f"x{hidden + 1}(2)"]
    positions: dict[tuple[int, int], tuple[float, float]] = {}

    def column(layer: int, names: list[str], x: float) -> None:
        for index, _ in enumerate(names):
            y = ((len(names) - 1) / 2 - index) * 1.1
            positions[(layer, index)] = (x, y)

    column(1, inputs, 0.0)
    column(2, hiddens, 1.6)
    column(3, ["x1(3)"], 3.2)
    largest = max(abs(value) for value in weights.values()) or 1.0

    def edge(source: tuple[int, int], target: tuple[int, int], name: str, fraction: float) -> None:
        value = weights[name]
        (x0, y0), (x1, y1) = positions[source], positions[target]
        axes.plot(
            [x0, x1],
            [y0, y1],
            color=POSITIVE_COLOR if value > 0 else NEGATIVE_COLOR if value < 0 else ZERO_COLOR,
            linewidth=0.6 + 3.9 * abs(value) / largest,
            alpha=0.85,
            zorder=1,
        )
        axes.text(
            x0 + (x1 - x0) * fraction,
            y0 + (y1 - y0) * fraction,
            f"{name} = {value:.3g}",
            fontsize=7,
            ha="center",
            va="center",
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"},
            zorder=3,
        )

    low, high, single = _LABEL_FRACTIONS
    for i in range(hidden):
        fraction = single if hidden == 1 else low + (high - low) * i / (hidden - 1)
        for j in range(3):
            edge((1, j), (2, i), f"w1[{i + 1},{j + 1}]", fraction)
    for j in range(hidden + 1):
        edge((2, j), (3, 0), f"w2[1,{j + 1}]", single)
    labels = {1: inputs, 2: hiddens, 3: ["x1(3)\nsurvived"]}
    for (layer, index), (x, y) in positions.items():
        bias = labels[layer][index].startswith("1 (bias)")
        axes.add_patch(
            Circle(
                (x, y),
                _RADIUS,
                facecolor="#eeeeee" if bias else "white",
                edgecolor="black",
                zorder=2,
            )
        )
        axes.text(x, y, labels[layer][index], ha="center", va="center", fontsize=7, zorder=4)
    ys = [y for _, y in positions.values()]
    axes.set_xlim(-_RADIUS - 0.1, 3.2 + _RADIUS + 0.1)
    axes.set_ylim(min(ys) - _RADIUS - 0.1, max(ys) + _RADIUS + 0.1)
    axes.set_aspect("equal")
    axes.set_axis_off()
