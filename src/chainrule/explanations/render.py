"""Writers for diagrams: SVG (pure Python), PNG and PDF (matplotlib), and DOT.

SVG, PNG and PDF all draw the same :class:`~chainrule.explanations.layout.Layout`, so a
figure looks the same in a notebook, a web page and a printed handout. DOT is the
diagram as Graphviz source, for people who want to restyle it with Graphviz.

Labels are plain text with one small piece of markup, as in TeX: ``x_{1}^{(2)}``
draws 1 as a subscript and (2) as a superscript, stacked over it. Everything else is
literal. :func:`readable_text` writes a label for text output (``x₁⁽²⁾``).
"""

from __future__ import annotations

import itertools
import math
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

from .._files import write_atomically
from ..errors import ChainruleError
from .diagram_model import DiagramEdge, DiagramNode, DrawnDiagram
from .layout import Layout, LayoutEdge, LayoutNode, Point, Route, spline_segments

FONT_FAMILY = "DejaVu Sans, Helvetica, Arial, sans-serif"
TITLE_SIZE = 13.0
LINE_SIZE = 11.0
EDGE_LABEL_SIZE = 11.0
CAPTION_SIZE = 10.5
LINE_SPACING = 1.3
SCRIPT_SCALE = 0.72  # sub- and superscripts, relative to their line
ARROW_LENGTH = 8.0
ARROW_HALF_WIDTH = 3.5
HIGHLIGHT_COLOR = "#d9480f"
EDGE_COLOR = "#4a4a4a"
EDGE_LABEL_COLOR = "#1f1f1f"


class RenderError(ChainruleError, RuntimeError):
    """A diagram could not be written (Graphviz failed, a file could not be replaced)."""


@dataclass(frozen=True)
class NodeStyle:
    """How one kind of node looks."""

    shape: str  # "ellipse", "circle", "box", "plain"
    fill: str
    stroke: str
    stroke_width: float = 1.2
    rounded: bool = False
    double: bool = False
    text_color: str = "#111111"
    bold: bool = False


STYLES: dict[str, NodeStyle] = {
    "leaf": NodeStyle("ellipse", "#e3edfb", "#2f5597"),
    "constant": NodeStyle("plain", "none", "none", text_color="#555555"),
    "interior": NodeStyle("ellipse", "#ffffff", "#444444"),
    "output": NodeStyle("ellipse", "#e3f4e6", "#2b7a3d", 1.6, double=True),
    "op": NodeStyle("circle", "#f1f1f1", "#777777", 1.0),
    "module": NodeStyle("box", "#fff3d6", "#b7791f", 1.4, rounded=True),
    "unit": NodeStyle("circle", "#ffffff", "#333333", 1.3),
    "input_unit": NodeStyle("circle", "#e3edfb", "#2f5597", 1.3),
    "output_unit": NodeStyle("circle", "#e3f4e6", "#2b7a3d", 1.6, double=True),
    "bias": NodeStyle("box", "#eeeeee", "#777777", 1.1, rounded=True),
    "heading": NodeStyle("plain", "none", "none", text_color="#333333", bold=True),
}


# --- text ------------------------------------------------------------------------------

_MARKUP = re.compile(r"([_^])\{([^{}]*)\}")
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def text_runs(text: str) -> list[tuple[str, str]]:
    """Split a label into runs of ``(text, kind)``, kind ``""``, ``"sub"`` or ``"sup"``."""
    runs: list[tuple[str, str]] = []
    position = 0
    for match in _MARKUP.finditer(text):
        if match.start() > position:
            runs.append((text[position : match.start()], ""))
        runs.append((match.group(2), "sub" if match.group(1) == "_" else "sup"))
        position = match.end()
    if position < len(text) or not runs:
        runs.append((text[position:], ""))
    return runs


def plain_text(text: str) -> str:
    """A label without its markup: ``w_{1,2}^{(1)}`` becomes ``w1,2(1)``."""
    return "".join(run for run, _ in text_runs(text))


