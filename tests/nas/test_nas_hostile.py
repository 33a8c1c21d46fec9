"""Hostile objectives and journals: NaN, inf, all-fail, torn lines, two writers, bad lines."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from nas_helpers import always_raises, sphere

import nas
from nas._journal import JournalWriter
from nas.cli import main

SPACE = nas.Space({"a": nas.Real(-1, 1), "b": nas.Real(-1, 1)})
ROOT = Path(nas.__file__).resolve().parent.parent


class NonFiniteAt:
    """sphere, but ``bad`` (NaN, inf or -inf) on the calls listed in ``at``."""

    def __init__(self, bad: float, at: set[int]) -> None:
        self.bad, self.at, self.calls = bad, at, 0

    def __call__(self, config: dict[str, Any]) -> float:
        self.calls += 1
        return self.bad if self.calls - 1 in self.at else sphere(config)


# ----------------------------------------------------------- non-finite results
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("strategy", ["random", "lamcts", "turbo", "evolution"])
def test_nonfinite_results_are_failed_trials(bad: float, strategy: str, tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    f = NonFiniteAt(bad, at={0, 3, 7})
    res = nas.optimize(
        f,
        SPACE,
        strategy,
        budget=12,
        seed=0,
        maximize=False,
        executor="inline",
        journal=journal,
        strategy_options={"n_init": 4} if strategy != "random" and strategy != "evolution" else {},
    )
    failed = [t for t in res.history if t.status == "failed"]
    assert [t.id for t in failed] == [0, 3, 7]
    assert all(t.value is not None and math.isnan(t.value) == math.isnan(bad) for t in failed)
    assert all("non-finite" in (t.error or "") and t.attempts == 1 for t in failed)  # no retry
    ok = [t.value for t in res.history if t.status == "ok"]
    assert res.best_value == min(ok)  # type: ignore[type-var]
    assert res.best_value is not None and math.isfinite(res.best_value)
    # the journal is standard JSON (json.loads rejects NaN / Infinity with this hook)
    for line in journal.read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    results = [e for e in nas.read_journal(journal) if e["event"] == "result"]
    assert [e["nonfinite_value"] for e in results if "nonfinite_value" in e] == [str(bad)] * 3


def test_nonfinite_values_survive_resume_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "run.jsonl"
    first = nas.optimize(
        NonFiniteAt(math.nan, at={0}), SPACE, "random", budget=5, executor="inline",
        journal=journal, maximize=False,
    )  # fmt: skip
    again = nas.resume(journal, sphere, SPACE, budget=7)
    assert math.isnan(again.history[0].value or 0.0) and again.history[0].status == "failed"
    assert again.best_value == min(t.value for t in again.history[1:])  # type: ignore[type-var]
    assert first.best_value is not None and again.best_value <= first.best_value  # type: ignore[operator]
    assert main(["report", str(journal)]) == 0
    assert "(6 finished, 1 failed)" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["random", "lamcts", "mcts", "asha", "bo"])
def test_strategies_take_inf_as_a_failure(name: str) -> None:
    s = nas.make_strategy(
        name, SPACE, seed=0, **({"n_init": 3} if name in ("lamcts", "bo") else {})
    )
    for _ in range(6):
        cfgs = s.suggest(2)
        s.observe([(cfgs[0], math.inf), (cfgs[1], sphere(nas.strip_meta(cfgs[1])))])
    assert not s.pending
    assert np_isfinite_all(s._scores)
    best = s.best()
    assert best is not None and math.isfinite(best[1])


def np_isfinite_all(x: Any) -> bool:
    return all(math.isfinite(float(v)) for v in x)


def test_all_failed_search_raises_and_cli_exits_nonzero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(nas.SearchFailedError, match="all 3 trials failed") as err:
        nas.optimize(always_raises, SPACE, "random", budget=3, executor="inline", retries=0)
    assert err.value.result.n_failed == 3
    with pytest.raises(nas.SearchFailedError, match="objective returned nan"):
        nas.optimize(lambda c: math.nan, SPACE, "random", budget=2, executor="inline")
    argv = [
        "search",
        "--objective",
        "nas_helpers:always_raises",
        "--space",
        "test_nas_hostile:SPACE",
    ]
    code = main([*argv, "--budget", "2", "--executor", "inline", "--retries", "0"])
    assert code == 1
    cap = capsys.readouterr()
    assert "all 2 trials failed" in cap.err and "objective exploded" in cap.err
    assert "(0 finished, 2 failed)" in cap.out


# ------------------------------------------------------------------ torn line
def _search(journal: Path, budget: int = 6) -> nas.Result:
    f = nas.synthetic("sphere", 2)  # reloadable by name on resume
    return nas.optimize(
        f, f.space, "random", budget=budget, seed=1, executor="inline", journal=journal
    )


def test_torn_last_line_is_cut_before_appending(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "run.jsonl"
    _search(journal)
    text = journal.read_text()
    journal.write_text(text + '{"event":"result","id":5,"sta')  # a crash mid-write
    with caplog.at_level(logging.WARNING, logger="nas"):
        res = nas.resume(journal, budget=9)
    assert "dropped a torn last line (29 bytes" in caplog.text
    assert res.n_finished == 9
    events = nas.read_journal(journal)  # every line parses again
    resume_ev = next(e for e in events if e["event"] == "resume")
    assert resume_ev["repaired_bytes"] == 29
    assert journal.read_text().startswith(text)
    assert all(
        line.startswith("{") and line.endswith("}") for line in journal.read_text().splitlines()
    )
    # and it stays usable: report, and a second resume
    assert main(["report", str(journal)]) == 0
    assert nas.resume(journal, budget=11).n_finished == 11
    capsys.readouterr()


def test_a_whole_last_event_without_newline_is_kept(tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    _search(journal)
    journal.write_text(journal.read_text().rstrip("\n"))  # the newline itself was lost
    n_events = len(nas.read_journal(journal))
    res = nas.resume(journal, budget=7)
    assert res.n_finished == 7
    assert len(nas.read_journal(journal)) >= n_events + 3  # resume, suggest, result


# ---------------------------------------------------------------- one writer
def test_second_writer_fails_at_once(tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    _search(journal)
    with JournalWriter(journal, create=False):  # another process resuming it
        with pytest.raises(nas.JournalLockedError, match="in use by another nas"):
            nas.resume(journal, budget=8)
        with pytest.raises(nas.JournalLockedError, match="in use by another nas"):
            _search(journal)
    fresh = tmp_path / "fresh.jsonl"
    with JournalWriter(fresh, create=True):  # a search that just started
        with pytest.raises(nas.JournalLockedError):
            _search(fresh)
        with pytest.raises(nas.JournalLockedError):
            nas.resume(fresh)
    assert nas.resume(journal, budget=8).n_finished == 8  # the lock is released on close
    with pytest.raises(nas.JournalError, match="already exists"):
        _search(journal)


_SLOW = textwrap.dedent("""
    import os
    import time
    import nas
    space = nas.Space({"a": nas.Real(-1, 1), "b": nas.Real(-1, 1)})
    def f(config):
        time.sleep(float(os.environ["SLOW_S"]))
        return config["a"] ** 2 + config["b"] ** 2
