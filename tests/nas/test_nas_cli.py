"""The ``nas`` command line, and a search killed with SIGKILL then resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import nas
from nas.cli import main

ROOT = Path(nas.__file__).resolve().parent.parent


def _results(journal: Path) -> list[dict[str, object]]:
    out = []
    for line in journal.read_text().splitlines():
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            continue
        if ev["event"] == "result":
            out.append(ev)
    return out


def test_search_resume_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "run.jsonl"
    argv = [
        "search",
        "--objective",
        "ackley",
        "--dim",
        "4",
        "--strategy",
        "lamcts",
        "--budget",
        "14",
        "--seed",
        "0",
        "--workers",
        "2",
        "--executor",
        "inline",
        "--journal",
        str(journal),
        "--option",
        "n_init=6",
        "--option",
        "leaf_size=4",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "14 (14 finished, 0 failed)" in out
    head = nas.read_journal(journal)[0]
    assert head["objective"] == "ackley" and head["strategy_options"] == {
        "n_init": 6,
        "leaf_size": 4,
    }
    assert head["maximize"] is False  # synthetic functions are minimized
    assert main(["resume", str(journal), "--budget", "18"]) == 0
    assert "18 (18 finished, 0 failed)" in capsys.readouterr().out
    plot = tmp_path / "best.png"
    assert main(["report", str(journal), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "best value" in out and plot.stat().st_size > 1000
    lines = out.splitlines()
    table = next(i for i, line in enumerate(lines) if line.split()[:2] == ["trial", "value"])
    values = [float(line.split()[1]) for line in lines[table + 1 : table + 6]]
    assert values == sorted(values)


def test_errors_exit_with_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["search", "--objective", "ackley", "--budget", "3"]) == 2
    assert "needs a dimension" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["search", "--objective", "ackley", "--strategy", "nope"])


def test_python_dash_m_nas_works() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "nas", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert "search" in out.stdout and "resume" in out.stdout and "report" in out.stdout


def test_sigkilled_search_resumes_to_the_same_number_of_finished_trials(tmp_path: Path) -> None:
    (tmp_path / "slowobj.py").write_text(
        textwrap.dedent("""
        import time
        import nas
        space = nas.Space({"a": nas.Real(-1, 1), "b": nas.Real(-1, 1)})
        def f(config):
            time.sleep(0.05)
            return config["a"] ** 2 + config["b"] ** 2
    """)
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    journal = tmp_path / "run.jsonl"
    budget = 40
    cmd = [
        sys.executable,
        "-m",
        "nas",
        "search",
        "--objective",
        "slowobj:f",
        "--space",
        "slowobj:space",
        "--strategy",
        "evolution",
        "--option",
        "population=8",
        "--budget",
        str(budget),
        "--workers",
        "2",
        "--minimize",
        "--journal",
        str(journal),
    ]
    log = tmp_path / "search.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=sink, stderr=sink)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if journal.exists() and len(_results(journal)) >= 10:
            break
        assert proc.poll() is None, log.read_text()
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {int(str(e["id"])) for e in _results(journal)}
    assert 10 <= len(done_before) < budget
    out = subprocess.run(
        [sys.executable, "-m", "nas", "resume", str(journal)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    results = _results(journal)
    ids = [int(str(e["id"])) for e in results]
    assert sorted(set(ids)) == list(range(budget))
    assert len(ids) == len(set(ids))  # no finished trial ran twice
    assert all(e["status"] == "ok" for e in results)
    assert f"{budget} ({budget} finished, 0 failed)" in out.stdout


def test_every_option_has_help() -> None:
    from nas.cli import _parser

    parser = _parser()
    subs = next(a for a in parser._actions if a.dest == "command").choices
    assert subs is not None
    for name, sub in subs.items():
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"nas {name} {action.option_strings or action.dest}: no help"


def _suggested(journal: Path) -> list[object]:
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    return [t["config"] for e in events if e["event"] == "suggest" for t in e["trials"]]


def test_cli_ordered_two_workers_warm_start_and_time_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["search", "--objective", "sphere", "--dim", "3", "--strategy", "evolution"]
    base += ["--option", "population=4", "--seed", "5", "--executor", "local"]
    runs = []
    for i in range(2):  # --workers 2 --ordered: one seed, one search, whatever finishes first
        journal = tmp_path / f"ordered{i}.jsonl"
        assert main([*base, "--budget", "12", "--workers", "2", "--ordered",
                     "--journal", str(journal)]) == 0  # fmt: skip
        runs.append(_suggested(journal))
    assert runs[0] == runs[1] and len(runs[0]) == 12
    warm = tmp_path / "warm.jsonl"
    assert main([*base, "--budget", "3", "--warm-start", str(tmp_path / "ordered0.jsonl"),
                 "--journal", str(warm)]) == 0  # fmt: skip
    events = [json.loads(line) for line in warm.read_text().splitlines()]
    assert events[1]["event"] == "warm" and len(events[1]["results"]) == 12
    slow = tmp_path / "slow.jsonl"
    t0 = time.monotonic()
    assert main([*base, "--budget", "100000", "--time-budget", "1", "--journal", str(slow)]) == 0
    assert time.monotonic() - t0 < 10 and 1 <= len(_results(slow)) < 100000
    capsys.readouterr()
