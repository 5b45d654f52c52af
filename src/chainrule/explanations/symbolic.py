"""Symbolic forward expressions and derivatives of a recorded graph (needs sympy).

:func:`symbolic` walks the graph once, parents first. Each node's forward
expression is its op's ``symbol`` with the parents' expressions put in for ``a``
and ``b``; its derivative is the chain rule written out symbolically,

    d(node)/d(wrt) = Σ over the node's inputs of ∂node/∂input · d(input)/d(wrt),

with every ∂node/∂input taken from the op row's :attr:`~chainrule.ops.Partial.symbol`
(parsed by :mod:`chainrule.expressions`, the same partials backward, the diagram and
the path sums read). Nothing is differentiated by sympy: it only simplifies.
"""

from __future__ import annotations

import numbers
from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import ChainruleError
from ..expressions import Expr, Number, names, parse, to_sympy
from ..graph import Node
from .paths import all_nodes

__all__ = [
    "SIMPLIFY_MAX_OPS",
    "SymbolicError",
    "edge_partials",
    "forward_expressions",
    "symbolic",
]

#: Largest formula (in sympy's ``count_ops``) that :func:`symbolic` simplifies; larger
#: ones come back as the chain rule wrote them, so the work stays bounded.
SIMPLIFY_MAX_OPS = 40


class SymbolicError(ChainruleError, ValueError):
    """A graph :func:`symbolic` cannot write down (a structural op, a vector node)."""


@lru_cache(maxsize=256)
def _parsed(symbol: str) -> Expr:
    return parse(symbol, allow_partial_functions=True)


def _scalar(node: Node, what: str) -> float:
    if np.size(node.data) != 1:
        raise SymbolicError(
            f"symbolic() writes one number per node, but {what} has shape "
            f"{np.shape(node.data)}; build the graph from scalar Values (or one-element "
            "tensors)"
        )
    return float(np.asarray(node.data, dtype=float).reshape(-1)[0])


class _Writer:
    """Turns op symbols into sympy expressions for the nodes of one graph."""

    def __init__(self, sympy: Any) -> None:
        self.sympy = sympy
        self.symbols: dict[str, Any] = {}

    def leaf(self, node: Node) -> Any:
        if node.label:
            if node.label not in self.symbols:
                self.symbols[node.label] = self.sympy.Symbol(node.label, real=True)
            return self.symbols[node.label]
        return to_sympy(Number(_scalar(node, "an unlabelled leaf")))

    def write(self, symbol: str, node: Node, parents: list[Any]) -> Any:
        """The sympy form of ``symbol`` (over a, b and the params) at ``node``."""
        assert node.op is not None
        tree = _parsed(symbol)
        env: dict[str, Any] = {"ab"[i]: expression for i, expression in enumerate(parents)}
        for key, value in node.params.items():
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                env[key] = to_sympy(Number(float(value)))
        missing = [name for name in names(tree) if name not in env]
        if missing:
            raise SymbolicError(
                f"the symbol {symbol!r} of op {node.op.name} uses {', '.join(missing)}, "
                "which is not a number symbolic() can fill in"
            )
        return to_sympy(tree, env)


def symbolic(output: Node, wrt: Node | str | None = None, *, simplify: bool = True) -> Any:
    """The forward expression of ``output``, or its derivative, as a sympy expression.

    Args:
        output: a :class:`~chainrule.Value` (or one-element Tensor) at the end of a graph.
        wrt: ``None`` for the forward expression; a leaf label (``"x"``) for the
            derivative with respect to that input (a label not in the graph is an
            error, most likely a typo); or a node, for ∂output/∂node (an interior
            node gives its adjoint as a formula, a node outside the graph 0).
        simplify: simplify the result (on by default): ``sympy.simplify``, written
            as a sum of terms where that is about as short. Only formulas of at most
            :data:`SIMPLIFY_MAX_OPS` operations are simplified (sympy's time grows
            steeply with size); larger ones are returned as written.

    Returns:
        a sympy expression in the graph's leaf labels (real symbols). Unlabelled
        leaves enter as their numbers. For f = cos(x²y) + x²√z,
        ``symbolic(f, "x")`` is −2xy·sin(x²y) + 2x√z.

    Raises:
        ImportError: without sympy (``pip install "chainrule[symbolic]"``).
        SymbolicError: for structural tensor ops or multi-element nodes.
    """
    from ..expressions.conversion import _sympy

    sympy = _sympy()
    order = all_nodes(output)
    writer = _Writer(sympy)
    forward = _forward_expressions(order, writer)

    if wrt is None:
        result = forward[id(output)]
        return _tidy(sympy, result) if simplify else result

    targets = _targets(order, wrt)
    derivative: dict[int, Any] = {}
    for node in order:
        if id(node) in targets:
            derivative[id(node)] = sympy.Integer(1)
            continue
        if node.op is None:
            continue
        # the chain rule: Σ ∂node/∂input · d(input)/d(wrt), over inputs that depend on wrt
        terms = []
        parents = [forward[id(p)] for p in node.parents]
        for partial, parent in zip(node.op.partials, node.parents):
            upstream = derivative.get(id(parent))
            if upstream is not None:
                terms.append(writer.write(partial.symbol, node, parents) * upstream)
        if terms:
            derivative[id(node)] = sympy.Add(*terms)
    result = derivative.get(id(output), sympy.Integer(0))
    return _tidy(sympy, result) if simplify else result


