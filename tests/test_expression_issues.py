"""Regression tests for the expression, draw and explain items of issues 11 and 13."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.cli.main import main
from chainrule.explanations.paths import explain

DOMAIN_EDGES = [
    ("log(x)", "x=0"),
    ("sqrt(x)", "x=0"),
    ("log(x) + sqrt(x)*0", "x=0"),
    ("x*log(x)", "x=0"),
    ("1/x", "x=0"),
]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize(("text", "pair"), DOMAIN_EDGES)
def test_issue13_item6_draw_and_explain_at_a_domain_edge_exit_0_or_2(
    capsys: pytest.CaptureFixture[str], text: str, pair: str
) -> None:
    """draw and explain at log/sqrt/1/x's edge draw inf/nan (exit 0) or refuse in one line."""
    for command in (["draw", text, "--at", pair], ["explain", text, "--at", pair, "--wrt", "x"]):
        status, out, err = _run(capsys, *command)
        assert status in (0, 2), (command, err)
        if status == 2:
            assert out == "" and len(err.strip().splitlines()) == 1
            assert "division by zero" in err
        else:
            assert err == ""
            assert "∞" in out or "inf" in out or "nan" in out


def test_issue11_item3_draw_at_log_zero_shows_the_infinite_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """log(x) at 0 is drawn with value −∞, adjoint ∞ and edge partial 1/x = ∞."""
    status, out, _ = _run(capsys, "draw", "log(x)", "--at", "x=0")
    assert status == 0
    assert "value −∞" in out and "grad ∞" in out and "1/x = ∞" in out


def test_issue11_item3_cr_draw_and_explain_on_graphs_at_domain_edges() -> None:
    """cr.draw and explain take Value graphs at 1/x, √x and log x's edges; paths agree."""
    for build in (
        lambda x: cr.log(x) + 1 / x,
        lambda x: cr.sqrt(x) * 0 + cr.log(x),
        lambda x: cr.sqrt(x),
    ):
        x = cr.Value(0.0, label="x")
        output = build(x)
        output.backward()
        diagram = cr.draw(output)
        assert "∞" in diagram.dot
        explanation = explain(output, x)
        assert explanation.agrees is True
        assert math.isnan(explanation.total) or math.isinf(explanation.total)
        assert "inf" in explanation.report or "nan" in explanation.report


def test_issue13_item6_explain_symbolic_at_a_domain_edge_says_undefined(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--symbolic at log's edge prints the formula and says its value is undefined there."""
    pytest.importorskip("sympy")
    status, out, err = _run(capsys, "explain", "log(x)", "--at", "x=0", "--wrt", "x", "--symbolic")
    assert status == 0 and err == ""
    assert "∂f/∂x = 1/x" in out
    assert "undefined" in out


def test_issue13_item9_explain_symbolic_on_20_nested_sines_is_bounded(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A 20-deep sin(sin(…)) derivative is written out, not simplified for minutes."""
    pytest.importorskip("sympy")
    text = "sin(" * 20 + "x" + ")" * 20
    status, out, _ = _run(capsys, "explain", text, "--at", "x=1", "--wrt", "x", "--symbolic")
    assert status == 0
    assert "symbolic: ∂f/∂x = cos(x)*cos(sin(x))" in out
    assert "at the point" in out


def test_issue13_item9_symbolic_simplifies_only_small_formulas() -> None:
    """symbolic() leaves a formula above SIMPLIFY_MAX_OPS as the chain rule wrote it."""
    sympy = pytest.importorskip("sympy")
    from chainrule.explanations.symbolic import SIMPLIFY_MAX_OPS, symbolic

    x = cr.Value(1.0, label="x")
    output = x
    for _ in range(12):
        output = cr.sin(output)
    raw = symbolic(output, "x", simplify=False)
    assert sympy.count_ops(raw) > SIMPLIFY_MAX_OPS
    assert symbolic(output, "x") == raw
    small = cr.sin(x) ** 2 + cr.cos(x) ** 2
    assert symbolic(small) == 1


# --- the parser: hostile text, digits, echoes ----------------------------------------------

_TOKENS = [
    "x", "y", "w_0", "sin", "exp", "sqrt", "maximum", "step", "__import__", "os", "lambda",
    "if", "not", "None", "1", "0.5", "1e3", "1_00", "0x1f", "2j", "007", "1e999",
    "(", ")", ",", "+", "-", "*", "/", "**", "//", ".", "..", "...", "[", "]", "'", ":",
    "=", "@", "^", " ", "\n", "\x1b[2J", "１", "\u0661", "ｘ", "−", "√", "9" * 400,
]  # fmt: skip


def _check_parse_outcome(text: str) -> None:
    """parse gives a tree that formats and re-parses to the same tree, or an ExpressionError."""
    from chainrule.expressions import ExpressionError, format_expr, parse

    for partial_functions in (False, True):
        try:
            tree = parse(text, allow_partial_functions=partial_functions)
        except ExpressionError as error:
            assert 1 <= error.column <= len(text) + 1
            assert "\n" not in error.one_line and "\x1b" not in error.one_line
            assert len(error.one_line) < 600
            continue
        again = parse(format_expr(tree, unicode=False), allow_partial_functions=partial_functions)
        assert again == tree


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_issue13_fuzzing_random_text_parses_or_is_refused(text: str) -> None:
    """Any text gives a correct parse or chainrule's own ExpressionError, nothing else."""
    _check_parse_outcome(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), max_size=14))
