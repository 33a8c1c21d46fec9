"""LA-MCTS specifics: the partition, the region constraints and UCB selection."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest

import nas
from nas._tree import Node, PartitionTree, in_region, two_means, ucb_score


def _fed(solver: str, n: int = 60, seed: int = 0, **kw: object) -> nas.LAMCTS:
    f = nas.synthetic("ackley", 6)
    s = nas.LAMCTS(
        f.space,
        seed=seed,
        maximize=False,
        solver=solver,
        n_init=20,
        leaf_size=8,
        n_candidates=300,
        **kw,
    )  # type: ignore[arg-type]
    for _ in range(n):
        s.observe([(c, f(c)) for c in s.suggest(1)])
    return s


def _internal(node: Node) -> list[Node]:
    out, todo = [], [node]
    while todo:
        cur = todo.pop()
        if cur.left is not None and cur.right is not None:
            out.append(cur)
            todo += [cur.left, cur.right]
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_left_child_has_the_better_mean_after_every_split(seed: int) -> None:
    s = _fed("bo", n=50, seed=seed)
    tree = s.build_tree()
    tree.build()
    splits = _internal(tree.root)
    assert len(splits) >= 3
    for node in splits:
        assert node.left is not None and node.right is not None
        left, right = tree.scores[node.left.idx], tree.scores[node.right.idx]
        assert left.mean() >= right.mean()
        assert node.left.mean == pytest.approx(left.mean())
        # the children partition the parent, as the SVM routes them
        assert sorted(np.concatenate([node.left.idx, node.right.idx])) == sorted(node.idx)
        assert np.all(node.goes_left(tree.feats[node.left.idx]))
        assert not np.any(node.goes_left(tree.feats[node.right.idx]))


def test_minimizing_keeps_the_lower_values_on_the_left() -> None:
    s = _fed("bo", n=40)
    tree = s.build_tree()
    assert tree.split(tree.root)
    assert tree.root.left is not None and tree.root.right is not None
    raw_left = -tree.scores[tree.root.left.idx]  # scores are negated values
    raw_right = -tree.scores[tree.root.right.idx]
    assert raw_left.mean() <= raw_right.mean()


@pytest.mark.parametrize("solver", ["bo", "turbo", "cmaes"])
def test_proposals_satisfy_every_svm_constraint_on_the_path(solver: str) -> None:
    kw = {"round_evals": 3} if solver != "bo" else {}
    s = _fed(solver, n=45, cp=0.5, **kw)
    checked = 0
    for _ in range(6):
        cfgs = s.suggest(3)
        path = s._round.path if solver != "bo" and s._round is not None else s.last_path
        assert path, "expected a non-trivial path after 45 samples"
        feats = s.space.features(s.space.to_rows(cfgs))
        assert in_region(path, feats).all()
        for node, went_left in path:
            assert np.all(node.goes_left(feats) == went_left)
        checked += len(cfgs)
        f = nas.synthetic("ackley", 6)
        s.observe([(c, f(c)) for c in cfgs])
    assert checked == 18


def test_cp_zero_selection_is_greedy() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((120, 3))
    y = -((x - 0.7) ** 2).sum(1)
    tree = PartitionTree(x, y, leaf_size=10, cp=0.0)
    leaf, path = tree.select()
    assert path and all(went_left for _, went_left in path)
    assert leaf.mean == max(n.mean for n in tree.build())


def test_large_cp_explores_the_less_visited_side() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((120, 3))
    y = -((x - 0.7) ** 2).sum(1)
    tree = PartitionTree(x, y, leaf_size=10, cp=1e6)
    tree.split(tree.root)
    assert tree.root.left is not None and tree.root.right is not None
    _, path = tree.select()
    smaller_is_left = tree.root.left.n < tree.root.right.n
    assert path[0][1] == smaller_is_left


def test_ucb_form() -> None:
    assert ucb_score(2.0, 0, 10, 1.0) == math.inf
    assert ucb_score(2.0, 4, 16, 0.0) == 2.0
    assert ucb_score(2.0, 4, 16, 0.5) == pytest.approx(
        2.0 + 2 * 0.5 * math.sqrt(2 * math.log(16) / 4)
    )


def test_two_means_separates_good_from_bad() -> None:
    z = np.array([[0.0, 1.0], [0.1, 1.1], [5.0, -1.0], [5.1, -1.2]])
    labels = two_means(z, z[:, 1])
    assert labels.tolist() == [0, 0, 1, 1]


def test_effective_cp_scales_with_the_observed_range() -> None:
    s = _fed("bo", n=25, cp_fraction=0.1)
    assert s.effective_cp() == pytest.approx(0.1 * float(np.ptp(s._scores)))
    fixed = nas.LAMCTS(s.space, cp=3.0)
    assert fixed.effective_cp() == 3.0


def test_integer_and_categorical_suggestions_stay_native() -> None:
    space = nas.Space(
        {"n": nas.Int(-3, 3), "c": nas.Categorical(["a", "b", "c"]), "x": nas.Real(0, 1)}
    )
    s = nas.LAMCTS(space, seed=0, n_init=8, leaf_size=5, n_candidates=200)
    ints, cats = set(), set()
    for _ in range(40):
        [c] = s.suggest(1)
        assert isinstance(c["n"], int) and -3 <= c["n"] <= 3
        assert c["c"] in ("a", "b", "c")
        ints.add(c["n"])
        cats.add(c["c"])
        s.observe([(c, -abs(c["n"] - 2) + (c["c"] == "b") + c["x"])])
    assert len(ints) >= 4 and cats == {"a", "b", "c"}
    best = s.best()
    assert best is not None and best[0]["n"] == 2 and best[0]["c"] == "b"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"solver": "cma"}, "solver"),
        ({"round_evals": 0}, "round_evals"),
        ({"leaf_init": -1}, "leaf_init"),
        ({"leaf_size": 1}, "leaf_size"),
        ({"cp": -1.0}, "cp"),
        ({"kernel": "sigmoid"}, "kernel"),
        ({"n_init": 1}, "n_init"),
        ({"perturb_dims": 0.0}, "perturb_dims"),
        ({"fail_tol": -1}, "fail_tol"),
        ({"ard_power": -0.5}, "ard_power"),
        ({"init": "halton"}, "init"),
    ],
)
def test_bad_options_name_the_parameter(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        nas.LAMCTS(nas.synthetic("sphere", 2).space, **kwargs)  # type: ignore[arg-type]


def _fed_lanas(cp: float | None, n: int = 40) -> nas.LaNAS:
    space = nas.Space({"a": nas.Real(0, 1), "b": nas.Real(0, 1), "c": nas.Real(0, 1)})
    s = nas.LaNAS(space, seed=0, height=4, n_init=20, cp=cp)
    for _ in range(n):
        s.observe([(c, c["a"] + 2 * c["b"] - c["c"]) for c in s.suggest(1)])
    return s


def test_lanas_samples_satisfy_every_linear_constraint_on_the_path() -> None:
    s = _fed_lanas(cp=None)
    for _ in range(5):
        cfgs = s.suggest(2)
        assert len(s.last_path) == 3  # height 4: three levels of latent actions
        feats = s.space.features(s.space.to_rows(cfgs))
        assert np.all(nas.LaNAS.violation(s.last_path, feats) == 0.0)
        s.observe([(c, c["a"] + 2 * c["b"] - c["c"]) for c in cfgs])


def test_lanas_cp_zero_goes_left_and_left_is_the_good_side() -> None:
    s = _fed_lanas(cp=0.0)
    path = s.select_path()
    assert path and all(went_left for _, _, went_left in path)
    feats = s.space.features(s._rows)
    w, thr, _ = path[0]
    left = feats @ w[:-1] + w[-1] > thr
    assert s._scores[left].mean() > s._scores[~left].mean()


@pytest.mark.parametrize("solver", ["turbo", "cmaes"])
def test_the_tree_is_relearned_every_round_and_the_solver_carries_over(solver: str) -> None:
    f = nas.synthetic("ackley", 6)
    s = nas.LAMCTS(f.space, seed=0, maximize=False, solver=solver, n_init=10, leaf_size=8,
                   round_evals=5, leaf_init=2, n_candidates=200)  # fmt: skip
    for _ in range(60):
        s.observe([(c, f(c)) for c in s.suggest(1)])
    # 50 model-based results in rounds of 5: the partition was learned about 10 times
    # (a round that ran until its trust region collapsed needed >= 7 x 6 failures)
    assert s.rounds >= 9
    assert 1 <= s.restarts < s.rounds  # most rounds kept the solver's state
    best = s.best()
    assert best is not None and best[1] < 12.0


def test_perturb_dims_sets_how_many_parameters_a_candidate_changes() -> None:
    space = nas.synthetic("sphere", 20).space
    assert nas.LAMCTS(space).perturb_dims == 5.0  # a quarter of the parameters
    f = nas.synthetic("sphere", 20)
    changed = {}
    for dims in (2.0, 20.0):
        s = nas.LAMCTS(f.space, seed=0, maximize=False, n_init=10, perturb_dims=dims)
        for _ in range(10):
            s.observe([(c, f(c)) for c in s.suggest(1)])
        best = s.space.to_rows([s.best()[0]])[0]  # type: ignore[index]
        rows = s.space.to_rows(s.suggest(1))
        changed[dims] = float(np.mean(rows != best))
    assert changed[2.0] < 0.3 < changed[20.0]


@pytest.mark.parametrize("init", ["sobol", "lhs"])
def test_a_space_filling_start_puts_one_sample_in_every_stratum(init: str) -> None:
    # Uniform draws would put 8 points one per eighth of a coordinate with
    # probability 8! / 8**8 (0.24%); the first 8 Sobol points and a Latin
    # hypercube always do, on every coordinate.
    f = nas.synthetic("sphere", 6)
    s = nas.LAMCTS(f.space, seed=3, maximize=False, n_init=8, init=init)
    seen = []
    for _ in range(8):
        seen += s.suggest(1)
        s.observe([(seen[-1], f(seen[-1]))])
    for col in f.space.to_rows(seen).T:  # a real's row value is its position in [0, 1]
        assert sorted(np.floor(col * 8).astype(int).tolist()) == list(range(8))


@pytest.mark.parametrize("init", ["sobol", "lhs"])
def test_a_space_filling_start_is_seeded_and_survives_pickling_mid_design(init: str) -> None:
    from nas_helpers import mixed_objective, mixed_space

    def make() -> nas.LAMCTS:
        return nas.LAMCTS(mixed_space(), seed=4, n_init=8, leaf_size=5, init=init)

    def drive(s: nas.LAMCTS, rounds: int) -> list[dict[str, object]]:
        seen = []
        for _ in range(rounds):
            cfgs = s.suggest(2)
            seen += cfgs
            s.observe([(c, mixed_objective(c)) for c in cfgs])
        return seen

    a, b = make(), make()
    assert drive(a, 2) == drive(b, 2)  # 4 of the 8 design rows used
    clone = pickle.loads(pickle.dumps(a))
    assert drive(a, 6) == drive(clone, 6) == drive(b, 6)
    assert drive(make(), 4) != drive(nas.LAMCTS(mixed_space(), seed=4, n_init=8), 4)


def test_a_space_filling_start_on_a_sampled_table_suggests_members() -> None:
    import nas.spaces as sp
    from nas._table import restrict_space

    members = sp.nb201().sample(12, seed=0)
    space = restrict_space(sp.nb201(), members)
    # the design is snapped to members (else every row would be rejected and
    # replaced by a uniform draw, and the start would not be space-filling)
    rows = space.design_rows(np.random.default_rng(0), 8, "lhs")
    assert all(c in members for c in space.from_rows(rows))
    s = nas.LAMCTS(space, seed=0, n_init=6, init="sobol")
    cfgs = s.suggest(6)
    assert len({space.key(c) for c in cfgs}) == 6
    assert all(c in members for c in cfgs)


def test_leaf_init_draws_open_a_round_inside_the_leaf_region() -> None:
    f = nas.synthetic("ackley", 4)
    s = nas.LAMCTS(f.space, seed=1, maximize=False, n_init=10, leaf_size=6,
                   round_evals=4, leaf_init=2, n_candidates=100)  # fmt: skip
    seeded = 0
    for _ in range(80):
        old, restarts = s._round, s.restarts
        left = old.seeds_left if old is not None else 0
        [c] = s.suggest(1)
        rnd = s._round
        if rnd is not None and rnd is not old:  # a new round: leaf_init draws if restarted
            left = s.leaf_init if s.restarts > restarts else 0
        if rnd is not None and rnd.seeds_left < left:  # this suggestion was a leaf_init draw
            seeded += 1
            assert len(rnd.path) >= 1 and s.region(rnd.path)(s.space.to_rows([c])).all()
        s.observe([(c, f(c))])
    assert seeded >= 6


def test_a_proposal_short_of_candidates_is_topped_up_inside_the_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import nas._lamcts as lamcts_module

    # the trust region yields nothing, so every suggestion comes from the top-up
    monkeypatch.setattr(
        lamcts_module, "propose_in_region", lambda space, *a, **k: np.zeros((0, space.n_params))
    )
    f = nas.synthetic("ackley", 8)
    s = nas.LAMCTS(f.space, seed=0, maximize=False, n_init=120, leaf_size=2)
    for _ in range(120):
        s.observe([(c, f(c)) for c in s.suggest(1)])
    for _ in range(10):
        [c] = s.suggest(1)
        assert s._round is not None
        inside = s.region(s._round.path)
        # a leaf so small that uniform draws (the old top-up) almost never land in it
        assert inside(s.space.sample_rows(np.random.default_rng(0), 5000)).mean() < 0.002
        assert inside(s.space.to_rows([c])).all()
        s.observe([(c, f(c))])


def test_a_space_filling_start_resumes_from_a_torn_journal(tmp_path: Path) -> None:
    from nas_helpers import mixed_objective, mixed_space

    opts = {"n_init": 10, "leaf_size": 5, "n_candidates": 100, "init": "sobol"}
    full = tmp_path / "full.jsonl"
    res = nas.optimize(mixed_objective, mixed_space(), "lamcts", budget=16, seed=2,
                       executor="inline", journal=full, strategy_options=opts)  # fmt: skip
    lines = full.read_text().splitlines(keepends=True)
    crashed = tmp_path / "crashed.jsonl"  # cut inside the design, mid-line
    crashed.write_text("".join(lines[:9]) + lines[9][:20])
    again = nas.resume(crashed, mixed_objective, mixed_space())
    assert again.resume_mismatches == 0
    assert [(t.config, t.value) for t in again.history] == [
        (t.config, t.value) for t in res.history
    ]
