"""A derivative as a sum over paths: the graphical chain rule of the handouts.

∂output/∂wrt is the sum, over every path from ``wrt`` to ``output`` in the
dataflow graph, of the product of the local partials on the path's edges (the
Harvey Mudd method of the assignment, §4). :func:`explain` lists those paths with
their factors — each read from the op row of the edge's child, symbolically
(:attr:`chainrule.ops.Partial.symbol`) and numerically (:meth:`Partial.value`) —
adds them up, and sets the sum beside the adjoint backprop computes.

It also reports the cost of each way, which is the point of quiz exercise 2.7 and
assignment §6: the number of paths grows exponentially with the depth of a
network (it is counted exactly, by dynamic programming, without listing them),
while backprop does one multiply-add per edge of the graph.
"""

from __future__ import annotations

import math
import numbers
import re
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ChainruleError
from ..graph import Node, adjoints, chain_rule, topological_order
from . import naming
from .render import readable_text

__all__ = [
    "EdgeFactor",
    "Path",
    "PathExplanation",
    "TooManyPathsError",
    "all_nodes",
    "explain",
    "mlp_path_count",
]

#: How many paths :attr:`PathExplanation.report` lists before it summarises the rest.
REPORT_ROWS = 200
#: Reports list the input values in their heading when there are at most this many.
REPORT_POINT_INPUTS = 10
#: Reports keep their lines about this wide: wider tables become one block per path.
REPORT_WIDTH = 100

# Node names inside a rendered symbol (labels such as w1, x_2, made-up names u3).
_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_#]*")


class TooManyPathsError(ChainruleError, ValueError):
    """More paths than ``max_paths``; ``path_count`` says how many (raised on request)."""

    def __init__(self, message: str, path_count: int) -> None:
        super().__init__(message)
        self.path_count = path_count


@dataclass(frozen=True, eq=False)
class EdgeFactor:
    """One edge of a path: the local partial ∂child/∂parent, as text and as a number.

    ``value`` is a float, or an array shaped like ``parent`` when the parent is a
    vector leaf and the edge carries a gradient (the assignment's exercise 3(b)).
    """

    parent: Node
    child: Node
    input_index: int
    symbol: str
    value: Any


@dataclass(frozen=True, eq=False)
class Path:
    """A path from ``wrt`` (first node) to the output (last node) and its product."""

    nodes: tuple[Node, ...]
    names: tuple[str, ...]
    factors: tuple[EdgeFactor, ...]
    product: Any


