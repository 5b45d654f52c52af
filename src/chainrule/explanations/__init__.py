"""Show and explain every gradient: diagrams, path sums, symbolic derivatives.

* :func:`draw` — the dataflow diagram of a graph (:class:`Diagram`: DOT, SVG, PNG, PDF),
  every edge labelled with its local partial;
* :func:`draw_network` — an MLP drawn as the handouts draw it;
* :func:`explain` — ∂output/∂wrt as a sum over paths, next to backprop and its cost;
* :func:`symbolic` — the forward expression or a derivative as a sympy expression.

All of them read the partials stored on the op rows (:mod:`chainrule.ops`), the
same ones backward uses.
"""

from __future__ import annotations

from .diagram import Diagram as Diagram
from .diagram import draw as draw
from .network import draw_network as draw_network
from .paths import PathExplanation as PathExplanation
from .paths import explain as explain
from .symbolic import symbolic as symbolic

__all__ = ["Diagram", "PathExplanation", "draw", "draw_network", "explain", "symbolic"]
