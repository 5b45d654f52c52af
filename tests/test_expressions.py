"""Tests for chainrule.expressions: the parser, rendering, graphs, sympy."""

from __future__ import annotations

import builtins
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule
from chainrule import ops
from chainrule._math import SCALAR
from chainrule.cli._values import parse_values
from chainrule.errors import ChainruleError
from chainrule.expressions import (
    MAX_DEPTH,
    Binary,
    Call,
    Expr,
    ExpressionError,
    Name,
    Number,
    Unary,
    evaluate,
    format_expr,
    format_symbol,
    names,
    parse,
    simplify,
    tidy,
    to_graph,
    to_sympy,
)

F_TEXT = "cos(x**2*y) + x**2*sqrt(z)"


# --- parsing -------------------------------------------------------------------------


def test_parse_power_binds_tighter_than_unary_minus() -> None:
    """-x**2 is -(x**2), as in Python and in mathematics."""
    assert parse("-x**2") == Unary("-", Binary("**", Name("x"), Number(2.0)))


def test_parse_power_is_right_associative() -> None:
    """x**y**z is x**(y**z)."""
    assert parse("x**y**z") == Binary("**", Name("x"), Binary("**", Name("y"), Name("z")))


def test_parse_exponent_may_carry_a_sign() -> None:
    """2**-1 parses (the exponent is a unary expression) and is 0.5."""
    assert evaluate(parse("2**-1"), {}) == 0.5


def test_parse_arithmetic_precedence_and_numbers() -> None:
    """Products before sums, left to right; decimals and exponents are numbers."""
    assert evaluate(parse("2*3 + 4/2 - 1"), {}) == 7.0
    assert evaluate(parse("8/2/2"), {}) == 2.0
    assert evaluate(parse("1e-3 + .5 + 2.5E+1"), {}) == pytest.approx(25.501)


def test_parse_calls_and_names() -> None:
    """Function calls of chainrule's functions parse; names keep their first-use order."""
    tree = parse(F_TEXT)
    assert names(tree) == ("x", "y", "z")
    assert isinstance(tree, Binary) and isinstance(tree.left, Call)
    assert tree.left.function == "cos"
    assert names(parse("w1*x_2 + w1")) == ("w1", "x_2")


def test_parse_every_function_of_the_ops_table() -> None:
    """Every function in chainrule.ops.FUNCTIONS is callable in an expression."""
    for function in ops.FUNCTIONS:
        tree = parse(f"{function}(x)")
        assert tree == Call(function, (Name("x"),))


def test_parse_partial_functions_only_when_allowed() -> None:
    """step, sign and maximum appear in partial symbols; user expressions refuse them."""
    for text in ("step(x)", "sign(x)", "maximum(x, y)"):
        with pytest.raises(ExpressionError):
            parse(text)
        assert isinstance(parse(text, allow_partial_functions=True), Call)


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("x.__class__", 2, "attribute access"),
        ("__import__('os')", 1, "__import__"),
        ("lambda: 1", 1, "lambda"),
        ("'abc'", 1, "strings"),
        ('x + "s"', 5, "strings"),
        ("foo(x)", 1, "not a function"),
        ("x + open(y)", 5, "not a function"),
        ("[1]", 1, "brackets"),
        ("x[0]", 2, "brackets"),
        ("x if y else z", 3, "keyword 'if'"),
        ("1, 2", 2, "comma"),
        ("x ^ 2", 3, "**"),
        ("2x", 2, "2*x"),
        ("x +", 4, "ends too early"),
        ("(x + 1", 7, "missing ')'"),
        ("x)", 2, "unmatched"),
        ("sin(x, y)", 1, "takes 1 argument"),
        ("sin + 1", 1, "call it as sin"),
        ("x y", 3, "operator"),
        ("", 1, "empty"),
        ("x // 2", 3, "floor division"),
        ("1.2.3", 4, "malformed number"),
        ("x − y", 3, "write - for minus"),
        ("x; y", 2, "one expression"),
        ("x == 1", 3, "comparisons"),
        ("1e999", 1, "too large"),
        ("{x}", 1, "braces"),
    ],
)
def test_parse_refuses_with_the_offending_column(text: str, column: int, fragment: str) -> None:
    """Anything outside the language is refused, naming the problem and its column."""
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    error = caught.value
    assert error.column == column
    assert fragment in error.message
    # message, the expression, and a caret under the column
    lines = str(error).splitlines()
    assert lines[1] == "  " + text
    assert lines[2] == "  " + " " * (column - 1) + "^"
    assert f"at column {column}:" in error.one_line


