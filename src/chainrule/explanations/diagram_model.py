"""What a diagram is made of: its nodes and edges, and what a writer reads of a whole diagram.

These records are plain data. :class:`~chainrule.explanations.diagram.Diagram` holds
them and the writers in :mod:`chainrule.explanations.render` draw them; both import
this module, and the writers see a diagram only through :class:`DrawnDiagram`, so the
writers need nothing from the module that builds diagrams.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class DiagramNode:
    """One node of a diagram.

    Attributes:
        id: unique id (``n0``, ``n1``, …), also the id in the SVG and DOT output.
        name: how formulas refer to this node (``x``, ``u1``, ``x²·y``): unique in the
            diagram except for constants, and never the node's value (see
            :mod:`chainrule.explanations.naming`).
        title: the first line shown (``x``, ``u1 = cos(x²·y)``, ``Linear 3→2``).
        lines: further lines (shape, value, adjoint).
        kind: ``leaf``, ``constant``, ``interior``, ``output``, ``op``, ``module``,
            ``unit``, ``input_unit``, ``output_unit``, ``bias`` or ``heading``; it
            picks the shape and colours.
        value: the node's number, for scalar nodes.
        grad: the node's adjoint ∂output/∂node, for scalar nodes after backward.
        shape: the tensor's shape (tensor graphs).
        dtype: the tensor's dtype (tensor graphs).
        highlighted: on a highlighted path.
        rank, order: fixed layer and position in it (network drawings).
        fill: a fill colour overriding the kind's.
    """

    id: str
    name: str
    title: str
    lines: tuple[str, ...] = ()
    kind: str = "interior"
    value: float | None = None
    grad: float | None = None
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    highlighted: bool = False
    rank: int | None = None
    order: float | None = None
    fill: str | None = None

    @property
    def label(self) -> str:
        """Everything the node shows, one line per line."""
        return "\n".join((self.title, *self.lines))


@dataclass(frozen=True)
class DiagramEdge:
    """One edge of a diagram, from ``source`` to ``target`` (node ids).

    Attributes:
        id: unique id (``e0``, …).
        symbol: the local partial ∂target/∂source as a formula, when there is one.
        value: the partial's number at the current point (scalar partials).
        label: the text shown on the edge.
        name: a name for what the edge stands for (a network weight ``w_{1,2}^{(1)}``).
        highlighted: on a highlighted path.
        color, width: stroke overrides (network drawings colour weights by sign).
        label_position: None puts the label on the edge's own label node; a fraction
            puts it that far along a straight edge.
    """

    id: str
    source: str
    target: str
    symbol: str | None = None
    value: float | None = None
    label: str = ""
    name: str | None = None
    highlighted: bool = False
    color: str | None = None
    width: float | None = None
    label_position: float | None = None


class DrawnDiagram(Protocol):
    """What a writer reads of a diagram (:class:`~chainrule.explanations.diagram.Diagram`)."""

    @property
    def nodes(self) -> Sequence[DiagramNode]:
        """The nodes, in drawing order."""
        ...

    @property
    def edges(self) -> Sequence[DiagramEdge]:
        """The edges between them (by node id)."""
        ...

    @property
    def rankdir(self) -> str:
        """``"LR"`` (left to right) or ``"TB"`` (top to bottom)."""
        ...

    @property
    def caption(self) -> str | None:
        """Text under the drawing, or None."""
        ...

    @property
    def balance(self) -> bool:
        """Whether the layout pulls nodes towards their neighbours."""
        ...

    @property
    def node_gap(self) -> float:
        """Least distance between nodes in one rank, in points."""
        ...

    @property
    def rank_gaps(self) -> dict[int, float]:
        """Least distance after given ranks."""
        ...
