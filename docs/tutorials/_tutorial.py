"""What every tutorial script shares: its command line, headings, checks and figure files.

Each tutorial is a plain script (``python docs/tutorials/<name>.py [--out DIR]``). It
prints one heading per handout exercise, computes the exercise's answer with chainrule,
compares it with the handout's stated value or closed form through :func:`check` (which
raises ``AssertionError`` on a mismatch, so a script that finishes has confirmed every
answer) and writes its figures into ``--out`` (by default ``docs/tutorials/figures/``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.explanations.diagram import Diagram, DiagramEdge, DiagramNode

FIGURES = Path(__file__).resolve().parent / "figures"


def output_folder(description: str) -> Path:
    """Parse the script's command line and return the folder for its figures (created).

    Args:
        description: the script's one-line summary, shown by ``--help``.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--out",
        type=Path,
        default=FIGURES,
        help=f"folder for the figures (default: {FIGURES})",
    )
    folder: Path = parser.parse_args().out
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def heading(title: str) -> None:
    """Print an exercise's heading, e.g. ``Quiz 1.2 — the chain rule for ∂f/∂w_j``."""
    print()
    print(title)
    print("=" * len(title))


def show(text: Any) -> None:
    """Print a report (an explanation, a table) indented under the current heading."""
    for line in str(text).splitlines():
        print(f"    {line}" if line else "")


def check(
    what: str,
    computed: Any,
    expected: Any,
    *,
    rtol: float = 1e-9,
    atol: float = 1e-12,
) -> None:
    """Assert that chainrule's ``computed`` equals the handout's ``expected`` and say so.

    Args:
        what: what is compared, in the handout's words.
        computed: the number or array chainrule produced.
        expected: the handout's value or closed form, evaluated independently.
        rtol, atol: the tolerance of :func:`numpy.allclose`.

    Raises:
        AssertionError: naming ``what`` and both values, if they differ.
    """
    got = np.asarray(computed, dtype=float)
    want = np.asarray(expected, dtype=float)
    if got.shape != want.shape or not np.allclose(got, want, rtol=rtol, atol=atol):
        raise AssertionError(f"{what}: chainrule gives {got!r}, the handout says {want!r}")
    print(f"  ✓ {what}: {_brief(got)}")


def check_printed(what: str, computed: float, handout: str) -> None:
    """Assert that ``computed``, rounded as the handout prints it, reads ``handout``.

    Args:
        what: what is compared.
        computed: chainrule's number.
        handout: the handout's printed number (``"0.0067"``): its decimals set the rounding.
    """
    decimals = len(handout.split(".")[1]) if "." in handout else 0
    printed = f"{computed:.{decimals}f}"
    if printed != handout:
        raise AssertionError(f"{what}: chainrule gives {computed!r} = {printed}, handout {handout}")
    print(f"  ✓ {what}: {computed:.6g} prints as {printed}, as in the handout")


def check_that(what: str, condition: bool, detail: str = "") -> None:
    """Assert a yes/no fact (a count, an ordering) and say so.

    Args:
        what: the fact, stated positively.
        condition: whether it holds.
        detail: numbers to show beside it.
    """
    if not condition:
        raise AssertionError(f"{what}: does not hold {detail}".rstrip())
    print(f"  ✓ {what}{f' ({detail})' if detail else ''}")


def fmt(values: Any, digits: int = 4) -> str:
    """Numbers as ``(0.5, −1, 2)``, rounded to ``digits`` significant digits."""
    array = np.atleast_1d(np.asarray(values, dtype=float)).ravel()
    return "(" + ", ".join(f"{v:.{digits}g}".replace("-", "−") for v in array) + ")"


def _brief(array: np.ndarray) -> str:
    if array.size == 1:
        return f"{float(array.ravel()[0]):.6g}"
    if array.size <= 6:
        return "[" + ", ".join(f"{float(v):.4g}" for v in array.ravel()) + "]"
    return f"all {array.size} entries agree"


