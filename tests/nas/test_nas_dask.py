"""Dask execution: a LocalCluster with two worker processes, one of them killed mid-trial."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import nas

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

import nas_helpers  # noqa: E402  (registered by value below, so workers need not import it)

cloudpickle.register_pickle_by_value(sys.modules["nas_helpers"])

SPACE = nas.Space({"a": nas.Real(-1, 1), "b": nas.Real(-1, 1)})


def test_dask_search_survives_a_worker_killed_mid_trial(tmp_path: Path) -> None:
    killer = nas_helpers.FailOnce(tmp_path / "killed", how="kill", delay_s=0.05)
    journal = tmp_path / "run.jsonl"
    res = nas.optimize(
        killer,
        SPACE,
        "random",
        budget=12,
        seed=0,
        maximize=False,
        workers=2,
        executor="dask",
        journal=journal,
        retries=2,
    )
    assert (tmp_path / "killed").exists()  # a worker really died inside a trial
    assert len(res.history) == 12
    assert sorted(t.id for t in res.history) == list(range(12))
    assert res.n_finished + res.n_failed == 12
    assert res.n_finished == 12  # Dask re-ran the lost task, or our retry did
    results = [e for e in nas.read_journal(journal) if e["event"] == "result"]
    assert sorted(e["id"] for e in results) == list(range(12))


def test_dask_search_through_a_scheduler_address() -> None:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        res = nas.optimize(
            nas_helpers.sphere,
            SPACE,
            "lamcts",
            budget=10,
            seed=0,
            maximize=False,
            workers=2,
            executor="dask",
            scheduler=cluster.scheduler_address,
            strategy_options={"n_init": 4, "leaf_size": 3, "n_candidates": 64},
        )
    assert res.n_finished == 10 and res.best_value == min(t.value for t in res.history)