def test_expression_error_is_a_chainrule_value_error() -> None:
    """Callers can catch ExpressionError as ChainruleError or as ValueError."""
    with pytest.raises(ChainruleError):
        parse("x.y")
    with pytest.raises(ValueError):
        parse("x.y")


def test_parse_refuses_deep_nesting_without_recursion_error() -> None:
    """Thousands of parentheses or terms give a clear error, never a RecursionError."""
    with pytest.raises(ExpressionError, match="nested"):
        parse("(" * 5000 + "x" + ")" * 5000)
    with pytest.raises(ExpressionError, match="nested"):
        parse("-" * 5000 + "x")
    with pytest.raises(ExpressionError, match="nested"):
        parse("+".join(["x"] * 1000))
    parse("+".join(["x"] * (MAX_DEPTH - 1)))


def test_parse_and_to_graph_never_call_eval_or_compile_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """eval and exec are never used, and compile only builds a syntax tree (ast.parse)."""
    import ast

    real_compile = builtins.compile
    compiled: list[str] = []

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("Python evaluated user text")

    def syntax_tree_only(source: Any, filename: Any, mode: str, flags: int = 0, **kw: Any) -> Any:
        # Imports compile modules too; only calls that see the user's text are recorded.
        if isinstance(source, str) and "x**2*sqrt(z)" in source:
            compiled.append(f"{mode}, syntax tree only: {bool(flags & ast.PyCF_ONLY_AST)}")
        return real_compile(source, filename, mode, flags, **kw)

    for name in ("eval", "exec"):
        monkeypatch.setattr(builtins, name, forbidden)
    monkeypatch.setattr(builtins, "compile", syntax_tree_only)
    tree = parse(F_TEXT)
    output, _ = to_graph(F_TEXT, {"x": 1, "y": 2, "z": 3})
    monkeypatch.undo()
    assert compiled and set(compiled) == {"eval, syntax tree only: True"}
    assert evaluate(tree, {"x": 1, "y": 2, "z": 3}) == pytest.approx(output.data)


# --- evaluation and rendering -------------------------------------------------------------


def test_evaluate_follows_numpy_outside_the_domain() -> None:
    """log(-1) is NaN and 1/0 is inf, as the ops compute them, not a Python exception."""
    assert math.isnan(evaluate(parse("log(x)"), {"x": -1.0}))
    assert evaluate(parse("1/x"), {"x": 0.0}) == math.inf


def test_evaluate_missing_name_is_named() -> None:
    """A name without a value is reported by name."""
    with pytest.raises(KeyError, match="'y'"):
        evaluate(parse("x + y"), {"x": 1.0})


@pytest.mark.parametrize(
    ("template", "names_", "params", "unicode", "ascii_"),
    [
        ("p*a**(p - 1)", {"a": "x"}, {"p": 2.0}, "2·x", "2*x"),
        ("p*a**(p - 1)", {"a": "x"}, {"p": 3.0}, "3·x²", "3*x**2"),
        ("p*a**(p - 1)", {"a": "x"}, {"p": 1.0}, "1", "1"),
        ("p*a**(p - 1)", {"a": "x"}, {"p": -1.0}, "−x⁻²", "-x**(-2)"),
        ("p*a**(p - 1)", {"a": "x"}, {"p": 0.5}, "0.5·x^(−0.5)", "0.5*x**(-0.5)"),
        ("-sin(a)", {"a": "u"}, {}, "−sin(u)", "-sin(u)"),
        ("1/(2*sqrt(a))", {"a": "z"}, {}, "1/(2√z)", "1/(2*sqrt(z))"),
        ("b", {"a": "x", "b": "y"}, {}, "y", "y"),
        ("-a/b**2", {"a": "x", "b": "y"}, {}, "−x/y²", "-x/y**2"),
        ("b*a**(b - 1)", {"a": "w1", "b": "x_2"}, {}, "x_2·w1^(x_2 − 1)", "x_2*w1**(x_2 - 1)"),
        ("sigmoid(a)*(1 - sigmoid(a))", {"a": "s"}, {}, "σ(s)·(1 − σ(s))", None),
        ("1 - tanh(a)**2", {"a": "h"}, {}, "1 − tanh(h)²", "1 - tanh(h)**2"),
        ("sign(a)", {"a": "x"}, {}, "sign(x)", "sign(x)"),
        ("a*b", {"a": "x + 1", "b": "y"}, {}, "(x + 1)·y", "(x + 1)*y"),
    ],
)
def test_format_symbol_renders_partials_readably(
    template: str, names_: dict[str, str], params: dict[str, float], unicode: str, ascii_: str
) -> None:
    """Op symbols render as the handouts write them, in Unicode and in plain ASCII."""
    assert format_symbol(template, names_, params) == unicode
    if ascii_ is not None:
        assert format_symbol(template, names_, params, unicode=False) == ascii_