@dataclass(eq=False)
class PathExplanation:
    """∂output/∂wrt as a sum over paths, next to backprop, with the cost of each.

    Attributes:
        output_name, wrt_name: display names of the two ends.
        path_count: the number of paths (exact, counted without listing them).
        path_factor_count: the edge factors over all paths, which is what evaluating
            the path sum costs in multiply-adds.
        paths: every :class:`Path` (empty when enumeration was refused).
        total: the sum over paths (``None`` when refused).
        backprop: the adjoint ∂output/∂wrt from a fresh backward walk.
        backprop_multiply_adds: one per edge of the graph behind the output.
        refused: why the paths were not listed, or ``None``.
        output_formula: the output's forward formula in the names of its inputs.
        definitions: the formula of every node given a made-up name (``u1 = x²``).
        point: the value of each labelled input, for the report's heading.
        max_paths: the limit the paths were listed under.
        unicode: whether the symbols and the report use Unicode (``2·x``) or ASCII.
    """

    output: Node
    wrt: Node
    output_name: str
    wrt_name: str
    path_count: int
    path_factor_count: int
    paths: list[Path]
    total: Any
    backprop: Any
    backprop_multiply_adds: int
    refused: str | None
    max_paths: int
    output_formula: str | None = None
    definitions: dict[str, str] = field(default_factory=dict)
    point: dict[str, Any] = field(default_factory=dict)
    unicode: bool = True

    @property
    def agrees(self) -> bool | None:
        """Whether the path sum equals backprop (to rounding); ``None`` when refused."""
        if self.total is None:
            return None
        # Products of opposite sign can cancel, so the tolerance scales with their size;
        # at a domain edge (log x at 0) products are ±inf or NaN, which must match exactly.
        scale = 0.0
        for path in self.paths:
            magnitudes = np.abs(np.asarray(path.product, dtype=float))
            finite = magnitudes[np.isfinite(magnitudes)]
            scale += float(np.max(finite, initial=0.0))
        with np.errstate(invalid="ignore"):
            return bool(
                np.allclose(
                    self.total,
                    self.backprop,
                    rtol=1e-9,
                    atol=1e-15 + 1e-9 * min(scale, 1e300),
                    equal_nan=True,
                )
            )

    @property
    def report(self) -> str:
        """A readable text table: every path (up to 200), its factors, the sums, the costs."""
        return self.format(max_rows=REPORT_ROWS)

    def __str__(self) -> str:
        return self.report

    def format(self, max_rows: int | None = None) -> str:
        """The report, listing at most ``max_rows`` paths (all with ``None``)."""
        u = self.unicode
        d = "∂" if u else "d"
        arrow = " → " if u else " -> "
        times = " × " if u else " * "
        derivative = f"{d}{self.output_name}/{d}{self.wrt_name}"
        lines = [f"{derivative} as a sum over the paths from {self.wrt_name} to {self.output_name}"]
        heading = []
        if self.output_formula is not None:
            heading.append(f"{self.output_name} = {self.output_formula}")
        if self.point and len(self.point) <= REPORT_POINT_INPUTS:
            heading.append("at " + ", ".join(f"{k} = {_number(v)}" for k, v in self.point.items()))
        elif self.point:
            heading.append(f"at the current values of its {len(self.point):,} labelled inputs")
        if heading:
            lines.extend(_wrap(", ".join(heading), "  "))
        lines.append("")
        if self.refused is not None:
            lines.extend(_wrap(f"paths not listed: {self.refused}", ""))
        elif not self.paths:
            lines.append(
                f"no path leads from {self.wrt_name} to {self.output_name}: {derivative} = 0"
            )
        else:
            rows = [("#", "path", "partials", "at the point", "product")]
            shown = self.paths if max_rows is None else self.paths[:max_rows]
            for number, path in enumerate(shown, 1):
                rows.append(
                    (
                        str(number),
                        arrow.join(path.names),
                        times.join(_as_factor(f.symbol) for f in path.factors) or "1",
                        times.join(_number(f.value) for f in path.factors) or "1",
                        _number(path.product),
                    )
                )
            table = _table(rows, right_aligned={0, 4})
            if max(len(line) for line in table) <= REPORT_WIDTH:
                lines.extend(table)
            else:
                lines.extend(_blocks(rows[1:]))
            if len(shown) < len(self.paths):
                ellipsis = "…" if u else "..."
                more = len(self.paths) - len(shown)
                lines.append(f"{ellipsis} and {more:,} more paths (all in .paths)")
        lines.append("")
        summary = [
            (
                f"sum over {self.path_count:,} {'path' if self.path_count == 1 else 'paths'}",
                ("—" if u else "-") if self.total is None else _number(self.total),
            ),
            (f"backprop {derivative}", _number(self.backprop)),
        ]
        lines.extend(_table(summary, right_aligned={1}))
        if self.agrees is not None:
            lines[-1] += "   (agrees)" if self.agrees else "   (DISAGREES: a partial is wrong)"
        if self.definitions:
            lines.append("")
            defined = [f"{name} = {formula}" for name, formula in self.definitions.items()]
            one_line = "where " + ", ".join(defined)
            if len(one_line) <= REPORT_WIDTH:
                lines.append(one_line)
            else:
                lines.append("where")
                for definition in defined[:REPORT_ROWS]:
                    lines.extend(_wrap("  " + definition, "      "))
                if len(defined) > REPORT_ROWS:
                    more = len(defined) - REPORT_ROWS
                    lines.append(f"  and {more:,} more (all in .definitions)")
        lines.append("")
        plural = "path" if self.path_count == 1 else "paths"
        width = len(f"{max(self.path_factor_count, self.backprop_multiply_adds):,}")
        lines.append(
            f"cost: path sum {self.path_factor_count:>{width},} multiply-adds over "
            f"{self.path_count:,} {plural} (exponential in depth for an MLP)"
        )
        lines.append(
            f"      backprop {self.backprop_multiply_adds:>{width},} multiply-adds, one per edge "
            "(linear in edges), for every gradient at once"
        )
        return "\n".join(lines)


def _as_factor(symbol: str) -> str:
    """A partial as one factor of a product: ``1 − y`` becomes ``(1 − y)``.

    Formulas put spaces only around ``+`` and ``−`` (and structural symbols around
    ``@`` and words), so a space outside brackets marks a symbol that would otherwise
    run into its neighbours in ``a × b``.
    """
    depth = 0
    for char in symbol:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and char.isspace():
            return f"({symbol})"
    return symbol


def _number(value: Any) -> str:
    array = np.asarray(value, dtype=float) + 0.0  # + 0.0 shows −0.0 as 0
    if array.ndim == 0:
        return f"{float(array):.6g}"
    return np.array2string(
        array, separator=", ", threshold=12, formatter={"float_kind": lambda v: f"{v:.6g}"}
    )


