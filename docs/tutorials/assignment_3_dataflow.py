"""Assignment, exercise 3: the chain rule as a dataflow diagram, with chainrule.

Run: python docs/tutorials/assignment_3_dataflow.py [--out DIR]

(a)  f(x, y, z) = cos(x²y) + x²√z: its dataflow diagram, every edge labelled with its local
     partial (assignment_3a_dataflow.svg: formulas and numbers at (1, 2, 3), the paths from x
     highlighted; assignment_3a_formulas.svg: formulas only, as the handout draws it), and
         ∂f/∂x = −2xy·sin(x²y) + 2x√z      (3)
         ∂f/∂y = −x²·sin(x²y)              (4)
         ∂f/∂z = x²/(2√z)                  (5)
     from backprop, as sums over paths and as sympy formulas
(b)  f(x) = (cᵀx)² with the vector x at a leaf (assignment_3b_dataflow.svg):
         ∇ₓf = 2(cᵀx)c                     (6)
"""

from __future__ import annotations

import math

import numpy as np
from _tutorial import check, check_that, heading, output_folder, save, show

import chainrule as cr
from chainrule.expressions import to_graph

POINT = {"x": 1.0, "y": 2.0, "z": 3.0}
C = np.array([1.0, 2.0, -1.0])
X = np.array([0.5, 1.0, 1.0])  # cᵀx = 1.5


def f_graph(x: float, y: float, z: float) -> tuple[cr.Value, cr.Value, cr.Value, cr.Value]:
    """f = cos(x²y) + x²√z with x² computed once, as the handout's diagram has one x² node."""
    xs, ys, zs = cr.Value(x, "x"), cr.Value(y, "y"), cr.Value(z, "z")
    square = xs**2
    f = cr.cos(square * ys) + square * cr.sqrt(zs)
    f.label = "f"
    return f, xs, ys, zs


def equations_3_to_5(x: float, y: float, z: float) -> dict[str, float]:
    """The handout's closed forms (3), (4), (5)."""
    return {
        "x": -2 * x * y * math.sin(x**2 * y) + 2 * x * math.sqrt(z),
        "y": -(x**2) * math.sin(x**2 * y),
        "z": x**2 / (2 * math.sqrt(z)),
    }