def test_issue13_fuzzing_token_soups_parse_or_are_refused(tokens: list[str]) -> None:
    """Soups of the language's and Python's tokens parse correctly or are refused."""
    _check_parse_outcome("".join(tokens))
    _check_parse_outcome(" ".join(tokens))


_LANGUAGE_TOKENS = [
    "x", "y", "sin", "exp", "sqrt", "log", "tan", "relu", "sigmoid", "abs", "softplus",
    "1", "0", "0.5", "1e300", "(", ")", "+", "-", "*", "/", "**",
]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(_LANGUAGE_TOKENS), min_size=1, max_size=12),
    st.sampled_from([0.0, -1.0, 2.0, 1e300]),
)
def test_issue13_fuzzing_parsed_expressions_build_graphs_or_are_refused(
    tokens: list[str], value: float
) -> None:
    """A parsed expression builds a graph that backprops, draws and explains (inf and
    nan included) at any point, or to_graph refuses it with an ExpressionError."""
    from chainrule.expressions import ExpressionError, names, parse, to_graph

    text = "".join(tokens)
    try:
        tree = parse(text)
        output, leaves = to_graph(text, dict.fromkeys(names(tree), value))
    except ExpressionError:
        return
    output.backward()
    assert cr.draw(output).dot
    if leaves:
        assert explain(output, next(iter(leaves.values()))).report


def test_issue13_fuzzing_never_executes_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hostile expressions are refused without calling anything they name."""
    import builtins

    from chainrule.expressions import ExpressionError, evaluate, parse

    called: list[str] = []
    monkeypatch.setattr(builtins, "__import__", _recording(builtins.__import__, called))
    for text in (
        "__import__('os').system('echo hi')",
        "sin.__globals__",
        "x[0]",
        "(lambda: 1)()",
        "[c for c in x]",
        "'abc'",
        "(" * 300 + "x" + ")" * 300,
        "9" * 5000,
    ):
        with pytest.raises(ExpressionError):
            parse(text)
    monkeypatch.undo()
    assert "os" not in called
    # a huge power is a tree, computed only when asked, and then numpy's inf
    huge = parse("exp(exp(exp(1e3)))**9**9**9")
    assert evaluate(huge, {}) == math.inf and evaluate(parse("2**99999"), {}) == math.inf


def _recording(real: Any, called: list[str]) -> Any:
    def record(name: str, *args: Any, **kwargs: Any) -> Any:
        called.append(name)
        return real(name, *args, **kwargs)

    return record


@pytest.mark.parametrize("text", ["1_00", "１０", "\u0661\u0660", "2*\uff11", "x + 1_000.5"])
def test_issue13_item13_underscored_and_non_ascii_digits_are_not_numbers(text: str) -> None:
    """1_00, fullwidth and Arabic-Indic digits are refused in expressions, at their column."""
    from chainrule.expressions import ExpressionError, parse

    with pytest.raises(ExpressionError) as caught:
        parse(text)
    bad = next(i for i, c in enumerate(text) if c == "_" or (c.isdigit() and not c.isascii()))
    assert caught.value.column == bad + 1


@pytest.mark.parametrize("value", ["1_00", "１", "\u0661", "+\u0661.5"])
def test_issue13_item13_at_values_take_only_ascii_digits(value: str) -> None:
    """--at x=١ is refused: float() would read it, chainrule does not."""
    from chainrule.cli._values import parse_values
    from chainrule.expressions import ExpressionError

    with pytest.raises(ExpressionError, match="not a finite number"):
        parse_values([f"x={value}"])


def test_issue13_item9_errors_echo_a_bounded_part_of_the_input() -> None:
    """A 90 kB expression's error shows a short excerpt around the column, with a caret."""
    from chainrule.expressions import ExpressionError, parse

    text = "x + " * 20_000 + "y.z"
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    error = caught.value
    assert error.column == len(text) - 1
    assert len(error.one_line) < 300 and len(str(error)) < 400
    _, shown, caret = str(error).splitlines()
    assert shown[caret.index("^")] == "."
    with pytest.raises(ExpressionError, match="characters long"):
        parse("x+" * 60_000 + "x")