def _blocks(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Paths too long for a table: one block each, long lines wrapped at the factors."""
    lines = []
    for number, path, partials, values, product in rows:
        lines.extend(_wrap(f"path {number}: {path}", "    "))
        lines.extend(_wrap(f"  partials      {partials}", " " * 16))
        lines.extend(_wrap(f"  at the point  {values}", " " * 16))
        lines.append(f"  product       {product}")
    return lines


def _wrap(text: str, indent: str) -> list[str]:
    # Break at spaces only: never inside a name, a number or at a minus sign.
    return textwrap.wrap(
        text,
        width=REPORT_WIDTH,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [text]


def _table(rows: Sequence[tuple[str, ...]], right_aligned: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in right_aligned else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


# --- the graph seen from wrt -------------------------------------------------------------


#: Forward formulas up to this long name their node (x², x²·y); longer ones get u1, u2, ….
SHORT_FORMULA = naming.SHORT_FORMULA


class _Names(naming.NodeNames):
    """Display names for the nodes of the output's graph (the rules of
    :mod:`chainrule.explanations.naming`), labels written as plain text (``w₁``)."""

    def __init__(self, order: list[Node], output: Node, unicode: bool) -> None:
        super().__init__(
            order, unicode=unicode, label_text=lambda label: readable_text(label, unicode)
        )
        for node in order:
            self.assign(node, is_output=node is output)

    def name_outsider(self, node: Node) -> None:
        """Name a node that is not in the output's graph (a wrt with no path)."""
        label = node.label
        self.names[id(node)] = self.label_text(label) if label else self.fresh("w")


def _edge_value(child: Node, index: int) -> Any:
    """∂child/∂parent at the current point, read from the child's op row."""
    assert child.op is not None
    partial = child.op.partials[index]
    parent = child.parents[index]
    inputs = tuple(p.data for p in child.parents)
    if partial.vjp is None:
        value = partial.value(child._xp, child.data, inputs, child.params)
    else:
        # The child is one number, so its vector-Jacobian product with a seed of 1
        # is exactly the gradient of the child with respect to this parent.
        seed = np.ones_like(child.data)
        value = child._fit_adjoint(partial.vjp(seed, child.data, *inputs, **child.params), parent)
    if np.size(parent.data) == 1:
        return float(np.asarray(value, dtype=float).reshape(-1)[0])
    return np.array(np.broadcast_to(value, np.shape(parent.data)), dtype=float)


def _seed(output: Node) -> Any:
    return np.ones_like(output.data) if isinstance(output.data, np.ndarray) else 1.0


def _zero_like(node: Node) -> Any:
    return np.zeros_like(node.data) if isinstance(node.data, np.ndarray) else 0.0


def _backprop(output: Node, order: list[Node], wrt: Node) -> tuple[Any, int]:
    """The adjoint of ``wrt`` from a fresh reverse walk, and its multiply-add count.

    The walk of :func:`chainrule.graph.backward` (:func:`~chainrule.graph.adjoints`),
    which changes no node's ``grad``: explaining a derivative leaves the graph as it was.
    """
    multiply_adds = 0

    def counted(node: Node, adjoint: Any) -> list[Any]:
        nonlocal multiply_adds
        contributions = chain_rule(node, adjoint)
        # one adjoint · partial per contribution, added into the parent's adjoint
        multiply_adds += sum(contribution is not None for contribution in contributions)
        return contributions

    result = None
    for node, adjoint in adjoints(output, _seed(output), order=order, chain=counted):
        if node is wrt:
            result = adjoint
    if result is None:
        result = _zero_like(wrt)
    elif np.size(wrt.data) == 1:
        result = float(np.asarray(result, dtype=float).reshape(-1)[0])
    return result, multiply_adds


def _count_paths(order: list[Node], wrt: Node) -> tuple[dict[int, int], dict[int, int]]:
    """Paths from ``wrt`` to every node, and their total length, in exact integers.

    In topological order, a node's paths are its parents' paths each extended by
    one edge: count(n) = Σ count(parent) over n's edges, with count(wrt) = 1.
    """
    counts: dict[int, int] = {}
    lengths: dict[int, int] = {}
    for node in order:
        if node is wrt:
            counts[id(node)], lengths[id(node)] = 1, 0
            continue
        count = length = 0
        for parent in node.parents:
            parent_count = counts.get(id(parent), 0)
            if parent_count:
                count += parent_count
                length += lengths[id(parent)] + parent_count
        if count:
            counts[id(node)], lengths[id(node)] = count, length
    return counts, lengths


