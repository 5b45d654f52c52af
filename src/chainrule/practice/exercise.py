"""An exercise: a question about one derivative, how to mark an answer, and the worked solution.

Every exercise asks for ∂F/∂v, where F is an expression in chainrule's expression
language over the exercise's variables and v is one of them — or, for an adjoint, a
subexpression of F (x² in cos(x²y) + x²√z). The truth comes from chainrule itself:

* numerically, by building F's graph at a few random points (:func:`chainrule.expressions.to_graph`)
  and running backprop;
* symbolically, by :func:`chainrule.symbolic` (the op rows' partial symbols, chained);
* path by path, by :func:`chainrule.explain`, whose paths also name what a wrong answer
  got wrong: a left-out term, a sign, or the partial on one edge.

An answer is right when it equals the derivative at every random point *and* as a
formula (sympy). The numbers come first: they are cheap, and a wrong answer never
reaches sympy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ..expressions import (
    Binary,
    Call,
    Expr,
    ExpressionError,
    Name,
    Unary,
    evaluate,
    format_expr,
    parse,
    substitute,
    to_graph,
    to_sympy,
)
from .answers import AnswerError, read_answer

if TYPE_CHECKING:
    from ..explanations.diagram import Diagram
    from ..explanations.paths import PathExplanation
    from ..graph import Node
    from ..value import Value

__all__ = ["Exercise", "Feedback", "Solution"]

#: How many random points an answer is compared at.
POINTS = 5
# Close enough at a point: answers are compared in float64 after a few dozen operations.
_RTOL = 1e-7
# The placeholder leaf standing for the node whose adjoint is asked for.
_NODE = "node__"


@dataclass(frozen=True)
class Feedback:
    """The mark of one answer.

    Attributes:
        correct: the answer equals the derivative, at every test point and as a formula.
        readable: the answer could be read at all (``False``: see ``message`` for a hint).
        message: what to tell the learner, one or a few sentences.
        diagnosis: what part is wrong, where it could be found (a left-out path, a sign,
            the partial on one edge), else ``None``.
        read_as: the answer in chainrule's strict syntax, as it was understood.
    """

    correct: bool
    readable: bool
    message: str
    diagnosis: str | None = None
    read_as: str | None = None

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, eq=False)
class Solution:
    """The worked solution: the diagram, the sum over paths and the closed form.

    Attributes:
        text: all of it as readable text (what ``chainrule practice`` prints).
        diagram: the dataflow diagram with partials on edges and the paths highlighted
            (:func:`chainrule.draw`; ``.save("f.svg")``, shows itself in Jupyter).
        explanation: the sum over paths beside backprop (:func:`chainrule.explain`).
        closed_form: the derivative as a simplified sympy expression (:func:`chainrule.symbolic`).
    """

    text: str
    diagram: Diagram
    explanation: PathExplanation
    closed_form: Any

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class _Point:
    values: dict[str, float]  # every variable and every defined name
    derivative: float


@dataclass(eq=False)
class Exercise:
    """One generated (or hand-written) exercise; see :func:`chainrule.practice.generate`.

    Attributes:
        topic, seed, difficulty: what made it (the same three give the same exercise).
        prompt: the question, ready to print.
        function: the function's definition (``f(x, y, z) = cos(x²·y) + x²·√z``).
        asked: what is asked for, e.g. ``∂f/∂x``.
        names: the names an answer may use: the variables, then the named parts
            (``s``, ``z``, ``u``) that the prompt defines.
        answer: a correct answer, as text an answer may be written in (unsimplified).
        mistakes: systematic wrong answers, by kind (``"missing chain factor"``,
            ``"wrong sign"``, ``"forgotten term"``), where the exercise has them.
    """

    topic: str
    seed: int | None
    difficulty: int
    prompt: str
    function: str
    asked: str
    expression: Expr
    wrt: str | Expr
    variables: tuple[str, ...]
    definitions: dict[str, Expr]
    output_name: str
    teaching_point: dict[str, float]
    sampling: dict[str, tuple[float, float]]
    _points: list[_Point] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(0 if self.seed is None else self.seed + 7919)
        self._points = []
        self._graphs: list[Value] = []
        while len(self._points) < POINTS:
            values = {
                name: float(rng.uniform(*self.sampling.get(name, (0.3, 1.7))))
                for name in self.variables
            }
            derivative, output, _ = self._backprop(values)
            if math.isfinite(derivative):
                self._points.append(_Point(self._with_definitions(values), derivative))
                self._graphs.append(output)

    # --- the truth --------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        return self.variables + tuple(self.definitions)

    def _with_definitions(self, values: Mapping[str, float]) -> dict[str, float]:
        full = dict(values)
        for name, tree in self.definitions.items():
            full[name] = evaluate(tree, full)
        return full

    @cached_property
    def _marked_expression(self) -> Expr:
        """F with the asked-for node replaced by a leaf, so its adjoint is a leaf's gradient."""
        if isinstance(self.wrt, str):
            return self.expression
        return _replace(self.expression, self.wrt, Name(_NODE))

    @property
    def _wrt_name(self) -> str:
        return self.wrt if isinstance(self.wrt, str) else _NODE

    def _graph(self, values: Mapping[str, float]) -> tuple[Value, dict[str, Value]]:
        full = dict(values)
        if not isinstance(self.wrt, str):
            full[_NODE] = evaluate(self.wrt, full)
        output, leaves = to_graph(self._marked_expression, full)
        output.label = self.output_name
        return output, leaves

    def _label_parts(self, output: Value) -> None:
        """Label the nodes that compute the defined parts (s1, h1, z) with their names.

        The diagram, the path sums and the diagnoses then speak of s1 where they would
        say ``u1 + w1_13``. A node is found by its formula (the graph's own symbols).
        """
        from ..explanations.paths import all_nodes
        from ..explanations.symbolic import forward_expressions

        if not self.definitions:
            return
        formulas = forward_expressions(output)
        wanted = {formula: name.name for formula, name in self._named_parts}
        for node in all_nodes(output):
            name = wanted.pop(formulas[id(node)], None)
            if name is not None and node.op is not None and node is not output:
                node.label = name

    def _backprop(self, values: Mapping[str, float]) -> tuple[float, Value, dict[str, Value]]:
        output, leaves = self._graph(values)
        output.backward()
        return float(leaves[self._wrt_name].grad), output, leaves

    @cached_property
    def _expected_sympy(self) -> Any:
        from ..explanations.symbolic import symbolic

        output, _ = self._graph(self._points[0].values)
        derivative = symbolic(output, self._wrt_name, simplify=False)
        return self._in_variables(derivative)

    def _in_variables(self, expression: Any) -> Any:
        import sympy

        if isinstance(self.wrt, str):
            return expression
        return expression.subs(sympy.Symbol(_NODE, real=True), to_sympy(self.wrt))

    @cached_property
    def answer(self) -> str:
        """A correct answer as text: the chain rule written out, in the defined names."""
        return _answer_text(self._named(self._expected_sympy))

    def _named(self, expression: Any) -> Any:
        """``expression`` with the defined parts (s, z, h1, …) written by their names."""

        for formula, name in self._named_parts:
            expression = expression.subs(formula, name)
        return expression

    @cached_property
    def _named_parts(self) -> list[tuple[Any, Any]]:
        """(formula, symbol) of each defined name, the largest formula first."""
        import sympy

        parts = [
            (to_sympy(tree), sympy.Symbol(name, real=True))
            for name, tree in self.definitions.items()
        ]
        return sorted(parts, key=lambda pair: -sympy.count_ops(pair[0]))

    # --- paths, for mistakes and diagnoses ----------------------------------------------

    @cached_property
    def _explanation(self) -> PathExplanation:
        from ..explanations.paths import explain

        output = self._graphs[0]
        self._label_parts(output)
        return explain(output, self._wrt_leaf(output))

    def _wrt_leaf(self, output: Value) -> Node:
        from ..explanations.paths import all_nodes

        label = self._wrt_name
        return next(n for n in all_nodes(output) if n.op is None and n.label == label)

    @cached_property
    def _paths(self) -> list[_PathTerm]:
        """Each path from the asked-for node to the output: its edges, symbolically."""
        from ..explanations.symbolic import edge_partials

        partials = edge_partials(self._graphs[0])
        return [
            _PathTerm(
                names=tuple(_display(name, self.wrt) for name in path.names),
                edges=[
                    _Edge(
                        tail=_display(path.names[k], self.wrt),
                        head=_display(path.names[k + 1], self.wrt),
                        symbol=_display(factor.symbol, self.wrt),
                        sympy=self._in_variables(partials[id(factor.child), factor.input_index]),
                    )
                    for k, factor in enumerate(path.factors)
                ],
                through_product=_meets_at_product(path.nodes, self._explanation.paths),
            )
            for path in self._explanation.paths
        ]

    @cached_property
    def _path_values(self) -> list[tuple[np.ndarray, list[np.ndarray]]]:
        """Per path, its product and each edge's partial at every test point.

        The graphs at the test points are built from the same tree, so their nodes come
        in the same order: a path's edges are found in each by position.
        """
        from ..explanations.paths import _edge_value, all_nodes

        position = {id(node): k for k, node in enumerate(all_nodes(self._graphs[0]))}
        orders = [all_nodes(output) for output in self._graphs]
        result = []
        for path in self._explanation.paths:
            edges = [
                np.array(
                    [
                        float(_edge_value(order[position[id(f.child)]], f.input_index))
                        for order in orders
                    ]
                )
                for f in path.factors
            ]
            products = np.prod(edges, axis=0) if edges else np.ones(len(orders))
            result.append((products, edges))
        return result

    @cached_property
    def mistakes(self) -> dict[str, str]:
        """Systematic wrong answers by kind, for practice and for testing the marker."""
        import sympy

        expected = self._expected_sympy
        paths = self._paths
        found: dict[str, str] = {}
        longest = max(paths, key=lambda p: len(p.edges))
        inner = next((e for e in longest.edges if not e.constant), None)
        if inner is not None:
            product = sympy.Mul(*(e.sympy for e in longest.edges))
            found["missing chain factor"] = _answer_text(
                self._named(expected - product + product / inner.sympy)
            )
        signed = next(
            (p for p in paths if any(e.symbol.startswith("−") for e in p.edges)), paths[0]
        )
        found["wrong sign"] = _answer_text(
            self._named(expected - 2 * sympy.Mul(*(e.sympy for e in signed.edges)))
        )
        if len(paths) > 1:
            product = sympy.Mul(*(e.sympy for e in paths[-1].edges))
            found["forgotten term"] = _answer_text(self._named(expected - product))
        return found

    # --- marking --------------------------------------------------------------------------

    def check(self, answer: str) -> Feedback:
        """Mark ``answer``: right if it equals the derivative at every test point and as a formula.

        Args:
            answer: the learner's text, e.g. ``"-2xy sin(x^2 y) + 2x sqrt(z)"``; implicit
                products, ``^``, ``σ``, ``√`` and the handouts' ``w_{1,2}^{(1)}`` are read.

        Returns:
            a :class:`Feedback`; an unreadable answer gets ``readable=False`` and a hint,
            never an exception. Nothing in the answer is evaluated by Python.
        """
        try:
            tree = read_answer(answer, self.names)
        except AnswerError as error:
            return Feedback(False, False, str(error))
        read_as = format_expr(tree, unicode=False)
        in_variables = substitute(tree, self.definitions)
        with np.errstate(all="ignore"):
            values = np.array([_safe_evaluate(in_variables, p.values) for p in self._points])
        expected = np.array([p.derivative for p in self._points])
        if not _close(values, expected):
            diagnosis = self._diagnose(values)
            message = f"Not quite: {self.asked} is not {format_expr(tree)}."
            if diagnosis:
                message += f" Your answer {diagnosis}."
            return Feedback(False, True, message, diagnosis, read_as)
        if not _symbolically_equal(self._expected_sympy, to_sympy(in_variables)):
            return Feedback(
                False,
                True,
                f"Not quite: {format_expr(tree)} agrees with {self.asked} at the test points "
                "but is a different formula.",
                None,
                read_as,
            )
        return Feedback(True, True, f"Right: {self.asked} = {format_expr(tree)}.", None, read_as)

    def _diagnose(self, values: np.ndarray) -> str | None:
        paths = list(zip(self._paths, self._path_values))
        total = np.array([p.derivative for p in self._points])
        if _close(values, -total):
            return "has the wrong sign overall"
        for path, (products, _) in paths if len(paths) > 1 else ():
            if _close(values, total - products):
                kind = "a product-rule term" if path.through_product else "a term"
                return (
                    f"leaves out {kind}: the path {' → '.join(path.names)}, whose edge "
                    f"partials multiply to {path.formula}; {self.asked} adds up all "
                    f"{len(paths)} paths"
                )
        for path, (products, edge_values) in paths:
            route = " → ".join(path.names)
            if _close(values, total - 2 * products):
                return f"has the wrong sign in the term of the path {route} ({path.formula})"
            for edge, partial in zip(path.edges, edge_values):
                if edge.constant or np.any(partial == 0):
                    continue
                if _close(values, total - products + products / partial):
                    return (
                        f"misses a chain factor: the partial on the edge {edge.tail} → "
                        f"{edge.head}, ∂({edge.head})/∂({edge.tail}) = {edge.symbol}, "
                        f"on the path {route}"
                    )
        if len(paths) > 1:
            # An edge every path crosses is a factor of the whole derivative (σ′ of a hidden
            # unit, for a first-layer weight): leaving it out divides everything by it.
            first, (_, first_values) = paths[0]
            for edge, partial in zip(first.edges, first_values):
                on_every_path = all(
                    any((e.tail, e.head) == (edge.tail, edge.head) for e in path.edges)
                    for path, _ in paths
                )
                if edge.constant or not on_every_path or np.any(partial == 0):
                    continue
                if _close(values, total / partial):
                    return (
                        f"misses a chain factor: the partial on the edge {edge.tail} → "
                        f"{edge.head}, ∂({edge.head})/∂({edge.tail}) = {edge.symbol}, which "
                        "every path crosses"
                    )
        for path, (products, _) in paths if len(paths) > 2 else ():
            if _close(values, products):
                return (
                    f"is the term of one path only ({' → '.join(path.names)}); {len(paths)} "
                    f"paths lead to {self.output_name}: add the others"
                )
        return None

    # --- the worked solution --------------------------------------------------------------

    def solution(self) -> Solution:
        """The worked solution at the exercise's teaching point (needs sympy).

        Returns:
            a :class:`Solution`: the dataflow diagram with every edge's partial
            (:func:`chainrule.draw`), the sum over paths beside backprop
            (:func:`chainrule.explain`) and the closed form (:func:`chainrule.symbolic`).
        """
        from ..explanations.diagram import draw
        from ..explanations.paths import all_nodes, explain
        from ..explanations.symbolic import symbolic

        values = self._with_definitions(self.teaching_point)
        output, leaves = to_graph(self.expression, values)
        output.label = self.output_name
        self._label_parts(output)
        output.backward()
        if isinstance(self.wrt, str):
            target: Any = leaves[self.wrt]
        else:
            wanted = to_sympy(self.wrt)
            target = next(n for n in all_nodes(output) if symbolic(n, simplify=False) == wanted)
        diagram = draw(output, highlight=target, engine="python")
        explanation = explain(output, target)
        if self.definitions:
            # In the names the prompt defines (h1, z, …), which is how the handouts write it.
            import sympy

            named = self._named(self._expected_sympy)
            closed_form = min(
                (sympy.factor(named), named), key=lambda candidate: sympy.count_ops(candidate)
            )
            where = ", with " + ", ".join(self.definitions) + " as defined"
        else:
            closed_form, where = symbolic(output, target), ""
        lines = [
            f"Worked solution: {self.asked}",
            f"  {self.function}",
            "",
            "1. The dataflow diagram. Each edge carries the local partial ∂head/∂tail:",
        ]
        edges = [
            (diagram.node(e.source).name, diagram.node(e.target).name, e.symbol or "")
            for e in diagram.edges
        ]
        width = max(len(f"{tail} → {head}") for tail, head, _ in edges)
        lines += [f"     {f'{tail} → {head}':<{width}}   {symbol}" for tail, head, symbol in edges]
        lines += [
            "",
            f"2. {self.asked} is the sum, over every path from "
            f"{_display(explanation.wrt_name, self.wrt)} to {self.output_name}, of the product "
            "of the partials on its edges:",
        ]
        lines += [f"     {line}" if line else "" for line in explanation.report.splitlines()]
        lines += [
            "",
            f"3. The closed form (chainrule.symbolic{where}):",
            f"     {self.asked} = {_pretty(closed_form)}",
        ]
        return Solution("\n".join(lines), diagram, explanation, closed_form)


