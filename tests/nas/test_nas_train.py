"""TrainObjective: metrics, memory budgets, fidelities continued from checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nas
import nas.spaces as sp

sn = pytest.importorskip("superneurons")

CONV = {n: "conv3x3" for n in sp.nb201().names}
SMALL = {"channels": 4, "cells": 1}


def _obj(**kw: Any) -> nas.TrainObjective:
    args: dict[str, Any] = {"dataset": "digits", "epochs": 1, **SMALL}
    args.update(kw)
    return nas.TrainObjective(sp.nb201(), **args)


def test_result_fields_and_plan_figures() -> None:
    obj = _obj()
    r = obj(CONV)
    assert r["feasible"] is True and 0.0 <= r["accuracy"] <= 1.0
    assert r["accuracy"] > 0.2  # one epoch on digits learns something
    g = obj.build(CONV)
    assert r["params"] == g.num_params() and r["flops"] == sp.graph_flops(g) > 0
    assert r["peak_bytes"] == sn.plan(g, 64).peak_bytes
    assert r["epochs"] == 1 and r["epochs_trained"] == 1 and r["seconds"] > 0
    train, val, test = obj.data()
    assert len(train) + len(val) + len(test) == 1797
    assert not set(map(bytes, val.x)) & set(map(bytes, test.x))  # held out apart


def test_same_seed_same_accuracy() -> None:
    assert _obj()(CONV)["accuracy"] == _obj()(CONV)["accuracy"]


def test_over_budget_is_an_infeasible_result_not_a_crash() -> None:
    r = _obj(memory_budget="64KB")(CONV)
    assert r["feasible"] is False and r["accuracy"] is None and "budget" in r["error"]
    r = _obj(max_params=10)(CONV)
    assert r["feasible"] is False and "max_params" in r["error"]


def test_infeasible_trials_in_a_search_are_recorded_not_retried(tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    # 1 MB fits the small cells of the space but not the big ones
    obj = _obj(memory_budget="1MB")
    res = nas.optimize(
        obj, obj.space, "random", budget=8, seed=0, executor="inline", journal=journal
    )
    assert res.n_infeasible >= 1 and res.n_finished >= 1
    assert res.n_infeasible + res.n_finished == 8
    for t in res.history:
        assert t.attempts == 1 and t.metrics is not None
        # Infeasible exactly when the plan does not fit (a planned peak just under the
        # budget can still fail to place: fragmentation); a feasible one fits under it.
        fits = sn.plan(obj.build(t.config), obj.batch_size, obj.policy, "1MB").fits
        assert (t.status == "infeasible") == (not fits)
        if fits:
            assert t.metrics["peak_bytes"] <= sn.parse_bytes("1MB")
        else:
            assert "out of memory" in t.metrics["error"]
    results = [json.loads(line) for line in journal.read_text().splitlines()]
    results = [e for e in results if e["event"] == "result"]
    assert all("peak_bytes" in e["metrics"] for e in results)


def test_metrics_cross_process_executors() -> None:
    obj = _obj()
    res = nas.optimize(obj, obj.space, "random", budget=2, seed=1, executor="local")
    assert res.n_finished == 2
    assert all(t.value == t.metrics["accuracy"] for t in res.history)  # type: ignore[index]


def test_promotion_continues_from_the_checkpoint(tmp_path: Path) -> None:
    obj = _obj(epochs=3, max_epochs=3, checkpoint_dir=tmp_path)
    first = obj(CONV, 1)
    again = obj(CONV, 3)
    assert (first["epochs_trained"], again["epochs_trained"], again["epochs"]) == (1, 2, 3)
    direct = _obj(epochs=3, max_epochs=3)(CONV, 3)
    assert direct["epochs_trained"] == 3
    assert again["accuracy"] == direct["accuracy"]  # 1 + 2 continued epochs == 3 at once
    assert obj(CONV, 3)["epochs_trained"] == 0  # nothing left to train
    explicit = tmp_path / "mine.npz"
    plain = _obj(epochs=3, max_epochs=3)
    assert plain(CONV, 1, checkpoint=explicit)["epochs_trained"] == 1 and explicit.exists()
    assert plain(CONV, 3, checkpoint=explicit)["accuracy"] == direct["accuracy"]


def test_asha_trains_each_epoch_once(tmp_path: Path) -> None:
    obj = _obj(epochs=3, max_epochs=3, checkpoint_dir=tmp_path)
    res = nas.optimize(
        obj,
        obj.space,
        "asha",
        budget=10,
        seed=0,
        executor="inline",
        strategy_options={"min_fidelity": 1, "max_fidelity": 3, "eta": 3},
    )
    ok = [t for t in res.history if t.status == "ok"]
    promoted = [t for t in ok if t.fidelity == 3]
    assert promoted  # ASHA promoted something to 3 epochs
    trained = sum(t.metrics["epochs_trained"] for t in ok)  # type: ignore[index]
    top: dict[Any, int] = {}
    for t in ok:
        k = obj.space.key(t.config)
        top[k] = max(top.get(k, 0), int(t.fidelity or 0))
    assert trained == sum(top.values())  # continued, never restarted
    assert trained < sum(int(t.fidelity or 0) for t in ok)  # what restarting would cost
    for t in promoted:
        assert t.metrics["epochs_trained"] == 2  # type: ignore[index]


def test_inheritance_copies_shared_layers(tmp_path: Path) -> None:
    parent = dict(CONV)
    child = dict(CONV, e3_2="avgpool3x3")
    obj = _obj(checkpoint_dir=tmp_path, inherit=True)
    assert obj(parent)["inherited_params"] == 0
    r = obj(child)
    assert r["inherited_params"] > 0
    # the child started from the parent's stem: compare with a session built afresh
    with np.load(obj.checkpoint_path(parent)) as npz:  # type: ignore[arg-type]
        parent_stem = npz["stem.weight"]
    obj.checkpoint_path(child).unlink()  # type: ignore[union-attr]  # leave only the parent
    fresh = sn.Session(obj.build(child), batch_size=64, seed=0).parameters()["stem.weight"]
    sess = sn.Session(obj.build(child), batch_size=64, seed=0)
    obj._inherit(sess, tmp_path / "other.npz")
    assert np.array_equal(sess.parameters()["stem.weight"], parent_stem)
    assert not np.array_equal(fresh, parent_stem)


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        _obj(dataset="imagenet")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        _obj(device="tpu")
    assert _obj(device="auto").device == "auto"  # resolved where each trial runs
    with pytest.raises(ValueError, match="build graphs"):
        nas.TrainObjective(nas.Space({"x": nas.Real(0, 1)}))
    with pytest.raises(ValueError, match="checkpoint_dir"):
        _obj(inherit=True)
    with pytest.raises(ValueError, match="epochs"):
        _obj(epochs=0)
    with pytest.raises(ValueError):
        _obj(memory_budget="lots")
    with pytest.raises(ValueError, match="fidelity"):
        _obj()(CONV, 5)


def test_synthetic_dataset_and_resizing() -> None:
    train, val, test = nas.load_dataset("synthetic", image_size=8)
    assert train.sample_shape == (3, 8, 8) and len(val) and len(test)
    train, _, _ = nas.load_dataset("digits", image_size=4)
    assert train.sample_shape == (1, 4, 4)


def test_a_pruning_search_trains_epoch_by_epoch_and_can_stop() -> None:
    from nas._executors import call_objective
    from nas._report import PruneRule

    obj = _obj(epochs=2, max_epochs=2)
    go_on = PruneRule(((1.0, None),))  # a check at epoch 1 that always passes
    value, _, _, metrics = call_objective(obj, CONV, 2, go_on)
    assert metrics is not None and metrics["epochs"] == 2
    assert metrics["rungs"] == [[1.0, _obj(max_epochs=2)(CONV, 1)["accuracy"]]]
    assert value == obj(CONV, 2)["accuracy"]  # the same weights as one fit of 2 epochs
    stop = PruneRule(((1.0, 2.0),))  # no accuracy reaches 2
    value, _, _, metrics = call_objective(obj, CONV, 2, stop)
    assert metrics == {"rungs": [[1.0, value]], "pruned_at": 1.0}
