"""The CPU kernels' thread count: one setting, typed errors, and results that do not
depend on it (the kernels split work in blocks sized by the shape, never by threads)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import superneurons as sn


@pytest.fixture
def restore_threads():  # type: ignore[no-untyped-def]
    before = sn.get_num_threads()
    yield
    sn.set_num_threads(before)


def _losses(graph: sn.Graph, batch: int, shape: tuple[int, int, int], steps: int) -> list[float]:
    session = sn.Session(graph, batch_size=batch, seed=3)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((batch, *shape), dtype=np.float32)
    y = rng.integers(0, session.num_classes, batch)
    return [session.train_step(x, y, lr=0.05, weight_decay=1e-4).loss for _ in range(steps)]


@pytest.mark.usefixtures("restore_threads")
def test_set_and_get_round_trip() -> None:
    sn.set_num_threads(3)
    assert sn.get_num_threads() == 3
    sn.set_num_threads(1)
    assert sn.get_num_threads() == 1


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2", 10**6])
def test_bad_thread_counts_are_value_errors(bad: object) -> None:
    before = sn.get_num_threads()
    with pytest.raises(ValueError, match="threads"):
        sn.set_num_threads(bad)  # type: ignore[arg-type]
    assert sn.get_num_threads() == before


@pytest.mark.parametrize(("value", "want"), [("3", "3"), ("", "default"), ("x2", "error")])
def test_environment_variable(value: str, want: str) -> None:
    code = (
        "import superneurons as sn\n"
        "try:\n"
        "    print(sn.get_num_threads(), sn._C.default_num_threads())\n"
        "except ValueError as e:\n"
        "    print('error', e)\n"
    )
    env = {**os.environ, "SUPERNEURONS_NUM_THREADS": value}
    # From this folder, so that a source checkout cannot shadow the installed package.
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=here
    ).stdout.split()
    if want == "error":
        assert out[0] == "error" and "SUPERNEURONS_NUM_THREADS" in " ".join(out)
    elif want == "default":
        assert out[0] == out[1]
    else:
        assert out[0] == want


@pytest.mark.usefixtures("restore_threads")
def test_losses_bit_identical_across_thread_counts() -> None:
    # Convolutions with large and small output maps (both forward splits), strided and
    # 1x1 convolutions, BN, pooling, concat, dropout, FC and SGD with weight decay.
    resnet = sn.models.resnet(depth=8, num_classes=10, image_size=16, in_channels=3)
    dense = sn.models.densenet(
        block_config=(2, 2), growth_rate=8, num_classes=5, image_size=32, dropout=0.2
    )
    for graph, batch, shape in ((resnet, 8, (3, 16, 16)), (dense, 4, (3, 32, 32))):
        runs = []
        for threads in (1, 2, 3):
            sn.set_num_threads(threads)
            runs.append(_losses(graph, batch, shape, steps=3))
        assert runs[0] == runs[1] == runs[2], runs
        assert all(np.isfinite(runs[0]))
