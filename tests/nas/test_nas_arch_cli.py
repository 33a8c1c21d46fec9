"""End-to-end architecture search from the CLI: trains with superneurons on digits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import nas
import nas.spaces as sp
from nas.cli import history_from_journal, main

pytest.importorskip("superneurons")

SMALL = ["--channels", "4", "--cells", "1"]


def _results(journal: Path) -> list[dict[str, object]]:
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    return [e for e in events if e["event"] == "result"]


@pytest.fixture(scope="module")
def lamcts_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("search")
    journal = d / "run.jsonl"
    argv = ["search", "--space", "nb201", "--dataset", "digits", "--strategy", "lamcts"]
    argv += ["--budget", "12", "--epochs", "1", "--workers", "1", "--journal", str(journal)]
    argv += [*SMALL, "--report-dir", str(d / "report")]
    assert main(argv) == 0
    return journal


def test_search_trains_architectures_and_reports(
    lamcts_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = _results(lamcts_run)
    assert len(results) == 12 and all(r["status"] == "ok" for r in results)
    for r in results:
        m = r["metrics"]
        assert isinstance(m, dict) and r["value"] == m["accuracy"] and m["params"] > 0
    report = lamcts_run.parent / "report"
    for name in ("best_arch.png", "curve.png", "pareto.png"):
        assert (report / name).stat().st_size > 1000
    assert main(["report", str(lamcts_run)]) == 0
    assert "Pareto front" in capsys.readouterr().out


def test_search_beats_the_median_random_architecture(lamcts_run: Path) -> None:
    history, _ = history_from_journal(str(lamcts_run))
    best = max(float(t.value) for t in history if t.value is not None)
    obj = nas.TrainObjective(sp.nb201(), "digits", epochs=1, channels=4, cells=1)
    random_accs = [obj(c)["accuracy"] for c in sp.nb201().sample(8, seed=123)]
    assert best > float(np.median(random_accs)) + 0.05


def test_same_seed_same_search(tmp_path: Path) -> None:
    runs = []
    for k in range(2):
        journal = tmp_path / f"r{k}.jsonl"
        argv = ["search", "--space", "nb201", "--dataset", "digits", "--strategy", "evolution"]
        argv += ["--budget", "5", "--seed", "3", "--executor", "inline", "--journal", str(journal)]
        assert main([*argv, *SMALL]) == 0
        history, _ = history_from_journal(str(journal))
        runs.append([(t.config, t.value) for t in history])
    assert runs[0] == runs[1]


def test_memory_budget_makes_infeasible_trials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "b.jsonl"
    argv = ["search", "--space", "nb201", "--dataset", "digits", "--strategy", "random"]
    argv += ["--budget", "6", "--memory-budget", "1MB", "--executor", "inline"]
    assert main([*argv, "--journal", str(journal), *SMALL]) == 0
    statuses = [r["status"] for r in _results(journal)]
    assert "infeasible" in statuses and "ok" in statuses
    n = statuses.count("infeasible")
    assert f"{n} infeasible)" in capsys.readouterr().out


def test_asha_search_resumes_with_its_objective(tmp_path: Path) -> None:
    journal = tmp_path / "a.jsonl"
    argv = ["search", "--space", "nb201", "--dataset", "digits", "--strategy", "random"]
    argv += ["--fidelity", "asha", "--epochs", "3", "--budget", "5", "--executor", "inline"]
    assert main([*argv, "--journal", str(journal), *SMALL]) == 0
    assert (tmp_path / "a.ckpt").is_dir()  # checkpoints beside the journal
    assert main(["resume", str(journal), "--budget", "7", "--executor", "inline"]) == 0
    results = _results(journal)
    assert len(results) == 7 and all(r["status"] == "ok" for r in results)
    fids = {r["fidelity"] for r in results}
    assert fids <= {1.0, 3.0}


def test_asha_stop_search_prunes_architectures_mid_training(tmp_path: Path) -> None:
    journal = tmp_path / "s.jsonl"
    argv = ["search", "--space", "nb201", "--dataset", "digits", "--strategy", "random"]
    argv += ["--fidelity", "asha-stop", "--epochs", "3", "--budget", "6", "--executor", "inline"]
    assert main([*argv, "--journal", str(journal), *SMALL]) == 0
    results = _results(journal)
    assert len(results) == 6 and {r["fidelity"] for r in results} == {3.0}  # all start at 3
    metrics = [r["metrics"] for r in results]
    assert all(isinstance(m, dict) and m["rungs"][0][0] == 1.0 for m in metrics)
    pruned = [m for m in metrics if "pruned_at" in m]
    assert pruned and all(m["pruned_at"] == 1.0 for m in pruned)  # stopped after epoch 1
    assert any("pruned_at" not in m and m["epochs"] == 3 for m in metrics)


def test_hyperband_search_with_a_parameter_constraint(tmp_path: Path) -> None:
    journal = tmp_path / "h.jsonl"
    argv = ["search", "--space", "nb201", "--dataset", "digits", "--strategy", "random"]
    argv += ["--fidelity", "hyperband", "--epochs", "3", "--budget", "5", "--executor", "inline"]
    argv += ["--max-params", "9000", "--journal", str(journal), *SMALL]
    assert main(argv) == 0
    results = _results(journal)
    assert {r["fidelity"] for r in results} <= {1.0, 3.0}  # brackets start at 1 and 3
    for r in results:
        m = r["metrics"]
        assert isinstance(m, dict) and (r["status"] == "infeasible") == (m["params"] > 9000)


def test_search_needs_an_objective(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "--strategy", "random"]) == 2
    assert "--dataset" in capsys.readouterr().err
    assert main(["search", "--dataset", "mnist-from-the-moon", "--budget", "1"]) == 2
