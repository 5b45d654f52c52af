"""The notebooks in docs/notebooks run top to bottom, are stored without outputs, and keep
every solution after its exercise, marked and folded."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "docs" / "notebooks"
NAMES = ["titanic_companion", "quiz_backpropagation", "assignment_backpropagation"]


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def test_notebooks_folder_holds_exactly_the_tested_notebooks() -> None:
    """No notebook in docs/notebooks escapes these tests."""
    assert sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_without_outputs(name: str) -> None:
    """Outputs and execution counts are stripped before a notebook is committed."""
    notebook = _read(name)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    assert "widgets" not in notebook.metadata


@pytest.mark.parametrize("name", NAMES[1:])
def test_notebook_puts_each_solution_after_its_exercise_marked_and_folded(name: str) -> None:
    """Every exercise section has exercise cells first, then solution cells tagged
    'solution' whose code is folded (source_hidden) under a collapsed heading."""
    sections: list[list[nbformat.NotebookNode]] = []
    for cell in _read(name).cells:
        if "exercise" in cell.metadata.get("tags", []) and cell.cell_type == "markdown":
            sections.append([])
        if sections:
            sections[-1].append(cell)
    assert len(sections) >= 3
    for section in sections:
        tags = [
            "solution" if "solution" in c.metadata.get("tags", []) else "exercise" for c in section
        ]
        first_solution = tags.index("solution")
        assert first_solution >= 2 and set(tags[first_solution:]) == {"solution"}, tags
        assert section[first_solution].metadata.get("jp-MarkdownHeadingCollapsed") is True
        assert "Solution" in section[first_solution].source
        for cell in section[first_solution:]:
            if cell.cell_type == "code":
                assert cell.metadata["jupyter"]["source_hidden"] is True


@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes_top_to_bottom(name: str) -> None:
    """The notebook runs in a kernel of this Python without errors or warnings."""
    notebook = _read(name)
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", cell.source[:80]
            if output.output_type == "stream":
                assert output.name == "stdout", f"{cell.source[:80]}\n{output.text}"
    images = sum(
        "image/png" in output.get("data", {}) or "image/svg+xml" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )
    assert images >= 3, "the notebook shows its diagrams and plots inline"
