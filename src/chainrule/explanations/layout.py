"""A pure-Python layered ("Sugiyama") layout for dataflow diagrams.

No Graphviz needed: diagrams must render on a fresh machine. The steps are the
classic ones, each kept linear or ``n log n`` so a graph of several thousand nodes
lays out in a second or two:

1. **Layering.** Longest path from the sources; then, from the output back, a node
   moves as late as its consumers allow when that shortens the edges overall, the
   sources that feed it following; finally every source is pulled next to its first
   consumer, so a weight used deep in a graph does not sit in the first column with a
   long edge (a cheap stand-in for network simplex).
2. **Label nodes and dummies.** An edge with a label gets a node of its own, the size
   of the label, in the rank just before its head (as Graphviz gives labels a rank
   of their own), so the spacing steps below keep labels apart from each other and
   from nodes, and a long edge's label sits beside the node it leads into. Longer
   edges get a chain of zero-size dummies, one per rank crossed.
3. **Crossing reduction.** A few down and up sweeps ordering each rank by the
   barycentre of its neighbours in the previous rank; crossings are counted with a
   Fenwick tree after every sweep and the best order is kept. Small graphs also get
   a pass of adjacent swaps.
4. **Coordinates.** Each rank is repeatedly moved towards the weighted mean of its
   neighbours' positions, as close as the order and the minimum gaps allow: that is
   an isotonic regression, solved exactly by pool-adjacent-violators. Chains of
   dummies weigh more, so long edges stay straight.
5. **Routing.** Each edge is the polyline through its dummies and label node, with
   its ends clipped to the node outlines; renderers draw it as a smooth spline
   through those points.

The layout knows nothing about chainrule: it places boxes and routes edges.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

Point = tuple[float, float]

#: Directions a diagram can flow in: left to right or top to bottom.
RANKDIRS = ("LR", "TB")

_DUMMY_WEIGHT = 8.0  # a dummy–dummy segment: long edges stay straight
_HALF_DUMMY_WEIGHT = 2.0  # a segment with one dummy end
_FEEDER_WEIGHT = 0.2  # an edge from a source (a weight, an input) barely pulls its head


class LayoutError(ValueError):
    """The layout was asked something impossible (bad node index, unknown direction)."""


@dataclass(frozen=True)
class LayoutNode:
    """A box to place.

    Args:
        width: extent along x in points.
        height: extent along y in points.
        shape: ``"ellipse"``, ``"circle"``, ``"box"`` or ``"plain"``; edges are clipped
            to this outline.
        rank: a fixed rank (column for ``LR``, row for ``TB``), or None to compute it.
        order: a fixed position within the rank (smaller first); when every node
            has one, crossing reduction is skipped. A node with a negative order and no
            edges is a heading: it goes above (``LR``) or left of (``TB``) the nodes of
            its rank, all headings in one line.
    """

    width: float
    height: float
    shape: str = "ellipse"
    rank: int | None = None
    order: float | None = None


@dataclass(frozen=True)
class LayoutEdge:
    """An arrow from node ``source`` to node ``target`` (indices into the node list).

    Args:
        label_width: the label's extent along x (0 for no label).
        label_height: the label's extent along y.
        label_position: None gives the label a node of its own between the ends (the
            edge passes through it); a fraction in [0, 1] draws the edge straight and
            puts the label that far along it from the source.
    """

    source: int
    target: int
    label_width: float = 0.0
    label_height: float = 0.0
    label_position: float | None = None


@dataclass
class PlacedNode:
    """A node's centre and size after layout."""

    x: float
    y: float
    width: float
    height: float
    shape: str


@dataclass
class Route:
    """An edge after layout: a polyline (ends on the node outlines) and its label centre.

    ``smooth`` says the renderer should draw a spline through ``points`` rather than
    straight segments.
    """

    points: list[Point]
    label: Point | None
    smooth: bool


@dataclass
class Layout:
    """Positions for every node and a route for every edge, in points, origin top left."""

    width: float
    height: float
    nodes: list[PlacedNode]
    edges: list[Route]
    crossings: int = 0
    ranks: list[int] = field(default_factory=list)


