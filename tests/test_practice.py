"""chainrule.practice: generated exercises, marking, diagnoses, worked solutions, the command."""

from __future__ import annotations

import ast
import builtins
import io
from pathlib import Path
from typing import Any

import pytest
import sympy

from chainrule import practice
from chainrule.cli.main import main
from chainrule.expressions import format_expr

SEEDS = range(50)
KINDS = {"missing chain factor", "wrong sign", "forgotten term"}


@pytest.mark.parametrize("topic", list(practice.TOPICS))
def test_practice_marks_own_solution_right_and_systematic_mistakes_wrong(topic: str) -> None:
    """For 50 seeds: the generator's answer is right; each systematic mistake is wrong."""
    seen: set[str] = set()
    for seed in SEEDS:
        exercise = practice.generate(topic, seed=seed)
        feedback = exercise.check(exercise.answer)
        assert feedback.correct, (seed, exercise.function, exercise.answer, feedback.message)
        mistakes = exercise.mistakes
        # Every question with two or more paths has all three kinds; a single-path one
        # (a sigmoid neuron with square loss) has no term to forget.
        expected_kinds = KINDS if len(exercise._paths) > 1 else KINDS - {"forgotten term"}
        assert set(mistakes) == expected_kinds, (seed, exercise.function)
        for kind, wrong in mistakes.items():
            marked = exercise.check(wrong)
            assert marked.readable and not marked.correct, (seed, kind, wrong)
            assert marked.diagnosis, (seed, kind, wrong, marked.message)
        seen |= set(mistakes)
    assert seen == KINDS


def test_practice_same_seed_gives_the_same_exercise() -> None:
    """Topic, seed and difficulty fix the exercise; other seeds give other exercises."""
    for topic in practice.TOPICS:
        for difficulty in (1, 2, 3):
            first = practice.generate(topic, seed=12, difficulty=difficulty)
            again = practice.generate(topic, seed=12, difficulty=difficulty)
            assert (first.prompt, first.answer) == (again.prompt, again.answer)
        prompts = {practice.generate(topic, seed=seed).prompt for seed in range(8)}
        assert len(prompts) >= 3, topic


def test_practice_accepts_the_handouts_answer_written_as_on_paper() -> None:
    """Assignment 3(a): eqs. (3)–(5) as printed, with implicit products and ^, are right."""
    f = "cos(x**2*y) + x**2*sqrt(z)"
    by_x = practice.exercise_for(f, "x")
    for answer in (
        "-2xy sin(x^2 y) + 2x sqrt(z)",
        "2*x*y*(-sin(x**2*y)) + 2*x*sqrt(z)",
        "−2xy·sin(x²y) + 2x√z",
        "2x(sqrt z - y sin(x^2 y))",
    ):
        assert by_x.check(answer).correct, answer
    assert practice.exercise_for(f, "y").check("-x^2 sin(x^2 y)").correct
    assert practice.exercise_for(f, "z").check("x^2/(2 sqrt(z))").correct
    assert practice.exercise_for(f, "z").check("1/(2√z) x²").correct
    assert not by_x.check("2*x*y*cos(x**2*y)").correct


def test_practice_diagnoses_which_part_is_wrong() -> None:
    """A missing 2x names the edge x → x², a left-out path names it, a sign flip its path."""
    exercise = practice.exercise_for("cos(x**2*y) + x**2*sqrt(z)", "x")
    missing = exercise.check("-y sin(x^2 y) + 2x sqrt z")
    assert "chain factor" in str(missing.diagnosis) and "x → x²" in str(missing.diagnosis)
    assert "2·x" in str(missing.diagnosis)
    one_path = exercise.check("2x sqrt z")
    assert "leaves out a term: the path x → x² → x²·y → cos(x²·y) → f" in str(one_path.diagnosis)
    product = practice.exercise_for("x*sin(x*y)", "x")
    assert product.check("sin(x y)").correct is False
    assert "leaves out a product-rule term" in str(product.check("sin(x y)").diagnosis)
    sign = exercise.check("2xy sin(x^2 y) + 2x sqrt z")
    assert "wrong sign" in str(sign.diagnosis) and "cos(x²·y)" in str(sign.diagnosis)
    assert "wrong sign overall" in str(exercise.check("2xy sin(x^2 y) - 2x sqrt z").diagnosis)


