"""Every function row of chainrule.ops reaches everything that names functions.

A unary elementwise op row written ``name(a)`` is a function: these tests run over
``ops.FUNCTIONS`` as it is, so a new row is checked everywhere (methods, module
functions, the expression language, sympy, the command line, diagrams, compiled
replay) without a line here, and a hand-written list that falls behind the rows fails.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import functions, ops
from chainrule._math import ARRAY, SCALAR
from chainrule.cli.main import main
from chainrule.expressions import names, parse, to_graph, to_sympy

FUNCTION_ROWS = list(ops.FUNCTIONS.values())
ROOT = Path(__file__).resolve().parents[1]
#: Points away from relu's and abs's kink and inside tan's branch; log and sqrt are
#: checked where they are real.
POINTS = (-0.6, 0.3, 0.7, 1.3)


def _row_id(op: ops.Op) -> str:
    return op.name


def test_functions_are_every_unary_row_written_by_its_name() -> None:
    """FUNCTIONS holds exactly the one-input elementwise rows without parameters written
    name(a), in row order: exp and log1p are in, neg (-a) and pow (a**p) are not."""
    rows = [
        op
        for op in ops.OPS.values()
        if op.elementwise and op.arity == 1 and not op.param_names
        if op.symbol == f"{op.name}(a)"
    ]
    assert rows == FUNCTION_ROWS
    assert {"exp", "log1p", "tanh", "softplus"} <= set(ops.FUNCTIONS)
    assert not {"neg", "pow", "sum"} & set(ops.FUNCTIONS)


@pytest.mark.parametrize("op", FUNCTION_ROWS, ids=_row_id)
def test_function_row_is_a_method_of_value_and_tensor(op: ops.Op) -> None:
    """Value.<name>() and Tensor.<name>() record the row and compute its forward."""
    value = getattr(cr.Value(0.7), op.name)()
    assert value.op is op
    assert value.data == op.forward(SCALAR, 0.7)
    data = np.array([[0.3, 0.7], [1.3, 0.5]])
    tensor = getattr(cr.tensor(data, requires_grad=True), op.name)()
    assert tensor.op is op
    np.testing.assert_array_equal(tensor.data, op.forward(ARRAY, data))


@pytest.mark.parametrize("op", FUNCTION_ROWS, ids=_row_id)
def test_function_row_is_a_module_function(op: ops.Op) -> None:
    """chainrule.<name> and chainrule.functions.<name> take a Value, a Tensor or a number."""
    function = getattr(cr, op.name)
    assert function is getattr(functions, op.name)
    assert op.name in functions.__all__ and op.name in dir(cr)
    assert function(cr.Value(0.7)).op is op
    assert function(cr.tensor([0.7], requires_grad=True)).op is op
    assert function(0.7) == op.forward(SCALAR, 0.7)


@pytest.mark.parametrize("op", FUNCTION_ROWS, ids=_row_id)
def test_function_row_is_callable_in_expressions(op: ops.Op) -> None:
    """name(x) parses, and its graph is one node of the row with the row's value."""
    output, leaves = to_graph(f"{op.name}(x)", {"x": 0.7})
    assert output.op is op and output.parents == (leaves["x"],)
    assert output.data == op.forward(SCALAR, 0.7)


@pytest.mark.parametrize("op", FUNCTION_ROWS, ids=_row_id)
def test_function_row_sympy_form_equals_its_forward(op: ops.Op) -> None:
    """The sympy form of name(x) (the row's definition, or sympy's function of that name)
    has the row's forward value wherever that is real, negative points too, so the
    definition is right (sympy's same-name function may mean another branch)."""
    pytest.importorskip("sympy")
    formula = to_sympy(parse(f"{op.name}(x)"))
    for point in POINTS:
        forward = op.forward(SCALAR, point)
        if not math.isfinite(forward):
            continue
        exact = complex(formula.subs({sym: point for sym in formula.free_symbols}))
        assert exact.imag == 0, (op.name, point, exact)
        assert math.isclose(exact.real, forward, rel_tol=1e-12), (op.name, point)


@pytest.mark.parametrize("op", [op for op in FUNCTION_ROWS if op.definition], ids=_row_id)
def test_function_row_definition_is_over_a_in_other_functions(op: ops.Op) -> None:
    """A row's definition is an expression in a alone that does not call the row itself."""
    assert op.definition is not None
    tree = parse(op.definition, allow_partial_functions=True)
    assert names(tree) == ("a",)
    assert not re.search(rf"\b{op.name}\(", op.definition)