@dataclass
class _Graph:
    """The working graph: real nodes first, then label nodes and dummies."""

    rank_extent: list[float]  # size along the rank axis
    cross_extent: list[float]  # size along the cross axis
    rank: list[int]
    is_dummy: list[bool]
    successors: list[list[int]]
    predecessors: list[list[int]]
    chains: list[list[int]]  # per original edge: the vertices it passes through
    label_vertex: list[int | None]  # per original edge: its label node
    feeder: list[bool] = field(default_factory=list)  # see _mark_feeders


def layered_layout(
    nodes: Sequence[LayoutNode],
    edges: Sequence[LayoutEdge],
    *,
    rankdir: str = "LR",
    node_gap: float = 18.0,
    rank_gap: float = 26.0,
    rank_gaps: dict[int, float] | None = None,
    balance: bool = True,
    margin: float = 12.0,
) -> Layout:
    """Lay out a directed graph in ranks.

    Args:
        nodes: the boxes to place.
        edges: arrows between them (a cycle is tolerated: its back edges are reversed
            for layering).
        rankdir: ``"LR"`` (ranks are columns, edges point right) or ``"TB"`` (rows,
            edges point down).
        node_gap: the least distance between neighbouring boxes in one rank.
        rank_gap: the least distance between consecutive ranks.
        rank_gaps: a larger gap after some ranks, by rank number (for drawings that
            place labels along straight edges).
        balance: move nodes towards their neighbours (True) or simply centre each
            rank (False, for drawings such as network layers).
        margin: empty space around the drawing.

    Returns:
        A :class:`Layout`.
    """
    if rankdir not in RANKDIRS:
        raise LayoutError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    count = len(nodes)
    for index, edge in enumerate(edges):
        if not (0 <= edge.source < count and 0 <= edge.target < count):
            raise LayoutError(
                f"edge {index} joins nodes {edge.source} and {edge.target}, "
                f"but there are only {count} nodes"
            )
    horizontal = rankdir == "LR"
    if count == 0:
        return Layout(2 * margin, 2 * margin, [], [], 0, [])

    ranks = _assign_ranks(nodes, edges)
    graph = _build_graph(nodes, edges, ranks, horizontal)
    layers = _initial_layers(graph, nodes)
    fixed_order = all(node.order is not None for node in nodes) and len(graph.rank) == count
    crossings = _count_all_crossings(layers, graph)
    if not fixed_order:
        layers, crossings = _reduce_crossings(layers, graph, crossings)
    headings = {
        v
        for v, node in enumerate(nodes)
        if node.order is not None
        and node.order < 0
        and not graph.successors[v]
        and not graph.predecessors[v]
    }
    body = [[v for v in layer if v not in headings] for layer in layers]
    cross = _assign_cross_coordinates(body, graph, node_gap, balance)
    _place_headings(layers, headings, graph, cross, node_gap)
    along = _assign_rank_coordinates(graph, rank_gap, rank_gaps or {})
    return _finish(nodes, edges, graph, along, cross, horizontal, margin, crossings, ranks)


# --- 1. layering --------------------------------------------------------------------


def _assign_ranks(nodes: Sequence[LayoutNode], edges: Sequence[LayoutEdge]) -> list[int]:
    count = len(nodes)
    successors: list[list[int]] = [[] for _ in range(count)]
    indegree = [0] * count
    for edge in edges:
        if edge.source != edge.target:
            successors[edge.source].append(edge.target)
            indegree[edge.target] += 1
    order = _topological_order(successors, indegree)
    position = {vertex: index for index, vertex in enumerate(order)}

    # Edges that go backwards in the order close a cycle: they do not constrain.
    forward_successors = [
        [t for t in successors[v] if position[t] > position[v]] for v in range(count)
    ]
    predecessors: list[list[int]] = [[] for _ in range(count)]
    for vertex in range(count):
        for target in forward_successors[vertex]:
            predecessors[target].append(vertex)
    rank = [0] * count
    for vertex in order:
        for target in forward_successors[vertex]:
            rank[target] = max(rank[target], rank[vertex] + 1)
    # Move a node as late as its consumers allow when that shortens the edges at least as
    # much as it stretches them, counting that the sources feeding it (weights, inputs,
    # constants) will follow it: 1 − y then moves next to (1 − y)·log(1 − z), and y next
    # to both its consumers. Sources go last, each just before its first consumer, so a
    # weight sits next to its first use, and so does a chain like weight -> weightᵀ.
    for vertex in reversed(order):
        forward = forward_successors[vertex]
        if not forward or indegree[vertex] == 0:
            continue
        latest = min(rank[t] for t in forward) - 1
        if (
            latest > rank[vertex]
            and _lengthening(vertex, latest, rank, forward_successors, predecessors, indegree) <= 0
        ):
            rank[vertex] = latest
    for vertex in range(count):
        forward = forward_successors[vertex]
        if forward and indegree[vertex] == 0:
            rank[vertex] = max(rank[vertex], min(rank[t] for t in forward) - 1)

    # Fixed ranks win; other nodes keep their computed rank.
    if any(node.rank is not None for node in nodes):
        rank = [rank[i] if node.rank is None else node.rank for i, node in enumerate(nodes)]
    lowest = min(rank)
    return [r - lowest for r in rank]


