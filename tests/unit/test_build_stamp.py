"""scripts/_build_stamp.py: `scripts/_venv.sh` skips `pip install` only when nothing
that the install reads has changed."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "_build_stamp.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_build_stamp", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bs = load()


def checkout(root: Path, git: bool) -> Path:
    for name, text in {
        "csrc/core/a.cpp": "int a;\n",
        "CMakeLists.txt": "project(x)\n",
        "setup.py": "",
        "pyproject.toml": "[project]\n",
        "superneurons/__init__.py": "",
        "nas/__init__.py": "",
        "README.md": "readme\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        (root / ".gitignore").write_text("build/\n")
    return root


@pytest.fixture(params=["git", "plain"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "git" and shutil.which("git") is None:
        pytest.skip("git is not installed")
    return checkout(tmp_path / "repo", git=request.param == "git")


def test_unchanged_checkout_is_current(root: Path, tmp_path: Path) -> None:
    stamp = tmp_path / "stamp.json"
    assert not bs.is_current(stamp, root, "")
    bs.write(stamp, root, "[test]")
    assert bs.is_current(stamp, root, "")
    assert bs.is_current(stamp, root, "[test]")
    assert not bs.is_current(stamp, root, "[test,docs]")  # an extra never installed


@pytest.mark.parametrize(
    "change",
    [
        "csrc/core/a.cpp",
        "CMakeLists.txt",
        "setup.py",
        "pyproject.toml",
        "superneurons/__init__.py",
        "nas/__init__.py",
        "csrc/core/new.h",  # a new, untracked source file
    ],
)
def test_any_source_change_means_a_rebuild(root: Path, tmp_path: Path, change: str) -> None:
    stamp = tmp_path / "stamp.json"
    bs.write(stamp, root, "")
    with open(root / change, "a") as f:
        f.write("// changed\n")
    assert not bs.is_current(stamp, root, "")


def test_build_outputs_and_docs_do_not_count(root: Path, tmp_path: Path) -> None:
    stamp = tmp_path / "stamp.json"
    bs.write(stamp, root, "")
    (root / "README.md").write_text("edited\n")
    (root / "superneurons" / "__pycache__").mkdir()
    (root / "superneurons" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (root / "superneurons" / "_C.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\0")
    (root / "build").mkdir()
    (root / "build" / "out.o").write_bytes(b"\0")
    assert bs.is_current(stamp, root, "")


def test_build_environment_counts(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stamp = tmp_path / "stamp.json"
    monkeypatch.delenv("SUPERNEURONS_CUDA", raising=False)
    bs.write(stamp, root, "")
    monkeypatch.setenv("SUPERNEURONS_CUDA", "OFF")
    assert not bs.is_current(stamp, root, "")


def test_corrupt_stamp_means_a_rebuild(root: Path, tmp_path: Path) -> None:
    stamp = tmp_path / "stamp.json"
    stamp.write_text("{not json")
    assert not bs.is_current(stamp, root, "")
    stamp.write_text("[]")
    assert not bs.is_current(stamp, root, "")


def test_command_line(root: Path, tmp_path: Path) -> None:
    stamp = tmp_path / "stamp.json"

    def run(mode: str) -> int:
        args = [sys.executable, str(SCRIPT), mode, str(stamp), str(root), "[test]"]
        return subprocess.run(args, check=False).returncode

    assert run("check") == 1
    assert run("write") == 0
    assert run("check") == 0
