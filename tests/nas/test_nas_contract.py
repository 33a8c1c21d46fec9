"""The contract every strategy keeps (see Note [Strategy contract] in nas/_strategy.py)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from nas_helpers import SMALL_OPTIONS, mixed_objective, mixed_space

import nas

NAMES = sorted(nas.STRATEGIES)


def make(name: str, seed: int | None = 0, maximize: bool = True) -> nas.Strategy:
    return nas.make_strategy(
        name, mixed_space(), seed=seed, maximize=maximize, **SMALL_OPTIONS[name]
    )


def evaluate(cfg: dict[str, Any]) -> float:
    return mixed_objective(nas.strip_meta(cfg), cfg.get("_fidelity"))


def drive(s: nas.Strategy, rounds: int, batch: int = 1) -> list[dict[str, Any]]:
    seen = []
    for _ in range(rounds):
        cfgs = s.suggest(batch)
        seen += cfgs
        s.observe([(c, evaluate(c)) for c in cfgs])
    return seen


def test_every_strategy_is_covered() -> None:
    assert set(NAMES) == set(SMALL_OPTIONS)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_suggestions(name: str) -> None:
    assert drive(make(name, seed=3), 30, batch=2) == drive(make(name, seed=3), 30, batch=2)


@pytest.mark.parametrize("name", NAMES)
def test_different_seeds_differ(name: str) -> None:
    assert drive(make(name, seed=1), 4) != drive(make(name, seed=2), 4)


@pytest.mark.parametrize("name", NAMES)
def test_every_suggestion_is_valid(name: str) -> None:
    space = mixed_space()
    for cfg in drive(make(name), 20, batch=3):
        assert space.contains(cfg), cfg
        if name in ("hyperband", "asha"):
            assert cfg["_fidelity"] in (1, 3, 9)
        else:
            assert not any(k.startswith("_") for k in cfg)


@pytest.mark.parametrize("name", NAMES)
def test_batches_never_repeat_a_pending_config(name: str) -> None:
    s = make(name)
    drive(s, 15)  # past every strategy's initial phase
    keys = [s.trial_key(c) for c in s.suggest(4) + s.suggest(4) + s.suggest(4)]
    assert len(set(keys)) == 12
    assert len(s.pending) == 12


@pytest.mark.parametrize("name", NAMES)
def test_observing_clears_pending_and_failures_are_accepted(name: str) -> None:
    s = make(name)
    drive(s, 12)
    a, b = s.suggest(2)
    s.observe([(a, evaluate(a)), (b, None)])
    assert not s.pending
    assert s.n_observed == 13
    drive(s, 3)


@pytest.mark.parametrize("name", NAMES)
def test_pickled_strategy_continues_identically(name: str) -> None:
    s = make(name)
    drive(s, 14)
    pending = s.suggest(2)
    clone = pickle.loads(pickle.dumps(s))
    for strat in (s, clone):
        strat.observe([(c, evaluate(c)) for c in pending])
    assert drive(s, 8, batch=2) == drive(clone, 8, batch=2)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("cut", [0.3, 0.7])
def test_resume_from_truncated_journal_equals_uninterrupted_run(
    name: str, cut: float, tmp_path: Path
) -> None:
    space = mixed_space()
    full = tmp_path / "full.jsonl"
    res = nas.optimize(
        mixed_objective,
        space,
        name,
        budget=24,
        seed=5,
        executor="inline",
        journal=full,
        strategy_options=SMALL_OPTIONS[name],
    )
    lines = full.read_text().splitlines(keepends=True)
    crashed = tmp_path / "crashed.jsonl"
    keep = max(1, int(len(lines) * cut))
    # the crash also tore the line being written
    crashed.write_text("".join(lines[:keep]) + lines[keep][: len(lines[keep]) // 2])
    again = nas.resume(crashed, mixed_objective, space)
    assert again.resume_mismatches == 0
    summary = [(t.id, t.config, t.value, t.fidelity, t.status) for t in res.history]
    assert [(t.id, t.config, t.value, t.fidelity, t.status) for t in again.history] == summary
    assert again.best_value == res.best_value


@pytest.mark.parametrize("name", ["random", "lamcts", "turbo"])
def test_minimize_reports_the_smallest_value(name: str) -> None:
    s = make(name, maximize=False)
    values = [evaluate(c) for c in drive(s, 12)]
    best = s.best()
    assert best is not None and best[1] == min(values)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_raises_value_error(name: str) -> None:
    s = make(name)
    with pytest.raises(ValueError, match="n must be a positive int"):
        s.suggest(0)
    [c] = s.suggest(1)
    with pytest.raises(ValueError, match="value must be a number"):
        s.observe([(c, "high")])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="expected \\(config, value\\) pairs"):
        s.observe([c])  # type: ignore[list-item]