""")


def test_two_processes_on_one_journal(tmp_path: Path) -> None:
    (tmp_path / "slowobj.py").write_text(_SLOW)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "SLOW_S": "0.1"}
    journal = tmp_path / "run.jsonl"
    search = [sys.executable, "-m", "nas", "search", "--objective", "slowobj:f", "--space"]
    search += ["slowobj:space", "--strategy", "random", "--budget", "8", "--minimize"]
    search += ["--executor", "inline", "--journal", str(journal)]
    # two searches started together: exactly one writes the journal
    procs = [
        subprocess.Popen(search, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outs = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    loser = next(err for (_, err), p in zip(outs, procs, strict=True) if p.returncode == 2)
    assert "in use by another nas" in loser or "already exists" in loser
    events = nas.read_journal(journal)
    assert [e["event"] for e in events].count("start") == 1
    assert sorted(e["id"] for e in events if e["event"] == "result") == list(range(8))
    # a resume while another resume runs fails at once and re-runs nothing
    resume = [sys.executable, "-m", "nas", "resume", str(journal), "--budget", "14"]
    slow = {**env, "SLOW_S": "0.7"}  # 4 s of trials: the second resume starts meanwhile
    first = subprocess.Popen(resume, env=slow, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60  # until the first one holds the lock and has written
        while len(nas.read_journal(journal)) == len(events) and time.monotonic() < deadline:
            assert first.poll() is None
            time.sleep(0.02)
        second = subprocess.run(resume, env=env, cwd=tmp_path, capture_output=True, text=True)
        assert first.poll() is None, "the first resume ended too soon for this test"
    finally:
        first.communicate(timeout=120)
    assert first.returncode == 0
    assert second.returncode == 2 and "in use by another nas" in second.stderr
    ids = [e["id"] for e in nas.read_journal(journal) if e["event"] == "result"]
    assert sorted(ids) == list(range(14))


# ------------------------------------------------------------ unreadable lines
@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"42", "line 3: not a JSON object"),
        (b"[1, 2]", "line 3: not a JSON object"),
        (b'{"event": "result", "id": 0}', "line 3: result event is missing field 'status'"),
        (b'{"id": 0}', "line 3: unknown event None"),
        (b'{"event": "party"}', "line 3: unknown event 'party'"),
        (b"\xff\xfe garbage", "line 3: not UTF-8 text"),
        (b'{"event": "suggest", "trials"', "line 3: not JSON"),
        (b'{"event": "suggest", "trials": [{"id": 0, "config": {}}], "time": 1}',
         "line 3: trial 0 was suggested twice"),
        (b'{"event": "suggest", "trials": [7], "time": 1}', "line 3: suggest entry 7"),
        (b'{"event":"result","id":99,"status":"ok","value":1,"fidelity":null,"attempts":1,'
         b'"started_at":0,"finished_at":1,"error":null}', "line 3: result for trial 99"),
        (b'{"event":"result","id":0,"status":"ok","value":null,"fidelity":null,"attempts":1,'
         b'"started_at":0,"finished_at":1,"error":null}', "line 3: ok result needs a finite"),
        (b'{"event":"result","id":0,"status":"ok","value":"1","fidelity":null,"attempts":1,'
         b'"started_at":0,"finished_at":1,"error":null}',
         "line 3: result event field 'value' must be int or float or null"),
        (b'{"event":"retry","id":true}', "line 3: retry event field 'id' must be int"),
    ],
)  # fmt: skip
def test_malformed_lines_give_a_typed_error_naming_file_and_line(
    line: bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.jsonl"
    _search(good, budget=3)
    lines = good.read_bytes().splitlines(keepends=True)  # start, suggest (id 0), result, ...
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join([*lines[:2], line + b"\n", *lines[2:]]))
    with pytest.raises(nas.JournalError, match=f"journal {bad}, {message}") as err:
        nas.read_journal(bad)
    assert err.value.line == 3 and err.value.path == str(bad)
    with pytest.raises(nas.JournalError, match="line 3"):
        nas.resume(bad)
    assert main(["report", str(bad)]) == 2
    assert f"journal {bad}, line 3" in capsys.readouterr().err


def test_missing_header_and_bad_header(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"event": "suggest", "trials": [], "time": 0}\n')
    with pytest.raises(nas.JournalError, match="line 1: missing 'start' header"):
        nas.read_journal(path)
    path.write_text("")
    with pytest.raises(nas.JournalError, match="missing 'start' header"):
        nas.read_journal(path)
    _search(tmp_path / "ok.jsonl")
    head = json.loads((tmp_path / "ok.jsonl").read_text().splitlines()[0])
    del head["budget"]
    path.write_text(json.dumps(head) + "\n")
    with pytest.raises(nas.JournalError, match="line 1: start event is missing field 'budget'"):
        nas.read_journal(path)
    with pytest.raises(nas.JournalError, match="does not exist"):
        nas.resume(tmp_path / "missing.jsonl")


def test_cli_imports_no_heavy_modules() -> None:
    """``nas --help`` stays fast: SciPy, scikit-learn, Dask and tqdm load only when used."""
    code = "import sys, nas.cli; print(sorted(m for m in ('scipy', 'sklearn', 'dask', 'tqdm',"
    code += " 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stderr