def test_practice_checks_the_handouts_closed_forms_for_neurons_and_layers() -> None:
    """Eq. (8) for a log-loss neuron, eq. (11) for a layer, (9)+(11) for the Titanic MLP."""
    checked = {"sigmoid-neuron": 0, "mlp-layer": 0, "backprop": 0}
    for seed in range(12):
        neuron = practice.generate("sigmoid-neuron", seed=seed, difficulty=3)
        weight = neuron.asked.removeprefix("∂L/∂")
        x = "1" if weight == "w0" else f"x{weight[1:]}"
        assert neuron.check(f"-{x} y (1 - σ(s)) + {x} (1 - y) σ(s)").correct
        assert not neuron.check(f"{x} y (1 - σ(s)) - {x} (1 - y) σ(s)").correct
        checked["sigmoid-neuron"] += 1

        layer = practice.generate("mlp-layer", seed=seed)
        j = layer.asked.removeprefix("∂l/∂x")
        k = next(name for name in layer.variables if name.startswith("w"))[1]
        units = sum(name.startswith("g") for name in layer.variables)
        eq_11 = " + ".join(f"w{k}_{i}{j} σ(s{i})(1 - σ(s{i})) g{i}" for i in range(1, units + 1))
        assert layer.check(eq_11).correct, (seed, eq_11)
        checked["mlp-layer"] += 1

        mlp = practice.generate("backprop", seed=seed, difficulty=2)
        target = mlp.asked.removeprefix("∂l/∂w1_")
        i, j = target
        x = "1" if j == "3" else f"x{j}"
        assert mlp.check(f"{x} h{i}(1 - h{i}) w2_1{i} (z - y)").correct, (seed, target)
        checked["backprop"] += 1
    assert min(checked.values()) == 12


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("-2xy sin(x^2 y)", "-2*x*y*sin(x**2*y)"),
        ("2*x*y*cos(x**2*y)", "2*x*y*cos(x**2*y)"),
        ("x^2/(2 sqrt z)", "x**2/(2*sqrt(z))"),
        ("e^(-x) y", "exp(-x)*y"),
        ("(x + 1)(y - 1)", "(x + 1)*(y - 1)"),
        ("σ(x)(1 - σ(x))", "sigmoid(x)*(1 - sigmoid(x))"),
        ("ln(x) z", "log(x)*z"),
    ],
)
def test_read_answer_accepts_implicit_products_and_powers(written: str, read: str) -> None:
    """Juxtaposed names, ^, σ, √, ln and e^ are read as the strict syntax would write them."""
    assert format_expr(practice.read_answer(written, ["x", "y", "z"]), unicode=False) == read


def test_read_answer_reads_the_handouts_weight_names() -> None:
    """w_{1,2}^{(1)}, w_0 and x_1 are the exercise's w1_12, w0 and x1."""
    tree = practice.read_answer("w_{1,2}^{(1)} x_2 + w_0 x_1", ["w1_12", "x1", "x2", "w0"])
    assert format_expr(tree, unicode=False) == "w1_12*x2 + w0*x1"


HOSTILE = [
    "__import__('os').system('echo owned')",
    "x.__class__.__bases__",
    "eval('1+1')",
    "open('/etc/passwd').read()",
    "lambda: 1",
    "x; import os",
    "[c for c in ()]",
    "globals()",
    "x**99999999",
    "(" * 300 + "x" + ")" * 300,
    "x + " * 400 + "x",
    "sin x^2",
    "",
]