def save(figure: Any, folder: Path, name: str, title: str | None = None) -> Path:
    """Write a chainrule diagram or a matplotlib figure to ``folder/name``, atomically.

    Args:
        figure: a :class:`chainrule.explanations.Diagram` (``.save``) or a matplotlib
            ``Figure``.
        folder: the output folder.
        name: the file name; its suffix picks the format (``.svg`` for the index page).
        title: a title over all of a matplotlib figure's panels.
    """
    path = folder / name
    if hasattr(figure, "savefig"):
        # matplotlib stamps SVGs with the date; without it a regenerated figure only
        # changes when the drawing does.
        metadata = {"Date": None} if path.suffix == ".svg" else None
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=path.suffix)
        os.close(handle)
        # tight_layout rather than the constrained layout: the latter's result depends on
        # Python's hash seed, so the same figure would come out with other ids each run.
        if title is not None:
            figure.suptitle(title)
        figure.tight_layout(rect=(0, 0, 1, 0.95) if title is not None else None)
        try:
            figure.savefig(temporary, metadata=metadata, bbox_inches="tight")
            os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes the file private
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
        import matplotlib.pyplot as plt

        plt.close(figure)
    else:
        figure.save(path)
    print(f"  wrote {path}")
    return path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def pyplot() -> Any:
    """matplotlib's pyplot, drawing to files only, with reproducible SVG output."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "chainrule-tutorials"  # stable ids across runs
    plt.rcParams["svg.fonttype"] = "none"  # keep text as text: small, searchable files
    return plt


def sigmoid(s: Any) -> Any:
    """σ(s) = 1/(1 + e^(−s)) in numpy, written out to evaluate the handouts' closed forms."""
    return 1.0 / (1.0 + np.exp(-np.asarray(s, dtype=float)))


def table(rows: Iterable[Iterable[Any]]) -> str:
    """Rows of cells as an aligned text table (first row: the column names)."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[c]) for row in cells) for c in range(len(cells[0]))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def redraw(
    diagram: Diagram,
    *,
    nodes: Sequence[DiagramNode] | None = None,
    edges: Sequence[DiagramEdge] | None = None,
    caption: str | None = None,
) -> Diagram:
    """The same drawing with some nodes, edges or the caption replaced.

    A diagram is plain data (:class:`~chainrule.explanations.diagram.DiagramNode` and
    ``DiagramEdge`` records), so a tutorial can highlight part of a network or show
    weight names without values, and keep the drawing's layout settings.

    Args:
        diagram: what :func:`chainrule.draw` or :func:`chainrule.draw_network` returned.
        nodes, edges: replacements (``dataclasses.replace`` of the originals), or None.
        caption: a new caption, or None to keep the old one.
    """
    return Diagram(
        diagram.nodes if nodes is None else nodes,
        diagram.edges if edges is None else edges,
        rankdir=diagram.rankdir,
        caption=diagram.caption if caption is None else caption,
        engine=diagram.engine,
        balance=diagram.balance,
        node_gap=diagram.node_gap,
        rank_gaps=diagram.rank_gaps,
    )


def log_loss_node(output: Any, y: float) -> Any:
    """The handouts' log loss l = −y·ln z − (1 − y)·ln(1 − z) of ``output`` = z, as graph nodes.

    The label y and its complement 1 − y are data, like the input x: two labelled leaves
    that record no gradient. (Computed from a constant y, 1 − y would be drawn as a bare
    number; drawn as leaves, they sit next to the nodes they feed.)

    Args:
        output: z, a chainrule Value or one-element Tensor (the model's probability).
        y: the label, 0 or 1.
    """
    import chainrule as cr

    if isinstance(output, cr.Value):
        label, complement = cr.Value(y, "y"), cr.Value(1.0 - y, "1 − y")
    else:
        label, complement = cr.tensor(float(y), label="y"), cr.tensor(1.0 - y, label="1 − y")
    loss = -(label * cr.log(output) + complement * cr.log(1 - output))
    loss.label = "l"
    return loss