def main() -> None:
    out = output_folder(__doc__.splitlines()[0])
    rng = np.random.default_rng(3)

    heading("Assignment 3(a) — the dataflow diagram of f(x, y, z) = cos(x²y) + x²√z")
    f, x, y, z = f_graph(**POINT)
    f.backward()
    diagram = cr.draw(f, highlight="x", engine="python")
    save(diagram, out, "assignment_3a_dataflow.svg")
    save(cr.draw(f, numbers=False, engine="python"), out, "assignment_3a_formulas.svg")
    labels = {
        (diagram.node(e.source).name, diagram.node(e.target).name): e.symbol for e in diagram.edges
    }
    for edge, partial in (
        (("x", "x²"), "2·x"),
        (("y", "x²·y"), "x²"),
        (("x²", "x²·y"), "y"),
        (("x²·y", "cos(x²·y)"), "−sin(x²·y)"),
        (("z", "√z"), "1/(2√z)"),
        (("√z", "x²·√z"), "x²"),
        (("x²", "x²·√z"), "√z"),
    ):
        check_that(
            f"edge {edge[0]} → {edge[1]} is labelled ∂{edge[1]}/∂{edge[0]} = {partial}",
            labels.get(edge) == partial,
            f"drawn: {labels.get(edge)}",
        )
    check_that(
        "x² is one node, as in the handout's diagram",
        sum(n.name == "x²" for n in diagram.nodes) == 1,
    )

    heading("Assignment 3(a) — ∂f/∂x, ∂f/∂y, ∂f/∂z, equations (3)–(5)")
    expected = equations_3_to_5(**POINT)
    for name, leaf in (("x", x), ("y", y), ("z", z)):
        check(
            f"backprop's ∂f/∂{name} at (1, 2, 3) equals eq. ({'xyz'.index(name) + 3})",
            leaf.grad,
            expected[name],
        )
    for _ in range(5):
        point = {"x": rng.normal(), "y": rng.normal(), "z": rng.uniform(0.2, 4.0)}
        g, *leaves = f_graph(**point)
        g.backward()
        closed = equations_3_to_5(**point)
        check(
            "at ("
            + ", ".join(f"{v:.2f}" for v in point.values())
            + "): ∂f/∂(x, y, z) equal eqs. (3)–(5)",
            [leaf.grad for leaf in leaves],
            [closed[name] for name in "xyz"],
        )

    heading("Assignment 3(a) — the dataflow method: a sum over paths of products of edge labels")
    by_x = cr.explain(f, x)
    show(by_x)
    check_that("two paths lead from x to f", by_x.path_count == 2)
    a, b, c = POINT.values()
    terms = sorted(path.product for path in by_x.paths)
    check(
        "their products are the two terms of eq. (3): −2xy·sin(x²y) and 2x√z",
        terms,
        sorted([-2 * a * b * math.sin(a**2 * b), 2 * a * math.sqrt(c)]),
    )
    check("their sum is backprop's ∂f/∂x", by_x.total, x.grad)
    for name, leaf, equation in (("y", y, 4), ("z", z, 5)):
        explanation = cr.explain(f, leaf)
        check_that(f"one path leads from {name} to f", explanation.path_count == 1)
        check(f"its product is eq. ({equation})", explanation.total, expected[name])

    import sympy

    xs, ys, zs = sympy.symbols("x y z", real=True)
    forward = cr.symbolic(f)
    print(f"  chainrule.symbolic(f) = {forward}")
    check_that(
        "the forward expression is cos(x²y) + x²√z",
        sympy.simplify(forward - (sympy.cos(xs**2 * ys) + xs**2 * sympy.sqrt(zs))) == 0,
    )
    handout = {
        "x": -2 * xs * ys * sympy.sin(xs**2 * ys) + 2 * xs * sympy.sqrt(zs),
        "y": -(xs**2) * sympy.sin(xs**2 * ys),
        "z": xs**2 / (2 * sympy.sqrt(zs)),
    }
    for name, equation in (("x", 3), ("y", 4), ("z", 5)):
        derivative = cr.symbolic(f, name)
        print(f"  chainrule.symbolic(f, {name!r}) = {derivative}")
        check_that(
            f"it is eq. ({equation}) symbolically", sympy.simplify(derivative - handout[name]) == 0
        )

    # The command line draws the same figure: chainrule draw "cos(x**2*y) + x**2*sqrt(z)"
    # --at x=1 y=2 z=3 -o f.svg --highlight x. Its parser also builds x² once.
    parsed, leaves = to_graph("cos(x**2*y) + x**2*sqrt(z)", POINT)
    parsed.backward()
    check(
        "the expression parser's graph (chainrule draw/explain) gives the same gradient",
        [leaves[name].grad for name in "xyz"],
        [x.grad, y.grad, z.grad],
    )

    heading("Assignment 3(b) — f(x) = (cᵀx)² with a vector at the leaf x")
    c_leaf = cr.tensor(C, label="c")
    x_leaf = cr.tensor(X, requires_grad=True, label="x")
    f_vector = (c_leaf @ x_leaf) ** 2
    f_vector.label = "f"
    f_vector.backward(retain_grads=True)
    vector_diagram = cr.draw(f_vector, engine="python")
    save(vector_diagram, out, "assignment_3b_dataflow.svg")
    edge_from_x = [e for e in vector_diagram.edges if e.source == vector_diagram.node("x").id]
    check_that(
        "the edge out of the vector leaf x carries a gradient, cᵀ",
        len(edge_from_x) == 1 and edge_from_x[0].symbol == "cᵀ",
        edge_from_x[0].symbol if edge_from_x else "",
    )
    print(f"  c = {C.tolist()}, x = {X.tolist()}, cᵀx = {C @ X:g}")
    check("backprop's ∇ₓf equals eq. (6), 2(cᵀx)c", x_leaf.grad, 2 * (C @ X) * C)
    explanation = cr.explain(f_vector, x_leaf)
    show(explanation)
    check("the one path's product cᵀ × 2·(cᵀx) is eq. (6)", explanation.total, 2 * (C @ X) * C)
    for _ in range(5):
        c_random, x_random = rng.normal(size=5), rng.normal(size=5)
        leaf = cr.tensor(x_random, requires_grad=True)
        ((cr.tensor(c_random) @ leaf) ** 2).backward()
        check("a random c, x ∈ R⁵: ∇ₓf = 2(cᵀx)c", leaf.grad, 2 * (c_random @ x_random) * c_random)
    numeric = cr.gradcheck(lambda v: (cr.tensor(C) @ v) ** 2, X)
    check_that(
        "central differences agree (chainrule.gradcheck)",
        numeric.ok,
        f"max error {numeric.max_abs_error:.1e}",
    )


if __name__ == "__main__":
    main()