@pytest.mark.parametrize("op", FUNCTION_ROWS, ids=_row_id)
def test_function_row_derivative_is_explained_and_drawn(op: ops.Op) -> None:
    """The path sum of name(x) agrees with backprop, its formula is the row's partial,
    and its diagram's one edge carries that partial."""
    pytest.importorskip("sympy")
    x = cr.Value(0.7, "x")
    output = getattr(x, op.name)()
    assert cr.explain(output, x).agrees
    derivative = cr.symbolic(output, "x")
    partial = to_sympy(parse(op.partials[0].symbol, allow_partial_functions=True))
    a = next(iter(partial.free_symbols))
    assert derivative.equals(partial.subs(a, next(iter(derivative.free_symbols))))
    (edge,) = cr.draw(output).edges
    assert edge.value == pytest.approx(float(op.partials[0].value(SCALAR, output.data, (0.7,), {})))


@pytest.mark.parametrize("op", FUNCTION_ROWS, ids=_row_id)
def test_function_row_replays_compiled_like_eager(op: ops.Op) -> None:
    """A compiled training step through the row replays flat and matches eager to the bit."""
    rng = np.random.default_rng(0)
    start = rng.uniform(0.4, 0.9, (3, 4))
    inputs = [rng.uniform(0.5, 1.5, (3, 4)) for _ in range(3)]

    def loss_of(weight: cr.Tensor, x: np.ndarray) -> cr.Tensor:
        return getattr(weight * x, op.name)().sum()

    weight = cr.tensor(start.copy(), requires_grad=True)
    step = cr.compile(lambda x: loss_of(weight, x), optimizer=cr.optim.SGD([weight], lr=0.01))
    twin = cr.tensor(start.copy(), requires_grad=True)
    eager = cr.optim.SGD([twin], lr=0.01)
    for x in inputs:
        eager.zero_grad()
        loss = loss_of(twin, x)
        loss.backward()
        eager.step()
        assert step(x).data.tobytes() == loss.data.tobytes()
    assert weight.data.tobytes() == twin.data.tobytes()
    assert step.stats.flat_replays > 0


def test_explain_functions_lists_every_row(capsys: pytest.CaptureFixture[str]) -> None:
    """chainrule explain --functions prints each function with its row's derivative and
    definition, and the expression help names every function."""
    assert main(["explain", "--functions", "--ascii"]) == 0
    listing = capsys.readouterr().out
    for op in FUNCTION_ROWS:
        (line,) = [row for row in listing.splitlines() if row.startswith(f"  {op.name}(x)")]
        assert "d/dx = " in line
        assert (op.definition is not None) == (f"{op.name}(x) = " in line)
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert " ".join(ops.FUNCTIONS) in help_text


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_docs_hold_no_function_list_behind_the_rows() -> None:
    """No line of the README or docs lists most of the functions but not all of them (a
    hand-written list that a new row left behind); they point at --functions instead."""
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, ops.FUNCTIONS)) + r")\b")
    for document in _documents():
        for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), 1):
            named = set(pattern.findall(line))
            missing = set(ops.FUNCTIONS) - named
            assert len(named) < 6 or not missing, (
                f"{document.name}:{number} lists functions without {sorted(missing)}"
            )


def test_mypy_plugin_declares_a_method_per_function_row(tmp_path: Path) -> None:
    """With chainrule.mypy_plugin, mypy types Tensor.<name>() and Value.<name>() of every
    function row and chainrule.functions.<name>, and still refuses an unknown method."""
    api = pytest.importorskip("mypy.api")
    lines = ["import chainrule as cr", "from chainrule import functions"]
    for name in ops.FUNCTIONS:
        lines += [
            f"reveal_type(cr.tensor([1.0]).{name}())",
            f"reveal_type(cr.Value(1.0).{name}())",
            f"functions.{name}(1.0)",
        ]
    lines.append("cr.tensor([1.0]).not_a_function()")
    (tmp_path / "uses.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "mypy.ini").write_text("[mypy]\nplugins = chainrule.mypy_plugin\n")
    out, err, status = api.run(
        [
            "--config-file",
            str(tmp_path / "mypy.ini"),
            "--cache-dir",
            str(tmp_path / "cache"),
            str(tmp_path / "uses.py"),
        ]
    )
    assert status == 1, out + err
    (error,) = [line for line in out.splitlines() if ": error:" in line]
    assert "not_a_function" in error
    revealed = re.findall(r'Revealed type is "chainrule\.(\w+)\.(\w+)"', out)
    assert revealed == [("tensor", "Tensor"), ("value", "Value")] * len(ops.FUNCTIONS)
