"""The README's Python examples run as written (with a smaller workload)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_tour_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = blocks()[0]
    small = code.replace("n=2000", "n=64").replace("epochs=3", "epochs=1")
    small = small.replace('checkpoint="run.ckpt")', 'checkpoint="run.ckpt", progress=False)')
    assert small != code
    scope: dict[str, object] = {}
    exec(compile(small, "README.md", "exec"), scope)
    assert (tmp_path / "run.ckpt").exists()


def test_plan_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile("import superneurons as sn\n" + blocks()[1], "README.md", "exec"), {})
    assert (tmp_path / "mem.png").exists()
