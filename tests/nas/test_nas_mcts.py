"""AlphaX-style MCTS: rollouts reach the expanded node, real results are backed up,
large integer ranges stay bounded, and searches beat random search where they should."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from nas_helpers import SMALL_OPTIONS, categorical_table

import nas


def _run(s: nas.Strategy, objective: Any, budget: int) -> float:
    """Best value (in the strategy's sign) of a sequential ask/tell loop."""
    best = -math.inf
    for _ in range(budget):
        [c] = s.suggest(1)
        v = objective(nas.strip_meta(c))
        best = max(best, v if s.maximize else -v)
        s.observe([(c, v)])
    return best


@pytest.mark.parametrize("predictor", [False, True])
def test_every_suggestion_is_a_rollout_from_the_expanded_node(predictor: bool) -> None:
    space, table = categorical_table()
    space = nas.Space({**dict(zip(space.names, space.params, strict=True)), "r": nas.Real(0, 1)})
    s = nas.AlphaX(space, seed=0, predictor=predictor, n_simulations=4)
    assert isinstance(s.model, nas.SequentialActions)
    for _ in range(30):
        cfgs = s.suggest(2)
        for c in cfgs:
            path = s._inflight[s.trial_key(c)][0]
            expanded = path[-1]
            assert len(expanded) >= 1  # the tree grew by one node under the root at least
            state = s.model.state_of(space.to_rows([c])[0])
            assert state[: len(expanded)] == expanded
        s.observe([(c, table(c)) for c in cfgs])


@pytest.mark.parametrize("predictor", [False, True])
def test_real_results_are_backed_up_along_the_path(predictor: bool) -> None:
    space, table = categorical_table()
    s = nas.AlphaX(space, seed=1, predictor=predictor, n_simulations=4)
    backed: list[tuple[tuple[int, ...], float]] = []  # (terminal state, value backed up)
    for _ in range(20):
        cfgs = s.suggest(2)
        for c in cfgs:
            q_pred = s._inflight[s.trial_key(c)][2]
            v = table(c)
            q = v if q_pred is None else 0.5 * (v + q_pred)  # Eq. 3.2 with a predictor
            backed.append((s.model.state_of(space.to_rows([c])[0]), q))
        s.observe([(c, table(c)) for c in cfgs])
    root = s.model.root()
    assert s.visits[root] == 40
    assert s.value_sum[root] == pytest.approx(sum(q for _, q in backed))
    for child in s.children[root]:
        mine = [q for state, q in backed if state[: len(child)] == child]
        assert s.visits[child] == len(mine)
        assert s.value_sum[child] == pytest.approx(sum(mine))


def test_the_predictor_dispatches_its_best_predicted_rollout() -> None:
    from nas._numeric import fit_linear

    space, table = categorical_table()
    s = nas.AlphaX(space, seed=3, predictor=True, n_simulations=8)
    for _ in range(12):  # past the predictor's minimum of observations
        s.observe([(c, table(c)) for c in s.suggest(1)])
    rollout, rows = s._rollout, []

    def recorded(state: Any) -> np.ndarray | None:
        row = rollout(state)
        if row is not None:
            rows.append(row)
        return row

    s._rollout = recorded  # type: ignore[method-assign]
    beaten = 0
    for _ in range(15):
        rows.clear()
        w = fit_linear(space.features(s._rows), s._scores)
        [c] = s.suggest(1)
        pred = space.features(np.array(rows)) @ w[:-1] + w[-1]
        new = [
            p for p, r in zip(pred, rows, strict=True) if space.row_key(r) not in s._observed_keys
        ]
        mine = (space.features(space.to_rows([c])) @ w[:-1] + w[-1])[0]
        if new:  # the best new rollout by the predictor, not the first one drawn
            assert mine == pytest.approx(max(new))
            beaten += max(new) > pred[0] + 1e-9
        s.observe([(c, table(c))])
    assert beaten >= 3  # the order mattered, not just the first rollout


def test_failures_undo_the_virtual_visit() -> None:
    space, table = categorical_table()
    s = nas.AlphaX(space, seed=2, predictor=False)
    cfgs = s.suggest(3)
    s.observe([(cfgs[0], table(cfgs[0])), (cfgs[1], None), (cfgs[2], math.nan)])
    root = s.model.root()
    assert s.visits[root] == 1 and s.value_sum[root] == pytest.approx(table(cfgs[0]))


def test_large_integer_ranges_stay_bounded() -> None:
    space = nas.Space({"a": nas.Int(0, 10**6), "b": nas.Int(0, 10**6), "c": nas.Int(0, 3)})
    s = nas.AlphaX(space, seed=0, bins=8)
    for _ in range(20):
        [c] = s.suggest(1)
        s.observe([(c, -abs(c["a"] - 300_000) - abs(c["b"] - 700_000) + c["c"])])
    root = s.model.root()
    assert len(s.model.actions(root)) == 8  # bins, not a million actions
    assert len(s.model.actions((0, 0))) == 4  # a small Int keeps one action per value
    assert max(len(acts) for acts in s.untried.values()) <= 8
    assert len(s.visits) <= 1 + 20 * 3


# Strategy, objective, sign, budget, seeds and the margin by which the strategy's mean
# best must beat random search's over the same seeds (random search fails every row);
# bo, turbo and lamcts on a smooth function have theirs in test_nas_models.py.
_SPHERE = nas.synthetic("sphere", 4)
_TABLE_SPACE, _TABLE = categorical_table()
IMPROVES = [
    ("alphax", _TABLE_SPACE, _TABLE, True, 60, 5, 0.25),
    ("lanas", _TABLE_SPACE, _TABLE, True, 60, 5, 0.25),
    ("lamcts", _TABLE_SPACE, _TABLE, True, 60, 5, 0.25),
    ("evolution", _SPHERE.space, _SPHERE, False, 100, 3, 2.0),
]


@pytest.mark.parametrize(
    ("name", "space", "objective", "maximize", "budget", "seeds", "margin"),
    IMPROVES,
    ids=[row[0] for row in IMPROVES],
)
def test_strategy_improves_on_random_search(
    name: str,
    space: nas.Space,
    objective: Any,
    maximize: bool,
    budget: int,
    seeds: int,
    margin: float,
) -> None:
    def mean_best(strategy: str, options: dict[str, Any]) -> float:
        return float(
            np.mean(
                [
                    _run(
                        nas.make_strategy(strategy, space, seed, maximize, **options),
                        objective,
                        budget,
                    )
                    for seed in range(seeds)
                ]
            )
        )

    options = {k: v for k, v in SMALL_OPTIONS[name].items() if k != "n_candidates"}
    if name == "alphax":
        options = {"predictor": False}  # the tree alone (the predictor also beats random)
    ours, rand = mean_best(name, options), mean_best("random", {})
    assert ours > rand + margin, (ours, rand)