def _enumerate(
    output: Node, order: list[Node], wrt: Node, counts: dict[int, int]
) -> Iterator[list[tuple[Node, int]]]:
    """Every path as a list of edges (child, input index), wrt's edge first."""
    consumers: dict[int, list[tuple[Node, int]]] = {}
    for node in order:
        if id(node) not in counts or node.op is None:
            continue
        for index, parent in enumerate(node.parents):
            if id(parent) in counts:
                consumers.setdefault(id(parent), []).append((node, index))
    # Depth-first from wrt along the edges that lead on to the output (iterative).
    stack: list[tuple[Node, list[tuple[Node, int]]]] = [(wrt, [])]
    while stack:
        node, edges = stack.pop()
        if node is output:
            yield edges
            continue
        for child, index in reversed(consumers.get(id(node), [])):
            stack.append((child, [*edges, (child, index)]))


def _check_scalar_paths(
    order: list[Node], wrt: Node, counts: dict[int, int], names: _Names
) -> None:
    for node in order:
        if node is not wrt and id(node) in counts and np.size(node.data) != 1:
            raise ChainruleError(
                f"explain() follows single numbers along each path, but {names[node]} "
                f"(op {node.op.name if node.op else 'leaf'}) on a path from {names[wrt]} "
                f"has shape {np.shape(node.data)}; only wrt may be a vector (its edges then "
                "carry gradients, as in the assignment's exercise 3(b)). Explain one "
                "element at a time, e.g. of a neuron-level network."
            )


def all_nodes(output: Node) -> list[Node]:
    """Every node ``output`` depends on, parents first, constants included (iterative).

    Unlike backward's order, this keeps tensors that need no gradient: they still
    have names and values to show.
    """
    return topological_order(output, every_node=True)


def _resolve_wrt(order: list[Node], wrt: Node | str) -> Node:
    if isinstance(wrt, Node):
        return wrt
    if isinstance(wrt, str):
        matches = [node for node in order if node.label == wrt]
        if len(matches) == 1:
            return matches[0]
        labels = sorted({node.label for node in order if node.label})
        if not matches:
            raise ChainruleError(
                f"no node labelled {wrt!r} in the graph (labels: {', '.join(labels) or 'none'})"
            )
        raise ChainruleError(f"{len(matches)} nodes are labelled {wrt!r}: pass the node itself")
    raise TypeError(f"wrt must be a node of the graph or its label, not {type(wrt).__name__}")