_FOLLOWING_SOURCE_LIMIT = 64  # sources with more edges are not re-placed in the estimate


def _lengthening(
    vertex: int,
    new_rank: int,
    rank: list[int],
    successors: list[list[int]],
    predecessors: list[list[int]],
    indegree: list[int],
) -> int:
    """How much longer (negative: shorter) all edges get if ``vertex`` moves later to
    ``new_rank``, its source predecessors following it to just before their first use."""
    shift = new_rank - rank[vertex]
    change = -shift * len(successors[vertex])
    for parent in set(predecessors[vertex]):
        targets = successors[parent]
        uses = targets.count(vertex)
        if indegree[parent] != 0 or len(targets) > _FOLLOWING_SOURCE_LIMIT:
            change += shift * uses  # a node that stays put: its edges to vertex stretch
            continue
        before = min(rank[t] for t in targets) - 1
        after = min(new_rank if t == vertex else rank[t] for t in targets) - 1
        # Every edge of the source shrinks by its move; those to vertex grow by shift.
        change += shift * uses - len(targets) * (after - before)
    return change


def _topological_order(successors: list[list[int]], indegree: list[int]) -> list[int]:
    """Kahn's algorithm; on a cycle, the remaining vertex of least in-degree goes next."""
    remaining = list(indegree)
    ready = [v for v in range(len(successors)) if remaining[v] == 0]
    ready.reverse()  # pop() then yields the lowest index first, keeping input order
    order: list[int] = []
    placed = [False] * len(successors)
    while len(order) < len(successors):
        if not ready:
            candidate = min(
                (v for v in range(len(successors)) if not placed[v]),
                key=lambda v: remaining[v],
            )
            ready.append(candidate)
        vertex = ready.pop()
        if placed[vertex]:
            continue
        placed[vertex] = True
        order.append(vertex)
        for target in reversed(successors[vertex]):
            remaining[target] -= 1
            if remaining[target] == 0 and not placed[target]:
                ready.append(target)
    return order


# --- 2. label nodes and dummies --------------------------------------------------------