_SUBSCRIPTS = dict(zip("0123456789+-−=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ"))
_SUPERSCRIPTS = dict(
    zip("0123456789+-−=()abcdefghijklmnoprstuvwxyzT", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᵀ")
)
# Characters that read well at full size between scripts (w₁,₂).
_KEPT_IN_SCRIPTS = frozenset(", ")


def readable_text(text: str, unicode: bool = True) -> str:
    """A label as plain text that reads like its drawing, for reports and tooltips.

    Args:
        text: a label, possibly with markup (``w_{1,2}^{(1)}``).
        unicode: ``True`` writes scripts with Unicode sub- and superscript characters
            (``w₁,₂⁽¹⁾``) where every character of a script has one, else as ``_(…)`` or
            ``^(…)``; ``False`` writes ASCII (``w_(1,2)^(1)``, ``x_1``).
    """
    parts = []
    for run, kind in text_runs(text):
        if not kind:
            parts.append(run)
            continue
        table = _SUBSCRIPTS if kind == "sub" else _SUPERSCRIPTS
        if unicode and run and all(c in table or c in _KEPT_IN_SCRIPTS for c in run):
            parts.append("".join(table.get(c, c) for c in run))
            continue
        mark = "_" if kind == "sub" else "^"
        bracketed = run.isalnum() or (run.startswith("(") and run.endswith(")"))
        parts.append(f"{mark}{run}" if bracketed else f"{mark}({run})")
    return "".join(parts)


def _char_width(char: str) -> float:
    """Advance width of one character in em, roughly DejaVu Sans (a wide font, so boxes
    drawn with narrower fonts only get a little roomier)."""
    if char in "il.,:;'|!()[]{}ftjrI ":
        return 0.36
    if char in "mwMW%@":
        return 0.92
    if char.isdigit():
        return 0.64
    if char.isupper():
        return 0.72
    if char.isascii():
        return 0.6
    if char in "⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾₀₁₂₃₄₅₆₇₈₉₍₎ᵀ":
        return 0.42
    return 0.8  # mathematical symbols: ∂ √ − · ‖ …


def _run_width(run: str, kind: str, size: float) -> float:
    scale = SCRIPT_SCALE if kind else 1.0
    return sum(_char_width(char) for char in run) * size * scale


def placed_runs(text: str, size: float) -> list[tuple[str, str, float]]:
    """Runs with the horizontal shift to apply before each, as TeX sets scripts: a
    superscript right after a subscript stacks over it (``x_{1}^{(2)}``)."""
    runs = text_runs(text)
    placed: list[tuple[str, str, float]] = []
    pending = 0.0  # room still owed after a stacked pair
    for index, (run, kind) in enumerate(runs):
        shift = pending
        pending = 0.0
        if kind == "sup" and index > 0 and runs[index - 1][1] == "sub":
            below = _run_width(runs[index - 1][0], "sub", size)
            above = _run_width(run, kind, size)
            shift = -below
            pending = max(0.0, below - above)
        placed.append((run, kind, shift))
    if pending and placed:
        placed.append(("", "", pending))
    return placed


def text_width(text: str, size: float) -> float:
    """Estimated width of a (marked-up) line of text at a font size, in points."""
    return sum(_run_width(run, kind, size) + shift for run, kind, shift in placed_runs(text, size))


def _lines_of(node: DiagramNode) -> list[tuple[str, float, bool]]:
    """(text, font size, bold) for each line a node shows."""
    lines = [(node.title, TITLE_SIZE, False)]
    lines.extend((line, LINE_SIZE, False) for line in node.lines)
    return lines


def _block_size(lines: Sequence[tuple[str, float, bool]]) -> tuple[float, float]:
    width = max((text_width(text, size) * (1.06 if bold else 1.0) for text, size, bold in lines))
    height = sum(size * LINE_SPACING for _, size, _ in lines)
    return width, height


def edge_label_lines(edge: DiagramEdge) -> list[str]:
    """The lines of an edge label (empty when the edge has none)."""
    return edge.label.split("\n") if edge.label else []


def _edge_label_size(edge: DiagramEdge) -> tuple[float, float]:
    lines = edge_label_lines(edge)
    if not lines:
        return 0.0, 0.0
    width = max(text_width(line, EDGE_LABEL_SIZE) for line in lines) + 8
    return width, len(lines) * EDGE_LABEL_SIZE * LINE_SPACING + 4


def measure_node(node: DiagramNode) -> tuple[float, float, str]:
    """Width, height and outline shape of a node, from its text."""
    style = STYLES[node.kind]
    text_w, text_h = _block_size(_lines_of(node))
    if style.shape == "plain":
        return text_w + 6, text_h + 4, "plain"
    if style.shape == "box":
        return text_w + 18, text_h + 12, "box"
    # The ellipse through the corners of the text block, plus a little air.
    width = text_w * math.sqrt(2) + 10
    height = text_h * math.sqrt(2) + 8
    if style.shape == "circle" or width < 1.35 * height:
        # The circle through the corners of the text block.
        diameter = max(math.hypot(text_w, text_h) + 12, 34.0)
        return diameter, diameter, "ellipse"
    return width, height, "ellipse"


_UNIT_KINDS = ("unit", "input_unit", "output_unit")


def layout_diagram(diagram: DrawnDiagram) -> Layout:
    """Lay out a diagram with the pure-Python layered layout."""
    from .layout import layered_layout

    index = {node.id: i for i, node in enumerate(diagram.nodes)}
    measured = [measure_node(node) for node in diagram.nodes]
    # Units of a network are drawn alike, whatever their values' lengths.
    unit_diameter = max(
        (m[0] for node, m in zip(diagram.nodes, measured) if node.kind in _UNIT_KINDS), default=0
    )
    layout_nodes = []
    for node, (width, height, shape) in zip(diagram.nodes, measured):
        if node.kind in _UNIT_KINDS:
            width = height = unit_diameter
        layout_nodes.append(LayoutNode(width, height, shape, node.rank, node.order))
    layout_edges = []
    for edge in diagram.edges:
        label_w, label_h = _edge_label_size(edge)
        layout_edges.append(
            LayoutEdge(
                index[edge.source], index[edge.target], label_w, label_h, edge.label_position
            )
        )
    return layered_layout(
        layout_nodes,
        layout_edges,
        rankdir=diagram.rankdir,
        balance=diagram.balance,
        node_gap=diagram.node_gap,
        rank_gaps=diagram.rank_gaps,
    )


# --- shared geometry ---------------------------------------------------------------------


def _fmt(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _edge_geometry(
    route: Route,
) -> tuple[list[Point], list[tuple[Point, Point, Point]], list[Point]]:
    """Start point, Bézier pieces (or straight ones) ending at the arrow's base, and the
    arrowhead triangle."""
    points = route.points
    smooth = route.smooth and len(points) > 2
    if smooth:
        pieces = spline_segments(points)
        last_control = pieces[-1][1]
    else:
        # A straight segment is a cubic whose controls sit on its ends.
        pieces = [(a, b, b) for a, b in itertools.pairwise(points)]
        last_control = points[-2]
    tip = points[-1]
    dx, dy = tip[0] - last_control[0], tip[1] - last_control[1]
    length = math.hypot(dx, dy)
    if length == 0:
        dx, dy = tip[0] - points[0][0], tip[1] - points[0][1]
        length = math.hypot(dx, dy) or 1.0
    ux, uy = dx / length, dy / length
    base = (tip[0] - ux * ARROW_LENGTH, tip[1] - uy * ARROW_LENGTH)
    c1, c2, _ = pieces[-1]
    if smooth:
        c2 = (c2[0] - ux * ARROW_LENGTH, c2[1] - uy * ARROW_LENGTH)
        pieces[-1] = (c1, c2, base)
    else:
        pieces[-1] = (c1, base, base)
    arrow = [
        tip,
        (base[0] - uy * ARROW_HALF_WIDTH, base[1] + ux * ARROW_HALF_WIDTH),
        (base[0] + uy * ARROW_HALF_WIDTH, base[1] - ux * ARROW_HALF_WIDTH),
    ]
    return [points[0]], pieces, arrow


def _edge_style(edge: DiagramEdge) -> tuple[str, float]:
    if edge.highlighted:
        return HIGHLIGHT_COLOR, max(2.6, edge.width or 0.0)
    return edge.color or EDGE_COLOR, edge.width or 1.1


def _caption_lines(diagram: DrawnDiagram) -> list[str]:
    return diagram.caption.split("\n") if diagram.caption else []


# --- SVG ---------------------------------------------------------------------------------


def _xml_text(text: str) -> str:
    return escape(_INVALID_XML.sub("", text))


def _xml_attr(text: str) -> str:
    return quoteattr(_INVALID_XML.sub("", text))


def _svg_text(
    x: float,
    y: float,
    text: str,
    size: float,
    color: str,
    bold: bool = False,
    anchor: str = "middle",
) -> str:
    """One line of text at (x, y); markup becomes smaller, raised or lowered tspans.

    A line with scripts places every run at its own x (from the same width estimates
    the layout uses), so a superscript stacks over its subscript in every renderer.
    """
    weight = ' font-weight="bold"' if bold else ""
    runs = placed_runs(text, size)
    scripted = any(kind for _, kind, _ in runs)
    start = x
    if scripted:
        if anchor == "middle":
            start = x - text_width(text, size) / 2
        anchor = "start"
    parts = [
        f'<text x="{_fmt(start)}" y="{_fmt(y)}" font-size="{_fmt(size)}" fill="{color}"'
        f' text-anchor="{anchor}" dominant-baseline="central" xml:space="preserve"{weight}>'
    ]
    position = start
    for run, kind, shift in runs:
        position += shift
        attributes = ""
        if scripted:
            rise = {"": 0.0, "sub": 0.3 * size, "sup": -0.38 * size}[kind]
            attributes = f' x="{_fmt(position)}" y="{_fmt(y + rise)}"'
            if kind:
                attributes += f' font-size="{_fmt(size * SCRIPT_SCALE)}"'
        position += _run_width(run, kind, size)
        if not run:
            continue
        # Spaces at the ends of a run would be dropped by some renderers: keep them.
        stripped = run.strip(" ")
        if stripped != run:
            lead = len(run) - len(run.lstrip(" "))
            trail = len(run) - len(run.rstrip(" "))
            run = "\u00a0" * lead + stripped + "\u00a0" * trail
        parts.append(f"<tspan{attributes}>{_xml_text(run)}</tspan>")
    parts.append("</text>")
    return "".join(parts)


def _svg_node(node: DiagramNode, placed: Any) -> list[str]:
    style = STYLES[node.kind]
    fill = node.fill or style.fill
    stroke = HIGHLIGHT_COLOR if node.highlighted else style.stroke
    stroke_width = style.stroke_width + (1.2 if node.highlighted else 0.0)
    x, y, w, h = placed.x, placed.y, placed.width, placed.height
    tooltip = "\n".join([readable_text(node.title), *map(readable_text, node.lines)])
    out = [f'<g class="node {node.kind}" id={_xml_attr(node.id)}>']
    out.append(f"<title>{_xml_text(tooltip)}</title>")
    common = f'fill="{fill}" stroke="{stroke}" stroke-width="{_fmt(stroke_width)}"'
    if style.shape == "plain":
        pass
    elif placed.shape == "box":
        radius = 6 if style.rounded else 0
        out.append(
            f'<rect x="{_fmt(x - w / 2)}" y="{_fmt(y - h / 2)}" width="{_fmt(w)}" '
            f'height="{_fmt(h)}" rx="{radius}" {common}/>'
        )
    else:
        radii = f'rx="{_fmt(w / 2)}" ry="{_fmt(h / 2)}"'
        out.append(f'<ellipse cx="{_fmt(x)}" cy="{_fmt(y)}" {radii} {common}/>')
        if style.double:
            out.append(
                f'<ellipse cx="{_fmt(x)}" cy="{_fmt(y)}" rx="{_fmt(w / 2 - 3)}" '
                f'ry="{_fmt(h / 2 - 3)}" fill="none" stroke="{stroke}" stroke-width="0.8"/>'
            )
    lines = _lines_of(node)
    _, block_h = _block_size(lines)
    top = y - block_h / 2
    for index, (text, size, _) in enumerate(lines):
        centre = top + size * LINE_SPACING / 2
        bold = style.bold or (index == 0 and node.kind in ("module",))
        color = style.text_color if index == 0 else "#333333"
        out.append(_svg_text(x, centre, text, size, color, bold))
        top += size * LINE_SPACING
    out.append("</g>")
    return out


def _svg_edge(edge: DiagramEdge, route: Route) -> list[str]:
    color, width = _edge_style(edge)
    start, pieces, arrow = _edge_geometry(route)
    d = [f"M{_fmt(start[0][0])},{_fmt(start[0][1])}"]
    for piece in pieces:
        d.append("C" + " ".join(f"{_fmt(px)},{_fmt(py)}" for px, py in piece))
    classes = "edge highlighted" if edge.highlighted else "edge"
    out = [f'<g class="{classes}" id={_xml_attr(edge.id)}>']
    if edge.label:
        out.append(f"<title>{_xml_text(readable_text(edge.label))}</title>")
    out.append(
        f'<path d="{" ".join(d)}" fill="none" stroke="{color}" stroke-width="{_fmt(width)}"/>'
    )
    points = " ".join(f"{_fmt(px)},{_fmt(py)}" for px, py in arrow)
    out.append(f'<polygon points="{points}" fill="{color}" stroke="{color}" stroke-width="0.5"/>')
    out.append("</g>")
    return out


def _svg_edge_label(edge: DiagramEdge, route: Route) -> list[str]:
    lines = edge_label_lines(edge)
    if not lines or route.label is None:
        return []
    width, height = _edge_label_size(edge)
    x, y = route.label
    text_color = HIGHLIGHT_COLOR if edge.highlighted else EDGE_LABEL_COLOR
    out = [f'<g class="edge-label" id={_xml_attr(edge.id + "-label")}>']
    out.append(
        f'<rect x="{_fmt(x - width / 2)}" y="{_fmt(y - height / 2)}" width="{_fmt(width)}" '
        f'height="{_fmt(height)}" rx="3" fill="#ffffff" fill-opacity="0.9" stroke="none"/>'
    )
    top = y - (len(lines) * EDGE_LABEL_SIZE * LINE_SPACING) / 2
    for line in lines:
        centre = top + EDGE_LABEL_SIZE * LINE_SPACING / 2
        out.append(_svg_text(x, centre, line, EDGE_LABEL_SIZE, text_color))
        top += EDGE_LABEL_SIZE * LINE_SPACING
    out.append("</g>")
    return out


def to_svg(diagram: DrawnDiagram, layout: Layout) -> str:
    """The diagram as a standalone SVG document (UTF-8 text)."""
    caption = _caption_lines(diagram)
    caption_height = len(caption) * CAPTION_SIZE * LINE_SPACING + (8 if caption else 0)
    width = max(layout.width, max((text_width(c, CAPTION_SIZE) + 24 for c in caption), default=0))
    height = layout.height + caption_height
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_fmt(width)}" height="{_fmt(height)}"'
        f' viewBox="0 0 {_fmt(width)} {_fmt(height)}" font-family={_xml_attr(FONT_FAMILY)}>',
        f'<rect width="{_fmt(width)}" height="{_fmt(height)}" fill="#ffffff"/>',
    ]
    # Edges first, nodes over them, labels on top so no line crosses a label's text.
    for edge, route in zip(diagram.edges, layout.edges):
        out.extend(_svg_edge(edge, route))
    for node, placed in zip(diagram.nodes, layout.nodes):
        out.extend(_svg_node(node, placed))
    for edge, route in zip(diagram.edges, layout.edges):
        out.extend(_svg_edge_label(edge, route))
    y = layout.height + 4
    for line in caption:
        y += CAPTION_SIZE * LINE_SPACING
        out.append(_svg_text(12, y - 3, line, CAPTION_SIZE, "#555555", anchor="start"))
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --- DOT ---------------------------------------------------------------------------------


