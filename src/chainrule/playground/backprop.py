"""Step-by-step backprop and path sums for one example, as data the page draws.

:func:`dataflow` draws the scalar dataflow diagram of one example's loss with
:func:`chainrule.draw` (values, adjoints, and on every edge the local partial read from
the op rows, symbolic and numeric), lays it out with chainrule's own layout, and lists
the steps of both passes: forward, every computed node in topological order; backward,
every node in reverse order with the sum that completes its adjoint,
Σ (adjoint of child × partial on the edge to it). The adjoints shown are the ones
``loss.backward()`` left on the nodes, so the last step ends with backward()'s leaf
gradients exactly; each step's sum is computed beside them so the page can show both.

:func:`path_sums` is :func:`chainrule.explain` for one weight, as JSON data.
"""

from __future__ import annotations

import math
from typing import Any

from ..explanations import draw, explain
from .session import PlaygroundError, Session

#: The step-by-step view refuses diagrams with more nodes than this (the page stays readable).
MAX_DIAGRAM_NODES = 400
#: Path sums list at most this many paths (the count is always given).
MAX_PATHS = 200


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def dataflow(session: Session) -> dict[str, Any]:
    """The selected example's dataflow diagram with its forward and backward steps.

    Returns:
        ``nodes`` (id, name, title, kind, value, grad, position and size), ``edges``
        (source, target, symbol, value, route, label position), ``width``/``height``,
        ``forward`` (node ids in order) and ``backward`` (one entry per node in reverse
        order: the terms child adjoint × partial, their sum, and the adjoint), and
        ``gradients``: backward()'s ∂l/∂w for every weight by handout name.
    """
    with session.lock:
        neurons, _, loss = session.example_graph()
        weight_count = sum(1 for _ in neurons.parameters())
        if weight_count * 4 + 20 > MAX_DIAGRAM_NODES:
            raise PlaygroundError(
                f"this network has {weight_count} weights: the step-by-step diagram is drawn "
                f"for networks of up to {(MAX_DIAGRAM_NODES - 20) // 4} weights (try the "
                "Titanic 3→2→1 network)"
            )
        diagram = draw(loss, engine="python", max_nodes=MAX_DIAGRAM_NODES)
        layout = diagram.layout()
        gradients = neurons.get_gradients()
        example = session.settings.example
    nodes = []
    for node, placed in zip(diagram.nodes, layout.nodes):
        nodes.append(
            {
                "id": node.id,
                "name": node.name,
                "title": node.title,
                "kind": node.kind,
                "value": _number(node.value),
                "grad": _number(node.grad),
                "x": placed.x,
                "y": placed.y,
                "width": placed.width,
                "height": placed.height,
            }
        )
    edges = []
    for edge, route in zip(diagram.edges, layout.edges):
        edges.append(
            {
                "id": edge.id,
                "source": edge.source,
                "target": edge.target,
                "symbol": edge.symbol,
                "value": _number(edge.value),
                "points": [list(point) for point in route.points],
                "label_at": None if route.label is None else list(route.label),
            }
        )
    by_id = {node.id: node for node in diagram.nodes}
    outgoing: dict[str, list[Any]] = {node.id: [] for node in diagram.nodes}
    for edge in diagram.edges:
        outgoing[edge.source].append(edge)
    forward = [node.id for node in diagram.nodes if node.kind in ("interior", "output")]
    backward = []
    for node in reversed(diagram.nodes):
        if node.kind == "constant":
            continue  # constants need no adjoint
        terms = []
        for edge in outgoing[node.id]:
            child = by_id[edge.target]
            child_grad = child.grad if child.grad is not None else 0.0
            partial = edge.value if edge.value is not None else 0.0
            terms.append(
                {
                    "edge": edge.id,
                    "child": child.id,
                    "child_name": child.name,
                    "child_grad": _number(child_grad),
                    "symbol": edge.symbol,
                    "partial": _number(partial),
                    "product": _number(child_grad * partial),
                }
            )
        total = 1.0 if node.kind == "output" else math.fsum(term_product(t) for t in terms)
        backward.append(
            {
                "node": node.id,
                "name": node.name,
                "leaf": node.kind == "leaf",
                "terms": terms,
                "sum": _number(total),
                "adjoint": _number(node.grad),
            }
        )
    return {
        "example": example,
        "loss": _number(loss.data),
        "nodes": nodes,
        "edges": edges,
        "width": layout.width,
        "height": layout.height,
        "forward": forward,
        "backward": backward,
        "gradients": {name: _number(value) for name, value in gradients.items()},
    }


def term_product(term: dict[str, Any]) -> float:
    """One backward term's product, 0 where a factor was not finite."""
    product = term["product"]
    return 0.0 if product is None else float(product)


def path_sums(session: Session, weight: Any) -> dict[str, Any]:
    """Every path from ``weight`` to the selected example's loss, with factors and products.

    Args:
        session: the session whose network and example are used.
        weight: a handout weight name (``"w1[1,2]"``).

    Raises:
        PlaygroundError: an unknown weight name.
    """
    with session.lock:
        if not isinstance(weight, str) or weight not in session.model.weight_names():
            raise PlaygroundError(
                f"weight: {weight!r} is not a weight of this network; choose one of "
                + ", ".join(session.model.weight_names()[:12])
                + ("…" if len(session.model.weight_names()) > 12 else "")
            )
        _, _, loss = session.example_graph()
        explanation = explain(loss, weight, max_paths=MAX_PATHS)
    paths = [
        {
            "names": list(path.names),
            "factors": [
                {"symbol": factor.symbol, "value": _number(factor.value)} for factor in path.factors
            ],
            "product": _number(path.product),
        }
        for path in explanation.paths
    ]
    return {
        "weight": weight,
        "output": explanation.output_name,
        "path_count": explanation.path_count,
        "path_multiply_adds": explanation.path_factor_count,
        "backprop_multiply_adds": explanation.backprop_multiply_adds,
        "paths": paths,
        "total": _number(explanation.total),
        "backprop": _number(explanation.backprop),
        "agrees": explanation.agrees,
        "refused": explanation.refused,
        "definitions": dict(explanation.definitions),
    }
