"""The README's Python examples run as written, so the front page stays true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ```python block of the README, run in order in a fresh folder, succeeds."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile("\n".join(blocks), str(README), "exec"), namespace)  # our own README only
    assert (tmp_path / "f.svg").exists() and (tmp_path / "titanic.safetensors").exists()
    history = namespace["history"]
    assert history.accuracy[-1] == 1.0  # type: ignore[attr-defined]
    assert float(namespace["loss"].data) < 0.05  # type: ignore[attr-defined]