def test_practice_refuses_hostile_answers_without_evaluating_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Code, attribute access, huge powers and floods are refused with a hint; Python's
    eval and exec are never called, and nothing is compiled beyond a syntax tree."""
    exercise = practice.generate("chain-rule", seed=1)

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an answer reached eval or exec")

    compile_ = builtins.compile

    def parse_only(source: Any, filename: Any, mode: str, flags: int = 0, **kwargs: Any) -> Any:
        # chainrule's parser reads the syntax tree with ast.parse, which compiles to an
        # AST only; compiling to code that could run is what must never happen.
        if not flags & ast.PyCF_ONLY_AST:
            raise AssertionError("an answer was compiled to code")
        return compile_(source, filename, mode, flags, **kwargs)

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", parse_only)
    for text in HOSTILE:
        feedback = exercise.check(text)
        assert not feedback.correct and not feedback.readable, text
        assert feedback.message and "\n" not in feedback.message, text


def test_practice_solution_shows_diagram_paths_and_closed_form(tmp_path: Path) -> None:
    """The worked solution has every edge's partial, the path sum agreeing with backprop,
    and the closed form of eq. (3)."""
    solution = practice.exercise_for("cos(x**2*y) + x**2*sqrt(z)", "x").solution()
    assert "x → x²" in solution.text and "2·x" in solution.text and "−sin(x²·y)" in solution.text
    assert solution.explanation.path_count == 2 and solution.explanation.agrees
    x, y, z = sympy.symbols("x y z", real=True)
    eq_3 = -2 * x * y * sympy.sin(x**2 * y) + 2 * x * sympy.sqrt(z)
    assert sympy.simplify(solution.closed_form - eq_3) == 0
    assert sum(edge.highlighted for edge in solution.diagram.edges) == 6
    assert solution.diagram.save(tmp_path / "f.svg").read_text(encoding="utf-8").startswith("<")


def test_practice_adjoint_of_a_shared_node() -> None:
    """∂f/∂u for u = x² sums its two outgoing edges; u may be used in the answer."""
    exercise = practice.exercise_for("cos(x**2*y) + x**2*sqrt(z)", "x**2")
    assert exercise.check("-y sin(u y) + sqrt z").correct
    assert exercise.check("-y sin(x^2 y) + √z").correct
    assert not exercise.check("-y sin(x^2 y)").correct
    solution = exercise.solution()
    assert solution.explanation.path_count == 2 and solution.explanation.agrees


def test_generate_refuses_unknown_topics_and_difficulties() -> None:
    """A wrong topic, difficulty or seed is a ValueError that lists what is allowed."""
    with pytest.raises(ValueError, match="chain-rule, dataflow"):
        practice.generate("calculus")
    with pytest.raises(ValueError, match="1, 2 or 3"):
        practice.generate("chain-rule", difficulty=4)
    with pytest.raises(ValueError, match="seed"):
        practice.generate("chain-rule", seed=-1)


def test_cli_practice_marks_an_answer(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--answer exits 0 when right, 1 with the worked solution when wrong, and --diagram
    writes the diagram."""
    exercise = practice.generate("dataflow", seed=4)
    assert (
        main(["practice", "--topic", "dataflow", "--seed", "4", "--answer", exercise.answer]) == 0
    )
    out = capsys.readouterr().out
    assert exercise.function in out and "Right:" in out
    diagram = tmp_path / "solution.svg"
    status = main(
        ["practice", "--topic", "dataflow", "--seed", "4", "--answer=-u", "--diagram", str(diagram)]
    )
    out = capsys.readouterr().out
    assert status == 1 and "Not quite" in out and "Worked solution" in out
    assert diagram.read_text(encoding="utf-8").startswith("<")


def test_cli_practice_refuses_hostile_answer_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An unreadable --answer exits 2 with one line on stderr and no traceback."""
    status = main(["practice", "--seed", "1", "--answer", "__import__('os').system('ls')"])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.err.count("\n") == 1 and "unknown name '__import__'" in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_cli_practice_interactive_session(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answers come from stdin: a hint for unreadable text, a mark, then the solution."""
    exercise = practice.generate("chain-rule", seed=7)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"x.y\n0\n{exercise.answer}\n"))
    assert main(["practice", "--seed", "7"]) == 0
    out = capsys.readouterr().out
    assert "unexpected character '.'" in out
    assert out.count("Not quite") == 1 and "Right:" in out and "Worked solution" in out
    monkeypatch.setattr("sys.stdin", io.StringIO("solution\n"))
    assert main(["practice", "--seed", "7"]) == 1
    assert "Worked solution" in capsys.readouterr().out