def edge_partials(output: Node) -> dict[tuple[int, int], Any]:
    """The partial on every edge behind ``output``, as sympy expressions (one graph walk).

    Each is the op row's :attr:`~chainrule.ops.Partial.symbol` with the inputs' forward
    expressions put in, in the graph's leaf labels, unsimplified: the edge x² → cos(x²·y)
    carries ``-sin(x**2*y)``. A path's product of these is one term of :func:`explain`'s
    sum.

    Args:
        output: the end of a scalar graph.

    Returns:
        ``{(id(child), input_index): partial}`` for every edge, keyed like
        :class:`~chainrule.explanations.paths.EdgeFactor`'s ``child`` and ``input_index``.

    Raises:
        ImportError: without sympy.
        SymbolicError: for structural tensor ops or multi-element nodes.
    """
    from ..expressions.conversion import _sympy

    writer = _Writer(_sympy())
    forward = _forward_expressions(all_nodes(output), writer)
    partials: dict[tuple[int, int], Any] = {}
    for node in all_nodes(output):
        if node.op is None:
            continue
        parents = [forward[id(p)] for p in node.parents]
        for index, partial in enumerate(node.op.partials):
            partials[id(node), index] = writer.write(partial.symbol, node, parents)
    return partials


def forward_expressions(output: Node) -> dict[int, Any]:
    """Every node's forward expression behind ``output``, unsimplified, by ``id(node)``.

    One graph walk (where calling :func:`symbolic` on each node would walk it again and
    again). Useful to find the node that computes a given formula.

    Raises:
        ImportError: without sympy.
        SymbolicError: for structural tensor ops or multi-element nodes.
    """
    from ..expressions.conversion import _sympy

    return _forward_expressions(all_nodes(output), _Writer(_sympy()))


def _forward_expressions(order: list[Node], writer: _Writer) -> dict[int, Any]:
    """Every node's forward expression, parents first (``order`` is topological)."""
    forward: dict[int, Any] = {}
    for node in order:
        if node.op is None:
            forward[id(node)] = writer.leaf(node)
            continue
        if not node.op.elementwise:
            raise SymbolicError(
                f"symbolic() handles elementwise ops; {node.op.name} is a structural tensor "
                "op (write the computation with scalar Values instead)"
            )
        _scalar(node, f"the output of {node.op.name}")
        parents = [forward[id(p)] for p in node.parents]
        forward[id(node)] = writer.write(node.op.symbol, node, parents)
    return forward


def _tidy(sympy: Any, expression: Any) -> Any:
    """A short, readable equivalent of ``expression``.

    The candidates are ``sympy.simplify``'s result written out as a sum of terms,
    that result as it is, the expression as one factored fraction, and the
    expression itself. A candidate may not bring in functions the expression does
    not use (simplify likes to turn sigmoids into cosh). The first candidate within
    25% of the shortest wins, so the handouts' sum of path terms (−2xy·sin(x²y) +
    2x√z, not 2x(√z − y·sin(x²y))) is preferred when it is about as short.
    """
    size = sympy.count_ops(expression)
    if size > SIMPLIFY_MAX_OPS:
        # sympy.simplify's time grows steeply with size (8 nested sines: seconds; 20:
        # minutes), so a large formula is returned as the chain rule wrote it.
        return expression
    allowed = _function_kinds(sympy, expression)
    simplified = sympy.simplify(expression)
    candidates = [
        sympy.expand(simplified),
        simplified,
        sympy.powsimp(sympy.factor(sympy.cancel(expression)), deep=True),
        expression,
    ]
    candidates = [c for c in candidates if _function_kinds(sympy, c) <= allowed]
    shortest = min(sympy.count_ops(c) for c in candidates)
    return next(c for c in candidates if sympy.count_ops(c) <= 1.25 * shortest)


def _function_kinds(sympy: Any, expression: Any) -> set[type]:
    return {type(f) for f in expression.atoms(sympy.Function)}


def _targets(order: list[Node], wrt: Node | str) -> set[int]:
    if isinstance(wrt, str):
        # Leaves sharing a label share a symbol, so the derivative is with respect to
        # all of them at once, as sympy.diff of the forward expression would be.
        found = {id(node) for node in order if node.op is None and node.label == wrt}
        if not found:
            labels = sorted({n.label for n in order if n.op is None and n.label})
            raise SymbolicError(
                f"no input labelled {wrt!r} in the graph (inputs: {', '.join(labels) or 'none'})"
            )
        return found
    if isinstance(wrt, Node):
        # A node the output does not depend on simply has derivative 0.
        return {id(wrt)}
    raise TypeError(f"wrt must be None, a label or a node, not {type(wrt).__name__}")