def test_format_symbol_is_deterministic_and_ascii_when_asked() -> None:
    """The same call gives the same text; unicode=False output is pure ASCII."""
    for op in ops.OPS.values():
        if not op.elementwise:
            continue
        for partial in op.partials:
            first = format_symbol(partial.symbol, {"a": "x", "b": "y"}, {"p": 2.0})
            assert first == format_symbol(partial.symbol, {"a": "x", "b": "y"}, {"p": 2.0})
            ascii_text = format_symbol(
                partial.symbol, {"a": "x", "b": "y"}, {"p": 2.0}, unicode=False
            )
            assert ascii_text.isascii()


def _domain_point(op_name: str, rng: random.Random) -> tuple[float, ...]:
    if op_name in ("log", "sqrt"):
        return (rng.uniform(0.2, 3.0),)
    if op_name in ("pow", "pow_node"):
        return (rng.uniform(0.2, 3.0), rng.uniform(-2.0, 2.0))
    if op_name == "div":
        return (rng.uniform(-2.0, 2.0), rng.choice([-1, 1]) * rng.uniform(0.3, 2.0))
    if op_name == "log_loss":  # a probability inside the clamp, a target in [0, 1]
        return (rng.uniform(0.05, 0.95), rng.uniform(0.0, 1.0))
    # Keep away from kinks (relu, abs, maximum) where the one-sided choice matters.
    return tuple(rng.choice([-1, 1]) * rng.uniform(0.1, 1.3) for _ in range(2))


def test_every_partial_symbol_evaluates_to_the_op_rows_numeric_partial() -> None:
    """Each elementwise op's partial symbol, parsed and evaluated, equals Partial.value."""
    rng = random.Random(7)
    for key, op in ops.OPS.items():
        if not op.elementwise or op.name == "where":
            continue
        for _ in range(5):
            point = _domain_point(key, rng)[: op.arity] if key != "pow" else None
            params: dict[str, float] = {}
            if key == "pow":  # the constant-exponent row
                point = (rng.uniform(0.2, 3.0),)
                params = {"p": rng.choice([2.0, 3.0, 0.5, -1.0])}
            assert point is not None
            out = op.forward(SCALAR, *point, **params)
            values = {"ab"[i]: v for i, v in enumerate(point)} | params
            for partial in op.partials:
                expected = float(partial.value(SCALAR, out, point, params))
                symbolic = evaluate(parse(partial.symbol, allow_partial_functions=True), values)
                assert symbolic == pytest.approx(expected, rel=1e-12, abs=1e-12), (key, partial)
                # and the rendered ASCII text still means the same
                shown = format_symbol(partial.symbol, {}, params, unicode=False)
                again = evaluate(parse(shown, allow_partial_functions=True), values)
                assert again == pytest.approx(expected, rel=1e-12, abs=1e-12), (key, shown)


def _trees(max_leaves: int = 12) -> st.SearchStrategy[Expr]:
    leaves = st.one_of(
        st.sampled_from([Name("x"), Name("y"), Name("w1")]),
        st.sampled_from([0.0, 1.0, 2.0, 0.5, 3.0, -1.0, -2.5]).map(Number),
    )

    def extend(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
        return st.one_of(
            st.tuples(st.sampled_from(["+", "-", "*", "/"]), children, children).map(
                lambda t: Binary(t[0], t[1], t[2])
            ),
            st.tuples(children, st.sampled_from([2.0, 3.0, -1.0, 0.5, 1.0, 0.0])).map(
                lambda t: Binary("**", t[0], Number(t[1]))
            ),
            st.tuples(st.sampled_from(["-", "+"]), children).map(lambda t: Unary(t[0], t[1])),
            st.tuples(st.sampled_from(["sin", "tanh", "sigmoid", "exp", "abs"]), children).map(
                lambda t: Call(t[0], (t[1],))
            ),
        )

    return st.recursive(leaves, extend, max_leaves=max_leaves)


@settings(max_examples=150, deadline=None)
@given(_trees())
def test_rendering_and_simplifying_keep_the_value(tree: Expr) -> None:
    """ASCII text of a tree (and of its simplification) parses back to the same value."""
    point = {"x": 0.7, "y": -1.3, "w1": 2.1}
    expected = evaluate(tree, point)
    if not math.isfinite(expected) or abs(expected) > 1e12:
        return
    for candidate in (tree, simplify(tree), tidy(tree)):
        text = format_expr(candidate, unicode=False)
        again = evaluate(parse(text), point)
        assert again == pytest.approx(expected, rel=1e-9, abs=1e-9), text
    assert format_expr(simplify(tree))  # the Unicode form renders too


def _leaves(tree: Expr) -> list[str]:
    """Every name and number in a tree, as text, sorted (numbers by magnitude: tidy may
    move a sign from a number to the operator before it)."""
    found = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Name):
            found.append(node.name)
        elif isinstance(node, Number):
            found.append(repr(abs(node.value)))
        elif isinstance(node, Unary):
            stack.append(node.operand)
        elif isinstance(node, Binary):
            stack.extend((node.left, node.right))
        elif isinstance(node, Call):
            stack.extend(node.arguments)
    return sorted(found)


