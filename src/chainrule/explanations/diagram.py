"""Dataflow diagrams of chainrule graphs: one node per value, one partial per edge.

:func:`draw` walks the graph behind an output :class:`~chainrule.Value` or
:class:`~chainrule.Tensor` and builds a :class:`Diagram`: leaves with their labels and
values, interior nodes with their value and adjoint (``grad`` = ∂output/∂node), and on
every edge the local partial derivative ∂child/∂parent, read from the op's
:class:`~chainrule.ops.Partial` — the same row backward multiplies by — both as a
formula (``2·x``, ``−sin(x²·y)``) and as a number at the current point.

The diagram is a plain model (``.nodes``, ``.edges``) that the writers in
:mod:`chainrule.explanations.render` turn into SVG, PNG, PDF or DOT, laid out by the
pure-Python layout in :mod:`chainrule.explanations.layout` (or by Graphviz where it is
installed and the graph is small).

Folding modules
    ``fold_modules=[module, ...]`` draws everything a module computed as one box,
    without hooks in :mod:`chainrule.nn`: the module's parameters are found in the
    graph by identity (``module.parameters()``); nodes computed from parameters alone
    (``weight.T``) join them; every node that combines a parameter with outside data
    (``x @ weight.T``, ``… + bias``) is a *consumer*; the box is the parameters, the
    consumers and every node on a path between two consumers (the activations between
    an MLP's layers). When the module declares ``activations`` whose last entry is a
    name (``"sigmoid"``), the op of that name applied to the box's output joins it, so
    an MLP's box ends at its output activation. ``fold_modules=True`` instead finds
    every Linear-shaped piece (a matrix product with a 2-D parameter, or its
    transpose, plus an optional bias) and draws each as its own box.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._files import write_bytes_atomically
from ..errors import ChainruleError
from ..graph import GraphTooLargeError, Node, topological_order
from ..nn.handout_names import handout_shape
from . import render
from .diagram_model import DiagramEdge as DiagramEdge
from .diagram_model import DiagramNode as DiagramNode
from .layout import Layout
from .naming import NodeNames, is_constant

#: File types :meth:`Diagram.save` writes, by suffix.
SAVE_FORMATS = (".svg", ".png", ".pdf", ".dot")
ENGINES = ("auto", "python", "dot")
#: Above this many nodes ``engine="auto"`` keeps the built-in layout (Graphviz gets slow).
AUTO_GRAPHVIZ_LIMIT = 500
_SHORT_CAPTION_NAME = 14  # a longer output name is called "output" in the caption
_SHOWN_ELEMENTS = 4  # tensors with at most this many elements show their numbers


class DiagramError(ChainruleError, ValueError):
    """A diagram cannot be drawn as asked (too large, unknown label, bad option)."""


class Diagram:
    """A dataflow diagram: the model (``nodes``, ``edges``) and its drawings.

    Build one with :func:`draw` or :func:`~chainrule.explanations.draw_network`. In Jupyter
    it shows itself (``_repr_svg_``).

    Args:
        nodes: the nodes, in drawing order.
        edges: the edges between them (by node id).
        rankdir: ``"LR"`` (left to right) or ``"TB"`` (top to bottom).
        caption: text under the drawing (a legend), or None.
        engine: ``"python"`` (built-in layout), ``"dot"`` (Graphviz) or ``"auto"``
            (Graphviz when its ``dot`` is on PATH and the diagram is small).
        balance: let the layout pull nodes towards their neighbours.
        node_gap: least distance between nodes in one rank, in points.
        rank_gaps: least distance after given ranks (fixed-rank drawings).
    """

    def __init__(
        self,
        nodes: Sequence[DiagramNode],
        edges: Sequence[DiagramEdge],
        *,
        rankdir: str = "LR",
        caption: str | None = None,
        engine: str = "auto",
        balance: bool = True,
        node_gap: float = 18.0,
        rank_gaps: dict[int, float] | None = None,
    ) -> None:
        _check_choice("rankdir", rankdir, ("LR", "TB"))
        _check_choice("engine", engine, ENGINES)
        ids = [node.id for node in nodes]
        if len(set(ids)) != len(ids):
            raise DiagramError("diagram node ids must be unique")
        known = set(ids)
        for edge in edges:
            for end in (edge.source, edge.target):
                if end not in known:
                    raise DiagramError(f"edge {edge.id} refers to the unknown node {end!r}")
        for node in nodes:
            if node.kind not in render.STYLES:
                raise DiagramError(
                    f"node {node.id} has the unknown kind {node.kind!r}; known kinds: "
                    + ", ".join(render.STYLES)
                )
        self.nodes: list[DiagramNode] = list(nodes)
        self.edges: list[DiagramEdge] = list(edges)
        self.rankdir = rankdir
        self.caption = caption
        self.balance = balance
        self.node_gap = node_gap
        self.rank_gaps = dict(rank_gaps or {})
        if engine == "auto":
            small = len(self.nodes) <= AUTO_GRAPHVIZ_LIMIT
            engine = "dot" if small and render.graphviz_executable() else "python"
        #: The engine that lays the diagram out: ``"python"`` or ``"dot"``.
        self.engine = engine
        self._layout: Layout | None = None
        self._svg: str | None = None
        self._by_graph_node: dict[int, str] = {}

    # --- the model ---------------------------------------------------------------------

    def node(self, name: str) -> DiagramNode:
        """The node with this name (or title, or id); a clear error if none or several."""
        for attribute in ("id", "name", "title"):
            matches = [node for node in self.nodes if getattr(node, attribute) == name]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise DiagramError(f"{len(matches)} nodes are called {name!r}; use their ids")
        shown = ", ".join(repr(node.name) for node in self.nodes[:20])
        more = " …" if len(self.nodes) > 20 else ""
        raise DiagramError(f"no node called {name!r}; the nodes are {shown}{more}")

    def node_of(self, graph_node: Node) -> DiagramNode:
        """The diagram node that draws a graph node (a module box if it was folded)."""
        node_id = self._by_graph_node.get(id(graph_node))
        if node_id is None:
            raise DiagramError("that node is not part of this diagram")
        return next(node for node in self.nodes if node.id == node_id)

    def edges_between(self, source: str, target: str) -> list[DiagramEdge]:
        """The edges from the node named ``source`` to the node named ``target``."""
        source_id, target_id = self.node(source).id, self.node(target).id
        return [e for e in self.edges if e.source == source_id and e.target == target_id]

    # --- drawings ----------------------------------------------------------------------

    def layout(self) -> Layout:
        """Positions of nodes and routes of edges from the built-in layout (computed once)."""
        if self._layout is None:
            self._layout = render.layout_diagram(self)
        return self._layout

    @property
    def dot(self) -> str:
        """The diagram as Graphviz DOT source."""
        return render.to_dot(self)

    @property
    def svg(self) -> str:
        """The diagram as an SVG document (text)."""
        if self._svg is None:
            if self.engine == "dot":
                self._svg = render.run_graphviz(self.dot, "svg").decode("utf-8")
            else:
                self._svg = render.to_svg(self, self.layout())
        return self._svg

    def _repr_svg_(self) -> str:
        return self.svg

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the diagram to a file; the suffix picks the format.

        Args:
            path: a file name ending in ``.svg``, ``.png``, ``.pdf`` (these two need
                matplotlib, the ``plot`` extra, unless Graphviz draws them) or
                ``.dot``. The file is written atomically: a temporary file in the same
                directory, renamed over the target when complete.

        Returns:
            the path written.
        """
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix not in SAVE_FORMATS:
            raise DiagramError(
                f"cannot save a diagram as {suffix or 'a file without a suffix'!r} "
                f"({target}); use one of {', '.join(SAVE_FORMATS)}"
            )
        if suffix == ".svg":
            write_bytes_atomically(target, self.svg.encode("utf-8"))
        elif suffix == ".dot":
            write_bytes_atomically(target, self.dot.encode("utf-8"))
        elif self.engine == "dot":
            write_bytes_atomically(target, render.run_graphviz(self.dot, suffix[1:]))
        else:
            render.render_matplotlib(self, self.layout(), target, suffix[1:])
        return target

    def __repr__(self) -> str:
        return f"<Diagram: {len(self.nodes)} nodes, {len(self.edges)} edges, {self.rankdir}>"


