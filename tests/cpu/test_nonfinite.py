"""Non-finite values inside the C++ step (Note [Non-finite values] in executor.cpp): an
overflowing forward raises FloatingPointError before anything changes; a divergent
learning rate is stopped at the update that makes a parameter non-finite, naming it."""

from __future__ import annotations

import numpy as np
import pytest

import superneurons as sn


def small() -> tuple[sn.Session, np.ndarray, np.ndarray]:
    g = sn.models.resnet(depth=8, num_classes=5, image_size=8, in_channels=2)
    s = sn.Session(g, 4, policy="liveness", seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 2, 8, 8)).astype(np.float32)
    return s, x, rng.integers(0, 5, 4).astype(np.int32)


@pytest.mark.parametrize("policy", ["liveness", "superneurons"])
def test_overflowing_forward_changes_nothing(policy: str) -> None:
    s, x, y = small()
    s = sn.Session(s.graph, 4, policy=policy, seed=0)
    w = s.parameters()["fc.weight"]
    w[...] = 3e38  # the logits overflow to inf
    before = s.state_dict()
    with pytest.raises(FloatingPointError, match=r"non-finite loss .* forward step"):
        s.train_step(x, y, lr=0.1)
    after = s.state_dict()
    for k, v in before.items():
        np.testing.assert_array_equal(after[k], v, err_msg=k)
    w[...] = 0.01  # the session is still usable
    assert np.isfinite(s.train_step(x, y, lr=0.1).loss)


def test_divergent_learning_rate_is_named() -> None:
    s, x, y = small()
    with pytest.raises(FloatingPointError, match=r"backward step \d+ \(layer '") as info:
        for _ in range(10):
            s.train_step(x, y, lr=1e6)
    assert "learning rate" in str(info.value)
