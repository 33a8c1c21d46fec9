"""Tabular benchmarks built with superneurons: build, look up, resume, search."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import nas
import nas.spaces as sp
from nas._table import restrict_space
from nas.cli import main

pytest.importorskip("superneurons")


def _objective() -> nas.TrainObjective:
    return nas.TrainObjective(sp.nb201(), "digits", epochs=2, channels=2, cells=1)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("table") / "t.json"
    t = nas.build_table(_objective(), [1, 2], path, sample=4, executor="inline", progress=False)
    return path, t


def test_build_and_lookup_round_trip(table: tuple[Path, dict[str, Any]]) -> None:
    path, t = table
    assert not path.with_name(path.name + ".partial").exists()
    assert len(t["entries"]) == 4 and t["settings"]["epochs"] == [1, 2]
    tab = nas.TableObjective(path)
    assert len(tab) == 4 and not tab.complete
    for e in t["entries"]:
        one, two = e["results"]["1"], e["results"]["2"]
        assert two["seconds"] > one["seconds"] > 0  # cumulative training time
        assert tab(e["config"], 1)["accuracy"] == one["accuracy"]
        assert tab(e["config"])["accuracy"] == two["accuracy"]
        assert tab(e["config"], 1.5)["accuracy"] == two["accuracy"]  # the next one up
    # a tabulated fidelity equals a fresh training at that fidelity (same schedule)
    e = t["entries"][0]
    fresh = _objective().with_(max_epochs=2)(e["config"], 1)
    assert fresh["accuracy"] == e["results"]["1"]["accuracy"]
    absent = {n: "skip_connect" for n in sp.nb201().names}
    if not tab.contains(absent):
        with pytest.raises(ValueError, match="not in table"):
            tab(absent)
    with pytest.raises(ValueError, match="above"):
        tab(e["config"], 3)


def test_resuming_an_interrupted_build_keeps_what_was_done(
    table: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, t = table
    out = tmp_path / "t.json"
    first = dict(t["entries"][0])
    marked = json.loads(json.dumps(first))
    marked["results"]["2"]["accuracy"] = 0.123456  # a value no training gives
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps(marked) + "\n" + '{"key": "torn')  # killed mid-line
    again = nas.build_table(_objective(), [1, 2], out, sample=2, executor="inline", progress=False)
    by_key = {e["key"]: e for e in again["entries"]}
    assert by_key[first["key"]]["results"]["2"]["accuracy"] == 0.123456  # not retrained
    assert len(by_key) == 2
    assert not partial.exists()


def test_restricted_space_only_suggests_members(table: tuple[Path, dict[str, Any]]) -> None:
    path, t = table
    tab = nas.TableObjective(path)
    for strategy in ("evolution", "lamcts", "mcts", "lanas"):
        res = nas.optimize(tab, tab.space, strategy, budget=4, seed=0, executor="inline")
        assert res.n_finished == 4, strategy
    configs = [e["config"] for e in t["entries"]]
    s = restrict_space(sp.nb201(), configs)
    assert all(c in configs for c in s.sample(10, seed=1))
    with pytest.raises(ValueError, match="empty"):
        restrict_space(sp.nb201(), [])


def test_cli_builds_and_searches_a_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.json"
    args = ["bench", "build", "--space", "nb201", "--dataset", "digits", "--epochs", "1"]
    args += ["--sample", "3", "--channels", "2", "--out", str(out), "--no-progress"]
    assert main([*args, "--executor", "inline"]) == 0
    assert "entries      3 at epochs [1]" in capsys.readouterr().out
    journal = tmp_path / "s.jsonl"
    search = ["search", "--table", str(out), "--strategy", "random", "--budget", "3"]
    assert main([*search, "--executor", "inline", "--journal", str(journal)]) == 0
    printed = capsys.readouterr().out
    assert "3 finished" in printed and "Pareto front" in printed
    assert main(["search", "--table", str(out), "--budget", "4", "--executor", "inline"]) == 2
    assert "more than the 3 architectures" in capsys.readouterr().err
    assert main(["bench", "build", "--epochs", "a", "--out", str(out)]) == 2


def test_bad_table_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not a nas-table"):
        nas.TableObjective(bad)
    with pytest.raises(ValueError, match="cannot read"):
        nas.load_table(tmp_path / "missing.json")
