"""Dataflow diagrams: edge partials, SVG/DOT/PNG/PDF output, layout, folding, highlight."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO

import numpy as np
import pytest

import chainrule as cr
from chainrule.explanations import diagram as diagram_module
from chainrule.explanations import render
from chainrule.explanations.diagram import (
    Diagram,
    DiagramEdge,
    DiagramError,
    draw,
    format_number,
    parse_number,
)
from chainrule.graph import Node

SVG = "{http://www.w3.org/2000/svg}"


def handout_f(x0: float = 1.0, y0: float = 2.0, z0: float = 3.0) -> tuple[cr.Value, ...]:
    """f(x, y, z) = cos(x²y) + x²√z of assignment exercise 3(a), after backward."""
    x, y, z = cr.Value(x0, "x"), cr.Value(y0, "y"), cr.Value(z0, "z")
    f = (x**2 * y).cos() + x**2 * z.sqrt()
    f.backward()
    return f, x, y, z


def local_difference(child: Node, index: int, eps: float = 1e-6) -> float:
    """∂child/∂parent by central differences of the op's forward alone (not its partial)."""
    assert child.op is not None
    inputs = [parent.data for parent in child.parents]

    def at(shift: float) -> float:
        moved = list(inputs)
        moved[index] = inputs[index] + shift
        return float(child.op.forward(child._xp, *moved, **child.params))  # type: ignore[union-attr]

    return (at(eps) - at(-eps)) / (2 * eps)


def svg_texts(svg: str) -> list[str]:
    """The text of every <text> element, tspans joined, as a person reads it."""
    root = ET.fromstring(svg.encode("utf-8"))
    return ["".join(t.itertext()).replace("\u00a0", " ") for t in root.iter(f"{SVG}text")]


def edge_by_names(diagram: Diagram, source: str, target: str) -> DiagramEdge:
    (edge,) = diagram.edges_between(source, target)
    return edge


# --- edge labels ---------------------------------------------------------------------------


def test_draw_product_edges_carry_the_other_factor() -> None:
    """For f = x·y the edge from x reads y (its value) and the edge from y reads x."""
    x, y = cr.Value(3.0, "x"), cr.Value(-2.0, "y")
    f = x * y
    d = draw(f, engine="python")
    from_x, from_y = edge_by_names(d, "x", "f"), edge_by_names(d, "y", "f")
    assert (from_x.symbol, from_y.symbol) == ("y", "x")
    assert from_x.value == pytest.approx(local_difference(f, 0)) and from_x.value == -2.0
    assert from_y.value == pytest.approx(local_difference(f, 1)) and from_y.value == 3.0
    assert from_x.label == "y = −2" and from_y.label == "x = 3"


def test_draw_sine_edge_is_cosine() -> None:
    """sin(x) has one edge labelled cos(x) with the value cos(x₀)."""
    x = cr.Value(0.7, "x")
    f = x.sin()
    (edge,) = draw(f, engine="python").edges
    assert edge.symbol == "cos(x)"
    assert edge.value == pytest.approx(math.cos(0.7), rel=1e-12)
    assert edge.value == pytest.approx(local_difference(f, 0), rel=1e-8)
    assert parse_number(edge.label.split("= ")[-1]) == pytest.approx(math.cos(0.7), rel=1e-3)


def test_draw_square_edge_is_two_x() -> None:
    """x² (a constant exponent, one edge) is labelled 2·x and 2x₀."""
    x = cr.Value(-1.5, "x")
    f = x**2
    d = draw(f, engine="python")
    (edge,) = d.edges
    assert (edge.symbol, edge.value) == ("2·x", -3.0)
    assert edge.value == pytest.approx(local_difference(f, 0))
    assert d.node("f").title == "f = x²"


def test_draw_handout_function_partials_symbolic_and_numeric() -> None:
    """Every edge of f = cos(x²y) + x²√z matches the handout's partials and the numbers."""
    f, *_ = handout_f(1.3, 0.4, 2.5)
    d = draw(f, engine="python")
    # x**2 is computed twice: the second x² node has a name of its own, u1 = x².
    expected = {
        ("x", "x²"): ("2·x", 2 * 1.3),
        ("x²", "x²·y"): ("y", 0.4),
        ("y", "x²·y"): ("x²", 1.3**2),
        ("x²·y", "cos(x²·y)"): ("−sin(x²·y)", -math.sin(1.3**2 * 0.4)),
        ("x", "u1"): ("2·x", 2 * 1.3),
        ("z", "√z"): ("1/(2√z)", 1 / (2 * math.sqrt(2.5))),
        ("√z", "u1·√z"): ("u1", 1.3**2),
        ("u1", "u1·√z"): ("√z", math.sqrt(2.5)),
        ("cos(x²·y)", "f"): ("1", 1.0),
        ("u1·√z", "f"): ("1", 1.0),
    }
    names = {node.id: node.name for node in d.nodes}
    seen = set()
    for edge in d.edges:
        key = (names[edge.source], names[edge.target])
        symbol, value = expected[key]
        assert edge.symbol == symbol, key
        assert edge.value == pytest.approx(value, rel=1e-12), key
        seen.add(key)
    assert seen == set(expected)
    assert len(d.edges) == 10  # x² is computed twice: two edges from x labelled 2·x
    assert d.node("u1").title == "u1 = x²"


