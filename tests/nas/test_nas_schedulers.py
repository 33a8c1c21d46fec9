"""Hyperband (Alg. 1) and ASHA (Alg. 3) of the second source."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import nas
from nas._hyperband import bracket_rungs

SPACE = nas.Space({"x": nas.Real(0.0, 1.0)})


def test_hyperband_bracket_sizes_match_algorithm_1() -> None:
    assert nas.hyperband_brackets(81, 3) == [(81, 1), (34, 3), (15, 9), (8, 27), (5, 81)]


def test_hyperband_rungs_of_the_most_aggressive_bracket() -> None:
    assert bracket_rungs(81, 1, 3, 5) == [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)]
    assert bracket_rungs(34, 3, 3, 4) == [(34, 3), (11, 9), (3, 27), (1, 81)]


@pytest.mark.parametrize(("r", "eta", "match"), [(0, 3, "max_fidelity"), (81, 1, "eta")])
def test_hyperband_rejects_bad_inputs(r: float, eta: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        nas.hyperband_brackets(r, eta)


def _run_sequential(s: nas.Strategy, n: int) -> list[dict[str, Any]]:
    jobs = []
    for _ in range(n):
        [c] = s.suggest(1)
        jobs.append(c)
        s.observe([(c, c["x"] * c["_fidelity"])])
    return jobs


def test_hyperband_runs_each_bracket_as_successive_halving() -> None:
    hb = nas.Hyperband(SPACE, seed=0, max_fidelity=9, eta=3)
    # brackets for R=9: (9,1) -> rungs 9@1, 3@3, 1@9; (5,3) -> 5@3, 1@9; (3,9) -> 3@9
    jobs = _run_sequential(hb, 9 + 3 + 1 + 5 + 1 + 3)
    fids = [c["_fidelity"] for c in jobs]
    assert fids == [1] * 9 + [3] * 3 + [9] + [3] * 5 + [9] + [9] * 3
    # promotions keep the top third of the rung: the best x of the first nine
    first = jobs[:9]
    top3 = sorted(first, key=lambda c: -c["x"])[:3]
    assert {c["x"] for c in jobs[9:12]} == {c["x"] for c in top3}
    assert jobs[12]["x"] == top3[0]["x"]


def test_hyperband_opens_the_next_bracket_instead_of_idling() -> None:
    hb = nas.Hyperband(SPACE, seed=0, max_fidelity=9, eta=3)
    first = hb.suggest(9)
    extra = hb.suggest(2)  # bracket 0 waits on its rung; bracket 1 starts
    assert [c["_fidelity"] for c in extra] == [3, 3]
    assert len({c["_trial"] for c in first + extra}) == 11


def test_hyperband_searcher_sees_each_config_once() -> None:
    hb = nas.Hyperband(SPACE, seed=0, max_fidelity=9, eta=3)
    _run_sequential(hb, 22)
    assert hb.searcher.n_observed == 9 + 5 + 3
    assert not hb.searcher.pending


def test_asha_promotes_per_algorithm_3() -> None:
    asha = nas.ASHA(SPACE, seed=0, min_fidelity=1, max_fidelity=9, eta=3)
    assert asha.top_rung == 2
    a = asha.suggest(2)
    asha.observe([(c, c["x"]) for c in a])
    # |rung 0| = 2: top floor(2/3) = 0 candidates -> grow the bottom rung
    [b] = asha.suggest(1)
    assert b["_fidelity"] == 1
    asha.observe([(b, b["x"])])
    # |rung 0| = 3: the best one is promoted to rung 1 (fidelity r * eta = 3)
    [p] = asha.suggest(1)
    best = max([*a, b], key=lambda c: c["x"])
    assert (p["x"], p["_fidelity"]) == (best["x"], 3)
    # it is promoted only once; the next job grows rung 0 again
    [q] = asha.suggest(1)
    assert q["_fidelity"] == 1
    asha.observe([(p, 100.0), (q, q["x"])])


def test_asha_every_job_is_what_algorithm_3_would_pick() -> None:
    asha = nas.ASHA(SPACE, seed=1, min_fidelity=1, max_fidelity=9, eta=3)
    rungs: list[list[tuple[float, float]]] = [[], [], []]  # (value, x) of completed jobs
    promoted: list[set[float]] = [set(), set(), set()]
    counts: Counter[float] = Counter()
    for _ in range(60):
        expected = None
        for k in (1, 0):  # from the top rung that can promote, down to 0
            top = sorted(rungs[k], reverse=True)[: len(rungs[k]) // 3]
            free = [x for _, x in top if x not in promoted[k]]
            if free:
                expected = (free[0], 3 ** (k + 1))
                promoted[k].add(free[0])
                break
        [c] = asha.suggest(1)
        if expected is None:
            assert c["_fidelity"] == 1
        else:
            assert (c["x"], c["_fidelity"]) == expected
        counts[c["_fidelity"]] += 1
        value = c["x"] + 0.1 * c["_fidelity"]
        rungs[{1: 0, 3: 1, 9: 2}[c["_fidelity"]]].append((value, c["x"]))
        asha.observe([(c, value)])
    assert counts[1] > counts[3] > counts[9] >= 1


@pytest.mark.parametrize("name", ["hyperband", "asha"])
def test_schedulers_reject_configs_they_did_not_suggest(name: str) -> None:
    s = nas.make_strategy(name, SPACE, seed=0, max_fidelity=9)
    with pytest.raises(ValueError, match="its own suggestions"):
        s.observe([({"x": 0.5}, 1.0)])
    assert s.n_observed == 0


def test_asha_never_promotes_a_failed_trial() -> None:
    asha = nas.ASHA(SPACE, seed=0, min_fidelity=1, max_fidelity=9, eta=3)
    jobs = asha.suggest(3)
    asha.observe([(c, None) for c in jobs])
    assert [c["_fidelity"] for c in asha.suggest(2)] == [1, 1]


def test_asha_with_early_stopping_rate() -> None:
    asha = nas.ASHA(SPACE, seed=0, min_fidelity=1, max_fidelity=27, eta=3, early_stopping_rate=1)
    assert asha.top_rung == 2
    assert [asha.fidelity(k) for k in range(3)] == [3, 9, 27]
    with pytest.raises(ValueError, match="early_stopping_rate"):
        nas.ASHA(SPACE, min_fidelity=1, max_fidelity=9, eta=3, early_stopping_rate=5)


def test_schedulers_compose_with_a_model_based_searcher() -> None:
    hb = nas.Hyperband(
        SPACE,
        seed=0,
        searcher="lamcts",
        max_fidelity=9,
        eta=3,
        searcher_options={"n_init": 5, "leaf_size": 4, "n_candidates": 100},
    )
    jobs = _run_sequential(hb, 30)
    assert isinstance(hb.searcher, nas.LAMCTS) and hb.searcher.n_observed > 5
    assert all(SPACE.contains(c) for c in jobs)
    with pytest.raises(ValueError, match="searcher must not be a scheduler"):
        nas.ASHA(SPACE, searcher="hyperband")


def test_optimize_passes_the_fidelity_to_the_objective() -> None:
    seen: list[float] = []

    def objective(config: dict[str, Any], fidelity: float) -> float:
        seen.append(fidelity)
        return config["x"] - 1.0 / fidelity

    res = nas.optimize(
        objective, SPACE, "asha", budget=20, executor="inline", strategy_options={"max_fidelity": 9}
    )
    assert sorted(set(seen)) == [1, 3, 9]
    assert [t.fidelity for t in res.history] == seen
    top = max(t.fidelity for t in res.history if t.fidelity is not None)
    assert res.best_value == max(t.value for t in res.history if t.fidelity == top)


def test_a_trial_budget_that_cannot_reach_the_top_fidelity_warns() -> None:
    def objective(config: dict[str, Any], fidelity: float) -> float:
        return float(config["x"])

    with pytest.warns(UserWarning, match="cannot reach the top fidelity 81 .*at least 121"):
        res = nas.optimize(objective, SPACE, "hyperband", budget=100, executor="inline")
    assert max(t.fidelity or 0 for t in res.history) < 81
    with pytest.warns(UserWarning, match="at least 13 trials"):
        nas.optimize(objective, SPACE, "asha", budget=5, executor="inline",
                     strategy_options={"max_fidelity": 9})  # fmt: skip
    with warnings.catch_warnings():  # exactly enough trials: no warning, and the top is reached
        warnings.simplefilter("error")
        res = nas.optimize(objective, SPACE, "hyperband", budget=121, executor="inline")
    assert max(t.fidelity or 0 for t in res.history) == 81


def test_resource_budget_counts_fidelity_units() -> None:
    def objective(config: dict[str, Any], fidelity: float) -> float:
        return float(config["x"]) - 1.0 / fidelity

    res = nas.optimize(
        objective, SPACE, "hyperband", budget=10_000, resource_budget=500, executor="inline"
    )
    spent = sum(t.fidelity or 0 for t in res.history)
    assert 500 <= spent < 500 + 81  # stops asking once spent (one trial may pass it)
    assert max(t.fidelity or 0 for t in res.history) == 81  # 405 units reach the top
    with pytest.warns(UserWarning, match="resource budget of 100 cannot reach"):
        nas.optimize(objective, SPACE, "hyperband", budget=10_000, resource_budget=100,
                     executor="inline")  # fmt: skip
    with pytest.raises(ValueError, match="resource_budget needs a scheduler"):
        nas.optimize(lambda c: 0.0, SPACE, "random", resource_budget=10, executor="inline")


class _Curve:
    """Reports ``x * epoch`` after each epoch (maximized) and returns ``x * fidelity``."""

    def __call__(self, config: dict[str, Any], fidelity: float) -> float:
        for epoch in range(1, int(fidelity) + 1):
            nas.report(config["x"] * epoch, epoch)
        return float(config["x"] * fidelity)


def _expected_prune(xs: list[float], eta: int = 3, rungs: tuple[int, ...] = (1, 3)) -> list:
    """Where each trial (in order, run one at a time) stops under ASHA's stopping rule."""
    seen: list[list[float]] = [[] for _ in rungs]
    out: list[int | None] = []
    for x in xs:
        stop = None
        for k, fid in enumerate(rungs):
            done = sorted(seen[k], reverse=True)
            keep = max(1, (len(done) + 1) // eta)
            seen[k].append(x * fid)
            if len(done) >= keep and x * fid < done[keep - 1]:
                stop = fid
                break
        out.append(stop)
    return out


def test_asha_stop_mode_prunes_reporting_trials_by_the_rung_rule(tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    opts = {"max_fidelity": 9, "eta": 3, "mode": "stop"}
    res = nas.optimize(
        _Curve(), SPACE, "asha", budget=30, seed=0, executor="inline",
        strategy_options=opts, journal=journal,
    )  # fmt: skip
    assert all(t.fidelity == 9 for t in res.history)
    pruned = [(t.metrics or {}).get("pruned_at") for t in res.history]
    assert pruned == _expected_prune([t.config["x"] for t in res.history])
    assert 10 <= sum(p is not None for p in pruned) <= 28
    for t, p in zip(res.history, pruned, strict=True):
        assert t.reached_fidelity == (p or 9)
        assert t.value == pytest.approx(t.config["x"] * (p or 9))
    full = [t for t, p in zip(res.history, pruned, strict=True) if p is None]
    assert res.best_value == max(t.value for t in full)  # pruned values are at lower fidelity
    # resume replays the rung values from the journal's metrics
    lines = journal.read_text().splitlines(keepends=True)
    crashed = tmp_path / "crashed.jsonl"
    crashed.write_text("".join(lines[: len(lines) // 2]))
    again = nas.resume(crashed, _Curve(), SPACE)
    assert again.resume_mismatches == 0
    assert [(t.config, t.metrics) for t in again.history] == [
        (t.config, t.metrics) for t in res.history
    ]


def test_asha_stop_mode_prunes_in_forked_trials_too() -> None:
    opts = {"max_fidelity": 9, "eta": 3, "mode": "stop"}
    res = nas.optimize(
        _Curve(), SPACE, "asha", budget=12, seed=1, executor="local", strategy_options=opts
    )
    pruned = [(t.metrics or {}).get("pruned_at") for t in res.history]
    assert pruned == _expected_prune([t.config["x"] for t in res.history])
    assert any(p is not None for p in pruned)


def test_report_does_nothing_outside_a_pruning_search() -> None:
    assert _Curve()({"x": 0.5}, 3) == 1.5
    res = nas.optimize(
        _Curve(), SPACE, "asha", budget=13, seed=0, executor="inline",
        strategy_options={"max_fidelity": 9, "eta": 3},
    )  # fmt: skip
    assert all(t.metrics is None for t in res.history)  # promote mode: no rule, no rungs
    with pytest.raises(ValueError, match="must be finite"):
        nas.report(float("nan"), 1)
    with pytest.raises(ValueError, match="mode must be"):
        nas.ASHA(SPACE, mode="halve")