def _html_label(lines: Sequence[tuple[str, float, bool]]) -> str:
    """A Graphviz HTML-like label: escaped text, <SUB>/<SUP> for markup, one line each."""
    rendered = []
    for text, size, bold in lines:
        body = []
        for run, kind in text_runs(_INVALID_XML.sub("", text)):
            piece = escape(run, {'"': "&quot;"})
            if kind == "sub":
                piece = f"<SUB>{piece}</SUB>"
            elif kind == "sup":
                piece = f"<SUP>{piece}</SUP>"
            body.append(piece)
        line = "".join(body) or " "
        if bold:
            line = f"<B>{line}</B>"
        rendered.append(f'<FONT POINT-SIZE="{_fmt(size)}">{line}</FONT>')
    return "<" + "<BR/>".join(rendered) + ">"


def _dot_attrs(attributes: dict[str, str]) -> str:
    parts = []
    for key, value in attributes.items():
        quoted = value if value.startswith("<") else '"' + value.replace('"', '\\"') + '"'
        parts.append(f"{key}={quoted}")
    return "[" + ", ".join(parts) + "]"


def to_dot(diagram: DrawnDiagram) -> str:
    """The diagram as Graphviz DOT source (labels are escaped HTML-like labels)."""
    shapes = {"ellipse": "ellipse", "circle": "circle", "box": "box", "plain": "plaintext"}
    out = [
        "digraph chainrule {",
        f"  graph {_dot_attrs({'rankdir': diagram.rankdir, 'fontname': 'Helvetica'})};",
        f"  node {_dot_attrs({'fontname': 'Helvetica', 'margin': '0.05,0.03'})};",
        f"  edge {_dot_attrs({'fontname': 'Helvetica', 'fontsize': _fmt(EDGE_LABEL_SIZE)})};",
    ]
    caption = _caption_lines(diagram)
    if caption:
        label = _html_label([(line, CAPTION_SIZE, False) for line in caption])
        out.append(f"  graph {_dot_attrs({'label': label, 'labelloc': 'b'})};")
    for node in diagram.nodes:
        style = STYLES[node.kind]
        attributes = {
            "label": _html_label(_lines_of(node)),
            "shape": shapes[style.shape],
        }
        if style.shape == "box":
            attributes["style"] = "rounded,filled" if style.rounded else "filled"
        elif style.shape != "plain":
            attributes["style"] = "filled"
        if style.fill != "none" or node.fill:
            attributes["fillcolor"] = node.fill or style.fill
        if style.double:
            attributes["peripheries"] = "2"
        if node.highlighted:
            attributes["color"] = HIGHLIGHT_COLOR
            attributes["penwidth"] = "2.5"
        elif style.stroke != "none":
            attributes["color"] = style.stroke
        out.append(f"  {node.id} {_dot_attrs(attributes)};")
    ranks: dict[int, list[str]] = {}
    for node in diagram.nodes:
        if node.rank is not None:
            ranks.setdefault(node.rank, []).append(node.id)
    for members in ranks.values():
        out.append("  { rank=same; " + "; ".join(members) + "; }")
    # Invisible edges inside a rank keep its nodes in the drawing's order.
    ordered: dict[int, list[tuple[float, str]]] = {}
    for node in diagram.nodes:
        if node.rank is not None and node.order is not None:
            ordered.setdefault(node.rank, []).append((node.order, node.id))
    for members_in_order in ordered.values():
        ids = [node_id for _, node_id in sorted(members_in_order)]
        for first, second in itertools.pairwise(ids):
            out.append(f'  {first} -> {second} [style="invis"];')
    for edge in diagram.edges:
        color, width = _edge_style(edge)
        attributes = {"color": color, "penwidth": _fmt(width)}
        lines = edge_label_lines(edge)
        if lines:
            attributes["label"] = _html_label([(line, EDGE_LABEL_SIZE, False) for line in lines])
            if edge.highlighted:
                attributes["fontcolor"] = HIGHLIGHT_COLOR
        out.append(f"  {edge.source} -> {edge.target} {_dot_attrs(attributes)};")
    out.append("}")
    return "\n".join(out) + "\n"