@settings(max_examples=150, deadline=None)
@given(_trees())
def test_tidy_keeps_every_operand_and_the_value(tree: Expr) -> None:
    """tidy rewrites signs and order only: the same names and numbers, the same value."""
    tidied = tidy(tree)
    assert _leaves(tidied) == _leaves(tree)
    point = {"x": 0.7, "y": -1.3, "w1": 2.1}
    expected = evaluate(tree, point)
    if math.isfinite(expected):
        assert evaluate(tidied, point) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(
    ("text", "tidied", "simplified"),
    [
        ("0*log(1 - z)", "0·log(1 − z)", "0"),
        ("1*x", "1·x", "x"),
        ("x*2", "2·x", "2·x"),
        ("x + -y", "x − y", "x − y"),
        ("x - -2", "x + 2", "x + 2"),
        ("-(-x)", "−(−x)", "x"),
        ("x**1", "x¹", "x"),
    ],
)
def test_tidy_is_simplify_without_dropping_anything(
    text: str, tidied: str, simplified: str
) -> None:
    """Where simplify folds a term away (0·u → 0), tidy keeps it; both tidy signs."""
    assert format_expr(tidy(parse(text))) == tidied
    assert format_expr(simplify(parse(text))) == simplified


def test_format_compound_names_get_parentheses_only_where_needed() -> None:
    """A name holding x @ W needs none in a sum, and gets them next to · or /."""
    matmul, bias = Name("x @ W1ᵀ"), Name("b1")
    assert format_expr(Binary("+", matmul, bias)) == "x @ W1ᵀ + b1"
    assert format_expr(Binary("*", Number(2.0), matmul)) == "2·(x @ W1ᵀ)"
    assert format_expr(Binary("/", Number(1.0), matmul)) == "1/(x @ W1ᵀ)"
    assert format_expr(Binary("*", Name("1 − y"), Name("u"))) == "(1 − y)·u"
    assert format_expr(Binary("-", Name("a"), Name("b + c"))) == "a − (b + c)"
    assert format_expr(Binary("**", Name("Wᵀ"), Number(2.0))) == "(Wᵀ)²"
    assert format_expr(Binary("+", Name("a"), Name("−b"))) == "a + (−b)"
    assert format_expr(Call("sin", (Name("x + 1"),))) == "sin(x + 1)"


# --- graphs --------------------------------------------------------------------------------


def test_to_graph_builds_the_handout_function_with_its_gradients() -> None:
    """f = cos(x²y) + x²√z: value and backprop gradients match eqs. (3)-(5)."""
    x, y, z = 1.3, -0.7, 2.2
    output, leaves = to_graph(F_TEXT, {"x": x, "y": y, "z": z})
    assert list(leaves) == ["x", "y", "z"]
    assert all(leaves[n].label == n for n in leaves)
    assert output.data == pytest.approx(math.cos(x * x * y) + x * x * math.sqrt(z))
    output.backward()
    assert leaves["x"].grad == pytest.approx(
        -2 * x * y * math.sin(x * x * y) + 2 * x * math.sqrt(z)
    )
    assert leaves["y"].grad == pytest.approx(-(x * x) * math.sin(x * x * y))
    assert leaves["z"].grad == pytest.approx(x * x / (2 * math.sqrt(z)))


def test_to_graph_shares_a_repeated_subexpression() -> None:
    """x**2 written twice is one node with two outgoing edges, as the handout draws it."""
    output, leaves = to_graph(F_TEXT, {"x": 1, "y": 2, "z": 3})
    squares = []
    stack = [output]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.op is ops.POWC:
            squares.append(node)
        stack.extend(node.parents)
    assert len(squares) == 1
    assert squares[0].params == {"p": 2.0}
    assert squares[0].parents == (leaves["x"],)


