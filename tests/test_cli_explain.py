"""Tests for the ``chainrule explain`` and ``chainrule draw`` commands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from chainrule.cli.main import main

F_TEXT = "cos(x**2*y) + x**2*sqrt(z)"
AT = ["--at", "x=1", "y=2", "z=3"]

REFUSED = [
    ("x.__class__", 2),
    ("__import__('os')", 1),
    ("lambda: 1", 1),
    ("'rm -rf'", 1),
    ("x + open(y)", 5),
    ("[1]", 1),
    ("x if y else z", 3),
    ("x*y + system(x)", 7),
    ("(x + y", 7),
]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# --- explain -------------------------------------------------------------------------------


def test_explain_prints_paths_sum_backprop_and_cost(capsys: pytest.CaptureFixture[str]) -> None:
    """The report shows both paths of ∂f/∂x, the sum, backprop agreeing, and the costs."""
    status, out, err = _run(capsys, "explain", F_TEXT, *AT, "--wrt", "x")
    assert status == 0 and err == ""
    assert "x → x² → x²·y → cos(x²·y) → f" in out
    assert "x → x² → x²·√z → f" in out
    assert "f = cos(x²·y) + x²·√z, at x = 1, y = 2, z = 3" in out
    assert "sum over 2 paths  -0.173088" in out
    assert "(agrees)" in out
    assert "multiply-adds" in out


def test_explain_symbolic_prints_the_formula(capsys: pytest.CaptureFixture[str]) -> None:
    """--symbolic adds the derivative as a formula and its value at the point."""
    pytest.importorskip("sympy")
    status, out, _ = _run(capsys, "explain", F_TEXT, *AT, "--wrt", "x", "--symbolic")
    assert status == 0
    assert "∂f/∂x = -2*x*y*sin(x**2*y) + 2*x*sqrt(z)" in out
    assert "= -0.173088 at the point" in out


def test_explain_max_paths_refuses_but_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """--max-paths 1 lists nothing for 2 paths but still reports the count and backprop."""
    status, out, _ = _run(capsys, "explain", F_TEXT, *AT, "--wrt", "x", "--max-paths", "1")
    assert status == 0
    assert "paths not listed: 2 paths lead from x to f" in out
    assert re.search(r"backprop ∂f/∂x +-0\.173088", out)


def test_explain_ascii_output(capsys: pytest.CaptureFixture[str]) -> None:
    """--ascii keeps the whole report in ASCII."""
    status, out, _ = _run(capsys, "explain", F_TEXT, *AT, "--wrt", "z", "--ascii")
    assert status == 0 and out.isascii()
    assert "1/(2*sqrt(z))" in out


@pytest.mark.parametrize("command", ["explain", "draw"])
@pytest.mark.parametrize(("expression", "column"), REFUSED)
def test_refused_expressions_exit_2_at_their_column(
    capsys: pytest.CaptureFixture[str], command: str, expression: str, column: int
) -> None:
    """Code-like input is refused with exit status 2 and one line naming its column."""
    extra = ["--wrt", "x"] if command == "explain" else []
    status, out, err = _run(capsys, command, expression, "--at", "x=1", "y=2", "z=3", *extra)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert f"at column {column}:" in err


@pytest.mark.parametrize(
    ("at", "fragment"),
    [
        (["x=1", "y=2", "z=3", "w=4"], "--at 'w=4' at column 1: w does not appear"),
        (["x=1", "y", "z=3"], "--at 'y' at column 2: expected name=value"),
        (["x=1", "y=two", "z=3"], "--at 'y=two' at column 3: two is not a finite number"),
        (["x=1", "z=3"], "at column 10: no value for the name 'y'"),
        (["x=1", "2y=2", "z=3"], "--at '2y=2' at column 1"),
    ],
)
def test_bad_at_values_exit_2_with_a_column(
    capsys: pytest.CaptureFixture[str], at: list[str], fragment: str
) -> None:
    """A malformed, unknown or missing --at value exits 2 pointing at the column."""
    status, _, err = _run(capsys, "explain", F_TEXT, "--at", *at, "--wrt", "x")
    assert status == 2
    assert fragment in err
    assert err.count("\n") == 1


def test_explain_wrt_must_be_in_the_expression(capsys: pytest.CaptureFixture[str]) -> None:
    """--wrt naming something absent exits 2 and lists the names."""
    status, _, err = _run(capsys, "explain", F_TEXT, *AT, "--wrt", "q")
    assert status == 2
    assert "--wrt q: the expression has no name q (its names: x, y, z)" in err


def test_explain_division_by_zero_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A division by zero at the given point is a usage error, not a traceback."""
    status, _, err = _run(capsys, "explain", "x/(y - 2)", "--at", "x=1", "y=2", "--wrt", "x")
    assert status == 2
    assert "division by zero" in err


# --- draw ----------------------------------------------------------------------------------


def test_draw_without_output_prints_dot(capsys: pytest.CaptureFixture[str]) -> None:
    """Without -o the Graphviz source goes to standard output, with the edge partials."""
    status, out, _ = _run(capsys, "draw", F_TEXT, *AT)
    assert status == 0
    assert out.startswith("digraph")
    assert "2·x" in out and "1/(2√z)" in out


def test_draw_writes_well_formed_svg_without_graphviz(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """-o f.svg writes a well-formed SVG even with Graphviz hidden from PATH."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    target = tmp_path / "f.svg"
    status, out, _ = _run(capsys, "draw", F_TEXT, *AT, "-o", str(target), "--highlight", "x")
    assert status == 0 and str(target) in out
    root = ElementTree.parse(target).getroot()
    assert root.tag.endswith("svg")
    assert "cos" in target.read_text(encoding="utf-8")


def test_draw_options_and_dot_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--ops, --no-numbers and --rankdir TB are accepted; a .dot file holds the source."""
    target = tmp_path / "f.dot"
    status, _, _ = _run(
        capsys, "draw", F_TEXT, *AT, "-o", str(target), "--ops", "--no-numbers", "--rankdir", "TB"
    )
    assert status == 0
    text = target.read_text(encoding="utf-8")
    assert text.startswith("digraph") and 'rankdir="TB"' in text
    assert "-0.1731" not in text and "−0.1731" not in text  # no numbers


def test_draw_bad_suffix_and_highlight_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An unknown file suffix or --highlight name exits 2 before anything is written."""
    status, _, err = _run(capsys, "draw", F_TEXT, *AT, "-o", str(tmp_path / "f.gif"))
    assert status == 2 and ".gif" in err
    assert not (tmp_path / "f.gif").exists()
    status, _, err = _run(capsys, "draw", F_TEXT, *AT, "--highlight", "w")
    assert status == 2 and "--highlight w" in err


def test_command_line_refuses_code_end_to_end(tmp_path: Path) -> None:
    """Run as a real process: `__import__('os')` exits 2 with one line on stderr."""
    env = dict(os.environ, PYTHONWARNINGS="error")
    process = subprocess.run(
        [sys.executable, "-m", "chainrule", "explain", "__import__('os').getcwd()", "--wrt", "x"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert process.returncode == 2
    assert process.stdout == ""
    assert process.stderr.strip().count("\n") == 0
    assert "at column 1:" in process.stderr
