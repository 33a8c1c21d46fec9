"""Both command lines stop quietly when their reader goes away (`... | head`), and the
`nas` command checks its journal path before a search starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import nas
from nas.cli import main as nas_main


def head_of(command: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """Runs ``command | head -c 100`` and returns the writer's result."""
    writer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
    assert writer.stdout is not None
    writer.stdout.read(100)
    writer.stdout.close()  # the reader goes away with most of the output unread
    _, err = writer.communicate(timeout=120)
    return subprocess.CompletedProcess(command, writer.returncode, b"", err)


def test_superneurons_plan_into_a_closed_pipe(tmp_path: Path) -> None:
    code = "import sys; from superneurons.cli import main; sys.exit(main(sys.argv[1:]))"
    # about 1,800 steps of JSON, far more than a pipe buffer holds
    argv = ["plan", "--depth", "302", "--batch", "2", "--json"]
    done = head_of([sys.executable, "-c", code, *argv], tmp_path)
    assert b"Traceback" not in done.stderr and b"BrokenPipe" not in done.stderr, done.stderr
    assert done.returncode == 1


def test_nas_report_into_a_closed_pipe(tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    f = nas.synthetic("ackley", 2)
    nas.optimize(f, f.space, "random", budget=1000, executor="inline", journal=str(journal))
    code = "import sys; from nas.cli import main; sys.exit(main(sys.argv[1:]))"
    done = head_of([sys.executable, "-c", code, "report", str(journal), "--top", "1000"], tmp_path)
    assert b"Traceback" not in done.stderr and b"BrokenPipe" not in done.stderr, done.stderr
    assert done.returncode == 1


@pytest.mark.parametrize(
    ("journal", "needle"),
    [
        ("missing-dir/run.jsonl", "does not exist"),
        (".", "is a directory"),
        ("existing.jsonl", "nas resume"),
    ],
)
def test_nas_search_checks_its_journal_first(
    journal: str, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "existing.jsonl").write_text('{"event": "start"}\n')
    path = tmp_path / journal
    argv = ["search", "--objective", "ackley", "--dim", "2", "--budget", "3"]
    assert nas_main([*argv, "--executor", "inline", "--journal", str(path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "missing-dir").exists()