def _build_graph(
    nodes: Sequence[LayoutNode],
    edges: Sequence[LayoutEdge],
    ranks: list[int],
    horizontal: bool,
) -> _Graph:
    # Labelled edges need a rank of their own between their ends: double every rank.
    needs_label_rank = any(e.label_width > 0 and e.label_position is None for e in edges)
    scale = 2 if needs_label_rank else 1
    rank = [r * scale for r in ranks]
    rank_extent = [n.width if horizontal else n.height for n in nodes]
    cross_extent = [n.height if horizontal else n.width for n in nodes]
    is_dummy = [False] * len(nodes)
    successors: list[list[int]] = [[] for _ in nodes]
    predecessors: list[list[int]] = [[] for _ in nodes]
    chains: list[list[int]] = []
    label_vertex: list[int | None] = []
    # Dummies cost time in every later step: short edges get theirs first, and past a
    # budget proportional to the graph the longest edges are drawn straight.
    dummy_budget = 4 * (len(nodes) + len(edges)) + 2_000
    spans = [abs(rank[e.target] - rank[e.source]) for e in edges]
    routed = set(range(len(edges)))
    budget_left = dummy_budget
    for index in sorted(range(len(edges)), key=spans.__getitem__):
        budget_left -= max(spans[index] - 1, 0)
        if budget_left < 0:
            routed.discard(index)

    def add_vertex(at_rank: int, along: float, across: float) -> int:
        rank.append(at_rank)
        rank_extent.append(along)
        cross_extent.append(across)
        is_dummy.append(True)
        successors.append([])
        predecessors.append([])
        return len(rank) - 1

    def link(a: int, b: int) -> None:
        successors[a].append(b)
        predecessors[b].append(a)

    for index, edge in enumerate(edges):
        source, target = edge.source, edge.target
        low, high = rank[source], rank[target]
        reverse = low > high
        if reverse:
            source, target, low, high = target, source, high, low
        span = high - low
        labelled = edge.label_width > 0 and edge.label_position is None
        chain = [source]
        label_at: int | None = None
        if source == target or span == 0 or index not in routed:
            # Self loops, edges within a rank, or past the budget: drawn straight.
            chains.append([edge.source, edge.target])
            label_vertex.append(None)
            continue
        # The label sits just before the edge's head, beside the node it belongs to, so
        # a long edge's label is not left halfway, far from both ends.
        label_rank = (low + 1 if reverse else high - 1) if labelled else None
        for r in range(low + 1, high):
            if r == label_rank:
                along = edge.label_width if horizontal else edge.label_height
                across = edge.label_height if horizontal else edge.label_width
                vertex = add_vertex(r, along, across)
                label_at = vertex
            else:
                vertex = add_vertex(r, 0.0, 0.0)
            link(chain[-1], vertex)
            chain.append(vertex)
        link(chain[-1], target)
        chain.append(target)
        if reverse:
            chain.reverse()
        chains.append(chain)
        label_vertex.append(label_at)
    return _Graph(
        rank_extent, cross_extent, rank, is_dummy, successors, predecessors, chains, label_vertex
    )


# --- 3. crossing reduction -------------------------------------------------------------


def _initial_layers(graph: _Graph, nodes: Sequence[LayoutNode]) -> list[list[int]]:
    """Vertices per rank, in a depth-first order from the sources (few crossings to start)."""
    depth = max(graph.rank) + 1
    layers: list[list[int]] = [[] for _ in range(depth)]
    if all(node.order is not None for node in nodes):
        real = sorted(range(len(nodes)), key=lambda v: (nodes[v].order, v))
        for vertex in real:
            layers[graph.rank[vertex]].append(vertex)
        for vertex in range(len(nodes), len(graph.rank)):
            layers[graph.rank[vertex]].append(vertex)
        return layers
    seen = [False] * len(graph.rank)
    sources = [v for v in range(len(graph.rank)) if not graph.predecessors[v]]
    for start in sources:
        if seen[start]:
            continue
        stack = [start]
        seen[start] = True
        while stack:
            vertex = stack.pop()
            layers[graph.rank[vertex]].append(vertex)
            for target in reversed(graph.successors[vertex]):
                if not seen[target]:
                    seen[target] = True
                    stack.append(target)
    for vertex in range(len(graph.rank)):
        if not seen[vertex]:  # only on a cycle: every vertex on it had a predecessor
            layers[graph.rank[vertex]].append(vertex)
    return layers


def _reduce_crossings(
    layers: list[list[int]], graph: _Graph, crossings: int
) -> tuple[list[list[int]], int]:
    vertices = len(graph.rank)
    sweeps = 8 if vertices < 2_000 else 4 if vertices < 20_000 else 2
    best = [list(layer) for layer in layers]
    best_crossings = crossings
    for sweep in range(sweeps):
        downward = sweep % 2 == 0
        _barycentre_sweep(layers, graph, downward)
        crossings = _count_all_crossings(layers, graph)
        if crossings < best_crossings:
            best, best_crossings = [list(layer) for layer in layers], crossings
        if best_crossings == 0:
            break
    layers = best
    if vertices <= 400 and best_crossings > 0:
        best_crossings = _adjacent_swaps(layers, graph, best_crossings)
    return layers, best_crossings