def test_draw_every_edge_value_matches_finite_differences() -> None:
    """Each numeric edge label equals a central difference of the op's own forward."""
    f, *_ = handout_f(0.8, -1.1, 0.6)
    d = draw(f, engine="python")
    for graph_node in _walk(f):
        for index, parent in enumerate(graph_node.parents):
            head, tail = d.node_of(graph_node).id, d.node_of(parent).id
            candidates = [e for e in d.edges if (e.source, e.target) == (tail, head)]
            assert candidates, (tail, head)
            numeric = local_difference(graph_node, index)
            assert any(e.value == pytest.approx(numeric, rel=1e-6, abs=1e-8) for e in candidates)
            # the label shows the same number to 4 significant digits
            shown = parse_number(candidates[0].label.rsplit("= ", 1)[-1])
            assert shown == pytest.approx(candidates[0].value, rel=1e-3)


def test_draw_edge_values_multiply_along_paths_to_the_adjoints() -> None:
    """Summing the products of edge values over all paths from a leaf gives its grad."""
    f, x, y, z = handout_f(1.7, 0.3, 4.0)
    d = draw(f, engine="python")
    outgoing: dict[str, list[tuple[str, float]]] = {}
    for edge in d.edges:
        assert edge.value is not None
        outgoing.setdefault(edge.source, []).append((edge.target, edge.value))
    output_id = d.node_of(f).id

    def path_sum(node_id: str) -> float:
        if node_id == output_id:
            return 1.0
        return sum(value * path_sum(target) for target, value in outgoing[node_id])

    for leaf in (x, y, z):
        assert path_sum(d.node_of(leaf).id) == pytest.approx(leaf.grad, rel=1e-12)


def test_draw_nodes_show_values_and_adjoints() -> None:
    """Leaves show label and value, interior nodes value and grad = ∂f/∂node."""
    f, x, *_ = handout_f()
    d = draw(f, engine="python")
    node_x = d.node("x")
    assert node_x.kind == "leaf" and node_x.value == 1.0 and node_x.grad == x.grad
    assert node_x.lines == ("value 1", f"grad {format_number(x.grad)}")
    cosine = d.node("cos(x²·y)")
    assert cosine.kind == "interior" and cosine.grad == 1.0
    assert cosine.value == pytest.approx(math.cos(2.0))
    output = d.node("f")
    assert output.kind == "output" and output.title == "f = cos(x²·y) + u1·√z"
    assert "grad = ∂f/∂node" in (d.caption or "")


def test_draw_without_backward_says_how_to_get_adjoints() -> None:
    """Before backward() no grad is shown and the caption says to run it."""
    x = cr.Value(2.0, "x")
    f = (x * x).exp()
    d = draw(f, engine="python")
    assert all(node.grad is None for node in d.nodes)
    assert not any(line.startswith("grad") for node in d.nodes for line in node.lines)
    assert "run backward() to show adjoints" in (d.caption or "")
    f.backward()
    assert "run backward()" not in (draw(f, engine="python").caption or "")


def test_draw_numbers_false_shows_formulas_only() -> None:
    """numbers=False drops values, adjoints and the numbers on edges."""
    f, *_ = handout_f()
    d = draw(f, numbers=False, engine="python")
    assert all(node.lines == () for node in d.nodes)
    assert {edge.label for edge in d.edges} >= {"2·x", "−sin(x²·y)", "1/(2√z)"}
    assert not any("=" in edge.label for edge in d.edges)


def test_draw_constants_are_small_nodes_with_their_number() -> None:
    """A number in the computation (3 in 3·x + 1) is a constant node named by its value."""
    x = cr.Value(2.0, "x")
    f = 3 * x + 1
    d = draw(f, engine="python")
    constants = [node for node in d.nodes if node.kind == "constant"]
    assert sorted(node.title for node in constants) == ["1", "3"]
    assert edge_by_names(d, "x", "3·x").label == "3"
    assert d.node("f").title == "f = 3·x + 1"


# --- names --------------------------------------------------------------------------------


def _log_loss(y0: float, z0: float) -> tuple[cr.Tensor, cr.Tensor]:
    """l = −(y·log z + (1 − y)·log(1 − z)) with y a constant tensor, after backward."""
    z = cr.tensor(z0, requires_grad=True, label="z")
    y = cr.tensor(y0, label="y")
    loss = -(y * cr.log(z) + (1 - y) * cr.log(1 - z))
    loss.backward(retain_grads=True)
    return loss, z


def test_draw_names_are_unique_and_describe_the_formula_not_the_value() -> None:
    """0·log(1 − z) keeps its name although it is 0; no two non-constant nodes share one."""
    loss, _ = _log_loss(1.0, 0.3)
    d = draw(loss, engine="python")
    variables = [n.name for n in d.nodes if n.kind != "constant"]
    assert len(variables) == len(set(variables))
    assert d.node("0·log(1 − z)").kind == "interior"  # its value is 0: not its name
    assert d.node("0·log(1 − z)").value == 0.0
    sum_node = next(n for n in d.nodes if n.title.endswith("= y·log(z) + 0·log(1 − z)"))
    assert d.node("f").title == f"f = −{sum_node.name}"
    # Interior nodes are never named by a number; constants (leaves) may be.
    for node in d.nodes:
        if node.kind in ("interior", "output"):
            with pytest.raises(ValueError):
                parse_number(node.name)
    assert sorted(n.name for n in d.nodes if n.kind == "constant") == ["0", "1"]