def test_to_graph_folds_constant_subexpressions() -> None:
    """2*3*x has one multiplication by the constant 6, and x**(1+1) is the square op."""
    output, _ = to_graph("2*3*x", {"x": 1.5})
    assert output.op is ops.MUL and output.data == 9.0
    assert output.parents[0].data == 6.0
    square, _ = to_graph("x**(1+1)", {"x": 3.0})
    assert square.op is ops.POWC and square.params == {"p": 2.0}
    constant, leaves = to_graph("2 + 3", {})
    assert isinstance(constant, chainrule.Value) and constant.data == 5.0 and leaves == {}


def test_to_graph_missing_value_names_it_at_its_column() -> None:
    """A name without a value is an ExpressionError pointing at its first use."""
    with pytest.raises(ExpressionError) as caught:
        to_graph("x*2 + y", {"x": 1.0})
    assert "'y'" in caught.value.message
    assert caught.value.column == 7


def test_to_graph_division_by_zero_is_an_expression_error() -> None:
    """Dividing by a node that is zero at the point is reported at the division."""
    with pytest.raises(ExpressionError, match="division by zero") as caught:
        to_graph("x + y/(x - 1)", {"x": 1.0, "y": 2.0})
    assert caught.value.column == 6


def test_to_graph_refuses_partial_only_functions() -> None:
    """step has no graph op, so a tree that contains it cannot become a graph."""
    with pytest.raises(ExpressionError, match="no graph op"):
        to_graph(parse("step(x)", allow_partial_functions=True), {"x": 1.0})


def test_to_graph_matches_evaluate_on_random_trees() -> None:
    """The graph's value is the tree's value for generated expressions."""
    rng = random.Random(3)
    functions = ["sin", "cos", "tanh", "sigmoid", "softplus", "exp"]
    for _ in range(30):
        text = "x"
        for _ in range(6):
            choice = rng.randrange(4)
            if choice == 0:
                text = f"{rng.choice(functions)}({text})"
            elif choice == 1:
                text = f"({text}) * {rng.choice(['y', '2', 'x'])}"
            elif choice == 2:
                text = f"{text} - y**2"
            else:
                text = f"-({text}) + 0.5"
        point = {"x": rng.uniform(-1, 1), "y": rng.uniform(-1, 1)}
        output, _ = to_graph(text, point)
        assert output.data == pytest.approx(evaluate(parse(text), point), rel=1e-12)


# --- values and sympy -------------------------------------------------------------------------


def test_parse_values_reads_pairs() -> None:
    """name=number pairs become a dict of floats (signs, decimals and exponents allowed)."""
    assert parse_values(["x=1", "y=-2.5", "z=1e-3", "w_1=+4"]) == {
        "x": 1.0,
        "y": -2.5,
        "z": 0.001,
        "w_1": 4.0,
    }


@pytest.mark.parametrize(
    ("pairs", "column", "fragment"),
    [
        (["x"], 2, "name=value"),
        (["1x=2"], 1, "not a name"),
        (["x=abc"], 3, "not a finite number"),
        (["x=nan"], 3, "not a finite number"),
        (["x="], 3, "missing"),
        (["x=1", "x=2"], 1, "twice"),
    ],
)
def test_parse_values_points_at_the_bad_column(
    pairs: list[str], column: int, fragment: str
) -> None:
    """A malformed pair is refused with the column inside the pair."""
    with pytest.raises(ExpressionError) as caught:
        parse_values(pairs)
    assert caught.value.column == column
    assert fragment in caught.value.message


def test_to_sympy_maps_functions() -> None:
    """sigmoid, relu, step and softplus become their sympy definitions."""
    sympy = pytest.importorskip("sympy")
    x = sympy.Symbol("x", real=True)
    assert to_sympy(parse("sigmoid(x)")) == 1 / (1 + sympy.exp(-x))
    assert to_sympy(parse("relu(x)")) == sympy.Max(x, 0)
    assert to_sympy(parse("step(x)", allow_partial_functions=True)) == sympy.Heaviside(x, 0)
    assert to_sympy(parse("softplus(x)")) == sympy.log(1 + sympy.exp(x))
    assert to_sympy(parse("abs(x)**2")) == sympy.Abs(x) ** 2
    # numbers are exact
    assert to_sympy(parse("0.1 + 2")) == sympy.Rational(21, 10)


def test_to_sympy_without_sympy_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing sympy gives an ImportError that names the extra to install."""
    import sys

    monkeypatch.setitem(sys.modules, "sympy", None)
    with pytest.raises(ImportError, match=r'pip install "chainrule\[symbolic\]"'):
        to_sympy(parse("x"))