def _barycentre_sweep(layers: list[list[int]], graph: _Graph, downward: bool) -> None:
    position = [0] * len(graph.rank)
    for layer in layers:
        for index, vertex in enumerate(layer):
            position[vertex] = index
    sequence = range(1, len(layers)) if downward else range(len(layers) - 2, -1, -1)
    neighbours = graph.predecessors if downward else graph.successors
    for rank in sequence:
        layer = layers[rank]
        keys = []
        for vertex in layer:
            adjacent = neighbours[vertex]
            if adjacent:
                keys.append(sum(position[a] for a in adjacent) / len(adjacent))
            else:
                keys.append(float(position[vertex]))  # no neighbours there: stay put
        order = sorted(range(len(layer)), key=lambda i: keys[i])
        layers[rank] = [layer[i] for i in order]
        for index, vertex in enumerate(layers[rank]):
            position[vertex] = index


def _count_all_crossings(layers: list[list[int]], graph: _Graph) -> int:
    position = [0] * len(graph.rank)
    for layer in layers:
        for index, vertex in enumerate(layer):
            position[vertex] = index
    total = 0
    for rank in range(len(layers) - 1):
        total += _count_crossings(layers[rank], len(layers[rank + 1]), graph, position)
    return total


def _count_crossings(upper: list[int], lower_size: int, graph: _Graph, position: list[int]) -> int:
    """Crossings between two adjacent ranks: inversions among edge ends, by Fenwick tree."""
    ends: list[int] = []
    for vertex in upper:  # upper is in position order already
        ends.extend(sorted(position[t] for t in graph.successors[vertex]))
    tree = [0] * (lower_size + 1)
    crossings = 0
    for seen, end in enumerate(ends):
        # edges seen so far that end strictly after this one cross it
        index, smaller_or_equal = end + 1, 0
        while index > 0:
            smaller_or_equal += tree[index]
            index -= index & -index
        crossings += seen - smaller_or_equal
        index = end + 1
        while index <= lower_size:
            tree[index] += 1
            index += index & -index
    return crossings


def _adjacent_swaps(layers: list[list[int]], graph: _Graph, crossings: int) -> int:
    """Swap neighbours in a rank while that removes crossings (small graphs only)."""
    position = [0] * len(graph.rank)
    for layer in layers:
        for index, vertex in enumerate(layer):
            position[vertex] = index

    def pair_crossings(u: int, v: int) -> int:
        # Crossings between u's and v's edges when u sits left of v.
        count = 0
        for adjacent in (graph.predecessors, graph.successors):
            for a in adjacent[u]:
                for b in adjacent[v]:
                    if position[a] > position[b]:
                        count += 1
        return count

    improved = True
    passes = 0
    while improved and passes < 6:
        improved = False
        passes += 1
        for layer in layers:
            for index in range(len(layer) - 1):
                u, v = layer[index], layer[index + 1]
                if pair_crossings(v, u) < pair_crossings(u, v):
                    layer[index], layer[index + 1] = v, u
                    position[u], position[v] = index + 1, index
                    improved = True
    return _count_all_crossings(layers, graph) if passes > 1 else crossings


# --- 4. coordinates --------------------------------------------------------------------


def _assign_cross_coordinates(
    layers: list[list[int]], graph: _Graph, node_gap: float, balance: bool
) -> list[float]:
    cross = [0.0] * len(graph.rank)
    gaps_per_layer: list[list[float]] = []
    for layer in layers:
        gaps = [
            (graph.cross_extent[a] + graph.cross_extent[b]) / 2 + _gap(graph, a, b, node_gap)
            for a, b in itertools.pairwise(layer)
        ]
        gaps_per_layer.append(gaps)
        offset = -sum(gaps) / 2  # centre every rank on 0
        for index, vertex in enumerate(layer):
            cross[vertex] = offset
            if index < len(gaps):
                offset += gaps[index]
    if not balance:
        return cross

    _mark_feeders(graph)
    weight_to = _edge_weights(graph)
    vertices = len(graph.rank)
    iterations = 10 if vertices < 2_000 else 5 if vertices < 20_000 else 3
    for iteration in range(iterations):
        downward = iteration % 2 == 0
        sequence = range(1, len(layers)) if downward else range(len(layers) - 2, -1, -1)
        for rank in sequence:
            _pull_towards_neighbours(
                layers[rank], gaps_per_layer[rank], graph, cross, weight_to, downward
            )
    # Finish with the data path lined up with its inputs (a down sweep), then move the
    # sources that feed it (weights, inputs) next to their consumers, the path pinned.
    for rank in range(1, len(layers)):
        _pull_towards_neighbours(layers[rank], gaps_per_layer[rank], graph, cross, weight_to, True)
    for rank in range(len(layers) - 2, -1, -1):
        _pull_towards_neighbours(
            layers[rank], gaps_per_layer[rank], graph, cross, weight_to, False, pin_path=True
        )
    _straighten_dummies(layers, gaps_per_layer, graph, cross)
    return cross


