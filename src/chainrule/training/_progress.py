"""The one progress bar of chainrule's training: on a terminal, or in a Jupyter notebook."""

from __future__ import annotations

import importlib.util
import sys
from types import TracebackType
from typing import Any

__all__ = ["Progress"]


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def _in_notebook() -> bool:
    """Running in a Jupyter kernel (checked without importing IPython)."""
    shell_module = sys.modules.get("IPython")
    if shell_module is None:
        return False
    get_ipython = getattr(shell_module, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    return type(shell).__name__ == "ZMQInteractiveShell"


class Progress:
    """A tqdm bar counting steps (epochs, fits), or nothing at all.

    The bar is drawn when ``enabled`` and tqdm is installed (the ``progress`` extra)
    and either standard error is a terminal or the code runs in a Jupyter notebook,
    where ``tqdm.auto`` draws a notebook widget (with ipywidgets installed; a text bar
    without it). Otherwise every method does nothing,
    so callers never check.

    Args:
        total: the number of steps.
        unit: what a step is (``"epoch"``).
        enabled: False never draws.
        description: a label before the bar.
        leave: keep the finished bar on screen.
    """

    def __init__(
        self,
        total: int,
        unit: str,
        *,
        enabled: bool = True,
        description: str | None = None,
        leave: bool = True,
    ) -> None:
        self._bar: Any = None
        if not enabled:
            return
        notebook = _in_notebook()
        if not (notebook or _stderr_is_terminal()):
            return
        # The notebook widget needs ipywidgets; without it tqdm.auto would warn and fall
        # back to text, so the text bar is chosen directly.
        widget = notebook and importlib.util.find_spec("ipywidgets") is not None
        try:
            if widget:
                from tqdm.auto import tqdm
            else:
                from tqdm import tqdm
        except ImportError:
            return  # progress is an optional extra: run silently without it
        self._bar = tqdm(
            total=total,
            unit=unit,
            desc=description,
            leave=leave,
            file=None if widget else sys.stderr,
            dynamic_ncols=True,
        )

    @property
    def shown(self) -> bool:
        """Whether a bar is drawn."""
        return self._bar is not None

    def update(self, text: str | None = None) -> None:
        """One step done; ``text`` (such as the current loss) is shown beside the bar."""
        if self._bar is None:
            return
        if text is not None:
            self._bar.set_postfix_str(text, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        """Finish the bar (idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
