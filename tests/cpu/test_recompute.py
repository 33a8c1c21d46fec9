"""Cost-aware recomputation: hand-computed segments and schedules, bit-identical training
(losses and parameters) against policy none under budgets from generous to the smallest
that fits, and properties on random DAGs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_memory_plan import dags, fan_join_graph

import superneurons as sn

RECOMPUTE = "liveness+recompute"


def chain_graph(cheap: int = 2) -> sn.Graph:
    """x -> c1 -> [cheap layers] -> c2 -> b2 -> r2 -> fc -> loss, every tensor 4.5 KiB a
    sample (1x1 convolutions over 32 channels: 16 FLOP per output byte, no workspace)."""
    g = sn.Graph()
    h = g.conv2d(g.input(shape=(32, 6, 6), name="x"), 32, 1, name="c1")
    kinds = ["bn", "relu", "pool", "relu2", "drop", "bn2", "relu3", "relu4"]
    for k in kinds[:cheap]:
        if k.startswith("bn"):
            h = g.batchnorm(h, name=k)
        elif k.startswith("relu"):
            h = g.relu(h, name=k)
        elif k == "pool":
            h = g.maxpool(h, 3, 1, padding=1, name=k)
        else:
            h = g.dropout(h, 0.3, name=k)
    h = g.relu(g.batchnorm(g.conv2d(h, 32, 1, name="c2"), name="b2"), name="r2")
    g.softmax_cross_entropy(g.fc(h, 5, name="fc"), name="loss")
    return g


def schedule(p: sn.MemoryPlan) -> list[str]:
    return [f"{s.layer}{'' if s.phase == 'forward' else ':' + s.phase[0]}" for s in p.steps]


def test_chain_segments_and_schedule_by_hand() -> None:
    p = sn.plan(chain_graph(2), 4, policy=RECOMPUTE)
    assert p.checkpoints == ["x", "c1", "c2", "fc"]
    assert [(s.layers, s.speed_centric) for s in p.segments] == [
        (("bn", "relu"), True),
        (("b2", "r2"), True),
    ]
    # fc's backward reads r2: b2 and r2 come back first; c2's backward reads relu, which
    # needs bn; the ReLUs' own backward steps read their outputs, already recomputed.
    assert schedule(p) == [
        *["x", "c1", "bn", "relu", "c2", "b2", "r2", "fc", "loss"],
        *["loss:b", "b2:r", "r2:r", "fc:b", "r2:b", "b2:b"],
        *["bn:r", "relu:r", "c2:b", "relu:b", "bn:b", "c1:b"],
    ]
    assert p.recompute_count == 4 == sum(s.recomputed for s in p.segments)
    assert 0 < p.recompute_fraction < 0.05  # BN and ReLU are cheap next to the convs
    live = sn.plan(chain_graph(2), 4, policy="liveness")
    assert p.peak_bytes < live.peak_bytes
    assert "recompute" in p.passes and "recompute" not in live.passes


def test_long_cheap_segment_goes_memory_centric() -> None:
    # Eight cheap layers between the convs hold more than any single step's working set,
    # so the segment is memory-centric: each backward step recomputes what it reads.
    p = sn.plan(chain_graph(8), 4, policy=RECOMPUTE)
    (seg, tail) = p.segments
    assert seg.layers == ("bn", "relu", "pool", "relu2", "drop", "bn2", "relu3", "relu4")
    assert not seg.speed_centric and tail.speed_centric
    assert seg.bytes > p.layer_bound_bytes - p.resident_bytes
    recomputed = [s.layer for s in p.steps if s.phase == "recompute"]
    assert recomputed.count("bn") > 1  # recomputed for several backward steps
    assert seg.recomputed == sum(1 for s in recomputed if s in seg.layers)


def test_fan_join_segment_by_hand() -> None:
    # a is a 1x1 conv over 2 channels (1 FLOP per output byte: cheap), b = relu(a),
    # c = relu(a), d = b + c: one segment {a, b, c, d} across the fan and the join.
    p = sn.plan(fan_join_graph(), 8, policy=RECOMPUTE)
    assert p.checkpoints == ["x", "fc"]
    # The segment holds 4 KiB, more than the largest step's working set (3 KiB), so it is
    # memory-centric: each backward step recomputes what it reads and frees it after.
    (seg,) = p.segments
    assert seg.layers == ("a", "b", "c", "d") and not seg.speed_centric
    assert seg.bytes == 4 * 1024 > p.layer_bound_bytes - p.resident_bytes == 3 * 1024
    assert schedule(p)[7:] == [
        *["loss:b", "a:r", "b:r", "c:r", "d:r", "fc:b"],  # fc's backward reads d
        *["d:b", "a:r", "c:r", "c:b"],  # c's backward reads c, recomputed from a
        *["a:r", "b:r", "b:b", "a:b"],  # and b's reads b; a's reads only x
    ]
    assert p.recompute_count == seg.recomputed == 8
    assert p.peak_bytes < sn.plan(fan_join_graph(), 8, policy="liveness").peak_bytes


def inception_like() -> sn.Graph:
    """Branches of conv-bn-relu and pooling, concatenated, with dropout and a residual."""
    g = sn.Graph()
    x = g.input(shape=(3, 8, 8), name="x")
    stem = g.relu(g.batchnorm(g.conv2d(x, 6, 3, padding=1, name="stem"), name="stem_bn"))
    for i in range(2):
        a = g.relu(g.batchnorm(g.conv2d(stem, 4, 1, name=f"a{i}"), name=f"a{i}_bn"))
        b = g.relu(g.batchnorm(g.conv2d(stem, 4, 3, padding=1, name=f"b{i}"), name=f"b{i}_bn"))
        c = g.conv2d(g.maxpool(stem, 3, 1, padding=1, name=f"p{i}"), 4, 1, name=f"c{i}")
        cat = g.concat([a, b, c], name=f"cat{i}")
        proj = g.conv2d(g.dropout(cat, 0.2, name=f"d{i}"), 6, 1, name=f"proj{i}")
        stem = g.relu(g.add(proj, stem, name=f"res{i}"), name=f"out{i}")
    g.softmax_cross_entropy(g.fc(g.global_avgpool(stem), 7, name="fc"), name="loss")
    return g


MODELS = {
    "resnet": lambda: sn.models.resnet(depth=8, num_classes=7, image_size=8, in_channels=3),
    "densenet": lambda: sn.models.densenet(
        block_config=(2, 2), growth_rate=4, num_classes=7, image_size=16
    ),
    "inception": inception_like,
}
# Batches at which recomputation lowers the peak of MODELS without a budget (at batch 4
# the small ResNet's and DenseNet's peaks are their parameters and conv workspaces).
RECOMPUTE_BATCH = {"resnet": 8, "densenet": 16, "inception": 4}


def smallest_budget(g: sn.Graph, batch: int, policy: str) -> int:
    """The smallest budget (a multiple of 256 bytes) at which the plan fits, by bisection
    (fitting is monotone in the budget up to placement details: the result is checked)."""
    hi = sn.plan(g, batch, policy=policy).capacity_bytes
    assert sn.plan(g, batch, policy=policy, budget=hi).fits
    lo = 256
    while hi - lo > 256:
        mid = (lo + hi) // 2 // 256 * 256
        if sn.plan(g, batch, policy=policy, budget=mid).fits:
            hi = mid
        else:
            lo = mid
    return hi


def train(g: sn.Graph, batch: int, policy: str, budget: int | None) -> tuple[list, dict]:
    s = sn.Session(g, batch, policy=policy, budget=budget, seed=3, debug_poison=True)
    rng = np.random.default_rng(5)
    shape = g.layers[0].shape
    x = rng.standard_normal((batch, *shape)).astype(np.float32)
    y = rng.integers(0, 7, batch).astype(np.int32)
    losses = [s.train_step(x, y, lr=0.05, weight_decay=1e-4) for _ in range(3)]
    losses.append(s.evaluate(x, y)[:2])
    assert s.memory_trace() == s.plan().bytes_in_use.tolist()
    if policy != "none":  # balanced: only the resident tensors remain
        assert s.memory_stats()["in_use_bytes"] == s.plan().resident_bytes
    return losses, s.state_dict()


@pytest.mark.parametrize("name", list(MODELS))
def test_policies_train_bit_identically_down_to_the_smallest_budget(name: str) -> None:
    g, batch = MODELS[name](), RECOMPUTE_BATCH[name]
    want_losses, want_state = train(g, batch, "none", None)
    live = sn.plan(g, batch, policy="liveness")
    full = sn.plan(g, batch, policy=RECOMPUTE)
    assert full.recompute_count > 0 and full.peak_bytes < live.peak_bytes
    tight = smallest_budget(g, batch, RECOMPUTE)
    assert tight < live.peak_bytes  # recomputation fits where liveness alone cannot
    assert not sn.plan(g, batch, policy="liveness", budget=tight).fits
    runs = [
        ("liveness", None),
        ("liveness", smallest_budget(g, batch, "liveness")),
        (RECOMPUTE, None),
        (RECOMPUTE, 4 * live.peak_bytes),  # generous: nothing is recomputed
        (RECOMPUTE, (tight + live.peak_bytes) // 2),
        (RECOMPUTE, tight),
    ]
    for policy, budget in runs:
        losses, state = train(g, batch, policy, budget)
        assert losses == want_losses, (policy, budget)
        for k, v in want_state.items():
            np.testing.assert_array_equal(state[k], v, err_msg=f"{policy} {budget} {k}")
    generous = sn.plan(g, batch, policy=RECOMPUTE, budget=4 * live.peak_bytes)
    assert generous.recompute_count == 0 and generous.peak_bytes == live.peak_bytes
    assert sn.plan(g, batch, policy=RECOMPUTE, budget=tight).recompute_count > 0


def test_budget_ladder_spends_fewer_flops_when_the_budget_is_looser() -> None:
    g = sn.models.resnet(depth=14, num_classes=7, image_size=16)
    live = sn.plan(g, 8, policy="liveness")
    tight = smallest_budget(g, 8, RECOMPUTE)
    loose = sn.plan(g, 8, policy=RECOMPUTE, budget=(tight + live.peak_bytes) // 2)
    tightest = sn.plan(g, 8, policy=RECOMPUTE, budget=tight)
    assert loose.fits and tightest.fits
    assert 0 < loose.recompute_flops <= tightest.recompute_flops
    assert tightest.peak_bytes <= tight


def test_declared_reads_are_all_a_backward_kernel_reads() -> None:
    # With debug_poison, every backward kernel sees NaN in place of each activation its
    # backend does not declare (Note [Declared reads]); under policy none nothing else
    # changes, so equal results mean the declarations cover what the kernels read.
    for graph in (
        inception_like(),
        sn.models.alexnet(num_classes=7, image_size=67),
        chain_graph(8),
    ):
        batch = 2
        shape = graph.layers[0].shape
        x = np.random.default_rng(1).standard_normal((batch, *shape)).astype(np.float32)
        y = np.array([1, 2], np.int32)
        results = []
        for poison in (False, True):
            s = sn.Session(graph, batch, policy="none", seed=1, debug_poison=poison)
            loss, grads, dx = s.gradients(x, y)
            results.append((loss, grads, dx))
        assert results[0][0] == results[1][0]
        np.testing.assert_array_equal(results[0][2], results[1][2])
        for k, v in results[0][1].items():
            np.testing.assert_array_equal(v, results[1][1][k], err_msg=k)


@settings(max_examples=30, deadline=None)
@given(dags(), st.integers(1, 4), st.integers(0, 2**16))
def test_recompute_on_random_dags(g: sn.Graph, batch: int, seed: int) -> None:
    p = sn.plan(g, batch, policy=RECOMPUTE)
    live = sn.plan(g, batch, policy="liveness")
    assert p.peak_bytes <= live.peak_bytes
    b = p._raw["blocks"]
    first, last = b["first_step"], b["last_step"]
    start, end = b["offset_bytes"], b["offset_bytes"] + b["size_bytes"]
    alias = b["alias_of"]
    for i in range(len(start)):
        together = (first <= last[i]) & (first[i] <= last)
        together[i] = False
        together &= (alias != i) & (np.arange(len(start)) != alias[i])  # in place: shared
        assert not np.any(together & (start < end[i]) & (start[i] < end)), i
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 3, 4, 4)).astype(np.float32)
    y = rng.integers(0, 5, batch).astype(np.int32)
    base = sn.Session(g, batch, policy="none", seed=seed)
    budget = smallest_budget(g, batch, RECOMPUTE)
    rec = sn.Session(g, batch, policy=RECOMPUTE, seed=seed, budget=budget, debug_poison=True)
    for _ in range(2):
        assert base.train_step(x, y, lr=0.05) == rec.train_step(x, y, lr=0.05)
    assert rec.memory_trace() == rec.plan().bytes_in_use.tolist()
