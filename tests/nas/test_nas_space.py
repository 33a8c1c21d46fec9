"""Search spaces: parameters, encoding, conditions, constraints, sampling, neighbours."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nas_helpers import mixed_space

import nas


def test_issue_example_space() -> None:
    space = nas.Space(
        {
            "lr": nas.Real(1e-4, 1e-1, log=True),
            "depth": nas.Int(1, 10),
            "op": nas.Categorical(["conv3x3", "conv1x1", "maxpool"]),
        }
    )
    assert space.n_features == 1 + 1 + 3
    for cfg in space.sample(50, seed=0):
        assert space.contains(cfg)
        assert 1e-4 <= cfg["lr"] <= 1e-1 and isinstance(cfg["depth"], int)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: nas.Real(1.0, 1.0), "low=1.0 must be below high=1.0"),
        (lambda: nas.Real(0.0, 1.0, log=True), "low must be positive"),
        (lambda: nas.Real(0.0, float("inf")), "finite"),
        (lambda: nas.Int(5, 1), "low=5 must not exceed high=1"),
        (lambda: nas.Categorical([]), "must not be empty"),
        (lambda: nas.Categorical(["a", "a"]), "distinct"),
        (lambda: nas.Space({}), "params must not be empty"),
        (lambda: nas.Space({"_x": nas.Real(0, 1)}), "'_x'"),
        (lambda: nas.Space({"x": nas.Real(0, 1)}, conditions={"x": ("y", [1])}), "unknown parent"),
        (
            lambda: nas.Space(
                {"x": nas.Real(0, 1), "c": nas.Categorical(["a"])}, conditions={"x": ("c", ["a"])}
            ),
            "must come before",
        ),
        (
            lambda: nas.Space(
                {"x": nas.Real(0, 1), "y": nas.Real(0, 1)}, conditions={"y": ("x", [0.5])}
            ),
            "must be Int or Categorical",
        ),
    ],
)
def test_bad_definitions_raise_value_error_naming_the_problem(make: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()  # type: ignore[operator]


def test_int_rejects_floats() -> None:
    with pytest.raises(TypeError, match="integers"):
        nas.Int(0.5, 2)  # type: ignore[arg-type]


def test_to_rows_names_the_bad_parameter() -> None:
    space = mixed_space()
    good = space.sample(1, seed=0)[0]
    with pytest.raises(ValueError, match="'depth'"):
        space.to_rows([{**good, "depth": 99}])
    with pytest.raises(ValueError, match="missing active parameter 'lr'"):
        space.to_rows([{k: v for k, v in good.items() if k != "lr"}])
    assert not space.contains({**good, "op": "nope"})


def test_conditional_parameter_present_exactly_when_active() -> None:
    space = mixed_space()
    for cfg in space.sample(200, seed=1):
        assert ("momentum" in cfg) == (cfg["op"] == "conv3x3")
    cfg = {"x": 0.0, "lr": 0.01, "depth": 2, "op": "maxpool"}
    assert space.contains(cfg)
    assert not space.contains({**cfg, "momentum": 0.5})  # inactive parameter given
    assert space.encode(cfg)[-1] == 0.0  # inactive -> zero feature


def test_nested_conditions_in_a_chain_space() -> None:
    space = nas.chain_space(max_depth=4)
    for cfg in space.sample(100, seed=0):
        d = cfg["depth"]
        assert all((f"op{i}" in cfg) == (i <= d) for i in range(1, 5))
        assert space.contains(cfg)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_encode_decode_roundtrip(seed: int) -> None:
    space = mixed_space()
    cfg = space.sample(1, seed=seed)[0]
    back = space.decode(space.encode(cfg))
    assert back.keys() == cfg.keys()
    for k, v in cfg.items():
        if isinstance(v, float):
            assert back[k] == pytest.approx(v, rel=1e-9, abs=1e-12)
        else:
            assert back[k] == v


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), half=st.floats(0.0, 1.0))
def test_box_rows_stay_in_range_and_native(seed: int, half: float) -> None:
    space = mixed_space()
    rng = np.random.default_rng(seed)
    center = space.sample_rows(rng, 1)[0]
    rows = space.box_rows(rng, center, half, 50, perturb_prob=0.5)
    for cfg in space.from_rows(rows):
        assert space.contains(cfg)
    ints = rows[:, space.index["depth"]]
    assert np.all(ints == np.round(ints))
    assert np.all(np.abs(rows[:, 0] - center[0]) <= half + 1e-12)


def test_box_rows_always_reach_the_neighbouring_integers() -> None:
    space = nas.Space({"n": nas.Int(0, 100)})
    rng = np.random.default_rng(0)
    rows = space.box_rows(rng, np.array([50.0]), 1e-6, 400)
    assert set(rows[:, 0].tolist()) == {49.0, 51.0}  # the centre itself is never drawn
    wide = space.box_rows(rng, np.array([0.0]), 0.05, 2000)[:, 0]
    assert set(wide.tolist()) == set(range(1, 6))  # ints 1..5, each about equally often
    assert np.bincount(wide.astype(int))[1:].min() > 300


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), half=st.floats(1e-3, 1.0), prob=st.floats(0.0, 1.0))
def test_box_rows_never_copy_the_centre(seed: int, half: float, prob: float) -> None:
    rng = np.random.default_rng(seed)
    cats = nas.Space({f"c{i}": nas.Categorical(["a", "b", "c"]) for i in range(5)})
    for space in (
        cats,
        mixed_space(),
        nas.Space({"one": nas.Categorical(["x"]), "k": nas.Int(0, 1)}),
    ):
        center = space.sample_rows(rng, 1)[0]
        rows = space.box_rows(rng, center, half, 200, perturb_prob=prob)
        assert not np.any(np.all(rows == center, axis=1))


def test_box_rows_perturbed_categoricals_always_change() -> None:
    space = nas.Space({f"c{i}": nas.Categorical(list(range(4))) for i in range(3)})
    rng = np.random.default_rng(0)
    center = np.zeros(3)
    for half in (0.0, 0.1, 0.5):
        rows = space.box_rows(rng, center, half, 4000, perturb_prob=1.0)
        changed = (rows != center).mean(axis=0)
        p = min(max(2 * half, 0.2), 1.0)  # the chance that each categorical is chosen
        assert np.allclose(changed, p + (1 - p) ** 3 / 3, atol=0.03), (half, changed)


def test_constraints_are_honoured_by_sampling_and_mutation() -> None:
    def small_sum(c: dict[str, float]) -> bool:
        return c["a"] + c["b"] <= 1.0

    space = nas.Space({"a": nas.Real(0, 1), "b": nas.Real(0, 1)}, constraints=[small_sum])
    rng = np.random.default_rng(0)
    for cfg in space.sample(100, seed=0):
        assert small_sum(cfg) and space.contains(cfg)
        assert small_sum(space.mutate(cfg, rng))
    assert not space.contains({"a": 0.9, "b": 0.9})
    assert not space.serializable()


def test_unsatisfiable_constraints_raise() -> None:
    space = nas.Space({"a": nas.Real(0, 1)}, constraints=[lambda c: False])
    with pytest.raises(ValueError, match="satisfiable"):
        space.sample(1, seed=0)


def test_mutate_changes_something_and_stays_valid() -> None:
    space = mixed_space()
    rng = np.random.default_rng(0)
    for cfg in space.sample(50, seed=2):
        child = space.mutate(cfg, rng)
        assert child != cfg and space.contains(child)


def test_json_and_pickle_roundtrip() -> None:
    space = mixed_space()
    again = nas.Space.from_json(json.loads(json.dumps(space.to_json())))
    assert again.names == space.names and again.conditions == space.conditions
    assert again.sample(5, seed=3) == space.sample(5, seed=3)
    assert pickle.loads(pickle.dumps(space)).sample(5, seed=3) == space.sample(5, seed=3)


def test_sampling_is_seeded() -> None:
    space = mixed_space()
    assert space.sample(10, seed=7) == space.sample(10, seed=7)
    assert space.sample(10, seed=7) != space.sample(10, seed=8)


def test_cell_space_is_adjacency_plus_one_hot_ops() -> None:
    cell = nas.CellSpace()
    assert cell.n_features == 21 + 5 * 3
    for cfg in cell.sample(100, seed=0):
        assert cell.contains(cfg) and len(cell.edges(cfg)) <= 9
        assert cell.reachable(cell.edges(cfg))
        assert np.array_equal(np.triu(cell.adjacency(cfg), 1), cell.adjacency(cfg))
    broken = {**cell.sample(1, seed=0)[0], **{f"e{i}_6": 0 for i in range(6)}}
    assert not cell.contains(broken)
    again = nas.Space.from_json(json.loads(json.dumps(cell.to_json())))
    assert isinstance(again, nas.CellSpace) and again.sample(3, seed=1) == cell.sample(3, seed=1)


def test_nasbench201_space() -> None:
    space = nas.nasbench201_space()
    assert len(space.names) == 6 and space.n_features == 30


def test_mcts_builds_valid_cells_with_editing_actions() -> None:
    cell = nas.CellSpace(n_nodes=5, max_edges=6)
    s = nas.AlphaX(cell, seed=0, n_simulations=4)
    for _ in range(25):
        cfgs = s.suggest(2)
        assert all(cell.contains(c) for c in cfgs)
        s.observe([(c, float(len(cell.edges(c))) + (c["op1"] == "conv3x3")) for c in cfgs])
    root = s.model.root()
    assert s.visits[root] == 50
    assert len(s.children[root]) == 3  # the first action chooses op1 among 3 ops