def explain(
    output: Node,
    wrt: Node | str,
    *,
    max_paths: int = 10_000,
    raise_if_too_many: bool = False,
    unicode: bool = True,
) -> PathExplanation:
    """Decompose ∂output/∂wrt into its sum over paths and compare it with backprop.

    Args:
        output: a :class:`~chainrule.Value`, or a one-element :class:`~chainrule.Tensor`,
            at the end of a recorded graph. Every node on a path must hold one number,
            except ``wrt`` itself, which may be a vector leaf (its edges then carry
            gradients).
        wrt: the node to differentiate with respect to (any node of the graph), or
            the label of a node.
        max_paths: list the paths only if there are at most this many; the count is
            always reported.
        raise_if_too_many: raise :class:`TooManyPathsError` instead of returning an
            explanation that says why it did not list them.
        unicode: ``False`` for ASCII symbols and report (``2*x``, ``->``).

    Returns:
        a :class:`PathExplanation`; ``str()`` of it is the report. No node's ``grad``
        changes.
    """
    if not isinstance(output, Node):
        raise TypeError(f"explain() takes a Value or Tensor output, not {type(output).__name__}")
    if not isinstance(max_paths, numbers.Integral) or max_paths < 0:
        raise ValueError(f"max_paths must be a non-negative integer, got {max_paths!r}")
    if np.size(output.data) != 1:
        raise ChainruleError(
            f"explain() needs a one-number output; this one has shape {np.shape(output.data)} "
            "(reduce it first, e.g. .sum())"
        )
    if not output._needs_grad():
        raise ChainruleError("the output records no graph: make the inputs with requires_grad=True")
    order = all_nodes(output)
    wrt = _resolve_wrt(order, wrt)
    if not wrt._needs_grad():
        raise ChainruleError("wrt does not require grad, so no path is recorded from it")
    names = _Names(order, output, unicode)
    if not any(node is wrt for node in order):
        names.name_outsider(wrt)
    counts, lengths = _count_paths(order, wrt)
    _check_scalar_paths(order, wrt, counts, names)
    path_count = counts.get(id(output), 0)
    path_factor_count = lengths.get(id(output), 0)
    backprop, multiply_adds = _backprop(output, topological_order(output), wrt)

    refused = None
    paths: list[Path] = []
    total: Any = None
    if path_count > max_paths:
        plural = "path leads" if path_count == 1 else "paths lead"
        refused = (
            f"{path_count:,} {plural} from {names[wrt]} to {names[output]}, more than "
            f"max_paths={max_paths:,}; their sum would take {path_factor_count:,} "
            f"multiply-adds where backprop takes {multiply_adds:,}"
        )
        if raise_if_too_many:
            raise TooManyPathsError(
                f"{refused} (pass max_paths={path_count} to list them anyway)", path_count
            )
    else:
        paths = _paths(output, order, wrt, counts, names, unicode)
        total = _zero_like(wrt) if np.size(wrt.data) != 1 else 0.0
        for path in paths:
            total = total + path.product

    referenced = set()
    for path in paths:
        referenced.update(path.names)
        for factor in path.factors:
            referenced.update(_NAME_PATTERN.findall(factor.symbol))
    definitions = _definitions(order, names, referenced)
    output_formula = names.formulas.get(id(output))
    if output_formula is not None:
        # Define the names the heading's formula uses, one level deep: following them
        # all the way down would define every node of a large network.
        for name in _NAME_PATTERN.findall(output_formula):
            if name in names.definitions and name != names[output]:
                definitions.setdefault(name, names.definitions[name])
    definitions.pop(names[output], None)  # the heading already shows it
    point = {
        names[node]: node.data
        for node in order
        if node.op is None and node.label and np.size(node.data) <= 12
    }
    return PathExplanation(
        output=output,
        wrt=wrt,
        output_name=names[output],
        wrt_name=names[wrt],
        path_count=path_count,
        path_factor_count=path_factor_count,
        paths=paths,
        total=total,
        backprop=backprop,
        backprop_multiply_adds=multiply_adds,
        refused=refused,
        max_paths=int(max_paths),
        output_formula=output_formula,
        definitions=definitions,
        point=point,
        unicode=unicode,
    )


def _paths(
    output: Node,
    order: list[Node],
    wrt: Node,
    counts: dict[int, int],
    names: _Names,
    unicode: bool,
) -> list[Path]:
    factor_cache: dict[tuple[int, int], EdgeFactor] = {}
    paths = []
    for edges in _enumerate(output, order, wrt, counts):
        factors = []
        nodes = [wrt]
        for child, index in edges:
            key = (id(child), index)
            factor = factor_cache.get(key)
            if factor is None:
                factor = EdgeFactor(
                    parent=child.parents[index],
                    child=child,
                    input_index=index,
                    symbol=names.partial(child, index),
                    value=_edge_value(child, index),
                )
                factor_cache[key] = factor
            factors.append(factor)
            nodes.append(child)
        product: Any = 1.0
        for factor in factors:
            product = product * factor.value
        paths.append(
            Path(
                nodes=tuple(nodes),
                names=tuple(names[n] for n in nodes),
                factors=tuple(factors),
                product=product,
            )
        )
    return paths


def _definitions(order: list[Node], names: _Names, referenced: set[str]) -> dict[str, str]:
    """``u1 = …`` for every made-up name the report shows, and those their formulas use."""
    needed = set(referenced)
    for node in reversed(order):
        formula = names.definitions.get(names[node])
        if formula is not None and names[node] in needed:
            needed.update(_NAME_PATTERN.findall(formula))
    return {
        names[node]: names.definitions[names[node]]
        for node in order
        if names[node] in names.definitions and names[node] in needed
    }


def mlp_path_count(sizes: Sequence[int], layer: int) -> int:
    """Paths from one unit of an MLP's layer ``layer`` to a loss summed over its outputs.

    Closed form: n_{layer+1} · n_{layer+2} · … · n_m (the handout's numbering: layer 1
    is the input, layer m the output), because a path picks one unit in every later
    layer. Bias units receive no edges, so they are not counted. A weight
    w^{(k)}_{i,j} feeds only unit i of layer k+1, so its paths number
    ``mlp_path_count(sizes, k + 1)``.

    Args:
        sizes: the widths n_1, …, n_m, input first.
        layer: 1-based layer of the unit.
    """
    widths = [int(n) for n in sizes]
    if any(n < 1 for n in widths):
        raise ValueError(f"layer widths must be positive, got {list(sizes)}")
    if not 1 <= layer <= len(widths):
        raise ValueError(f"layer must be between 1 and {len(widths)}, got {layer}")
    return math.prod(widths[layer:])
