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

import sys
import types
from typing import Any

from ..graph import Node
from .diagram import Diagram as Diagram
from .diagram import draw as draw
from .network import draw_network as draw_network
from .paths import PathExplanation as PathExplanation
from .paths import explain as explain
from .symbolic import symbolic as symbolic

__all__ = ["Diagram", "PathExplanation", "draw", "draw_network", "explain", "symbolic"]


class _ExplainPackage(types.ModuleType):
    """This package, callable as :func:`explain`.

    ``chainrule.explain`` is meant to be the function, but importing this package
    (``from chainrule.explain import draw``) makes Python set the attribute
    ``chainrule.explain`` to the package itself. Calling the package therefore
    calls the function, so ``chainrule.explain(output, wrt)`` works either way.
    """

    def __call__(self, output: Node, wrt: Node | str, **options: Any) -> PathExplanation:
        return explain(output, wrt, **options)


sys.modules[__name__].__class__ = _ExplainPackage
