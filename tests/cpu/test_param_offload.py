"""Parameters and momentum in the Unified Tensor Pool (policy superneurons): homed on the
host only when the budget needs it, copied in around each use and back after each fused
update, bit-identical to policy none, and below the resident-parameter layer bound."""

from __future__ import annotations

import numpy as np
import pytest
from test_recompute import MODELS, smallest_budget

import superneurons as sn


def batch_of(g: sn.Graph, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *g.layers[0].shape)).astype(np.float32)
    return x, rng.integers(0, 7, n).astype(np.int32)


def test_parameters_go_to_the_host_only_when_the_budget_needs_them() -> None:
    g = MODELS["resnet"]()
    roomy = sn.plan(g, 4, policy="superneurons", budget=10 * sn.plan(g, 4).peak_bytes)
    assert roomy.fits and roomy.param_host_bytes == roomy.param_copy_bytes == 0
    assert "param offload" not in roomy.passes
    resident_bound = sn.plan(g, 4, policy="liveness+recompute").layer_bound_bytes
    tight = smallest_budget(g, 4, "superneurons")
    p = sn.plan(g, 4, policy="superneurons", budget=tight)
    # Below what any plan with resident parameters can reach.
    assert tight < resident_bound
    assert p.fits and p.peak_bytes <= tight and p.param_host_bytes > 0
    assert p.resident_bytes < roomy.resident_bytes
    assert p.resident_bytes + p.param_host_bytes == roomy.resident_bytes
    assert p.layer_bound_bytes <= p.peak_bytes
    # Every homed parameter comes in for its forward and backward and goes back once.
    homed = p.param_host_bytes // 2  # parameters (momentum the other half)
    assert p.param_copy_bytes >= 2 * homed + 2 * homed + homed
    ops = [op for i in range(len(p.steps)) for op in p.ops(i)]
    kinds = [op[0] for op in ops]
    assert kinds.count("wait") == kinds.count("copy_in")
    assert kinds.count("copy_out") == kinds.count("free_after")


@pytest.mark.parametrize("name", list(MODELS))
def test_state_written_between_steps_reaches_homed_parameters(name: str) -> None:
    """load_state_dict writes the host homes: the next step must read what was written."""
    g, batch = MODELS[name](), 4
    x, y = batch_of(g, batch, 1)
    ref = sn.Session(g, batch, policy="none", seed=2)
    for _ in range(2):
        ref.train_step(x, y, lr=0.05, momentum=0.9)
    state = ref.state_dict()
    s = sn.Session(
        g, batch, policy="superneurons", budget=smallest_budget(g, batch, "superneurons"), seed=2
    )
    assert s.plan().param_host_bytes > 0
    s.load_state_dict(state)
    for _ in range(2):
        assert s.train_step(x, y, lr=0.05, momentum=0.9) == ref.train_step(
            x, y, lr=0.05, momentum=0.9
        )
    got, want = s.state_dict(), ref.state_dict()
    for k, v in want.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)
    assert s.evaluate(x, y)[:2] == ref.evaluate(x, y)[:2]


def test_homed_parameters_survive_random_copy_delays() -> None:
    g = MODELS["densenet"]()
    budget = smallest_budget(g, 4, "superneurons")
    x, y = batch_of(g, 4, 3)
    runs = []
    for delay_us in (0, 200):
        s = sn.Session(g, 4, policy="superneurons", budget=budget, seed=1, _copy_delay_us=delay_us)
        assert s.plan().param_host_bytes > 0
        runs.append([s.train_step(x, y, lr=0.05, momentum=0.9) for _ in range(10)])
        # What moved is what the plan says moves, iteration by iteration.
        p = s.plan()
        assert s.copy_stats()["bytes"] == 10 * (p.offload_bytes + p.prefetch_bytes)
        assert 0.0 <= s.copy_stats()["overlap"] <= 1.0
        runs[-1].append(s.evaluate(x, y)[:2])
        assert s.memory_trace() == s.plan().bytes_in_use.tolist()
        # Only the homes stay in the host slab between steps.
        assert s.host_memory_stats()["in_use_bytes"] == s.plan().param_host_bytes
    assert runs[0] == runs[1]


