"""``chainrule playground``: backprop you can play with, in the browser.

A local web app over chainrule's public API: a Starlette (ASGI) server in
:mod:`chainrule.playground.server`, one :class:`~chainrule.playground.session.Session`
per browser tab, and a hand-written page (HTML, CSS, JavaScript, no build step and
no network) shipped in ``static/``. Every number on the page is computed here by
chainrule; the page only draws. Needs the ``playground`` extra
(``pip install "chainrule[playground]"``). See docs/playground.md.
"""

from __future__ import annotations

from .data import Dataset as Dataset
from .session import PRESETS as PRESETS
from .session import PlaygroundError as PlaygroundError
from .session import Session as Session

__all__ = ["PRESETS", "Dataset", "PlaygroundError", "Session"]
