"""Regression tests for the expression, draw and explain items of issues 11 and 13."""

from __future__ import annotations

import math

import pytest

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