def graphviz_executable() -> str | None:
    """The path of Graphviz's ``dot`` if it is on PATH."""
    return shutil.which("dot")


def run_graphviz(dot_source: str, output_format: str) -> bytes:
    """Lay out and render DOT source with the Graphviz ``dot`` program."""
    executable = graphviz_executable()
    if executable is None:
        raise RenderError(
            'engine="dot" needs Graphviz\'s dot program on PATH; install Graphviz or use '
            'engine="python" (the built-in layout)'
        )
    try:
        result = subprocess.run(
            [executable, f"-T{output_format}"],
            input=dot_source.encode("utf-8"),
            capture_output=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RenderError(f"Graphviz dot could not run: {error}") from None
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise RenderError(f"Graphviz dot failed (exit {result.returncode}): {message}")
    return result.stdout


# --- matplotlib (PNG, PDF) ---------------------------------------------------------------


def _mathtext(text: str) -> str:
    """A label for matplotlib: markup as mathtext scripts, everything else literal.

    A superscript right after a subscript goes into the same math group over an empty
    base, so mathtext stacks the two as the SVG does (``x_{1}^{(2)}``).
    """
    parts = []
    runs = text_runs(text)
    index = 0
    while index < len(runs):
        run, kind = runs[index]
        if not kind:
            # A literal dollar sign would start mathtext.
            parts.append(run.replace("$", r"\$"))
            index += 1
            continue
        scripts = f"{'_' if kind == 'sub' else '^'}{{{_math_escape(run)}}}"
        if kind == "sub" and index + 1 < len(runs) and runs[index + 1][1] == "sup":
            scripts += f"^{{{_math_escape(runs[index + 1][0])}}}"
            index += 1
        parts.append(f"${{}}{scripts}$")
        index += 1
    return "".join(parts)


def _math_escape(run: str) -> str:
    """A script's text for mathtext: special characters escaped, spaces kept, set upright
    in the label's own font (as the SVG sets it) rather than in math italics."""
    escaped = re.sub(r"([\\{}$_^%#&~])", r"\\\1", run).replace(" ", r"\ ")
    return rf"\mathregular{{{escaped}}}"


def render_matplotlib(
    diagram: DrawnDiagram, layout: Layout, path: Path, output_format: str
) -> None:
    """Draw the laid-out diagram with matplotlib into ``path`` (png or pdf)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Ellipse, FancyBboxPatch, PathPatch, Polygon, Rectangle
        from matplotlib.path import Path as MplPath
    except ImportError:
        raise ImportError(
            'saving diagrams as PNG or PDF needs matplotlib: pip install "chainrule[plot]" '
            "(or save as .svg or .dot, which need nothing extra)"
        ) from None

    caption = _caption_lines(diagram)
    caption_height = len(caption) * CAPTION_SIZE * LINE_SPACING + (8 if caption else 0)
    width = max(layout.width, max((text_width(c, CAPTION_SIZE) + 24 for c in caption), default=0))
    height = layout.height + caption_height
    # Layout units are points: at 72 points per inch the figure is the diagram's size.
    figure = Figure(figsize=(width / 72, height / 72))
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, width)
    axes.set_ylim(height, 0)
    axes.axis("off")
    font = {"family": "DejaVu Sans"}

    for edge, route in zip(diagram.edges, layout.edges):
        color, line_width = _edge_style(edge)
        start, pieces, arrow = _edge_geometry(route)
        vertices: list[Point] = [start[0]]
        codes = [MplPath.MOVETO]
        for c1, c2, end in pieces:
            vertices.extend([c1, c2, end])
            codes.extend([MplPath.CURVE4] * 3)
        axes.add_patch(
            PathPatch(MplPath(vertices, codes), fill=False, edgecolor=color, linewidth=line_width)
        )
        axes.add_patch(Polygon(arrow, closed=True, facecolor=color, edgecolor=color, linewidth=0.5))

    for node, placed in zip(diagram.nodes, layout.nodes):
        style = STYLES[node.kind]
        fill = node.fill or style.fill
        stroke = HIGHLIGHT_COLOR if node.highlighted else style.stroke
        stroke_width = style.stroke_width + (1.2 if node.highlighted else 0.0)
        x, y, w, h = placed.x, placed.y, placed.width, placed.height
        face = "none" if fill == "none" else fill
        edge_color = "none" if stroke == "none" else stroke
        if style.shape == "plain":
            pass
        elif placed.shape == "box":
            axes.add_patch(
                FancyBboxPatch(
                    (x - w / 2, y - h / 2),
                    w,
                    h,
                    boxstyle="round,pad=0,rounding_size=6" if style.rounded else "square,pad=0",
                    facecolor=face,
                    edgecolor=edge_color,
                    linewidth=stroke_width,
                )
            )
        else:
            axes.add_patch(
                Ellipse((x, y), w, h, facecolor=face, edgecolor=edge_color, linewidth=stroke_width)
            )
            if style.double:
                axes.add_patch(
                    Ellipse((x, y), w - 6, h - 6, facecolor="none", edgecolor=edge_color, lw=0.8)
                )
        lines = _lines_of(node)
        _, block_h = _block_size(lines)
        top = y - block_h / 2
        for index, (text, size, _) in enumerate(lines):
            bold = style.bold or (index == 0 and node.kind == "module")
            axes.text(
                x,
                top + size * LINE_SPACING / 2,
                _mathtext(text),
                ha="center",
                va="center",
                fontsize=size,
                color=style.text_color if index == 0 else "#333333",
                fontweight="bold" if bold else "normal",
                fontdict=font,
            )
            top += size * LINE_SPACING

    for edge, route in zip(diagram.edges, layout.edges):
        label_lines = edge_label_lines(edge)
        if not label_lines or route.label is None:
            continue
        label_w, label_h = _edge_label_size(edge)
        x, y = route.label
        axes.add_patch(
            Rectangle(
                (x - label_w / 2, y - label_h / 2),
                label_w,
                label_h,
                facecolor="white",
                edgecolor="none",
                alpha=0.9,
            )
        )
        top = y - len(label_lines) * EDGE_LABEL_SIZE * LINE_SPACING / 2
        for line in label_lines:
            axes.text(
                x,
                top + EDGE_LABEL_SIZE * LINE_SPACING / 2,
                _mathtext(line),
                ha="center",
                va="center",
                fontsize=EDGE_LABEL_SIZE,
                color=HIGHLIGHT_COLOR if edge.highlighted else EDGE_LABEL_COLOR,
                fontdict=font,
            )
            top += EDGE_LABEL_SIZE * LINE_SPACING

    y = layout.height + 4
    for line in caption:
        y += CAPTION_SIZE * LINE_SPACING
        axes.text(12, y - 3, _mathtext(line), fontsize=CAPTION_SIZE, color="#555555", fontdict=font)

    def write(handle: IO[bytes]) -> None:
        # PNG at 2x so the figure stays sharp on screens and when projected.
        figure.savefig(handle, format=output_format, dpi=144, facecolor="white")

    write_atomically(path, write)
