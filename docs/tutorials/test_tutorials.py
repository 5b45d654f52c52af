"""Every tutorial runs to the end, which means every handout answer it asserts holds, and
writes exactly its figures; the index page shows figures that exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

# Per script: the exercise headings it must print and the figures it must write.
TUTORIALS: dict[str, tuple[list[str], list[str]]] = {
    "quiz_1_sigmoid_neuron.py": (
        ["Quiz 1.1", "Quiz 1.2", "Quiz 1.3", "Quiz 1.4"],
        ["quiz_1_1_graph.svg", "quiz_1_1_graph_ops.svg", "quiz_1_4_gradient_descent.svg"],
    ),
    "quiz_2_four_layer_network.py": (
        ["Quiz 2.1", "Quiz 2.2", "Quiz 2.3", "Quiz 2.4", "Quiz 2.5", "Quiz 2.6", "Quiz 2.7"],
        ["quiz_2_1_network.svg", "quiz_2_1_dataflow.svg", "quiz_2_7_paths_vs_backprop.svg"],
    ),
    "assignment_1_mlp_weights.py": (
        ["Assignment 1(a)", "Assignment 1(b)"],
        [
            "assignment_1a_weights.svg",
            "assignment_1b_logistic_1.svg",
            "assignment_1b_logistic_2.svg",
            "assignment_1b_logistic_3.svg",
        ],
    ),
    "assignment_2_hand_weights.py": (
        ["Assignment 2(a)", "Assignment 2(b)", "Assignment 2(c)", "Titanic passengers"],
        ["assignment_2_network.svg", "assignment_2_units_by_age.svg"],
    ),
    "assignment_3_dataflow.py": (
        ["Assignment 3(a)", "equations (3)–(5)", "sum over paths", "Assignment 3(b)"],
        ["assignment_3a_dataflow.svg", "assignment_3a_formulas.svg", "assignment_3b_dataflow.svg"],
    ),
    "assignment_4_logistic_regression.py": (
        ["Figure 1", "Assignment 4(a)", "Assignment 4(b)"],
        ["assignment_4_figure_1.svg", "assignment_4a_log_loss.svg"],
    ),
    "assignment_5_backprop.py": (
        ["Assignment 5 ", "Assignment 5(c)", "Assignment 5(a), (b)"],
        ["assignment_5_titanic_dataflow.svg", "assignment_5c_output_loss.svg"],
    ),
    "going_beyond_numerical_check.py": (
        ["backprop in numpy", "against chainrule's backprop", "against the numerical gradient"],
        ["going_beyond_gradient_check.svg"],
    ),
}


def _run(script: str, out: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "MPLBACKEND": "Agg", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-W", "error", str(HERE / script), "--out", str(out)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=out,
        env=environment,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("script", sorted(TUTORIALS))
def test_tutorial_confirms_its_answers_and_writes_its_figures(script: str, tmp_path: Path) -> None:
    """The script exits cleanly, prints a heading per exercise and writes well-formed SVGs."""
    headings, figures = TUTORIALS[script]
    result = _run(script, tmp_path)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr}"
    assert result.stderr == ""
    for heading in headings:
        assert heading in result.stdout, f"{script} prints no heading with {heading!r}"
    assert result.stdout.count("✓") >= 2 * len(headings)
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == sorted(figures)
    for name in figures:
        root = ElementTree.parse(tmp_path / name).getroot()
        assert root.tag.endswith("svg"), name


def test_tutorial_fails_loudly_when_an_answer_is_wrong(tmp_path: Path) -> None:
    """A check that does not hold makes a script exit non-zero, naming the exercise's values."""
    script = tmp_path / "wrong.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "from _tutorial import check\n"
        "check('sigma(0)', 0.5, 0.25)\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode != 0
    assert "sigma(0): chainrule gives" in result.stderr


def test_every_tutorial_script_is_run_by_the_tests() -> None:
    """No script in docs/tutorials escapes the test above."""
    scripts = {path.name for path in HERE.glob("*.py") if not path.name.startswith(("test_", "_"))}
    assert scripts == set(TUTORIALS)


def test_index_page_lists_every_script_and_shows_committed_figures() -> None:
    """README.md names every script; the figures it embeds exist, are made by a script and are
    exactly the ones figures/.gitignore keeps."""
    index = (HERE / "README.md").read_text(encoding="utf-8")
    for script in TUTORIALS:
        assert script in index, f"README.md does not list {script}"
    embedded = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", index)
    assert embedded, "README.md embeds no figure"
    made = {figure for _, figures in TUTORIALS.values() for figure in figures}
    for path in embedded:
        assert (HERE / path).is_file(), f"{path} is embedded but not committed"
        assert Path(path).name in made, f"{path} is not written by any tutorial"
        ElementTree.parse(HERE / path)
    ignore_rules = (HERE / "figures" / ".gitignore").read_text(encoding="utf-8").splitlines()
    kept = {rule[1:] for rule in ignore_rules if rule.startswith("!") and rule != "!.gitignore"}
    assert kept == {Path(path).name for path in embedded}, "figures/.gitignore keeps other files"