def test_draw_names_a_repeated_formula_and_a_repeated_label_apart() -> None:
    """x·1 is not called x, a second x² gets u1 = x², a second label "a" is a#2."""
    x = cr.Value(2.0, "x")
    f = (x * 1).sin() + x**2 * x**2
    d = draw(f, engine="python")
    assert d.node("1·x").title == "1·x"
    squares = [n for n in d.nodes if n.title.endswith("x²")]
    assert sorted(n.title for n in squares) == ["u1 = x²", "x²"]
    a, b = cr.Value(1.0, "a"), cr.Value(2.0, "a")
    twin = draw(a * b, engine="python")
    assert [n.name for n in twin.nodes if n.kind == "leaf"] == ["a", "a#2"]
    assert twin.node("f").title == "f = a·a#2"


def test_draw_transpose_of_a_transpose_is_the_plain_name() -> None:
    """For x @ W.T the edge from x carries (Wᵀ)ᵀ = W, never Wᵀᵀ; compound names get parentheses."""
    mlp = cr.nn.MLP([4, 2, 1], seed=0)
    loss = mlp(cr.tensor(np.ones((1, 4)), label="x")).sum()
    loss.backward(retain_grads=True)
    d = draw(loss, engine="python")
    assert not [e.symbol for e in d.edges if "ᵀᵀ" in (e.symbol or "")]
    assert edge_by_names(d, "x", "x @ W1ᵀ").symbol == "W1"
    assert edge_by_names(d, "W1ᵀ", "x @ W1ᵀ").symbol == "xᵀ"
    w = cr.tensor(np.ones((3, 3)), requires_grad=True, label="W")
    h = cr.tensor(np.ones((3, 3)), label="h")
    product = (h @ w).T @ (w.T).T
    d = draw(product.sum(), engine="python")
    assert d.node("(h @ W)ᵀ").kind == "interior"
    assert {n.title for n in d.nodes} >= {"Wᵀ", "u1 = W"}  # the formula of Wᵀᵀ is W
    assert edge_by_names(d, "u1", "(h @ W)ᵀ @ u1").symbol == "h @ W"


def test_structural_symbols_fill_in_names_sensibly() -> None:
    """Transposes undo each other, compound and squared names get parentheses, indices
    are written in, and ASCII output has no ᵀ."""
    from chainrule.explanations.naming import fill_structural, transposed

    assert [transposed(n) for n in ("W", "Wᵀ", "(x @ W)ᵀ", "x @ W", "x²", "x^{(1)}")] == [
        "Wᵀ",
        "W",
        "x @ W",
        "(x @ W)ᵀ",
        "(x²)ᵀ",
        "x^{(1)}ᵀ",
    ]
    assert fill_structural("bᵀ", {"a": "x", "b": "x @ Wᵀ"}, {}) == "(x @ Wᵀ)ᵀ"
    assert fill_structural("a @ b", {"a": "x + y", "b": "Wᵀ"}, {}) == "(x + y) @ Wᵀ"
    assert fill_structural("sum(a)", {"a": "x + y"}, {"axis": 1}) == "sum(x + y, axis=1)"
    assert fill_structural("a[index]", {"a": "x"}, {"index": (0, slice(1, None))}) == "x[0, 1:]"
    assert fill_structural("bᵀ", {"b": "Wᵀ"}, {}, unicode=False) == "W"
    assert fill_structural("aᵀ", {"a": "W"}, {}, unicode=False) == "W^T"


def test_draw_tensor_nodes_show_dtypes_only_when_mixed_or_asked() -> None:
    """One dtype: shapes only (no line for a scalar); mixed dtypes or show_dtype=True add it."""
    a = cr.tensor(np.ones(3), requires_grad=True, label="a")
    m = cr.tensor(np.ones((2, 3)), label="M")
    f = (m @ a).sum()
    f.backward(retain_grads=True)
    d = draw(f, engine="python")
    assert d.node("a").lines[0] == "vector of 3" and d.node("M").lines[0] == "2×3"
    assert not any("float" in line for node in d.nodes for line in node.lines)
    assert d.node("f").lines == ("value 6", "grad 1")
    asked = draw(f, engine="python", show_dtype=True)
    assert asked.node("M").lines[0] == "2×3 float64"
    assert asked.node("f").lines[0] == "scalar float64"
    single = cr.tensor(np.ones(3, dtype=np.float32), requires_grad=True, label="s")
    mixed = (single * a).sum()
    mixed.backward(retain_grads=True)
    shown = draw(mixed, engine="python")
    assert shown.node("s").lines[0] == "vector of 3 float32"
    assert shown.node("a").lines[0] == "vector of 3 float64"
    assert not any("float" in line for n in draw(mixed, show_dtype=False).nodes for line in n.lines)
    with pytest.raises(DiagramError, match="show_dtype must be True, False or None"):
        draw(mixed, show_dtype="yes")  # type: ignore[arg-type]


# --- fold_ops, highlight -------------------------------------------------------------------