def test_issue13_item11_escapes_and_newlines_never_reach_the_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Names and text with ANSI escapes or newlines are echoed inertly by draw and explain."""
    hostile = "x\x1b[2J\nchainrule: error: forged"
    for argv in (
        ["draw", hostile, "--at", "x=1"],
        ["explain", "x*y", "--at", "x=1", "y=2", "--wrt", hostile],
        ["draw", "x*y", "--at", "x=1", "y=2", "--highlight", hostile],
        ["explain", "x", "--at", f"{hostile}=1", "--wrt", "x"],
        ["draw", "x", "--at", "x=1", "-o", f"{hostile}.txt"],
    ):
        status, out, err = _run(capsys, *argv)
        assert status == 2, argv
        assert "\x1b" not in out + err
        assert len(err.strip().splitlines()) == 1, err


# --- issue 11 item 5: a leading minus, and w_0 drawn as w₀ --------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["draw", "--", "-x*y", "--at", "x=1", "y=2"],
        ["draw", "-x*y", "--at", "x=1", "y=2"],
        ["draw", "--at", "x=1", "y=2", "--", "-x*y"],
        ["draw", "--at", "x=1", "y=2", "-x*y"],
        ["draw", "--rankdir", "TB", "-x*y", "--at", "x=1", "y=2"],
        ["explain", "--", "-x*y", "--at", "x=1", "y=2", "--wrt", "x"],
        ["explain", "-x*y", "--wrt", "x", "--at", "x=1", "y=2"],
        ["explain", "--wrt", "x", "--at", "x=1", "y=2", "-x*y"],
    ],
)
def test_issue11_item5_leading_minus_expression_in_any_argument_order(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """-x*y is the expression wherever it stands, with or without --."""
    status, out, err = _run(capsys, *argv)
    assert status == 0, err
    assert ("−x·y" in out) if argv[0] == "explain" else ("−x" in out and "value −2" in out)


def test_issue11_item5_stray_words_and_missing_parts_say_how(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An unquoted expression, a missing expression or --wrt exit 2 saying what to write."""
    status, _, err = _run(capsys, "draw", "x", "y", "--at", "x=1")
    assert status == 2 and "in quotes" in err
    status, _, err = _run(capsys, "draw", "--at", "x=1")
    assert status == 2 and "an expression is required" in err
    status, _, err = _run(capsys, "explain", "x*y", "--at", "x=1", "y=2")
    assert status == 2 and "--wrt NAME is required" in err


def test_issue11_item5_w_0_is_drawn_and_reported_as_w_subscript_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """w_0 and x_i become w₀ and xᵢ in diagram labels and explain's report; sympy keeps w_0."""
    pytest.importorskip("sympy")
    status, out, _ = _run(capsys, "draw", "w_0*x_i + b", "--at", "w_0=1", "x_i=2", "b=0")
    assert status == 0 and "w<SUB>0</SUB>" in out and "x<SUB>i</SUB>" in out
    argv = ["explain", "w_0*x_i", "--at", "w_0=1", "x_i=2", "--wrt", "w_0", "--symbolic"]
    status, out, _ = _run(capsys, *argv)
    assert status == 0
    assert "f = w₀·xᵢ, at w₀ = 1, xᵢ = 2" in out and "∂f/∂w₀ as a sum" in out
    assert "= x_i" in out and "= 2 at the point" in out
    status, out, _ = _run(capsys, "draw", "my_rate*x", "--at", "my_rate=1", "x=2")
    assert status == 0 and "my_rate" in out
