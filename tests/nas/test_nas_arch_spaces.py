"""nas.spaces: encodings, validity, isomorphism keys, and graphs that train."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import nas
import nas.spaces as sp

sn = pytest.importorskip("superneurons")

BUILD = {"num_classes": 10, "image_size": 8, "in_channels": 1, "channels": 4, "cells": 1}


def _nb101_cfg(edges: list[tuple[int, int]], ops: dict[int, str]) -> dict[str, Any]:
    cfg: dict[str, Any] = {f"op{k}": ops.get(k, "conv3x3") for k in range(1, 6)}
    for i in range(7):
        for j in range(i + 1, 7):
            cfg[f"e{i}_{j}"] = int((i, j) in edges)
    return cfg


@pytest.mark.parametrize("name", ["nb101", "nb201", "chain"])
def test_encode_decode_round_trip(name: str) -> None:
    space = sp.get_space(name)
    for cfg in space.sample(20, seed=3):
        vec = space.encode(cfg)
        assert vec.shape == (space.n_features,)
        assert set(np.unique(vec)) <= {0.0, 1.0} or name == "chain"  # adjacency + one-hot
        assert space.decode(vec) == cfg


def test_encodings_are_adjacency_plus_one_hot_ops() -> None:
    s101 = sp.nb101()
    cfg = _nb101_cfg([(0, 1), (1, 6)], {1: "maxpool3x3"})
    vec = s101.encode(cfg)
    assert vec[:15].reshape(5, 3)[0].tolist() == [0.0, 0.0, 1.0]  # op1 one-hot: maxpool3x3
    assert vec[15:].sum() == 2  # two edge bits
    s201 = sp.nb201()
    vec = s201.encode({n: "conv3x3" for n in s201.names})
    assert vec.reshape(6, 5).argmax(axis=1).tolist() == [3] * 6


@pytest.mark.parametrize("name", ["nb101", "nb201", "chain"])
def test_json_round_trip_keeps_the_space_kind(name: str) -> None:
    space = sp.get_space(name)
    back = nas.Space.from_json(space.to_json())
    assert type(back) is type(space) and back.names == space.names


def test_nb101_validity_rules() -> None:
    s = sp.nb101()
    too_many = _nb101_cfg([(i, j) for i in range(7) for j in range(i + 1, 7)][:10], {})
    assert not s.contains(too_many)
    with pytest.raises(ValueError, match="max_edges"):
        s.to_graph(too_many, **BUILD)
    no_path = _nb101_cfg([(0, 1), (2, 6)], {})
    assert not s.contains(no_path)
    with pytest.raises(ValueError, match="no path"):
        s.to_graph(no_path, **BUILD)
    for cfg in s.sample(50, seed=0):
        assert s.contains(cfg)
        s.pruned(cfg)  # never raises on a sampled cell


def test_nb101_isomorphic_cells_share_a_key() -> None:
    s = sp.nb101()
    # a chain 0 -> a -> b -> out beside a single node 0 -> c -> out, numbered two ways
    a = _nb101_cfg([(0, 1), (1, 2), (2, 6), (0, 3), (3, 6)], {1: "conv3x3", 2: "conv1x1"})
    a["op3"] = "maxpool3x3"
    b = _nb101_cfg([(0, 2), (2, 3), (3, 6), (0, 1), (1, 6)], {2: "conv3x3", 3: "conv1x1"})
    b["op1"] = "maxpool3x3"
    assert s.contains(a) and s.contains(b)
    assert not np.array_equal(s.to_rows([a]), s.to_rows([b]))
    assert s.key(a) == s.key(b)
    # the same shape with the chain's ops swapped is a different architecture
    c = dict(a, op1="conv1x1", op2="conv3x3")
    assert s.key(c) != s.key(a)
    # a node off every input-output path is pruned: its op and edges do not matter
    d = dict(a, op4="maxpool3x3", e0_4=1)
    assert s.key(d) == s.key(a)
    e = dict(a, op5="conv1x1")  # node 5 is disconnected in a
    assert s.key(e) == s.key(a)
    # key and row_key agree (strategies mix the two)
    assert s.key(b) == s.row_key(s.to_rows([b])[0])


def test_nb101_isomorphic_cells_build_equal_networks() -> None:
    s = sp.nb101()
    a = _nb101_cfg([(0, 1), (0, 2), (1, 6), (2, 6)], {1: "conv3x3", 2: "conv1x1"})
    b = _nb101_cfg([(0, 1), (0, 2), (1, 6), (2, 6)], {1: "conv1x1", 2: "conv3x3"})
    ga, gb = s.to_graph(a, **BUILD), s.to_graph(b, **BUILD)
    assert ga.num_params() == gb.num_params() and sp.graph_flops(ga) == sp.graph_flops(gb)


def test_nb101_channels_split_at_the_output_and_double_per_stage() -> None:
    s = sp.nb101()
    cfg = _nb101_cfg([(0, 1), (0, 2), (0, 3), (1, 6), (2, 6), (3, 6), (0, 6)], {})
    g = s.to_graph(cfg, num_classes=10, image_size=8, in_channels=1, channels=10, cells=1)
    shapes = {layer.name: layer.shape for layer in g.layers}
    assert [shapes[f"s0c0_n{v}_conv3x3_relu"][0] for v in (1, 2, 3)] == [4, 3, 3]
    assert shapes["s0c0_out_add"] == (10, 8, 8)
    assert shapes["s2c0_out_add"] == (40, 2, 2)


def test_nb201_zero_cell_still_trains_and_outputs_zero() -> None:
    s = sp.nb201()
    cfg = {n: "none" for n in s.names}
    cfg["e1_0"] = "conv3x3"  # node 1 is live but nothing reaches node 3
    g = s.to_graph(cfg, **BUILD)
    sess = sn.Session(g, batch_size=16, seed=0)
    rng = np.random.default_rng(0)
    y = (np.arange(16) % 10).astype(np.int32)
    for _ in range(3):
        x = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
        assert np.isfinite(sess.train_step(x, y, lr=0.1).loss)
    x = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
    logits = sess.evaluate(x, y).logits
    bias = sess.parameters()["classifier.bias"]
    np.testing.assert_array_equal(logits, np.broadcast_to(bias, logits.shape))


def test_nb201_cell_sums_inputs_and_reductions_halve() -> None:
    s = sp.nb201()
    cfg = {n: "conv3x3" for n in s.names}
    g = s.to_graph(cfg, num_classes=10, image_size=8, in_channels=1, channels=4, cells=2)
    kinds = [layer.kind for layer in g.layers]
    assert kinds.count("conv2d") == 1 + 6 * 6 + 2 * 3  # stem, 6 cells x 6 edges, 2 reductions
    shapes = {layer.name: layer.shape for layer in g.layers}
    assert shapes["gap"] == (16, 1, 1) and shapes["last_bn"] == (16, 2, 2)
    skip = {n: "skip_connect" for n in s.names}
    g = s.to_graph(skip, **BUILD)
    assert "s0c0_e1_0_skip_connect" not in shapes and g.num_params() > 0


@pytest.mark.parametrize("name", ["nb101", "nb201", "chain"])
def test_every_sampled_architecture_trains_one_step(name: str) -> None:
    space = sp.chain(widths=(4, 8)) if name == "chain" else sp.get_space(name)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 1, 8, 8)).astype(np.float32)
    y = (np.arange(8) % 10).astype(np.int32)
    for cfg in space.sample(12, seed=1):
        g = space.to_graph(cfg, **BUILD)  # type: ignore[attr-defined]
        sess = sn.Session(g, batch_size=8, seed=0)
        before = {k: v.copy() for k, v in sess.parameters().items()}
        r = sess.train_step(x, y, lr=0.05)
        assert np.isfinite(r.loss), cfg
        after = sess.parameters()
        assert any(not np.array_equal(before[k], after[k]) for k in before), cfg


def test_to_graph_rejects_bad_arguments() -> None:
    s = sp.nb201()
    cfg = {n: "conv1x1" for n in s.names}
    with pytest.raises(ValueError, match="num_classes"):
        s.to_graph(cfg, num_classes=1, image_size=8)
    with pytest.raises(ValueError, match="channels"):
        s.to_graph(cfg, num_classes=10, image_size=8, channels=0)
    with pytest.raises(ValueError, match="e3_2"):
        s.to_graph({k: v for k, v in cfg.items() if k != "e3_2"}, num_classes=10, image_size=8)
    with pytest.raises(ValueError, match="not in the space"):
        s.to_graph({**cfg, "bogus": 1}, num_classes=10, image_size=8)
    with pytest.raises(ValueError, match="unknown architecture space"):
        sp.get_space("nb999")
    with pytest.raises(ValueError, match="unknown ops"):
        sp.chain(ops=["conv7x7"])


def _live_conv3x3(cfg: dict[str, Any]) -> float:
    nodes, _ = sp.nb101().pruned(cfg)
    return float(sum(cfg[f"op{v}"] == "conv3x3" for v in nodes if 0 < v < 6))


@pytest.mark.parametrize("strategy", ["lamcts", "evolution", "mcts", "lanas"])
def test_strategies_search_nb101_with_isomorphism_keys(strategy: str) -> None:
    s = sp.nb101()
    res = nas.optimize(_live_conv3x3, s, strategy, budget=16, seed=0, executor="inline", workers=2)
    assert res.n_finished == 16
    keys = [s.key(t.config) for t in res.history]
    assert len(set(keys)) == len(keys)  # no architecture is trained twice
