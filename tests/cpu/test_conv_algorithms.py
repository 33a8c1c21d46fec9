"""Convolution algorithms chosen under the memory left (Note [Conv slots] in
csrc/backend/cpu/conv.cpp): the CPU backend offers each convolution at several slot
counts, a tight budget makes steps take the smaller workspaces, and the results stay
bit-identical whichever each step took."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from test_recompute import smallest_budget

import superneurons as sn


@pytest.fixture
def four_threads() -> Iterator[None]:
    """Plans made with 4 threads offer conv slot counts 4 and 1."""
    before = sn.get_num_threads()
    sn.set_num_threads(4)
    yield
    sn.set_num_threads(before)


def conv_algorithms(plan: sn.MemoryPlan) -> list[str]:
    return [s.algorithm for s in plan.steps if s.algorithm.startswith("im2col")]


def train(g: sn.Graph, batch: int, policy: str, budget: int | None) -> tuple[list, dict]:
    s = sn.Session(g, batch, policy=policy, budget=budget, seed=1, debug_poison=True)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((batch, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 5, batch).astype(np.int32)
    losses = [s.train_step(x, y, lr=0.05).loss for _ in range(3)]
    assert s.memory_trace() == s.plan().bytes_in_use.tolist()
    return losses, s.state_dict()


@pytest.mark.usefixtures("four_threads")
def test_tight_budgets_take_smaller_workspaces_with_the_same_results() -> None:
    g, batch = sn.models.resnet(depth=8, num_classes=5, image_size=16), 4
    free = sn.plan(g, batch, policy="liveness")
    assert set(conv_algorithms(free)) == {"im2col-x4"}  # no budget: the fastest everywhere
    tight = sn.plan(g, batch, policy="liveness", budget=smallest_budget(g, batch, "liveness"))
    assert tight.fits and "im2col-x1" in conv_algorithms(tight)
    assert tight.peak_bytes < free.peak_bytes
    assert tight.estimated_ms > free.estimated_ms  # one slot runs on one thread
    want = train(g, batch, "liveness", None)
    got = train(g, batch, "liveness", smallest_budget(g, batch, "liveness"))
    assert got[0] == want[0]
    for k, v in want[1].items():
        np.testing.assert_array_equal(got[1][k], v, err_msg=k)


def test_one_thread_offers_one_algorithm() -> None:
    before = sn.get_num_threads()
    try:
        sn.set_num_threads(1)
        g = sn.models.resnet(depth=8, num_classes=5, image_size=16)
        p = sn.plan(g, 4, policy="liveness", budget=smallest_budget(g, 4, "liveness"))
        assert set(conv_algorithms(p)) == {"im2col-x1"}
    finally:
        sn.set_num_threads(before)
