"""A forked child can train after its parent has (Note [Threads after fork]): GNU
OpenMP's pool does not survive fork, so without care the child hangs in its first
parallel region, as NAS trial workers and data loaders fork."""

from __future__ import annotations

import multiprocessing as mp
import sys

import numpy as np
import pytest

import superneurons as sn


def _train_once(queue: mp.Queue) -> None:  # type: ignore[type-arg]
    g = sn.models.resnet(depth=8, num_classes=5, image_size=16)
    s = sn.Session(g, 8, seed=0)
    x = np.random.default_rng(0).standard_normal((8, 3, 16, 16)).astype(np.float32)
    queue.put(s.train_step(x, np.zeros(8, np.int32), lr=0.1).loss)


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_a_forked_child_trains_after_its_parent() -> None:
    ctx = mp.get_context("fork")
    parent: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    _train_once(parent)  # the parent's kernels start OpenMP's thread pool
    queue: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    child = ctx.Process(target=_train_once, args=(queue,))
    child.start()
    child.join(120)
    hung = child.is_alive()
    if hung:
        child.kill()
    assert not hung, "the forked child hung"
    assert queue.get(timeout=10) == parent.get(timeout=10)  # and computed the same