def _straighten_dummies(
    layers: list[list[int]], gaps_per_layer: list[list[float]], graph: _Graph, cross: list[float]
) -> None:
    """Put every label node and dummy on the straight line between its edge's ends,
    as far as the other vertices of its rank allow; real nodes stay where they are."""
    goal: dict[int, float] = {}
    for chain in graph.chains:
        if len(chain) < 3:
            continue
        start, end = chain[0], chain[-1]
        first, last = graph.rank[start], graph.rank[end]
        for vertex in chain[1:-1]:
            fraction = (graph.rank[vertex] - first) / (last - first)
            goal[vertex] = cross[start] + fraction * (cross[end] - cross[start])
    for layer, gaps in zip(layers, gaps_per_layer):
        if not any(vertex in goal for vertex in layer):
            continue
        desired = [goal.get(vertex, cross[vertex]) for vertex in layer]
        weights = [1.0 if vertex in goal else 1e6 for vertex in layer]
        for vertex, value in zip(layer, _isotonic_with_gaps(desired, weights, gaps)):
            cross[vertex] = value


def _place_headings(
    layers: list[list[int]],
    headings: set[int],
    graph: _Graph,
    cross: list[float],
    node_gap: float,
) -> None:
    """Put heading nodes in one line before the first node of any rank."""
    if not headings:
        return
    others = [v for v in range(len(graph.rank)) if v not in headings]
    start = min((cross[v] - graph.cross_extent[v] / 2 for v in others), default=0.0)
    for layer in layers:
        edge = start - node_gap
        for vertex in reversed([v for v in layer if v in headings]):
            cross[vertex] = edge - graph.cross_extent[vertex] / 2
            edge -= graph.cross_extent[vertex] + node_gap / 2


def _gap(graph: _Graph, a: int, b: int, node_gap: float) -> float:
    # Bare dummies (no label) may run closer together than real boxes.
    if graph.is_dummy[a] and graph.is_dummy[b] and not graph.cross_extent[a]:
        return node_gap / 3
    return node_gap


def _edge_weights(graph: _Graph) -> dict[tuple[int, int], float]:
    """How strongly each edge pulls its ends together.

    Chains of dummies weigh most, so long edges run straight. Edges that come from a
    source (directly or through its dummies) weigh least, so a node stays in line with
    the data it transforms and its weights move to it, not the other way round: a
    long chain ``h = tanh(h * w)`` stays level instead of drifting sideways.
    """
    feeder = graph.feeder
    weights: dict[tuple[int, int], float] = {}
    for source, targets in enumerate(graph.successors):
        for target in targets:
            dummies = graph.is_dummy[source] + graph.is_dummy[target]
            weight = (1.0, _HALF_DUMMY_WEIGHT, _DUMMY_WEIGHT)[dummies]
            if feeder[source] and not graph.is_dummy[target]:
                weight = _FEEDER_WEIGHT
            weights[(source, target)] = weights.get((source, target), 0.0) + weight
    return weights


def _mark_feeders(graph: _Graph) -> None:
    """Sources, and dummies that only carry a source's edge onwards."""
    feeder = [False] * len(graph.rank)
    for vertex in sorted(range(len(graph.rank)), key=graph.rank.__getitem__):
        parents = graph.predecessors[vertex]
        feeder[vertex] = not parents or (graph.is_dummy[vertex] and all(feeder[p] for p in parents))
    graph.feeder = feeder


