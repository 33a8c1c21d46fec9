"""The Unified Tensor Pool's offload and prefetch: bit-identical training under all five
policies down to the smallest budget, zero traffic when the network fits, traffic that
grows as the budget shrinks, and a stress run with random copy delays."""

from __future__ import annotations

import numpy as np
import pytest
from test_recompute import MODELS, smallest_budget, train

import superneurons as sn

POLICIES = ["liveness", "liveness+recompute", "liveness+offload", "superneurons"]


@pytest.mark.parametrize("name", list(MODELS))
def test_all_policies_train_bit_identically_under_tight_budgets(name: str) -> None:
    g, batch = MODELS[name](), 4
    want_losses, want_state = train(g, batch, "none", None)
    live = sn.plan(g, batch, policy="liveness")
    for policy in POLICIES:
        tight = smallest_budget(g, batch, policy)
        for budget in (None, tight, max(tight, (tight + live.peak_bytes) // 2)):
            losses, state = train(g, batch, policy, budget)
            assert losses == want_losses, (policy, budget)
            for k, v in want_state.items():
                np.testing.assert_array_equal(state[k], v, err_msg=f"{policy} {budget} {k}")
    assert smallest_budget(g, batch, "superneurons") <= smallest_budget(g, batch, "liveness")


def test_offload_moves_bytes_only_when_the_budget_needs_it() -> None:
    g = MODELS["resnet"]()
    live = sn.plan(g, 4, policy="liveness")
    roomy = sn.plan(g, 4, policy="liveness+offload", budget=2 * live.peak_bytes)
    assert roomy.fits and roomy.offload_bytes == 0 and roomy.host_peak_bytes == 0
    assert not any(p.startswith("offload") for p in roomy.passes) and roomy.offload_choices == []
    tight = smallest_budget(g, 4, "liveness+offload")
    assert tight < live.peak_bytes  # offload fits where liveness alone cannot
    moved = []
    fits_alone = smallest_budget(g, 4, "liveness")  # the peak, plus any fragmentation
    for budget in np.linspace(fits_alone, tight, 5).astype(int).tolist():
        p = sn.plan(g, 4, policy="liveness+offload", budget=budget)
        assert p.fits and p.peak_bytes <= budget
        assert p.offload_bytes == p.prefetch_bytes and p.host_peak_bytes <= p.offload_bytes
        moved.append(p.offload_bytes)
    assert moved[0] == 0 < moved[-1] and moved == sorted(moved)
    ops = [op for i in range(len(p.steps)) for op in p.ops(i)]
    kinds = [op[0] for op in ops]
    assert kinds.count("copy_out") == kinds.count("copy_in") == kinds.count("free_after") > 0
    assert kinds.count("wait") == kinds.count("copy_in")


@pytest.mark.parametrize(
    ("policy", "name"), [("liveness+offload", "inception"), ("superneurons", "resnet")]
)
def test_the_tensor_cache_competes_and_its_plans_train_bit_identically(
    policy: str, name: str
) -> None:
    g, batch = MODELS[name](), 4
    live = sn.plan(g, batch, policy="liveness")
    tight = smallest_budget(g, batch, policy)
    cached = None
    for budget in np.linspace(live.peak_bytes, tight, 16).astype(int).tolist():
        p = sn.plan(g, batch, policy=policy, budget=budget)
        if not p.offload_choices:
            continue
        choices = {c.selection: c for c in p.offload_choices}
        assert set(choices) == {"tensor cache", "ranked", "every candidate"}
        assert sum(c.chosen for c in p.offload_choices) == 1
        won = next(c for c in p.offload_choices if c.chosen)
        assert won.fits and won.moved_bytes == p.offload_bytes + p.prefetch_bytes
        rivals = [c for c in p.offload_choices if c.fits]
        if policy == "liveness+offload":  # every candidate is not a rival there
            rivals = [c for c in rivals if c.selection != "every candidate"]
            assert won.moved_bytes == min(c.moved_bytes for c in rivals)
        else:  # superneurons judges by the estimated iteration
            assert won.estimated_ms == min(c.estimated_ms for c in rivals)
        if won.selection == "tensor cache":
            assert "offload (tensor cache)" in p.passes
            cached = cached or budget
    assert cached is not None, "no budget made the tensor cache's plan the one kept"
    (losses, state), (want_losses, want_state) = (
        train(g, batch, policy, cached),
        train(g, batch, "none", None),
    )
    assert losses == want_losses
    for k, v in want_state.items():
        np.testing.assert_array_equal(state[k], v, err_msg=k)


@pytest.mark.parametrize("name", ["resnet", "inception"])
def test_activation_gradients_leave_the_device_between_writers(name: str) -> None:
    """Note [Gradients in the pool]: at the smallest budget a gradient waiting for its
    next writer is copied out and back, and training is unchanged."""
    g, batch = MODELS[name](), 4
    budget = smallest_budget(g, batch, "liveness+offload")
    p = sn.plan(g, batch, policy="liveness+offload", budget=budget)
    roles = [op[2] for i in range(len(p.steps)) for op in p.ops(i) if op[0] == "copy_out"]
    assert "gradient" in roles
    (losses, state), (want_losses, want_state) = (
        train(g, batch, "liveness+offload", budget),
        train(g, batch, "none", None),
    )
    assert losses == want_losses
    for k, v in want_state.items():
        np.testing.assert_array_equal(state[k], v, err_msg=k)


@pytest.mark.parametrize("name", list(MODELS))
def test_the_peak_breakdown_sums_to_the_peak(name: str) -> None:
    g, batch = MODELS[name](), 4
    live = sn.plan(g, batch, policy="liveness")
    for policy in ["none", *POLICIES]:
        for budget in (None, smallest_budget(g, batch, policy) if policy != "none" else None):
            p = sn.plan(g, batch, policy=policy, budget=budget)
            b = p.peak_breakdown
            # the training peak (an inference pass can peak higher: eval_peak_bytes)
            train_peak = int(max(p.bytes_in_use))
            assert sum(b[3:]) == train_peak == p.steps[b.step].bytes_in_use, (policy, budget)
            assert b.layer == p.steps[b.step].layer and b.phase == p.steps[b.step].phase
    # Under `none` every tensor is allocated at setup: other layers' tensors are resident.
    none = sn.plan(g, batch, policy="none").peak_breakdown
    assert none.resident_bytes > live.resident_bytes and none.kept_activation_bytes == 0


def test_below_the_bound_is_a_typed_error_and_the_session_survives() -> None:
    g = MODELS["inception"]()
    p = sn.plan(g, 4, policy="superneurons")
    with pytest.raises(sn.OutOfMemoryError, match="largest free block"):
        sn.Session(g, 4, policy="superneurons", budget=p.layer_bound_bytes // 2)
    s = sn.Session(g, 4, policy="superneurons", budget=smallest_budget(g, 4, "superneurons"))
    x = np.ones((4, *g.layers[0].shape), np.float32)
    assert np.isfinite(s.train_step(x, np.zeros(4, np.int32), lr=0.01).loss)


def test_random_copy_delays_change_nothing() -> None:
    g = MODELS["inception"]()
    budget = smallest_budget(g, 4, "liveness+offload")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, *g.layers[0].shape)).astype(np.float32)
    y = rng.integers(0, 7, 4).astype(np.int32)
    runs = []
    for delay_us in (0, 300):
        s = sn.Session(
            g, 4, policy="liveness+offload", budget=budget, seed=1, _copy_delay_us=delay_us
        )
        assert s.plan().offload_bytes > 0
        runs.append([s.train_step(x, y, lr=0.05) for _ in range(12)])
        assert s.memory_trace() == s.plan().bytes_in_use.tolist()
        assert s.host_memory_stats()["in_use_bytes"] == 0
    assert runs[0] == runs[1]