def test_gradients_with_homed_parameters_match_none() -> None:
    g = MODELS["inception"]()
    x, y = batch_of(g, 4, 4)
    ref = sn.Session(g, 4, policy="none", seed=2)
    s = sn.Session(
        g, 4, policy="superneurons", budget=smallest_budget(g, 4, "superneurons"), seed=2
    )
    s.load_state_dict(ref.state_dict())
    loss, got, dx = s.gradients(x, y)
    want_loss, want, want_dx = ref.gradients(x, y)
    assert loss == want_loss and got.keys() == want.keys()
    np.testing.assert_array_equal(dx, want_dx)
    for k, v in want.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)


def offload_budget(g: sn.Graph) -> int:
    """A budget that offload alone meets without waiting for copies: a tenth of the way
    from liveness+offload's smallest budget to liveness's peak (at the smallest, just-in-
    time prefetches stall and superneurons may find recomputing faster)."""
    tight = smallest_budget(g, 4, "liveness+offload")
    return (tight + (sn.plan(g, 4, policy="liveness").peak_bytes - tight) // 10) // 256 * 256


def test_a_host_budget_buys_recomputation_and_is_never_exceeded() -> None:
    g = MODELS["inception"]()
    budget = offload_budget(g)
    free = sn.plan(g, 4, policy="superneurons", budget=budget)
    assert free.fits and free.host_peak_bytes > 0 and free.recompute_count == 0
    host = free.host_peak_bytes // 2
    p = sn.plan(g, 4, policy="superneurons", budget=budget, host_budget=host)
    assert p.fits and p.host_budget_bytes == host
    assert p.host_peak_bytes <= host and p.recompute_count > 0
    x, y = batch_of(g, 4, 6)
    ref = sn.Session(g, 4, policy="none", seed=2)
    s = sn.Session(g, 4, policy="superneurons", budget=budget, host_budget=host, seed=2)
    s.load_state_dict(ref.state_dict())
    for _ in range(3):
        assert s.train_step(x, y, lr=0.05) == ref.train_step(x, y, lr=0.05)
    assert s.host_memory_stats()["peak_bytes"] <= host


def test_too_small_a_host_budget_is_a_host_out_of_memory_error() -> None:
    g = MODELS["resnet"]()
    budget = smallest_budget(g, 4, "superneurons")  # needs parameters on the host
    with pytest.raises(sn.OutOfMemoryError, match=r"out of host memory .* host budget"):
        sn.Session(g, 4, policy="superneurons", budget=budget, host_budget=4096)
    with pytest.raises(ValueError, match=">= 0"):
        sn.plan(g, 4, policy="superneurons", budget=budget, host_budget=-1)


def test_cost_model_rates_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Note [Cost model rates]: calibrated rates change the search's choice."""
    g = MODELS["inception"]()
    budget = offload_budget(g)
    fast = sn.plan(g, 4, policy="superneurons", budget=budget)
    assert fast.offload_bytes > 0 and fast.recompute_count == 0
    live = sn.plan(g, 4, policy="liveness")
    monkeypatch.setenv("SUPERNEURONS_COPY_GBPS", "1e-6")  # copies a million times slower
    monkeypatch.setenv("SUPERNEURONS_CPU_GFLOPS", "5")  # kernels ten times slower
    slow = sn.plan(g, 4, policy="superneurons", budget=budget)
    assert slow.fits and slow.recompute_count > 0 and slow.offload_bytes < fast.offload_bytes
    assert sn.plan(g, 4, policy="liveness").compute_ms == pytest.approx(10 * live.compute_ms)
    monkeypatch.setenv("SUPERNEURONS_COPY_GBPS", "fast")
    with pytest.raises(ValueError, match="SUPERNEURONS_COPY_GBPS must be a positive number"):
        sn.plan(g, 4, policy="superneurons", budget=budget)