def test_draw_fold_ops_false_draws_op_nodes_between_values() -> None:
    """Unfolded, each op is its own node: partial edges lead into it, a plain edge out."""
    f, *_ = handout_f()
    folded = draw(f, engine="python")
    unfolded = draw(f, fold_ops=False, engine="python")
    interior = [n for n in folded.nodes if n.kind in ("interior", "output")]
    ops = [n for n in unfolded.nodes if n.kind == "op"]
    assert not [n for n in folded.nodes if n.kind == "op"]
    assert sorted(n.title for n in ops) == sorted(
        ["pow", "mul", "cos", "pow", "sqrt", "mul", "add"]
    )
    assert len(ops) == len(interior)
    op_ids = {n.id for n in ops}
    into_ops = [e for e in unfolded.edges if e.target in op_ids]
    out_of_ops = [e for e in unfolded.edges if e.source in op_ids]
    assert sorted(e.label for e in into_ops) == sorted(e.label for e in folded.edges)
    assert all(e.label == "" for e in out_of_ops) and len(out_of_ops) == len(ops)
    # Folded nodes show their op as a formula; unfolded value nodes show the name only.
    assert folded.node("f").title == "f = cos(x²·y) + u1·√z"
    assert unfolded.node("f").title == "f"


def test_draw_highlight_marks_exactly_the_path_edges() -> None:
    """Highlighting y marks the edges of every path y → f, and nothing else."""
    f, x, y, _ = handout_f()
    d = draw(f, highlight="y", engine="python")
    # Expected from the graph itself: edges whose both ends depend on y (or are y).
    depends_on_y = {id(n) for n in _walk(f) if n is y or _has_ancestor(n, y)}
    expected = {
        (d.node_of(parent).id, d.node_of(node).id)
        for node in _walk(f)
        for parent in node.parents
        if id(node) in depends_on_y and id(parent) in depends_on_y
    }
    marked = {(e.source, e.target) for e in d.edges if e.highlighted}
    assert marked == expected and len(marked) == 3
    assert {n.name for n in d.nodes if n.highlighted} == {"y", "x²·y", "cos(x²·y)", "f"}
    # The same with the node itself, and in the unfolded drawing through the op nodes.
    assert {(e.source, e.target) for e in draw(f, highlight=y).edges if e.highlighted} == marked
    unfolded = draw(f, highlight=x, fold_ops=False, engine="python")
    # All 17 edges but the four that carry only y or z: y→mul, z→sqrt→√z→mul.
    assert len(unfolded.edges) == 17 and sum(e.highlighted for e in unfolded.edges) == 13
    assert 'class="edge highlighted"' in d.svg


def test_draw_highlight_errors_name_the_problem() -> None:
    """An unknown or ambiguous highlight label is refused with the labels listed."""
    a, b = cr.Value(1.0, "a"), cr.Value(2.0, "a")
    f = a * b + cr.Value(3.0, "c")
    with pytest.raises(DiagramError, match=r"no node is labelled 'zz'.*'a', 'c'"):
        draw(f, highlight="zz")
    with pytest.raises(DiagramError, match="2 nodes are labelled 'a'"):
        draw(f, highlight="a")
    with pytest.raises(DiagramError, match="not part of the drawn graph"):
        draw(f, highlight=cr.Value(1.0, "other"))


# --- SVG, DOT, files -----------------------------------------------------------------------


def test_svg_is_well_formed_and_contains_every_label() -> None:
    """The SVG parses as XML and shows every node line and every edge label."""
    f, *_ = handout_f()
    d = draw(f, engine="python", highlight="z")
    texts = svg_texts(d.svg)
    for node in d.nodes:
        for line in (node.title, *node.lines):
            assert render.plain_text(line) in texts, line
    for edge in d.edges:
        for line in edge.label.split("\n"):
            assert line in texts, line
    root = ET.fromstring(d.svg)
    assert root.tag == f"{SVG}svg"
    assert len(root.findall(f".//{SVG}g[@class='edge']")) + len(
        root.findall(f".//{SVG}g[@class='edge highlighted']")
    ) == len(d.edges)
    assert d._repr_svg_() == d.svg


def test_svg_and_dot_escape_awkward_labels() -> None:
    """Labels with markup characters, quotes and control characters stay well-formed."""
    nasty = "a<b>&\"c'\x07"
    x = cr.Value(1.0, nasty)
    f = (x * 2).tanh()
    f.label = "</svg> ]]>"
    d = draw(f, engine="python")
    texts = svg_texts(d.svg)
    assert "a<b>&\"c'" in texts  # the control character is dropped, the rest kept
    assert any(text.startswith("</svg> ]]> = ") for text in texts)
    dot = d.dot
    assert "a&lt;b&gt;&amp;&quot;c'" in dot and "\x07" not in dot
    assert "</svg>" not in dot.replace("&lt;/svg&gt;", "")


def test_dot_source_describes_the_diagram() -> None:
    """DOT has one statement per node and edge, the direction and the partial labels."""
    f, *_ = handout_f()
    d = draw(f, rankdir="TB", highlight="x", engine="python")
    dot = d.dot
    assert dot.startswith("digraph chainrule {") and dot.rstrip().endswith("}")
    assert 'rankdir="TB"' in dot
    for node in d.nodes:
        assert f"  {node.id} [label=<" in dot
    arrows = [line for line in dot.splitlines() if " -> " in line]
    assert len(arrows) == len(d.edges)
    assert "−sin(x²·y) = −0.9093" in dot
    assert dot.count(render.HIGHLIGHT_COLOR) >= sum(e.highlighted for e in d.edges)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_dot_source_is_accepted_by_graphviz(tmp_path: Path) -> None:
    """Where Graphviz is installed, it reads our DOT and draws it."""
    f, *_ = handout_f()
    x = cr.Value(1.0, 'q<&>"')
    for d in (draw(f, highlight="y"), draw(f, fold_ops=False), draw(x.exp() * 2)):
        result = subprocess.run(
            ["dot", "-Tsvg"], input=d.dot.encode(), capture_output=True, check=False
        )
        assert result.returncode == 0, result.stderr
        ET.fromstring(result.stdout)