def _pull_towards_neighbours(
    layer: list[int],
    gaps: list[float],
    graph: _Graph,
    cross: list[float],
    weight_to: dict[tuple[int, int], float],
    downward: bool | None,
    pin_path: bool = False,
) -> None:
    desired: list[float] = []
    weights: list[float] = []
    for vertex in layer:
        if pin_path and not graph.feeder[vertex]:
            desired.append(cross[vertex])
            weights.append(1e6)
            continue
        pulls: list[tuple[float, float]] = []  # (position, weight) of each neighbour
        if downward is None or downward:
            pulls.extend((cross[p], weight_to[(p, vertex)]) for p in graph.predecessors[vertex])
        if downward is None or not downward:
            pulls.extend((cross[c], weight_to[(vertex, c)]) for c in graph.successors[vertex])
        if pulls:
            total = sum(weight for _, weight in pulls)
            desired.append(_weighted_median(pulls, total))
            # Where two vertices compete for a spot, the data path wins over a feeder.
            weights.append(total * (_FEEDER_WEIGHT if graph.feeder[vertex] else 1.0))
        else:
            desired.append(cross[vertex])
            weights.append(0.05)  # a free vertex barely resists its neighbours
    placed = _isotonic_with_gaps(desired, weights, gaps)
    for vertex, value in zip(layer, placed):
        cross[vertex] = value


def _weighted_median(pulls: list[tuple[float, float]], total: float) -> float:
    """The weighted median of neighbour positions (the mean of the two middle ones on
    an exact tie). Unlike the mean it lines a node up with its heaviest neighbour, so
    a chain whose nodes also take in a weight each stays straight."""
    if len(pulls) == 1:
        return pulls[0][0]
    pulls.sort()
    half = total / 2
    running = 0.0
    for index, (position, weight) in enumerate(pulls):
        running += weight
        if running > half * (1 + 1e-9):
            return position
        if abs(running - half) <= half * 1e-9 and index + 1 < len(pulls):
            return (position + pulls[index + 1][0]) / 2
    return pulls[-1][0]


def _isotonic_with_gaps(
    desired: list[float], weights: list[float], gaps: list[float]
) -> list[float]:
    """Positions closest to ``desired`` (weighted least squares) keeping order and gaps.

    With offsets ``o_i`` = sum of the gaps before i, positions ``p_i = q_i + o_i`` keep
    the gaps exactly when ``q`` is non-decreasing: an isotonic regression of
    ``desired - o``, which pool-adjacent-violators solves in linear time.
    """
    offsets = [0.0]
    for gap in gaps:
        offsets.append(offsets[-1] + gap)
    # Each block: [weighted sum, total weight, number of members].
    blocks: list[list[float]] = []
    for target, weight, offset in zip(desired, weights, offsets):
        blocks.append([(target - offset) * weight, weight, 1.0])
        while len(blocks) > 1 and (blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]):
            last = blocks.pop()
            blocks[-1][0] += last[0]
            blocks[-1][1] += last[1]
            blocks[-1][2] += last[2]
    placed: list[float] = []
    for total, weight, members in blocks:
        level = total / weight
        for _ in range(int(members)):
            placed.append(level + offsets[len(placed)])
    return placed


