"""Liveness planning: hand-computed traces and peaks, the chain formula, the executor's
measured trace against the plan, and properties on random DAGs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import superneurons as sn

KB = 1024


def r256(nbytes: int) -> int:
    return -(-nbytes // 256) * 256


def fan_join_graph() -> sn.Graph:
    """x -> a (1x1 conv) -> {b = relu(a), c = relu(a)} -> d = add(b, c) -> fc -> loss."""
    g = sn.Graph()
    x = g.input(shape=(2, 4, 4), name="x")
    a = g.conv2d(x, 2, 1, name="a")
    d = g.add(g.relu(a, name="b"), g.relu(a, name="c"), name="d")
    g.softmax_cross_entropy(g.fc(d, 3, name="fc"), name="loss")
    return g


def test_fan_join_trace_by_hand() -> None:
    # Batch 8: every (2, 4, 4) tensor is 8*32*4 = 1 KiB; logits and probabilities 256 B.
    p = sn.plan(fan_join_graph(), batch_size=8, policy="liveness")
    # Parameters and momentum of the conv and the fc, and the labels.
    resident = 2 * (256 + 256) + 2 * (r256(3 * 32 * 4) + 256) + 256
    assert p.resident_bytes == resident
    assert [s.layer for s in p.steps] == [
        "x",
        "a",
        "b",
        "c",
        "d",
        "fc",
        "loss",
        "loss",
        "fc",
        "d",
        "c",
        "b",
        "a",
    ]
    extra = [
        1 * KB,
        2 * KB,
        3 * KB,
        3 * KB,  # c reads a last (the ReLUs' backward reads their outputs): in place on a
        4 * KB,  # d joins b and c, both read again in backward: no room in place
        4 * KB + 256,  # logits
        4 * KB + 512,  # probabilities; logits go after the loss
        4 * KB + 512,  # d(logits); probabilities go after
        6 * KB,  # d(d), and fc's weight and bias gradients (768 B) until the update
        5 * KB,  # d(b) is d(d) passed through (no copy); d(c) is its own
        6 * KB,  # c's backward reads c and d(c), writes d(a)
        4 * KB,  # b's backward; then b, d(b) go
        2 * KB + 512,  # a's backward reads x and d(a); its parameter gradients (512 B)
    ]
    assert p.bytes_in_use.tolist() == [resident + e for e in extra]
    assert p.peak_bytes == resident + 6 * KB
    param_grads = 512 + r256(3 * 32 * 4) + 256
    assert p.baseline_bytes == resident + (5 * KB + 256) + (4 * KB + 256) + 256 + param_grads
    assert p.layer_bound_bytes == resident + 3 * KB
    assert [s.live_tensors for s in p.steps][:5] == [1, 2, 3, 4, 4]
    # In place: c's output takes over a's block (a's name lives to the end of the step).
    # Backward pass-through: add's gradient flows to b as d(d) itself, without zeroing.
    assert [o[:3] for o in p.ops(9)][:3] == [
        ("alias", "b", "gradient"),
        ("alloc", "c", "gradient"),
        ("zero", "c", "gradient"),
    ]
    alias, _compute, free = p.ops(3)
    assert alias[:3] == ("alias", "c", "activation") and free[:3] == ("free", "a", "activation")
    assert alias[4] == next(o for o in p.ops(1) if o[:3] == ("alloc", "a", "activation"))[4]
    # The fused update: fc's gradients exist only inside its backward step.
    ops = [(op, layer, what) for op, layer, what, _, _ in p.ops(8)]
    assert ops == [
        ("alloc", "d", "gradient"),
        ("zero", "d", "gradient"),
        ("alloc", "fc", "param.grad"),
        ("alloc", "fc", "param.grad"),
        ("compute", "fc", "backward"),
        ("compute", "fc", "update"),
        ("free", "fc", "param.grad"),
        ("compute", "fc", "update"),
        ("free", "fc", "param.grad"),
        ("free", "d", "activation"),
        ("free", "fc", "gradient"),
    ]


@pytest.mark.parametrize("depth", [1, 3, 6])
def test_chain_peak_is_forward_outputs_plus_last_backward(depth: int) -> None:
    """Sec. 8.3.2: with liveness alone, a chain peaks at the sum of the forward outputs
    plus the last layer's backward tensors (its dy, dx and parameter gradients). A ReLU's
    backward reads its output, so the fc output before it is not among them."""
    g = sn.Graph()
    h = g.input(shape=(8, 1, 1), name="x")
    for i in range(depth):
        h = g.relu(g.fc(h, 8, name=f"fc{i}"), name=f"relu{i}")
    g.softmax_cross_entropy(g.fc(h, 4, name="head"), name="loss")
    batch = 64  # every hidden tensor: 64*8*4 = 2 KiB; logits and probabilities 1 KiB
    p = sn.plan(g, batch, policy="liveness")
    hidden = 2 * KB
    # The logits die once the loss has read them (the loss's backward needs only its
    # saved probabilities), so "forward outputs" are x and every relu output.
    forward_outputs = hidden * (1 + depth)
    # The last layer with a backward of its own: the top ReLU (dy and dx: 4 KiB), which
    # outweighs the head's (dy 1 KiB, dx 2 KiB, weight and bias gradients 512 B).
    last_backward = 2 * hidden
    assert p.peak_bytes - p.resident_bytes == forward_outputs + last_backward
    peak_step = int(np.argmax(p.bytes_in_use))
    assert p.steps[peak_step].layer == f"relu{depth - 1}"
    assert p.steps[peak_step].phase == "backward"
    # Note [Peak breakdown]: the step holds the top ReLU's output, dy and dx; the other
    # forward outputs (x and the lower ReLUs') are kept for later backward steps.
    b = p.peak_breakdown
    assert (b.step, b.layer, b.phase) == (peak_step, f"relu{depth - 1}", "backward")
    assert b.step_bytes == 3 * hidden and b.kept_activation_bytes == hidden * depth
    assert b.resident_bytes == p.resident_bytes
    assert b.gradient_bytes == b.prefetched_bytes == b.offloading_bytes == b.other_bytes == 0
    none = sn.plan(g, batch, policy="none")
    assert none.peak_bytes == p.baseline_bytes > p.peak_bytes


ZOO = [
    lambda: sn.models.resnet(depth=8, num_classes=10, image_size=8, in_channels=1),
    lambda: sn.models.densenet(block_config=(2, 2), growth_rate=4, num_classes=10, image_size=32),
]


@pytest.mark.parametrize("model", range(len(ZOO)))
@pytest.mark.parametrize("policy", ["none", "liveness"])
def test_measured_trace_equals_plan(model: int, policy: str) -> None:
    g = ZOO[model]()
    s = sn.Session(g, batch_size=4, policy=policy, seed=0)
    shape = g.layers[0].shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, *shape)).astype(np.float32)
    y = rng.integers(0, 10, 4).astype(np.int32)
    s.train_step(x, y, lr=0.01)
    p = sn.plan(g, 4, policy=policy)
    assert s.memory_trace() == p.bytes_in_use.tolist()
    stats = s.memory_stats()
    assert stats["peak_bytes"] == p.peak_bytes
    assert stats["in_use_bytes"] == p.resident_bytes + (
        p.baseline_bytes - p.resident_bytes if policy == "none" else 0
    )


def test_budget_between_liveness_and_baseline() -> None:
    g = fan_join_graph()
    live = sn.plan(g, 8, policy="liveness")
    budget = (live.peak_bytes + live.baseline_bytes) // 2
    with pytest.raises(sn.OutOfMemoryError, match="policy 'liveness'"):
        sn.Session(g, batch_size=8, policy="none", budget=budget)
    assert not sn.plan(g, 8, policy="none", budget=budget).fits
    s = sn.Session(g, batch_size=8, policy="liveness", budget=budget)  # same process
    x = np.ones((8, 2, 4, 4), np.float32)
    assert np.isfinite(s.train_step(x, np.zeros(8, np.int32), lr=0.1).loss)
    with pytest.raises(sn.OutOfMemoryError) as info:
        sn.Session(g, batch_size=8, policy="liveness", budget=live.peak_bytes - 256)
    assert "backward step" in str(info.value) or "forward step" in str(info.value)
    assert "largest free block" in str(info.value)


def test_unknown_policy_and_device() -> None:
    g = fan_join_graph()
    with pytest.raises(ValueError, match="unknown memory policy"):
        sn.plan(g, 8, policy="superneuron")
    with pytest.raises(ValueError, match="unknown device"):
        sn.plan(g, 8, device="tpu")
    with pytest.raises(ValueError, match="batch_size"):
        sn.plan(g, 0)


@st.composite
def dags(draw: st.DrawFn) -> sn.Graph:
    g = sn.Graph()
    tensors = [g.input(shape=(3, 4, 4), name="x")]
    for i in range(draw(st.integers(1, 10))):
        op = draw(st.sampled_from(["relu", "conv", "pool", "bn", "drop", "add", "cat"]))
        a = tensors[draw(st.integers(0, len(tensors) - 1))]
        b = tensors[draw(st.integers(0, len(tensors) - 1))]
        if op == "relu":
            t = g.relu(a, name=f"n{i}")
        elif op == "pool":
            t = g.conv2d(g.maxpool(a, 3, 1, padding=1, name=f"p{i}"), 3, 1, name=f"n{i}")
        elif op == "bn":
            t = g.batchnorm(a, name=f"n{i}")
        elif op == "drop":
            t = g.dropout(a, 0.3, name=f"n{i}")
        elif op == "add" and a.shape == b.shape:
            t = g.add(a, b, name=f"n{i}")
        elif op == "cat":
            t = g.conv2d(g.concat([a, b], name=f"cat{i}"), 3, 3, padding=1, name=f"n{i}")
        else:
            t = g.conv2d(a, 3, 3, padding=1, name=f"n{i}")
        tensors.append(t)
    used = {inp for s in g.layers for inp in s.inputs}
    loose = [t for t in tensors if t.name not in used]
    head = loose[0] if len(loose) == 1 else g.concat(loose, name="gather")
    g.softmax_cross_entropy(g.fc(head, 5, name="head"), name="loss")
    return g


def test_layer_bound_counts_a_repeated_input_once() -> None:
    g = sn.Graph()
    x = g.input(shape=(2, 4, 4), name="x")
    g.softmax_cross_entropy(g.fc(g.add(x, x, name="twice"), 3, name="fc"), name="loss")
    p = sn.plan(g, 8, policy="liveness")
    resident = 3 * (r256(3 * 32 * 4) + 256) + 256  # fc weight and bias x3, labels
    # The largest step is fc's backward: dy (256 B), its input (1 KiB) and dx (1 KiB);
    # add(x, x) forward reads x once: 1 KiB in, 1 KiB out.
    assert p.layer_bound_bytes == resident + 256 + 2 * KB
    assert p.layer_bound_bytes <= p.peak_bytes


def test_eval_trace_equals_plan_and_plan_survives_graph_growth() -> None:
    g = fan_join_graph()
    s = sn.Session(g, batch_size=8, policy="liveness")
    x = np.ones((8, 2, 4, 4), np.float32)
    s.evaluate(x, np.zeros(8, np.int32))
    p = s.plan()
    assert s.memory_trace("eval") == [st.bytes_in_use for st in p.eval_steps]
    assert max(s.memory_trace("eval")) == p.eval_peak_bytes
    g.relu(g.tensor("a"), name="later")
    assert s.plan().table() == p.table()  # the compiled graph, not the grown one


@settings(max_examples=40, deadline=None)
@given(dags(), st.integers(1, 6))
def test_live_tensors_never_overlap(g: sn.Graph, batch: int) -> None:
    p = sn.plan(g, batch, policy="liveness")
    b = p._raw["blocks"]
    first, last = b["first_step"], b["last_step"]
    start, end = b["offset_bytes"], b["offset_bytes"] + b["size_bytes"]
    assert np.all(start % 256 == 0)
    alias = b["alias_of"]
    for i in range(len(start)):
        together = (first <= last[i]) & (first[i] <= last)  # live at a common step
        together[i] = False
        together &= (alias != i) & (np.arange(len(start)) != alias[i])  # in place: shared
        overlap = (start < end[i]) & (start[i] < end)
        assert not np.any(together & overlap), f"block {i} overlaps a live block"
    assert p.peak_bytes <= p.baseline_bytes
    assert p.layer_bound_bytes <= p.peak_bytes


@settings(max_examples=25, deadline=None)
@given(dags(), st.integers(1, 4), st.integers(0, 2**16))
def test_liveness_trains_exactly_like_none(g: sn.Graph, batch: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 3, 4, 4)).astype(np.float32)
    y = rng.integers(0, 5, batch).astype(np.int32)
    base = sn.Session(g, batch, policy="none", seed=seed)
    live = sn.Session(g, batch, policy="liveness", seed=seed, debug_poison=True)
    for _ in range(3):
        a = base.train_step(x, y, lr=0.05, weight_decay=1e-4)
        b = live.train_step(x, y, lr=0.05, weight_decay=1e-4)
        assert a == b  # identical loss and correct count, bit for bit
        stats = live.memory_stats()
        assert stats["in_use_bytes"] == live.plan().resident_bytes  # balanced
    np.testing.assert_array_equal(base.evaluate(x, y).logits, live.evaluate(x, y).logits)
    assert live.memory_trace() == live.plan().bytes_in_use.tolist()


def test_live_sets_by_hand() -> None:
    p = sn.plan(fan_join_graph(), batch_size=8, policy="liveness")

    def per_iteration(step: int, when: str) -> list[str]:
        names = p.live_set(step, when)
        return sorted(n for n in names if n.split(":")[1] in ("activation", "gradient", "aux"))

    acts = lambda *names: [f"{n}:activation" for n in names]  # noqa: E731
    assert per_iteration(3, "after") == sorted(acts("x", "b", "c"))  # a dies at c
    assert per_iteration(4, "before") == sorted(acts("x", "b", "c"))
    assert per_iteration(4, "during") == sorted(acts("x", "b", "c", "d"))
    assert per_iteration(4, "after") == sorted(acts("x", "b", "c", "d"))
    # Step 9 is d's backward: d(d) dies after it, d(b) and d(c) are born in it.
    assert per_iteration(9, "during") == sorted(
        [*acts("x", "b", "c"), "b:gradient", "c:gradient", "d:gradient"]
    )
    assert per_iteration(9, "after") == sorted([*acts("x", "b", "c"), "b:gradient", "c:gradient"])
    assert per_iteration(12, "after") == []
    with pytest.raises(ValueError, match="step must be"):
        p.live_set(13)


def test_a_plan_beyond_any_machine_is_a_typed_error() -> None:
    g = sn.Graph()
    x = g.input(shape=(1, 32768, 32768), name="x")  # 4 GiB a sample
    g.softmax_cross_entropy(g.fc(g.global_avgpool(x), 2, name="fc"), name="loss")
    with pytest.raises(ValueError, match="more than 2\\^60 bytes"):
        sn.plan(g, 2**29)