def test_render_without_graphviz_uses_no_subprocess(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With Graphviz hidden from PATH, engine="auto" draws SVG and PNG in pure Python."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("no subprocess may run when Graphviz is absent")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    f, *_ = handout_f()
    d = draw(f)  # engine="auto"
    assert d.engine == "python"
    ET.fromstring(d.svg)
    d.save(tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(render.RenderError, match="needs Graphviz"):
        draw(f, engine="dot").svg  # noqa: B018 (the property does the work)


def test_engine_auto_uses_graphviz_when_it_is_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dot program on PATH is used for small diagrams; big ones keep the built-in layout."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "dot-input.txt"
    fake = bin_dir / "dot"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "source = sys.stdin.read()\n"
        f"open({str(log)!r}, 'w').write(sys.argv[1] + '\\n' + source)\n"
        "svg = '<svg xmlns=\"http://www.w3.org/2000/svg\"><text>from dot</text></svg>'\n"
        "sys.stdout.write(svg)\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    f, *_ = handout_f()
    d = draw(f)
    assert d.engine == "dot"
    assert svg_texts(d.svg) == ["from dot"]
    flag, source = log.read_text().split("\n", 1)
    assert flag == "-Tsvg" and source == d.dot
    many = [diagram_module.DiagramNode(f"n{i}", f"v{i}", f"v{i}") for i in range(501)]
    assert Diagram(many, []).engine == "python"


def test_save_writes_valid_png_pdf_svg_and_dot(tmp_path: Path) -> None:
    """save() picks the format by suffix and writes complete, valid files."""
    f, *_ = handout_f()
    d = draw(f, engine="python")
    assert d.save(tmp_path / "f.png") == tmp_path / "f.png"
    d.save(tmp_path / "f.pdf")
    d.save(str(tmp_path / "f.svg"))
    d.save(tmp_path / "f.dot")
    png = (tmp_path / "f.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png.endswith(b"IEND\xaeB`\x82")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width > 600 and height > 200  # drawn at a readable size
    pdf = (tmp_path / "f.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-64:]
    assert (tmp_path / "f.svg").read_text(encoding="utf-8") == d.svg
    assert (tmp_path / "f.dot").read_text(encoding="utf-8") == d.dot
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.dot", "f.pdf", "f.png", "f.svg"]
    assert oct((tmp_path / "f.svg").stat().st_mode & 0o777) == oct(0o644)


def test_save_is_atomic_when_writing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed save leaves the old file untouched and no temporary file behind."""
    f, *_ = handout_f()
    d = draw(f, engine="python")
    target = tmp_path / "f.png"
    target.write_bytes(b"old figure")
    from matplotlib.figure import Figure

    def broken_savefig(self: Figure, handle: IO[bytes], **kwargs: object) -> None:
        handle.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        d.save(target)
    assert target.read_bytes() == b"old figure"
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]


def test_save_refuses_unknown_suffixes(tmp_path: Path) -> None:
    """An unknown suffix is refused with the list of formats; a missing folder is named."""
    d = draw(cr.Value(1.0, "x").exp(), engine="python")
    with pytest.raises(DiagramError, match=r"'\.jpg'.*\.svg, \.png, \.pdf, \.dot"):
        d.save(tmp_path / "f.jpg")
    with pytest.raises(DiagramError, match="without a suffix"):
        d.save(tmp_path / "figure")
    with pytest.raises(FileNotFoundError, match="there is no folder"):
        d.save(tmp_path / "missing" / "f.svg")


def test_save_png_without_matplotlib_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without matplotlib, saving PNG says which extra to install; SVG still works."""
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    d = draw(cr.Value(1.0, "x").sin(), engine="python")
    ET.fromstring(d.svg)
    with pytest.raises(ImportError, match=r'pip install "chainrule\[plot\]"'):
        d.save(tmp_path / "f.png")
    assert not list(tmp_path.iterdir())


def test_png_stacks_a_superscript_over_its_subscript_as_the_svg_does() -> None:
    """matplotlib sets x_{1}^{(2)} as wide as x^{(2)}: the scripts stack, not follow."""
    from matplotlib.textpath import TextPath

    def width(label: str) -> float:
        return float(TextPath((0, 0), render._mathtext(label), size=11).get_extents().width)

    stacked, superscript = width("x_{1}^{(2)}"), width("x^{(2)}")
    assert stacked == pytest.approx(superscript, abs=0.5)
    assert stacked < width("x_{1}") + superscript - width("x") - 1.0
    # the SVG's own estimate agrees that the pair takes the wider script's room
    assert render.text_width("x_{1}^{(2)}", 11) == pytest.approx(render.text_width("x^{(2)}", 11))
    assert render._mathtext("cost $5") == r"cost \$5"


def test_readable_text_writes_label_markup_as_unicode_or_ascii() -> None:
    """w_{1,2}^{(1)} reads w₁,₂⁽¹⁾ in Unicode and w_(1,2)^(1) in ASCII."""
    assert render.readable_text("w_{1,2}^{(1)} = −10") == "w₁,₂⁽¹⁾ = −10"
    assert render.readable_text("x_{1}") == "x₁"
    assert render.readable_text("s_{q}") == "s_q"  # no subscript q in Unicode
    assert render.readable_text("w_{1,2}^{(1)}", unicode=False) == "w_(1,2)^(1)"
    assert render.readable_text("x_{1}", unicode=False) == "x_1"
    assert render.readable_text("plain") == "plain"


# --- layout ----------------------------------------------------------------------------------


def test_layout_flows_in_the_requested_direction_without_overlaps() -> None:
    """LR puts every edge's head right of its tail, TB below; nodes and labels never overlap."""
    f, *_ = handout_f()
    for rankdir, axis in (("LR", "x"), ("TB", "y")):
        d = draw(f, rankdir=rankdir, engine="python")
        layout = d.layout()
        index = {node.id: i for i, node in enumerate(d.nodes)}
        for edge in d.edges:
            tail, head = layout.nodes[index[edge.source]], layout.nodes[index[edge.target]]
            assert getattr(head, axis) > getattr(tail, axis)
        boxes = [(p.x, p.y, p.width, p.height) for p in layout.nodes]
        for edge, route in zip(d.edges, layout.edges):
            width, height = render._edge_label_size(edge)
            assert route.label is not None
            boxes.append((route.label[0], route.label[1], width, height))
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                overlap_x = abs(a[0] - b[0]) < (a[2] + b[2]) / 2
                overlap_y = abs(a[1] - b[1]) < (a[3] + b[3]) / 2
                assert not (overlap_x and overlap_y), (a, b)
        assert min(p.x - p.width / 2 for p in layout.nodes) > 0
        assert max(p.x + p.width / 2 for p in layout.nodes) < layout.width


def test_layout_keeps_a_long_chain_straight() -> None:
    """h = tanh(h·w) repeated: the data path stays on one line, weights beside it."""
    h = x = cr.Value(0.5, "x")
    for k in range(30):
        h = (h * cr.Value(0.9, f"w{k}")).tanh()
    d = draw(h, engine="python")
    layout = d.layout()
    path = [layout.nodes[i].y for i, n in enumerate(d.nodes) if n.kind in ("interior", "output")]
    assert max(path) - min(path) < 1.0
    assert layout.crossings == 0
    assert d.node_of(x).kind == "leaf"


def test_layout_puts_a_long_edges_label_beside_its_head() -> None:
    """A weight used at every step: each edge's label sits in the gap just before its head."""
    x, w = cr.Value(0.5, "x"), cr.Value(2.0, "w")
    h = x
    for _ in range(4):
        h = cr.tanh(h * w)
    f = h + x
    f.backward()
    d = draw(f, engine="python")
    layout = d.layout()
    index = {node.id: i for i, node in enumerate(d.nodes)}
    long_edges = 0
    for edge, route in zip(d.edges, layout.edges):
        tail, head = layout.nodes[index[edge.source]], layout.nodes[index[edge.target]]
        assert route.label is not None
        between = [p for p in layout.nodes if tail.x < p.x < head.x]
        long_edges += bool(between)
        # No node lies between the label and the node the edge leads into.
        assert not [p for p in between if route.label[0] < p.x], edge.label
        assert route.label[0] < head.x
    assert long_edges >= 4


def test_layout_moves_a_node_and_its_sources_next_to_their_use() -> None:
    """1 − y moves next to (1 − y)·log(1 − z), so y sits just before both its consumers,
    while z, which feeds the first layer, stays at the left."""
    z, y = cr.Value(0.3, "z"), cr.Value(1.0, "y")
    f = -(y * cr.log(z) + (1 - y) * cr.log(1 - z))
    f.backward()
    d = draw(f, engine="python")
    rank_of = {node.id: rank for node, rank in zip(d.nodes, d.layout().ranks)}
    ranks = {node.name: rank_of[node.id] for node in d.nodes if node.kind != "constant"}
    assert ranks["1 − y"] == ranks["y·log(z)"] == ranks["y"] + 1
    assert ranks["z"] == 0 and ranks["log(z)"] == ranks["1 − z"] == 1
    # Every edge spans one rank but one: y·log(z) waits a rank for (1 − y)·log(1 − z).
    spans = [rank_of[e.target] - rank_of[e.source] for e in d.edges]
    assert sorted(spans) == [1] * (len(spans) - 1) + [2]


def test_draw_large_tensor_graph_draws_every_node() -> None:
    """A 5 000-node tensor graph lays out and renders every node with the built-in layout.

    How its time grows with the graph is measured by benchmarks/bench_diagram.py, not here.
    """
    rng = np.random.default_rng(0)
    x = cr.tensor(rng.normal(size=(4, 3)), label="x")
    h = x
    nodes = 1
    k = 0
    while nodes < 5_000:
        # A residual-style block: weight, product, activation, and a skip connection.
        w = cr.tensor(rng.normal(size=(3, 3)), requires_grad=True, label=f"W{k}")
        h = (h @ w).tanh() + h
        nodes += 4
        k += 1
    loss = (h * h).mean()
    loss.backward(retain_grads=True)
    d = draw(loss, engine="python")
    assert len(d.nodes) > 5_000
    assert d.svg.count('class="node') == len(d.nodes)


def test_draw_refuses_graphs_above_max_nodes() -> None:
    """Too many nodes: a clear error that suggests folding modules."""
    h = cr.Value(1.0, "x")
    for _ in range(60):
        h = h.sin()
    with pytest.raises(DiagramError, match=r"more than 50 nodes.*fold_modules"):
        draw(h, max_nodes=50)
    assert len(draw(h, max_nodes=61).nodes) == 61


def test_draw_rejects_bad_arguments() -> None:
    """Non-nodes, unknown directions and engines are refused by name."""
    x = cr.Value(1.0, "x")
    with pytest.raises(TypeError, match="draw one of them"):
        draw([x, x])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got float"):
        draw(1.0)  # type: ignore[arg-type]
    with pytest.raises(DiagramError, match="rankdir must be one of 'LR', 'TB'"):
        draw(x, rankdir="RL")
    with pytest.raises(DiagramError, match="engine must be one of"):
        draw(x, engine="neato")
    with pytest.raises(DiagramError, match="max_nodes must be a positive integer"):
        draw(x, max_nodes=0)


# --- tensors and modules ---------------------------------------------------------------------


def test_draw_tensor_graph_shows_shapes_and_structural_partials() -> None:
    """Tensor nodes show their shape; matmul edges read Wᵀ and xᵀ."""
    x = cr.tensor(np.ones((2, 3), dtype=np.float32), label="x")
    w = cr.tensor(np.full((3, 4), 0.5, dtype=np.float32), requires_grad=True, label="W")
    h = (x @ w).sigmoid()
    loss = h.sum()
    loss.backward()
    d = draw(loss, engine="python")
    assert d.node("x").lines[0] == "2×3" and d.node("x").shape == (2, 3)
    product = d.node("x @ W")
    assert product.lines[0] == "2×4" and product.dtype == "float32"
    assert edge_by_names(d, "W", "x @ W").label == "xᵀ"
    assert edge_by_names(d, "x", "x @ W").label == "Wᵀ"
    sigmoid_edge = edge_by_names(d, "x @ W", "σ(x @ W)")
    assert sigmoid_edge.symbol == "σ(x @ W)·(1 − σ(x @ W))" and sigmoid_edge.value is None
    assert d.node("W").lines[-1].startswith("‖grad‖")
    assert "retain_grads=True" in (d.caption or "")  # interior adjoints were not kept
    loss.backward(retain_grads=True)
    kept = draw(loss, engine="python")
    assert kept.node("f").lines[-1] == "grad 1" and kept.node("x @ W").grad is None  # 2×4
    assert kept.node("x @ W").lines[-1].startswith("‖grad‖")
    assert "retain_grads" not in (kept.caption or "")


def test_draw_one_element_tensors_show_numbers() -> None:
    """A scalar tensor graph shows values and numeric partials like a Value graph."""
    x = cr.tensor(2.0, requires_grad=True, label="x")
    f = (x * x).log()
    f.backward(retain_grads=True)
    d = draw(f, engine="python")
    (edge,) = d.edges_between("x·x", "f")
    assert edge.symbol == "1/(x·x)" and edge.value == pytest.approx(0.25)
    assert d.node("x").grad == pytest.approx(1.0)


class StandInLinear:
    """A module following the contract's shape (parameters(), x @ W.T + b), without nn."""

    def __init__(self, n_in: int, n_out: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.weight = cr.tensor(rng.normal(size=(n_out, n_in)), requires_grad=True)
        self.bias = cr.tensor(rng.normal(size=n_out), requires_grad=True)

    def parameters(self) -> list[cr.Tensor]:
        return [self.weight, self.bias]

    def __call__(self, x: cr.Tensor) -> cr.Tensor:
        return x @ self.weight.T + self.bias


def test_fold_modules_draws_each_module_as_one_box() -> None:
    """fold_modules=[layer, …] draws each module's nodes as one box named after it."""
    x = cr.tensor(np.ones((5, 3)), label="x")
    first, second = StandInLinear(3, 4, 0), StandInLinear(4, 2, 1)
    loss = (second(first(x).tanh()) ** 2).mean()
    loss.backward()
    unfolded = draw(loss, engine="python")
    d = draw(loss, fold_modules=[first, second], engine="python")
    boxes = [n for n in d.nodes if n.kind == "module"]
    assert [b.title for b in boxes] == ["StandInLinear 3→4", "StandInLinear 4→2"]
    assert boxes[0].lines == ("u1 · 16 parameters", "out 5×4")
    assert len(d.nodes) == len(unfolded.nodes) - 2 * 4  # W, Wᵀ, x@Wᵀ, +b → one box each
    assert edge_by_names(d, "x", "u1").label == ""  # a module's Jacobian is not one op
    assert edge_by_names(d, "u1", "tanh(u1)").symbol == "1 − tanh(u1)²"
    assert d.node_of(first.weight) == boxes[0]
    assert "boxes: modules folded" in (d.caption or "")
    with pytest.raises(DiagramError, match="none of the parameters of StandInLinear"):
        draw(loss, fold_modules=[StandInLinear(3, 4, 2)])
    with pytest.raises(DiagramError, match="parameters\\(\\) method"):
        draw(loss, fold_modules=[object()])


def test_fold_modules_with_a_real_mlp_keeps_a_network_readable() -> None:
    """A chainrule.nn.MLP folds into one box ending at its output activation."""
    mlp = cr.nn.MLP([3, 8, 8, 1], activation="relu", output_activation="sigmoid", seed=0)
    x = cr.tensor(np.random.default_rng(0).normal(size=(16, 3)), label="X")
    loss = ((mlp(x) - 1.0) ** 2).mean()
    loss.backward()
    d = draw(loss, fold_modules=[mlp], engine="python")
    (box,) = [n for n in d.nodes if n.kind == "module"]
    assert box.title == "MLP 4→8→8→1"  # the handouts count the bias unit
    assert box.lines[0] == f"u1 · {sum(p.size for p in mlp.parameters())} parameters"
    assert box.lines[1] == "out 16×1"
    assert not [n for n in d.nodes if n.name.startswith(("σ", "W", "b"))]
    assert len(d.nodes) <= 8
    auto = draw(loss, fold_modules=True, engine="python")
    linear = [n.title for n in auto.nodes if n.kind == "module"]
    assert linear == ["Linear 3→8", "Linear 8→8", "Linear 8→1"]
    assert any(n.name == "σ(u3)" for n in auto.nodes)  # activations stay visible


def test_fold_modules_lets_a_large_network_pass_max_nodes() -> None:
    """A graph too big to draw node by node draws once its modules are folded."""
    mlp = cr.nn.MLP([2, 4, 4, 4, 4, 1], seed=0)
    total = None
    for row in np.random.default_rng(1).normal(size=(12, 2)):
        out = mlp(cr.tensor(row[None, :])).sum()
        total = out if total is None else total + out
    assert total is not None
    with pytest.raises(DiagramError, match="fold_modules"):
        draw(total, max_nodes=100)
    d = draw(total, max_nodes=100, fold_modules=[mlp], engine="python")
    assert sum(n.kind == "module" for n in d.nodes) == 1


# --- helpers -------------------------------------------------------------------------------


def test_format_number_reads_like_the_handouts() -> None:
    """Integers without .0, four significant digits otherwise, a real minus sign."""
    assert [format_number(v) for v in (-10.0, 2.0, 0.0066929, 1.5e-7, math.inf)] == [
        "−10",
        "2",
        "0.006693",
        "1.5e−07",
        "∞",
    ]
    for value in (-3.25, 1234.5, 1e-9):
        assert parse_number(format_number(value)) == pytest.approx(value, rel=1e-3)


def _cost(points: list[float], desired: list[float], weights: list[float]) -> float:
    return sum(w * (p - d) ** 2 for w, p, d in zip(weights, points, desired))


def _walk(output: Node) -> list[Node]:
    seen: dict[int, Node] = {}
    stack = [output]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen[id(node)] = node
            stack.extend(node.parents)
    return list(seen.values())


def _has_ancestor(node: Node, ancestor: Node) -> bool:
    stack = list(node.parents)
    while stack:
        current = stack.pop()
        if current is ancestor:
            return True
        stack.extend(current.parents)
    return False


def test_layered_layout_handles_cycles_self_loops_and_empty_graphs() -> None:
    """The layout never fails on shapes a hand-built Diagram may have."""
    from chainrule.explanations.layout import LayoutEdge, LayoutError, LayoutNode, layered_layout

    boxes = [LayoutNode(30, 20) for _ in range(4)]
    cyclic = [LayoutEdge(0, 1), LayoutEdge(1, 2), LayoutEdge(2, 0), LayoutEdge(3, 3)]
    layout = layered_layout(boxes, cyclic, rankdir="TB")
    assert len(layout.nodes) == 4 and len(layout.edges) == 4
    assert all(len(route.points) >= 2 for route in layout.edges)
    assert layered_layout([], []).nodes == []
    with pytest.raises(LayoutError, match="only 4 nodes"):
        layered_layout(boxes, [LayoutEdge(0, 9)])
    with pytest.raises(LayoutError, match="rankdir must be one of LR, TB"):
        layered_layout(boxes, [], rankdir="BT")


def test_isotonic_placement_keeps_order_and_gaps_closest_to_the_targets() -> None:
    """Positions keep their order and gaps and are least-squares closest to the targets."""
    from chainrule.explanations.layout import _isotonic_with_gaps

    rng = np.random.default_rng(3)
    for _ in range(50):
        count = int(rng.integers(1, 8))
        desired = list(rng.normal(scale=50, size=count))
        weights = list(rng.uniform(0.1, 3.0, size=count))
        gaps = list(rng.uniform(5, 30, size=count - 1))
        placed = _isotonic_with_gaps(desired, weights, gaps)
        for i, gap in enumerate(gaps):
            assert placed[i + 1] - placed[i] >= gap - 1e-9

        # No feasible nudge of one block of neighbours lowers the cost.
        for start in range(count):
            for end in range(start + 1, count + 1):
                for step in (-0.5, 0.5):
                    moved = [p + step if start <= i < end else p for i, p in enumerate(placed)]
                    feasible = all(
                        moved[i + 1] - moved[i] >= gap - 1e-9 for i, gap in enumerate(gaps)
                    )
                    if feasible:
                        assert (
                            _cost(moved, desired, weights) >= _cost(placed, desired, weights) - 1e-9
                        )