@dataclass(frozen=True)
class _Edge:
    tail: str
    head: str
    symbol: str
    sympy: Any

    @property
    def constant(self) -> bool:
        return bool(getattr(self.sympy, "is_number", False))


@dataclass(frozen=True)
class _PathTerm:
    names: tuple[str, ...]
    edges: list[_Edge]
    # The path meets another one again at a product: its term is one of the product rule's.
    through_product: bool = False

    @property
    def formula(self) -> str:
        factors = [e.symbol for e in self.edges if e.symbol != "1"]
        return " × ".join(factors) or "1"


def _meets_at_product(nodes: tuple[Node, ...], paths: list[Any]) -> bool:
    """Whether, after parting from another path, this path joins it again at a product."""
    for other in paths:
        if other.nodes == nodes:
            continue
        shared = 0
        while shared < min(len(nodes), len(other.nodes)) and nodes[shared] is other.nodes[shared]:
            shared += 1
        later = {id(node) for node in other.nodes[shared:]}
        meeting = next((node for node in nodes[shared:] if id(node) in later), None)
        if meeting is not None and meeting.op is not None and meeting.op.name == "mul":
            return True
    return False


def _replace(tree: Expr, old: Expr, new: Expr) -> Expr:
    """``tree`` with every occurrence of the subtree ``old`` replaced by ``new``."""
    if tree == old:
        return new
    if isinstance(tree, Unary):
        return Unary(tree.op, _replace(tree.operand, old, new))
    if isinstance(tree, Binary):
        return Binary(tree.op, _replace(tree.left, old, new), _replace(tree.right, old, new))
    if isinstance(tree, Call):
        return Call(tree.function, tuple(_replace(a, old, new) for a in tree.arguments))
    return tree


