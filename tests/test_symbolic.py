"""Tests for chainrule.explanations.symbolic: the chain rule written out with sympy."""

from __future__ import annotations

import math
import random
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule
from chainrule import Value
from chainrule.explanations import symbolic
from chainrule.explanations.symbolic import SymbolicError
from chainrule.expressions import to_graph

sympy = pytest.importorskip("sympy")

F_TEXT = "cos(x**2*y) + x**2*sqrt(z)"
x, y, z = (sympy.Symbol(name, real=True) for name in "xyz")


def _zero(expression: object) -> bool:
    # Written in exponentials, equal expressions cancel (cosh vs sigmoid, say).
    return sympy.simplify(sympy.sympify(expression).rewrite(sympy.exp)) == 0


def test_symbolic_forward_expression_of_handout_f() -> None:
    """symbolic(f) is cos(x²y) + x²√z in the graph's labels."""
    output, _ = to_graph(F_TEXT, {"x": 1, "y": 2, "z": 3})
    assert _zero(symbolic(output) - (sympy.cos(x**2 * y) + x**2 * sympy.sqrt(z)))


def test_symbolic_derivatives_match_handout_equations_3_to_5() -> None:
    """∂f/∂x, ∂f/∂y, ∂f/∂z equal the assignment's closed forms (3), (4), (5)."""
    output, _ = to_graph(F_TEXT, {"x": 1, "y": 2, "z": 3})
    eq3 = -2 * x * y * sympy.sin(x**2 * y) + 2 * x * sympy.sqrt(z)
    eq4 = -(x**2) * sympy.sin(x**2 * y)
    eq5 = x**2 / (2 * sympy.sqrt(z))
    assert _zero(symbolic(output, "x") - eq3)
    assert _zero(symbolic(output, "y") - eq4)
    assert _zero(symbolic(output, "z") - eq5)
    # written as the handout writes it: a sum of the two path terms
    assert symbolic(output, "x") == eq3


@pytest.mark.parametrize(
    "text",
    [
        F_TEXT,
        "exp(x*y) - x/y",
        "log(x + y**2) * tan(x)",
        "sqrt(x*y + 1) / (1 + x**2)",
        "tanh(x - y)**3",
        "sigmoid(x*y + 0.5)",
        "softplus(x) - y*x",
        "x**y + 2**x * y",
        "sin(cos(x) * y) - -x",
    ],
)
def test_symbolic_derivative_agrees_with_sympy_diff(text: str) -> None:
    """The chain rule over the op rows' partials equals sympy's own diff of the forward."""
    output, _ = to_graph(text, {"x": 0.7, "y": 1.3, "z": 2.1})
    forward = symbolic(output, simplify=False)
    for name, symbol in (("x", x), ("y", y)):
        assert _zero(symbolic(output, name) - sympy.diff(forward, symbol)), (text, name)


@pytest.mark.parametrize("text", ["relu(x - y) * x", "abs(x - y) + abs(x)"])
def test_symbolic_derivative_of_kinked_functions_agrees_away_from_the_kink(text: str) -> None:
    """relu and abs have partials step and sign; off the kinks they match sympy's diff."""
    output, _ = to_graph(text, {"x": 0.7, "y": 1.3})
    forward = symbolic(output, simplify=False)
    derivative = symbolic(output, "x")
    expected = sympy.diff(forward, x)
    rng = random.Random(1)
    for _ in range(10):
        point = {x: rng.uniform(-2, 2), y: rng.uniform(-2, 2)}
        mine = float(derivative.subs(point))
        theirs = float(expected.subs(point).rewrite(sympy.Piecewise))
        assert mine == pytest.approx(theirs, abs=1e-12)


def test_symbolic_quiz_exercise_1_2_sigmoid_model() -> None:
    """∂f/∂w_j of f = σ(w0 + w1x1 + w2x2) is x_j·e^(−s)/(1 + e^(−s))², the quiz's answer."""
    names = ("w0", "w1", "w2", "x1", "x2")
    values = dict(zip(names, (0.2, -0.4, 0.9, 1.5, -0.3)))
    output, _ = to_graph("sigmoid(w0 + w1*x1 + w2*x2)", values)
    w0, w1, w2, x1, x2 = (sympy.Symbol(n, real=True) for n in names)
    s = w0 + w1 * x1 + w2 * x2
    shape = sympy.exp(-s) / (1 + sympy.exp(-s)) ** 2
    assert _zero(symbolic(output, "w0") - shape)
    assert _zero(symbolic(output, "w1") - x1 * shape)
    assert _zero(symbolic(output, "w2") - x2 * shape)


def test_symbolic_log_loss_gradient_is_equation_8() -> None:
    """The log-loss gradient (eq. 8): ∂l/∂w1 = −x1·y·(1 − σ(s)) + x1·(1 − y)·σ(s)."""
    values = {"w1": 0.3, "w2": -0.8, "x1": 1.2, "x2": 0.4, "y": 1.0}
    text = "-y*log(sigmoid(w1*x1 + w2*x2)) - (1 - y)*log(1 - sigmoid(w1*x1 + w2*x2))"
    output, _ = to_graph(text, values)
    w1, w2, x1, x2, yy = (sympy.Symbol(n, real=True) for n in ("w1", "w2", "x1", "x2", "y"))
    sigma = 1 / (1 + sympy.exp(-(w1 * x1 + w2 * x2)))
    eq8 = -x1 * yy * (1 - sigma) + x1 * (1 - yy) * sigma
    assert _zero(symbolic(output, "w1") - eq8)


