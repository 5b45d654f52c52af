"""Plain-text tables for the command line's reports."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    title: str | None = None,
    align: str | None = None,
) -> str:
    """Lay out ``rows`` under ``headers`` in aligned columns.

    Args:
        headers: one title per column.
        rows: the cells; each is shown with ``str()``.
        title: an optional line above the table.
        align: one letter per column, ``"l"`` (left) or ``"r"`` (right); by default the
            first column is left-aligned and the others right-aligned (numbers).

    Returns:
        The table as lines joined by newlines (no trailing newline).
    """
    texts = [[str(cell) for cell in row] for row in rows]
    for row in texts:
        if len(row) != len(headers):
            raise ValueError(f"a row has {len(row)} cells for {len(headers)} columns: {row}")
    alignment = align or "l" + "r" * (len(headers) - 1)
    if len(alignment) != len(headers):
        raise ValueError(f"align has {len(alignment)} letters for {len(headers)} columns")
    widths = [
        max([len(header)] + [len(row[column]) for row in texts])
        for column, header in enumerate(headers)
    ]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(width) if side == "l" else cell.rjust(width)
            for cell, width, side in zip(cells, widths, alignment)
        ]
        return "  ".join(padded).rstrip()

    out = [title] if title else []
    out.append(line(list(headers)))
    out.append("  ".join("-" * width for width in widths))
    out.extend(line(row) for row in texts)
    return "\n".join(out)


def percent(fraction: float, digits: int = 1) -> str:
    """``0.7801`` -> ``"78.0 %"``."""
    return f"{100 * fraction:.{digits}f} %"
