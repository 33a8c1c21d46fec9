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


def test_plan_commands_say_what_the_readme_says(capsys: pytest.CaptureFixture[str]) -> None:
    """Each `superneurons plan` line of the README runs; a `# fits: peak X` comment is
    its verdict and peak, and a plan without one is described as not fitting."""
    import json
    import shlex

    import superneurons as sn
    from superneurons.cli import main

    text = README.read_text()
    lines = [ln for ln in text.splitlines() if ln.startswith("superneurons plan ")]
    assert len(lines) >= 2
    for line in lines:
        command, _, comment = line.partition("#")
        argv = [a for a in shlex.split(command)[1:] if a not in ("--json", "--no-steps")]
        if "--plot" in argv:
            i = argv.index("--plot")
            del argv[i : i + 2]
        assert main([*argv, "--json", "--no-steps"]) == 0
        d = json.loads(capsys.readouterr().out)
        if comment.strip().startswith("fits"):
            assert d["fits"] is True
            assert f"peak {sn.format_bytes(d['peak_bytes'])}" in comment
        else:
            assert d["fits"] is False
            assert '`"fits": false`' in text