def test_symbolic_unlabelled_leaves_are_constants() -> None:
    """A leaf without a label enters the formula as its number."""
    a = Value(1.5, "a")
    output = Value(3.0) * a**2 + Value(0.25)
    assert symbolic(output) == 3 * sympy.Symbol("a", real=True) ** 2 + sympy.Rational(1, 4)
    assert symbolic(output, a) == 6 * sympy.Symbol("a", real=True)


def test_symbolic_wrt_an_interior_node_is_its_adjoint() -> None:
    """d(output)/d(interior node) is the adjoint backprop stores in that node's grad."""
    a, b = Value(0.6, "a"), Value(-1.1, "b")
    hidden = a * b
    output = chainrule.sin(hidden) + hidden * a
    output.backward()
    formula = symbolic(output, hidden)
    value = float(
        formula.subs({sympy.Symbol("a", real=True): 0.6, sympy.Symbol("b", real=True): -1.1})
    )
    assert value == pytest.approx(hidden.grad, rel=1e-12)


_UNARY = [chainrule.sin, chainrule.tanh, chainrule.sigmoid, chainrule.exp, lambda v: v**2]
_BINARY = [lambda p, q: p + q, lambda p, q: p * q, lambda p, q: p - q]


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000))
def test_symbolic_derivative_evaluates_to_backprop_on_random_graphs(seed: int) -> None:
    """On random graphs, the symbolic derivative at the point equals backward's grad."""
    rng = random.Random(seed)
    leaves = [Value(rng.uniform(-1, 1), f"v{i}") for i in range(3)]
    nodes = list(leaves)
    for _ in range(6):
        if rng.random() < 0.5:
            nodes.append(rng.choice(_UNARY)(rng.choice(nodes)))
        else:
            nodes.append(rng.choice(_BINARY)(rng.choice(nodes), rng.choice(nodes)))
    output = nodes[-1] + nodes[-2]
    output.backward()
    point = {sympy.Symbol(leaf.label, real=True): leaf.data for leaf in leaves}
    for leaf in leaves:
        formula = symbolic(output, leaf, simplify=False)
        assert float(formula.subs(point)) == pytest.approx(leaf.grad, rel=1e-9, abs=1e-12)


def test_symbolic_errors_are_clear() -> None:
    """Unknown labels, structural tensor ops and vector nodes are refused with a reason."""
    output, _ = to_graph("x*y", {"x": 1, "y": 2})
    with pytest.raises(SymbolicError, match="no input labelled 'q'"):
        symbolic(output, "q")
    vector = chainrule.tensor([1.0, 2.0], requires_grad=True, label="v")
    with pytest.raises(SymbolicError, match="structural"):
        symbolic(vector.sum())
    with pytest.raises(SymbolicError, match="shape"):
        symbolic(vector * 2.0)
    scalar = chainrule.tensor(2.0, requires_grad=True, label="s")
    assert symbolic(chainrule.sin(scalar) * 3.0) == 3 * sympy.sin(sympy.Symbol("s", real=True))


def test_symbolic_without_sympy_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing sympy gives an ImportError naming the symbolic extra."""
    output, _ = to_graph("x", {"x": 1.0})
    monkeypatch.setitem(sys.modules, "sympy", None)
    with pytest.raises(ImportError, match=r'pip install "chainrule\[symbolic\]"'):
        symbolic(output)


def test_symbolic_constant_exponent_stays_an_integer() -> None:
    """x**2 from a float exponent 2.0 is x**2, not x**2.0, so sympy can simplify it."""
    output, _ = to_graph("x**2 * x**-1", {"x": 1.7})
    assert symbolic(output) == x
    assert not math.isnan(float(symbolic(output, "x")))


def test_edge_partials_give_each_edge_of_the_handout_graph() -> None:
    """edge_partials: the partial on every edge of cos(x²y) + x²√z, in the leaf labels."""
    from chainrule.explanations.symbolic import edge_partials

    x, y, z = Value(1.0, "x"), Value(2.0, "y"), Value(3.0, "z")
    square = x**2
    product = square * y
    f = chainrule.cos(product) + square * chainrule.sqrt(z)
    partials = edge_partials(f)
    xs, ys, zs = sympy.symbols("x y z", real=True)
    assert partials[id(square), 0] == 2 * xs
    assert partials[id(f.parents[1]), 0] == sympy.sqrt(zs)
    assert partials[id(product), 0] == ys
    assert partials[id(product), 1] == xs**2
    cosine = f.parents[0]
    assert sympy.simplify(partials[id(cosine), 0] + sympy.sin(xs**2 * ys)) == 0
    assert len(partials) == 9  # two inputs for each of +, ·, ·; one for each of x², cos, √