def _assign_rank_coordinates(
    graph: _Graph, rank_gap: float, rank_gaps: dict[int, float]
) -> list[float]:
    depth = max(graph.rank) + 1
    extent = [0.0] * depth
    has_label = [False] * depth
    for vertex, rank in enumerate(graph.rank):
        extent[rank] = max(extent[rank], graph.rank_extent[vertex])
        if graph.is_dummy[vertex] and graph.rank_extent[vertex] > 0:
            has_label[rank] = True
    scale = 2 if any(has_label) else 1
    centres = [0.0] * depth
    for rank in range(1, depth):
        gap = rank_gap
        if scale == 2:
            # Between a node rank and a label rank the label itself keeps things apart.
            gap = rank_gap / 2
        gap = max(gap, rank_gaps.get((rank - 1) // scale, 0.0) / scale)
        centres[rank] = centres[rank - 1] + (extent[rank - 1] + extent[rank]) / 2 + gap
    return [centres[rank] for rank in graph.rank]


# --- 5. routing ------------------------------------------------------------------------


def _finish(
    nodes: Sequence[LayoutNode],
    edges: Sequence[LayoutEdge],
    graph: _Graph,
    along: list[float],
    cross: list[float],
    horizontal: bool,
    margin: float,
    crossings: int,
    ranks: list[int],
) -> Layout:
    def point(vertex: int) -> Point:
        return (along[vertex], cross[vertex]) if horizontal else (cross[vertex], along[vertex])

    # Bounding box over every vertex (labels included), to shift everything to the margin.
    min_x = min_y = math.inf
    max_x = max_y = -math.inf
    for vertex in range(len(graph.rank)):
        x, y = point(vertex)
        half_w = (graph.rank_extent[vertex] if horizontal else graph.cross_extent[vertex]) / 2
        half_h = (graph.cross_extent[vertex] if horizontal else graph.rank_extent[vertex]) / 2
        min_x, max_x = min(min_x, x - half_w), max(max_x, x + half_w)
        min_y, max_y = min(min_y, y - half_h), max(max_y, y + half_h)
    shift_x, shift_y = margin - min_x, margin - min_y

    placed = []
    for vertex, node in enumerate(nodes):
        x, y = point(vertex)
        placed.append(PlacedNode(x + shift_x, y + shift_y, node.width, node.height, node.shape))

    routes: list[Route] = []
    for edge, chain, label_at in zip(edges, graph.chains, graph.label_vertex):
        points = [(p[0] + shift_x, p[1] + shift_y) for p in map(point, chain)]
        source, target = placed[edge.source], placed[edge.target]
        if edge.source == edge.target:
            points = _self_loop(source)
        else:
            points[0] = _clip(source, points[1])
            points[-1] = _clip(target, points[-2])
        label: Point | None = None
        if label_at is not None:
            x, y = point(label_at)
            label = (x + shift_x, y + shift_y)
        elif edge.label_width > 0:
            fraction = 0.5 if edge.label_position is None else edge.label_position
            label = _along_polyline(points, fraction)
        routes.append(Route(points, label, smooth=len(points) > 2))
    width = max_x - min_x + 2 * margin
    height = max_y - min_y + 2 * margin
    return Layout(width, height, placed, routes, crossings, ranks)


def _clip(node: PlacedNode, towards: Point) -> Point:
    """Where the segment from the node's centre to ``towards`` leaves its outline."""
    dx, dy = towards[0] - node.x, towards[1] - node.y
    if dx == 0 and dy == 0:
        return (node.x, node.y)
    half_w, half_h = node.width / 2, node.height / 2
    if node.shape in ("ellipse", "circle"):
        scale = 1.0 / math.sqrt((dx / half_w) ** 2 + (dy / half_h) ** 2)
    else:
        scale = min(
            half_w / abs(dx) if dx else math.inf,
            half_h / abs(dy) if dy else math.inf,
        )
    scale = min(scale, 1.0)
    return (node.x + dx * scale, node.y + dy * scale)


def _self_loop(node: PlacedNode) -> list[Point]:
    top = node.y - node.height / 2
    return [
        (node.x - node.width / 6, top),
        (node.x, top - node.height / 2),
        (node.x + node.width / 6, top),
    ]


def _along_polyline(points: list[Point], fraction: float) -> Point:
    lengths = [math.dist(a, b) for a, b in itertools.pairwise(points)]
    goal = sum(lengths) * min(max(fraction, 0.0), 1.0)
    for (a, b), length in zip(itertools.pairwise(points), lengths):
        if goal <= length and length > 0:
            t = goal / length
            return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
        goal -= length
    return points[-1]


def spline_segments(points: Sequence[Point]) -> list[tuple[Point, Point, Point]]:
    """Cubic Bézier pieces (control 1, control 2, end) of a smooth curve through ``points``.

    A Catmull–Rom spline: it passes through every point (so through the label nodes),
    and its last piece ends pointing at the target, where the arrowhead goes.
    """
    pieces: list[tuple[Point, Point, Point]] = []
    count = len(points)
    for index in range(count - 1):
        p0 = points[index - 1] if index > 0 else points[index]
        p1, p2 = points[index], points[index + 1]
        p3 = points[index + 2] if index + 2 < count else p2
        c1 = (p1[0] + (p2[0] - p0[0]) / 6, p1[1] + (p2[1] - p0[1]) / 6)
        c2 = (p2[0] - (p3[0] - p1[0]) / 6, p2[1] - (p3[1] - p1[1]) / 6)
        pieces.append((c1, c2, p2))
    return pieces
