"""The README's Python snippets run as written (the torch one only where torch is importable)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_snippets():
    assert len(SNIPPETS) >= 2


@pytest.mark.parametrize("i", range(len(SNIPPETS)))
def test_snippet_runs(i, tmp_path, monkeypatch):
    code = SNIPPETS[i]
    if "import torch" in code:
        pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)  # snippets may write files
    exec(compile(code, f"README snippet {i}", "exec"), {})