def _display(text: str, wrt: str | Expr) -> str:
    if isinstance(wrt, str) or _NODE not in text:
        return text
    return text.replace(_NODE, format_expr(wrt))


def _safe_evaluate(tree: Expr, values: Mapping[str, float]) -> float:
    try:
        return evaluate(tree, values)
    except (OverflowError, ValueError, ZeroDivisionError):
        return math.nan


def _close(values: np.ndarray, expected: np.ndarray) -> bool:
    scale = max(1.0, float(np.max(np.abs(expected))))
    return bool(np.all(np.abs(values - expected) <= _RTOL * scale))


def _symbolically_equal(expected: Any, given: Any) -> bool:
    """Whether two sympy expressions are the same function, cheapest test first."""
    import sympy

    difference = expected - given
    if difference == 0:
        return True
    for attempt in (sympy.expand, lambda d: sympy.cancel(sympy.together(sympy.expand(d)))):
        if attempt(difference) == 0:
            return True
    return bool(sympy.simplify(difference) == 0)


def _answer_text(expression: Any) -> str:
    """A sympy expression as answer text (chainrule's syntax), checked to read back.

    Raises:
        ExpressionError: for a form the expression language has no word for.
    """
    text = str(expression).replace("Abs(", "abs(")
    parse(text)
    return text


def _pretty(expression: Any) -> str:
    try:
        return format_expr(parse(str(expression)))
    except ExpressionError:
        return str(expression)