def _check_choice(option: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise DiagramError(
            f"{option} must be one of {', '.join(repr(a) for a in allowed)}, not {value!r}"
        )


# --- numbers -----------------------------------------------------------------------------


def format_number(value: float) -> str:
    """A number for people: integers without ``.0``, else 4 significant digits; ``−``."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    text = str(int(value)) if value.is_integer() and abs(value) < 1e6 else f"{value:.4g}"
    return text.replace("-", "−")


def parse_number(text: str) -> float:
    """Read back a number written by :func:`format_number`."""
    return float(text.replace("−", "-").replace("∞", "inf"))


def _format_array(array: np.ndarray) -> str:
    if array.ndim == 0:
        return format_number(float(array))
    return "[" + ", ".join(format_number(float(v)) for v in array.reshape(-1)) + "]"


def _scalar(value: Any) -> float | None:
    """The number in a Python scalar or one-element array, else None."""
    if isinstance(value, (bool, int, float, np.number, np.bool_)):
        return float(value)
    array = np.asarray(value)
    if array.size == 1 and array.dtype.kind in "biuf":
        return float(array.reshape(()))
    return None


# --- walking the graph ---------------------------------------------------------------------


def _collect(output: Node, limit: int, hint: str) -> list[Node]:
    """Every node ``output`` depends on (data inputs too), parents first; iterative."""
    try:
        return topological_order(output, every_node=True, limit=limit)
    except GraphTooLargeError:
        raise DiagramError(
            f"this graph has more than {limit} nodes, too many to draw readably; {hint}"
        ) from None


def _is_tensor(node: Node) -> bool:
    return hasattr(node, "requires_grad")


# --- folding modules -----------------------------------------------------------------------


@dataclass
class _Box:
    title: str
    members: set[int] = field(default_factory=set)  # indices into the walk order


def _children_of(order: list[Node], index_of: dict[int, int]) -> list[list[int]]:
    children: list[list[int]] = [[] for _ in order]
    for position, node in enumerate(order):
        for parent in node.parents:
            children[index_of[id(parent)]].append(position)
    return children


def _module_boxes(
    order: list[Node], index_of: dict[int, int], modules: Iterable[Any]
) -> list[_Box]:
    children = _children_of(order, index_of)
    boxes: list[_Box] = []
    for module in modules:
        if not callable(getattr(module, "parameters", None)):
            raise DiagramError(
                f"fold_modules takes modules with a parameters() method (chainrule.nn "
                f"Linear, MLP, …) or True; got {type(module).__name__}"
            )
        parameter_ids = {id(p) for p in module.parameters()}
        params = {i for i, node in enumerate(order) if id(node) in parameter_ids}
        if not params:
            raise DiagramError(
                f"none of the parameters of {_module_title(module)} appear in this graph; "
                "pass the modules that computed this output"
            )
        members = _region(order, index_of, children, params)
        _absorb_output_activation(module, order, children, members)
        boxes.append(_Box(_module_title(module), members))
    return boxes


def _region(
    order: list[Node], index_of: dict[int, int], children: list[list[int]], params: set[int]
) -> set[int]:
    """Parameters, what is computed from them alone, their consumers, and what lies
    on a path between two consumers."""
    from_params = set(params)
    consumers: set[int] = set()
    for position, node in enumerate(order):  # parents come first
        if node.op is None:
            continue
        parent_positions = [index_of[id(p)] for p in node.parents]
        inside = [p in from_params for p in parent_positions]
        outside_data = [
            not inside[k] and not is_constant(order[p]) for k, p in enumerate(parent_positions)
        ]
        if any(inside) and not any(outside_data):
            from_params.add(position)
        elif any(inside):
            consumers.add(position)
    after = _reach(consumers, children)
    before = _reach(consumers, [[index_of[id(p)] for p in n.parents] for n in order])
    return from_params | consumers | (after & before)


def _reach(starts: set[int], neighbours: list[list[int]]) -> set[int]:
    seen = set(starts)
    stack = list(starts)
    while stack:
        for other in neighbours[stack.pop()]:
            if other not in seen:
                seen.add(other)
                stack.append(other)
    return seen


def _absorb_output_activation(
    module: Any, order: list[Node], children: list[list[int]], members: set[int]
) -> None:
    activations = getattr(module, "activations", None)
    if not isinstance(activations, (list, tuple)) or not activations:
        return
    last = activations[-1]
    if not isinstance(last, str) or last.lower() in ("identity", "linear", "none"):
        return
    outputs = [m for m in members if any(c not in members for c in children[m])]
    if len(outputs) != 1 or len(children[outputs[0]]) != 1:
        return
    (child,) = children[outputs[0]]
    op = order[child].op
    if op is not None and op.name == last.lower() and len(order[child].parents) == 1:
        members.add(child)


def _linear_boxes(order: list[Node], index_of: dict[int, int]) -> list[_Box]:
    """Every ``x @ W.T (+ b)`` (or ``x @ W``) with W a 2-D parameter, as its own box."""
    children = _children_of(order, index_of)
    boxes: list[_Box] = []
    claimed: set[int] = set()
    for position, node in enumerate(order):
        if node.op is None or node.op.name != "matmul" or position in claimed:
            continue
        members = {position}
        weight: Node | None = None
        transposed = False
        for parent in reversed(node.parents):  # the right operand first: x @ W.T
            transposed = parent.op is not None and parent.op.name == "transpose"
            candidate = parent.parents[0] if transposed else parent
            if _is_parameter(candidate) and np.ndim(candidate.data) == 2:
                weight = candidate
                members.update((index_of[id(parent)], index_of[id(candidate)]))
                break
        if weight is None:
            continue
        # Linear stores W as (out, in) and computes x @ W.T; x @ W has W as (in, out).
        out_features, in_features = np.shape(weight.data)
        if not transposed:
            in_features, out_features = out_features, in_features
        following = children[position]
        if len(following) == 1:
            add = order[following[0]]
            if add.op is not None and add.op.name == "add":
                bias = [p for p in add.parents if p is not node]
                if len(bias) == 1 and _is_parameter(bias[0]) and np.ndim(bias[0].data) == 1:
                    members.update((following[0], index_of[id(bias[0])]))
        if members & claimed:
            continue
        claimed |= members
        boxes.append(_Box(f"Linear {in_features}→{out_features}", members))
    return boxes


def _is_parameter(node: Node) -> bool:
    return node.op is None and bool(getattr(node, "requires_grad", False))


def _module_title(module: Any) -> str:
    kind = type(module).__name__
    sizes = getattr(module, "sizes", None)
    if isinstance(sizes, (list, tuple)) and sizes:
        # A whole network is named as everywhere else in chainrule: the handouts' way,
        # the input width counting the bias unit (Titanic's [2, 2, 1] is 3→2→1).
        return f"{kind} {handout_shape(sizes, bool(getattr(module, 'bias', True)))}"
    weight = getattr(getattr(module, "weight", None), "data", None)
    if weight is not None and np.ndim(weight) == 2:
        out_features, in_features = np.shape(weight)
        return f"{kind} {in_features}→{out_features}"
    return kind


# --- draw ----------------------------------------------------------------------------------


def draw(
    output: Node,
    *,
    fold_ops: bool = True,
    numbers: bool = True,
    rankdir: str = "LR",
    highlight: Node | str | None = None,
    fold_modules: Sequence[Any] | bool | None = None,
    max_nodes: int = 20_000,
    engine: str = "auto",
    show_dtype: bool | None = None,
) -> Diagram:
    """Draw the dataflow diagram of the computation behind ``output``.

    Every edge carries the local partial derivative of its head with respect to its
    tail, read from the op definitions backward uses: as a formula and, with
    ``numbers``, as its value at the current point. Nodes show values and, once
    ``backward()`` has run, their adjoints (``grad`` = ∂output/∂node). Every node has
    its own name: its label, its formula when short (``x²·y``), else ``u1``, ``u2``, …
    (constants are named by their number).

    Args:
        output: a :class:`~chainrule.Value` or :class:`~chainrule.Tensor` computed
            by chainrule.
        fold_ops: True draws one node per value with its op inside (``u1 = x²``), as
            the handouts do; False draws each op as a small node of its own between
            the values.
        numbers: show values, adjoints and numeric partials (False: formulas only).
        rankdir: ``"LR"`` (inputs left, output right) or ``"TB"`` (top to bottom).
        highlight: a leaf (or its label): emphasise every path from it to the output,
            the paths whose products of partials sum to ∂output/∂leaf.
        fold_modules: modules (chainrule.nn ``Linear``, ``MLP``, …) to draw as one
            box each, or True to fold every Linear-shaped piece of a tensor graph.
        max_nodes: refuse graphs with more nodes than this (fold modules instead).
        engine: ``"python"`` (the built-in layout, always available), ``"dot"``
            (Graphviz, which must be on PATH) or ``"auto"`` (Graphviz when present
            and the diagram has at most 500 nodes, else the built-in layout).
        show_dtype: tensor nodes show their shape (``2×3``; none for a scalar) and,
            with True, their dtype too (``2×3 float32``, ``scalar float64``). None
            (the default) shows dtypes only when the graph mixes them.

    Returns:
        a :class:`Diagram`; ``.svg``, ``.dot``, ``.save(path)``.
    """
    if not isinstance(output, Node):
        hint = ""
        if isinstance(output, (list, tuple)):
            hint = " (for a list of outputs, draw one of them, or their sum)"
        raise TypeError(
            "draw() takes a Value or Tensor computed by chainrule, "
            f"got {type(output).__name__}{hint}"
        )
    _check_choice("rankdir", rankdir, ("LR", "TB"))
    _check_choice("engine", engine, ENGINES)
    if not isinstance(max_nodes, int) or max_nodes < 1:
        raise DiagramError(f"max_nodes must be a positive integer, not {max_nodes!r}")
    if show_dtype is not None and not isinstance(show_dtype, bool):
        raise DiagramError(f"show_dtype must be True, False or None, not {show_dtype!r}")
    folding = fold_modules is not None and fold_modules is not False
    hint = (
        "draw a smaller piece of it, or raise max_nodes"
        if folding
        else "fold whole modules into boxes with fold_modules=[model] (or fold_modules=True), "
        "or raise max_nodes"
    )
    # With folding, the diagram can be far smaller than the graph it folds.
    order = _collect(output, max_nodes * 50 if folding else max_nodes, hint)
    index_of = {id(node): position for position, node in enumerate(order)}

    boxes: list[_Box] = []
    if fold_modules is True:
        boxes = _linear_boxes(order, index_of)
    elif folding:
        modules = fold_modules if isinstance(fold_modules, (list, tuple)) else [fold_modules]
        boxes = _module_boxes(order, index_of, modules)
    box_of: dict[int, int] = {}
    for number, box in enumerate(boxes):
        for member in box.members:
            box_of.setdefault(member, number)

    if show_dtype is None:
        show_dtype = _mixes_dtypes(order)
    builder = _Builder(order, index_of, box_of, boxes, fold_ops, numbers, bool(show_dtype))
    nodes, edges, by_graph_node = builder.build()
    if len(nodes) > max_nodes:
        raise DiagramError(
            f"this diagram would have {len(nodes)} nodes, more than max_nodes={max_nodes}; {hint}"
        )
    if highlight is not None:
        start = _find_highlight(highlight, order, by_graph_node)
        nodes, edges = _highlight_paths(nodes, edges, start)
    diagram = Diagram(nodes, edges, rankdir=rankdir, caption=builder.caption(output), engine=engine)
    diagram._by_graph_node = by_graph_node
    return diagram


class _Builder:
    """Turns the walked graph into diagram nodes and edges."""

    def __init__(
        self,
        order: list[Node],
        index_of: dict[int, int],
        box_of: dict[int, int],
        boxes: list[_Box],
        fold_ops: bool,
        numbers: bool,
        show_dtype: bool,
    ) -> None:
        self.order = order
        self.index_of = index_of
        self.box_of = box_of
        self.boxes = boxes
        self.fold_ops = fold_ops
        self.numbers = numbers
        self.show_dtype = show_dtype
        self.output = order[-1]
        self.namer = NodeNames(order)
        self.box_names = [self.namer.fresh("u") for _ in boxes]
        self.nodes: list[DiagramNode] = []
        self.edges: list[DiagramEdge] = []
        self.show_adjoints = self._adjoints_available()
        self.missing_interior_adjoints = False

    def _adjoints_available(self) -> bool:
        if _is_tensor(self.output):
            return True  # per node: a tensor shows its grad when it has one
        return any(node.grad != 0.0 for node in self.order)

    def build(self) -> tuple[list[DiagramNode], list[DiagramEdge], dict[int, str]]:
        by_graph_node: dict[int, str] = {}
        box_ids: dict[int, str] = {}
        op_ids: dict[int, str] = {}
        last = len(self.order) - 1
        for position, node in enumerate(self.order):
            box = self.box_of.get(position)
            self.namer.assign(
                node,
                is_output=position == last,
                fixed=None if box is None else self.box_names[box],
            )
            if box is not None:
                if box not in box_ids:
                    box_ids[box] = self._add_box(box)
                by_graph_node[id(node)] = box_ids[box]
                continue
            node_id = self._add_value_node(node, is_output=position == last)
            by_graph_node[id(node)] = node_id
            if node.op is not None and not self.fold_ops:
                op_ids[id(node)] = self._add_node(
                    DiagramNode(f"n{len(self.nodes)}", node.op.name, node.op.name, kind="op")
                )
                self._add_edge(op_ids[id(node)], node_id)
        self._finish_boxes(box_ids)
        into_box: set[tuple[str, str]] = set()
        for position, node in enumerate(self.order):
            if node.op is None:
                continue
            box = self.box_of.get(position)
            head = (
                box_ids[box] if box is not None else op_ids.get(id(node), by_graph_node[id(node)])
            )
            for index, parent in enumerate(node.parents):
                tail = by_graph_node[id(parent)]
                if tail == head:
                    continue  # inside one box
                if box is not None:
                    # Into a folded box: the partial is the module's Jacobian, not one op's.
                    if (tail, head) not in into_box:
                        into_box.add((tail, head))
                        self._add_edge(tail, head)
                    continue
                self._add_partial_edge(node, index, tail, head)
        return self.nodes, self.edges, by_graph_node

    # --- nodes -------------------------------------------------------------------------

    def _add_node(self, node: DiagramNode) -> str:
        self.nodes.append(node)
        return node.id

    def _add_value_node(self, node: Node, is_output: bool) -> str:
        key = id(node)
        name = self.namer.names[key]
        expression = self.namer.formulas.get(key)
        if node.op is None:
            title = name
            kind = "constant" if is_constant(node) else "leaf"
        else:
            # Ops folded into the node show their formula; a separate op node shows the op.
            show_formula = self.fold_ops and expression is not None and expression != name
            title = f"{name} = {expression}" if show_formula else name
            kind = "interior"
        if is_output:
            kind = "output"
        lines: list[str] = []
        value = grad = None
        shape = dtype = None
        if kind == "constant":
            value = _scalar(node.data)
        elif _is_tensor(node):
            array = np.asarray(node.data)
            shape, dtype = tuple(array.shape), str(array.dtype)
            shape_line = _shape_text(shape, dtype, self.show_dtype)
            if shape_line:
                lines.append(shape_line)
            if self.numbers and array.size <= _SHOWN_ELEMENTS:
                lines.append(f"value {_format_array(array)}")
            value = _scalar(array)
            if node.grad is not None:
                gradient = np.asarray(node.grad)
                grad = _scalar(gradient)
                if self.numbers:
                    if gradient.size <= _SHOWN_ELEMENTS:
                        lines.append(f"grad {_format_array(gradient)}")
                    else:
                        norm = float(np.linalg.norm(gradient))
                        lines.append(f"‖grad‖ {format_number(norm)}")
            elif node.op is not None or getattr(node, "requires_grad", False):
                self.missing_interior_adjoints = True
        else:
            value = float(node.data)
            if self.show_adjoints:
                grad = float(node.grad)
            if self.numbers:
                lines.append(f"value {format_number(value)}")
                if grad is not None:
                    lines.append(f"grad {format_number(grad)}")
        return self._add_node(
            DiagramNode(
                f"n{len(self.nodes)}",
                name,
                title,
                tuple(lines),
                kind,
                value,
                grad,
                shape,
                dtype,
            )
        )

    def _add_box(self, box: int) -> str:
        return self._add_node(
            DiagramNode(
                f"n{len(self.nodes)}", self.box_names[box], self.boxes[box].title, kind="module"
            )
        )

    def _finish_boxes(self, box_ids: dict[int, str]) -> None:
        """Give each box its name, parameter count and output shape."""
        if not box_ids:
            return
        children = _children_of(self.order, self.index_of)
        last = len(self.order) - 1
        for box, node_id in box_ids.items():
            members = self.boxes[box].members
            parameters = sum(
                int(np.size(self.order[m].data)) for m in members if _is_parameter(self.order[m])
            )
            outputs = [
                m
                for m in sorted(members)
                if self.order[m].op is not None
                and (m == last or any(self.box_of.get(c) != box for c in children[m]))
            ]
            lines = [f"{self.box_names[box]} · {parameters} parameters"]
            if outputs:
                array = np.asarray(self.order[outputs[-1]].data)
                shape_line = _shape_text(tuple(array.shape), str(array.dtype), self.show_dtype)
                lines.append(f"out {shape_line or 'scalar'}")
            position = next(i for i, n in enumerate(self.nodes) if n.id == node_id)
            self.nodes[position] = replace(self.nodes[position], lines=tuple(lines))

    # --- edges -------------------------------------------------------------------------

    def _add_edge(self, tail: str, head: str, **fields: Any) -> None:
        self.edges.append(DiagramEdge(f"e{len(self.edges)}", tail, head, **fields))

    def _add_partial_edge(self, node: Node, index: int, tail: str, head: str) -> None:
        op = node.op
        assert op is not None
        partial = op.partials[index]
        symbol = self.namer.partial(node, index)
        number: float | None = None
        if partial.vjp is None and np.size(node.data) == 1:
            inputs = tuple(parent.data for parent in node.parents)
            number = _scalar(partial.value(node._xp, node.data, inputs, node.params))
        self._add_edge(
            tail,
            head,
            symbol=symbol,
            value=number,
            label=_edge_label(symbol, number, self.numbers),
        )

    def caption(self, output: Node) -> str:
        name = self.namer.names[id(output)]
        if len(name) > _SHORT_CAPTION_NAME:
            name = "output"
        lines = [
            f"edge: local partial ∂head/∂tail{' = value here' if self.numbers else ''}"
            + (f" · node: value, grad = ∂{name}/∂node" if self.numbers else "")
        ]
        if self.numbers and not self.show_adjoints:
            lines.append("run backward() to show adjoints")
        elif self.numbers and self.missing_interior_adjoints:
            lines.append(
                "adjoints of some nodes are missing: run backward(retain_grads=True) to show them"
            )
        if self.boxes:
            lines.append("boxes: modules folded into one node (inner partials not shown)")
        return "\n".join(lines)


def _shape_text(shape: tuple[int, ...], dtype: str, show_dtype: bool) -> str:
    """``2×3`` for a matrix, ``vector of 3`` for a vector, with `` float32`` after it
    when the dtype is shown; a scalar shows nothing unless the dtype is asked for
    (``scalar float64``)."""
    if not shape:
        return f"scalar {dtype}" if show_dtype else ""
    dims = f"vector of {shape[0]}" if len(shape) == 1 else "×".join(str(s) for s in shape)
    return f"{dims} {dtype}" if show_dtype else dims


def _mixes_dtypes(order: Sequence[Node]) -> bool:
    """Whether the tensors of a graph hold more than one dtype."""
    dtypes = {np.asarray(node.data).dtype for node in order if _is_tensor(node)}
    return len(dtypes) > 1


def _edge_label(symbol: str, number: float | None, numbers: bool) -> str:
    if not numbers or number is None:
        return symbol
    value = format_number(number)
    if symbol == value:
        return symbol  # a constant partial: "1" needs no "= 1"
    if len(symbol) > 12:
        return f"{symbol}\n= {value}"
    return f"{symbol} = {value}"


# --- highlight -----------------------------------------------------------------------------


def _find_highlight(highlight: Node | str, order: list[Node], by_graph_node: dict[int, str]) -> str:
    if isinstance(highlight, Node):
        node_id = by_graph_node.get(id(highlight))
        if node_id is None:
            raise DiagramError("highlight: that node is not part of the drawn graph")
        return node_id
    if not isinstance(highlight, str):
        raise TypeError(f"highlight takes a node or its label, not {type(highlight).__name__}")
    matches = [node for node in order if node.label == highlight]
    if not matches:
        labels = sorted({node.label for node in order if node.label})
        raise DiagramError(
            f"highlight: no node is labelled {highlight!r}; labels in this graph: "
            + (", ".join(repr(label) for label in labels[:30]) or "none")
        )
    if len(matches) > 1:
        raise DiagramError(
            f"highlight: {len(matches)} nodes are labelled {highlight!r}; pass the node itself"
        )
    return by_graph_node[id(matches[0])]


def _highlight_paths(
    nodes: list[DiagramNode], edges: list[DiagramEdge], start: str
) -> tuple[list[DiagramNode], list[DiagramEdge]]:
    """Mark every edge on a path from ``start`` to the output, and the nodes on them.

    Every node of a diagram leads to the output, so the edges on such paths are
    exactly the edges leaving ``start`` or a node reachable from it.
    """
    outgoing: dict[str, list[str]] = {}
    for edge in edges:
        outgoing.setdefault(edge.source, []).append(edge.target)
    reached = {start}
    stack = [start]
    while stack:
        for target in outgoing.get(stack.pop(), []):
            if target not in reached:
                reached.add(target)
                stack.append(target)
    nodes = [replace(n, highlighted=True) if n.id in reached else n for n in nodes]
    edges = [replace(e, highlighted=True) if e.source in reached else e for e in edges]
    return nodes, edges
