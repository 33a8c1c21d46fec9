"""optimize / resume, executors, retries, timeouts and the journal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from nas_helpers import FailOnce, always_raises, sleepy, sphere

import nas

SPACE = nas.Space({"a": nas.Real(-1, 1), "b": nas.Real(-1, 1)})


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_optimize_returns_best_and_full_history(executor: str) -> None:
    res = nas.optimize(
        sphere, SPACE, "random", budget=12, seed=0, maximize=False, workers=2, executor=executor
    )
    assert len(res.history) == 12 and res.n_finished == 12 and res.n_failed == 0
    values = [t.value for t in res.history]
    assert res.best_value == min(values)  # type: ignore[type-var]
    assert res.best_config == next(t.config for t in res.history if t.value == res.best_value)
    for t in res.history:
        assert t.status == "ok" and t.attempts == 1 and t.fidelity is None
        assert t.duration_s is not None and t.duration_s >= 0
        assert t.value == pytest.approx(sphere(t.config))
    curve = res.best_so_far()
    assert len(curve) == 12 and all(curve[i + 1] <= curve[i] for i in range(11))


def test_a_trial_that_raises_once_is_retried(tmp_path: Path) -> None:
    res = nas.optimize(
        FailOnce(tmp_path / "m"), SPACE, "random", budget=5, executor="local", retries=1
    )
    assert res.n_finished == 5
    assert sorted(t.attempts for t in res.history) == [1, 1, 1, 1, 2]


def test_a_worker_killed_mid_trial_is_retried(tmp_path: Path) -> None:
    res = nas.optimize(
        FailOnce(tmp_path / "m", how="kill"), SPACE, "random", budget=6, workers=2, executor="local"
    )
    assert res.n_finished == 6
    assert max(t.attempts for t in res.history) == 2


def test_persistent_failures_are_recorded_and_the_search_goes_on(tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    with pytest.raises(nas.SearchFailedError, match=r"all 4 trials failed.*exploded") as e:
        nas.optimize(
            always_raises,
            SPACE,
            "lamcts",
            budget=4,
            executor="inline",
            retries=2,
            journal=journal,
            strategy_options={"n_init": 2},
        )
    res = e.value.result
    assert [t.status for t in res.history] == ["failed"] * 4
    assert all(t.attempts == 3 and "objective exploded" in (t.error or "") for t in res.history)
    assert res.best_value is None and res.best_config is None
    events = [json.loads(line)["event"] for line in journal.read_text().splitlines()]
    assert events.count("retry") == 8 and events.count("result") == 4


def test_trial_timeout_kills_the_trial() -> None:
    with pytest.raises(nas.SearchFailedError, match="all 2 trials failed") as e:
        nas.optimize(
            sleepy, SPACE, "random", budget=2, workers=2, executor="local", timeout_s=0.3, retries=0
        )
    res = e.value.result
    assert [t.status for t in res.history] == ["timeout", "timeout"]
    assert res.n_failed == 2


def test_journal_records_every_suggestion_and_result(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    nas.optimize(
        sphere,
        SPACE,
        "evolution",
        budget=9,
        workers=3,
        executor="inline",
        journal=path,
        strategy_options={"population": 4},
    )
    events = nas.read_journal(path)
    head = events[0]
    assert head["event"] == "start" and head["strategy"] == "evolution" and head["budget"] == 9
    assert nas.Space.from_json(head["space"]).names == ["a", "b"]
    suggested = [t["id"] for e in events if e["event"] == "suggest" for t in e["trials"]]
    finished = [e["id"] for e in events if e["event"] == "result"]
    assert sorted(suggested) == sorted(finished) == list(range(9))


def test_existing_journal_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    nas.optimize(sphere, SPACE, "random", budget=2, executor="inline", journal=path)
    with pytest.raises(ValueError, match=r"use nas\.resume"):
        nas.optimize(sphere, SPACE, "random", budget=2, executor="inline", journal=path)


def test_resume_reruns_unfinished_trials_and_never_finished_ones(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    calls: list[dict[str, Any]] = []

    def counted(config: dict[str, Any]) -> float:
        calls.append(config)
        return sphere(config)

    nas.optimize(
        counted,
        SPACE,
        "turbo",
        budget=10,
        executor="inline",
        journal=path,
        strategy_options={"n_init": 4},
    )
    lines = path.read_text().splitlines(keepends=True)
    # drop the last two results: those trials were running when the process died
    results = [i for i, line in enumerate(lines) if '"event":"result"' in line]
    crashed = [line for i, line in enumerate(lines) if i not in results[-2:]]
    path.write_text("".join(crashed))
    calls.clear()
    res = nas.resume(path, counted, budget=14)
    assert res.n_finished == 14
    assert len(calls) == 2 + 4  # the two unfinished trials, then four new ones
    assert nas.resume(path, counted).n_finished == 14  # nothing left to do
    assert len(calls) == 6


def test_resume_needs_objective_when_not_recorded(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    nas.optimize(sphere, SPACE, "random", budget=2, executor="inline", journal=path)
    with pytest.raises(ValueError, match="pass objective="):
        nas.resume(path)
    with pytest.raises(ValueError, match="does not exist"):
        nas.resume(tmp_path / "missing.jsonl", sphere)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"budget": 0}, "budget"),
        ({"workers": 0}, "workers"),
        ({"retries": -1}, "retries"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"executor": "slurm"}, "executor"),
        ({"strategy": "gradient-descent"}, "unknown strategy"),
        ({"strategy_options": {"leaf_size": 0}}, "leaf_size"),
        ({"strategy_options": {"no_such_option": 1}}, "bad options"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"strategy": "lamcts", "budget": 3, "executor": "inline", **kwargs}
    with pytest.raises(ValueError, match=match):
        nas.optimize(sphere, SPACE, **args)


def test_strategy_instance_is_accepted() -> None:
    strat = nas.RegularizedEvolution(SPACE, seed=1, maximize=False, population=3)
    res = nas.optimize(sphere, SPACE, strat, budget=8, executor="inline")
    assert res.strategy == "evolution" and strat.n_observed == 8 and not res.maximize


def test_synthetic_functions_have_zero_optimum() -> None:
    for name in nas.SYNTHETIC:
        f = nas.synthetic(name, 5)
        at = [1.0] * 5 if name in ("levy", "rosenbrock") else [0.0] * 5
        assert f.evaluate(at) == pytest.approx(0.0, abs=1e-9)
        assert f(dict(zip(f.space.names, at, strict=True))) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="unknown synthetic"):
        nas.synthetic("banana", 3)
    with pytest.raises(ValueError, match="dim"):
        nas.synthetic("ackley", 1)


def test_time_budget_stops_new_trials(tmp_path: Path) -> None:
    import time

    def slow(config: dict[str, Any]) -> float:
        time.sleep(0.05)
        return sphere(config)

    t0 = time.monotonic()
    res = nas.optimize(slow, SPACE, "random", budget=10_000, executor="inline", time_budget_s=0.5)
    assert time.monotonic() - t0 < 5.0
    assert 3 <= len(res.history) <= 12 and res.n_finished == len(res.history)
    with pytest.raises(ValueError, match="time_budget_s must be positive"):
        nas.optimize(slow, SPACE, "random", time_budget_s=0)


class _Jittery:
    """sphere after a random sleep, so parallel trials finish in a random order."""

    def __call__(self, config: dict[str, Any]) -> float:
        import random
        import time

        time.sleep(random.random() * 0.03)
        return sphere(config)


def _ordered_run(tmp_path: Path, i: int) -> list[tuple[int, Any]]:
    """An ordered parallel search with jittery timing; its (id, config) history."""
    journal = tmp_path / f"run{i}.jsonl"
    res = nas.optimize(
        _Jittery(), SPACE, "evolution", budget=24, seed=3, workers=3, executor="local",
        strategy_options={"population": 4}, ordered=True, journal=journal,
    )  # fmt: skip
    return [(t.id, t.config) for t in res.history]


def test_ordered_results_make_parallel_searches_reproducible(tmp_path: Path) -> None:
    first = _ordered_run(tmp_path, 0)
    assert _ordered_run(tmp_path, 1) == first


def _cuts(lines: list[str]) -> list[int]:
    """Crash points: after a suggest line, and inside result -> suggest cascades."""
    kinds = [json.loads(line)["event"] for line in lines]
    mid = len(lines) // 3
    cuts = {max(i for i in range(len(lines) * 3 // 5) if kinds[i] == "suggest")}
    after_result = [
        i for i in range(mid, len(lines) - 2) if kinds[i : i + 2] == ["result", "suggest"]
    ]
    cuts.update(after_result[:2])  # between a told result and its refill
    cascades = [
        i
        for i in range(mid, len(lines) - 3)
        if kinds[i : i + 3] == ["result", "suggest", "suggest"]
    ]
    cuts.update(i + 1 for i in cascades[:1])  # between two refills of one result
    return sorted(cuts)


def test_ordered_search_resumes_as_if_uninterrupted(tmp_path: Path) -> None:
    first = _ordered_run(tmp_path, 0)
    # a crash, then resume: the replay tells results in the live order (see Note
    # [Ordered results]), so the resumed search is the uninterrupted one
    lines = (tmp_path / "run0.jsonl").read_text().splitlines(keepends=True)
    for cut in _cuts(lines):
        crashed = tmp_path / f"crashed{cut}.jsonl"
        crashed.write_text("".join(lines[: cut + 1]))
        again = nas.resume(crashed, _Jittery(), SPACE)
        assert again.resume_mismatches == 0, f"cut after line {cut}"
        assert [(t.id, t.config) for t in again.history] == first, f"cut after line {cut}"


def test_warm_start_from_configs_runs_them_first_and_resumes(tmp_path: Path) -> None:
    given = [{"a": 0.1, "b": 0.2}, {"a": -0.3, "b": 0.0}]
    journal = tmp_path / "run.jsonl"
    opts: dict[str, Any] = {"strategy_options": {"population": 4}, "executor": "inline"}
    res = nas.optimize(
        sphere, SPACE, "evolution", budget=10, seed=2, warm_start=given, journal=journal, **opts
    )
    assert [t.config for t in res.history[:2]] == given
    assert len(res.history) == 10
    lines = journal.read_text().splitlines(keepends=True)
    crashed = tmp_path / "crashed.jsonl"
    crashed.write_text("".join(lines[:5]))
    again = nas.resume(crashed, sphere, SPACE)
    assert again.resume_mismatches == 0
    assert [t.config for t in again.history] == [t.config for t in res.history]
    with pytest.raises(ValueError, match=r"warm_start config .* not a valid member"):
        nas.optimize(sphere, SPACE, "random", warm_start=[{"a": 5.0, "b": 0.0}])
    with pytest.raises(ValueError, match="does not apply to a scheduler"):
        nas.optimize(sphere, SPACE, "asha", warm_start=given)


def test_warm_start_from_another_journal_tells_its_results(tmp_path: Path) -> None:
    old = tmp_path / "old.jsonl"
    nas.optimize(sphere, SPACE, "random", budget=6, seed=0, executor="inline", journal=old)
    s = nas.make_strategy("evolution", SPACE, seed=1, maximize=False, population=4)
    new = tmp_path / "new.jsonl"
    res = nas.optimize(sphere, SPACE, s, budget=3, executor="inline", journal=new, warm_start=old)
    assert len(res.history) == 3 and s.n_observed == 6 + 3
    assert [e["event"] for e in nas.read_journal(new)][:2] == ["start", "warm"]
    fresh = nas.make_strategy("evolution", SPACE, seed=1, maximize=False, population=4)
    nas.resume(new, sphere, SPACE, strategy=fresh, budget=4)
    assert fresh.n_observed == 6 + 4
