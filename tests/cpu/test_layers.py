"""Every layer: forward against a NumPy reference, backward against finite differences."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import reference as ref

import superneurons as sn

Builder = Callable[[sn.Graph, sn.TensorHandle], sn.TensorHandle]


@pytest.fixture(params=["none", "liveness"])
def policy(request: pytest.FixtureRequest) -> str:
    """Every layer test runs under both memory policies: same numbers expected."""
    return str(request.param)


def session_for(
    policy: str, shape: tuple[int, int, int], build: Builder, n: int = 2, seed: int = 0
) -> tuple[sn.Session, np.ndarray, np.ndarray]:
    g = sn.Graph()
    x = g.input(shape=shape, name="x")
    out = build(g, x)
    g.softmax_cross_entropy(out, name="loss")
    s = sn.Session(g, batch_size=n, seed=seed, policy=policy)
    rng = np.random.default_rng(seed + 1)
    xb = rng.standard_normal((n, *shape)).astype(np.float32)
    yb = rng.integers(0, int(np.prod(out.shape)), n).astype(np.int32)
    # Perturb every parameter away from its initial value (zero biases hide bugs).
    for arr in s.parameters().values():
        arr += rng.standard_normal(arr.shape).astype(np.float32) * 0.1
    return s, xb, yb


def fd_check(
    s: sn.Session,
    xb: np.ndarray,
    yb: np.ndarray,
    eps: float = 1e-2,
    probes: int = 16,
    rtol: float = 3e-2,
    atol: float = 2e-3,
) -> None:
    """Central differences of the loss on random coordinates of x and of every parameter."""
    _, grads, dx = s.gradients(xb, yb)
    grads = {k: v.copy() for k, v in grads.items()}
    dx = dx.copy()
    rng = np.random.default_rng(7)

    def probe(
        arr: np.ndarray, analytic: np.ndarray, what: str, loss_of: Callable[[], float]
    ) -> None:
        flat = arr.reshape(-1)
        for i in rng.choice(flat.size, size=min(probes, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + eps
            up = loss_of()
            flat[i] = old - eps
            down = loss_of()
            flat[i] = old
            numeric = (up - down) / (2 * eps)
            got = analytic.reshape(-1)[i]
            assert abs(numeric - got) <= atol + rtol * abs(numeric), (
                f"{what}[{i}]: analytic {got:.6g} vs numeric {numeric:.6g}"
            )

    probe(xb, dx, "dx", lambda: s.gradients(xb, yb)[0])
    for name, arr in s.parameters().items():
        probe(arr, grads[name], name, lambda: s.gradients(xb, yb)[0])


CONV_CASES = [
    # (C, H, W), out, kernel, stride, padding, dilation, groups
    ((3, 7, 7), 4, 3, 1, 0, 1, 1),
    ((3, 7, 6), 4, 3, 2, 1, 1, 1),
    ((4, 8, 8), 6, (3, 2), (2, 1), (1, 0), 1, 2),
    ((4, 9, 9), 4, 3, 1, 2, 2, 4),  # depthwise, dilated
    ((6, 5, 5), 3, 1, 1, 0, 1, 3),  # 1x1 grouped
    ((2, 6, 6), 5, 1, 1, 0, 1, 1),  # 1x1: no im2col
    ((2, 6, 6), 3, 5, 3, 2, 1, 1),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d(policy: str, case: tuple, bias: bool) -> None:
    shape, out, kernel, stride, padding, dilation, groups = case
    s, xb, yb = session_for(
        policy,
        shape,
        lambda g, x: g.conv2d(
            x, out, kernel, stride, padding, dilation, groups, bias=bias, name="L"
        ),
    )
    p = s.parameters()
    pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    want = ref.conv2d(
        xb, p["L.weight"], p.get("L.bias"), pair(stride), pair(padding), pair(dilation), groups
    )
    got = s.evaluate(xb, yb).logits.reshape(want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    fd_check(s, xb, yb)


@pytest.mark.parametrize("bias", [True, False])
def test_fc(policy: str, bias: bool) -> None:
    s, xb, yb = session_for(policy, (3, 2, 2), lambda g, x: g.fc(x, 5, bias=bias, name="L"), n=3)
    p = s.parameters()
    want = ref.fc(xb, p["L.weight"], p.get("L.bias"))
    np.testing.assert_allclose(
        s.evaluate(xb, yb).logits.reshape(want.shape), want, rtol=1e-5, atol=1e-5
    )
    fd_check(s, xb, yb)


def away_from_zero(xb: np.ndarray) -> np.ndarray:
    return np.where(np.abs(xb) < 0.1, xb + np.sign(xb + 1e-9) * 0.2, xb).astype(np.float32)


def test_relu(policy: str) -> None:
    s, xb, yb = session_for(policy, (2, 3, 3), lambda g, x: g.relu(x, name="L"))
    xb = away_from_zero(xb)
    np.testing.assert_allclose(s.evaluate(xb, yb).logits.reshape(xb.shape), np.maximum(xb, 0))
    fd_check(s, xb, yb)


POOL_CASES = [
    ((2, 6, 6), 2, 2, 0),
    ((2, 7, 7), 3, 2, 1),
    ((1, 5, 6), (3, 2), (1, 2), (1, 0)),
    ((2, 5, 5), 3, 1, 0),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=[str(i) for i in range(len(POOL_CASES))])
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool(policy: str, case: tuple, mode: str) -> None:
    shape, kernel, stride, padding = case
    method = "maxpool" if mode == "max" else "avgpool"
    s, xb, yb = session_for(
        policy, shape, lambda g, x: getattr(g, method)(x, kernel, stride, padding, name="L")
    )
    # Distinct, well separated values keep the max away from ties (finite differences).
    rng = np.random.default_rng(3)
    xb = (rng.permutation(xb.size).reshape(xb.shape) * 0.05).astype(np.float32)
    pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    want = ref.pool(xb, pair(kernel), pair(stride), pair(padding), mode)
    np.testing.assert_allclose(
        s.evaluate(xb, yb).logits.reshape(want.shape), want, rtol=1e-5, atol=1e-6
    )
    fd_check(s, xb, yb, eps=1e-3)


def test_global_avgpool(policy: str) -> None:
    s, xb, yb = session_for(policy, (4, 3, 5), lambda g, x: g.global_avgpool(x, name="L"))
    np.testing.assert_allclose(
        s.evaluate(xb, yb).logits, xb.mean(axis=(2, 3)), rtol=1e-5, atol=1e-6
    )
    fd_check(s, xb, yb)


def test_batchnorm_train_and_inference(policy: str) -> None:
    s, xb, yb = session_for(
        policy, (3, 2, 3), lambda g, x: g.batchnorm(x, eps=1e-3, momentum=0.2, name="L"), n=4
    )
    state = s.state_dict()
    rng = np.random.default_rng(5)
    state["L.running_mean"] = rng.standard_normal(3).astype(np.float32)
    state["L.running_var"] = rng.uniform(0.5, 2, 3).astype(np.float32)
    s.load_state_dict(state)
    p = s.parameters()
    want = ref.batchnorm_infer(
        xb, p["L.gamma"], p["L.beta"], state["L.running_mean"], state["L.running_var"], 1e-3
    )
    np.testing.assert_allclose(
        s.evaluate(xb, yb).logits.reshape(xb.shape), want, rtol=1e-4, atol=1e-5
    )
    # Gradient analysis leaves the running statistics alone ...
    s.gradients(xb, yb)
    np.testing.assert_array_equal(s.state_dict()["L.running_mean"], state["L.running_mean"])
    # ... and one training step moves them by the momentum rule.
    s.train_step(xb, yb, lr=0.0)
    after = s.state_dict()
    batch_var = xb.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(
        after["L.running_mean"],
        0.8 * state["L.running_mean"] + 0.2 * xb.mean(axis=(0, 2, 3)),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        after["L.running_var"], 0.8 * state["L.running_var"] + 0.2 * batch_var, rtol=1e-5, atol=1e-6
    )
    fd_check(s, xb, yb, eps=1e-2)


def test_batchnorm_training_forward_matches_reference(policy: str) -> None:
    # The training-mode output (batch statistics) is the logits of the loss.
    s, xb, yb = session_for(policy, (2, 2, 2), lambda g, x: g.batchnorm(x, name="L"), n=5)
    p = s.parameters()
    want = ref.batchnorm_train(xb, p["L.gamma"], p["L.beta"], 1e-5)
    loss, _, _ = s.gradients(xb, yb)
    assert loss == pytest.approx(ref.softmax_xent(want, yb), rel=1e-5)


def test_lrn(policy: str) -> None:
    s, xb, yb = session_for(
        policy, (7, 2, 2), lambda g, x: g.lrn(x, size=5, alpha=0.5, beta=0.75, k=2.0, name="L")
    )
    want = ref.lrn(xb, 5, 0.5, 0.75, 2.0)
    np.testing.assert_allclose(
        s.evaluate(xb, yb).logits.reshape(xb.shape), want, rtol=1e-5, atol=1e-6
    )
    fd_check(s, xb, yb)


def test_add_and_fan_out(policy: str) -> None:
    # x feeds both inputs of the join and a branch: gradients of all uses must add up.
    def build(g: sn.Graph, x: sn.TensorHandle) -> sn.TensorHandle:
        return g.add(g.add(x, x), g.conv2d(x, 2, 1, name="c"), name="L")

    s, xb, yb = session_for(policy, (2, 3, 3), build)
    p = s.parameters()
    want = 2 * xb + ref.conv2d(xb, p["c.weight"], p["c.bias"], (1, 1), (0, 0), (1, 1), 1)
    np.testing.assert_allclose(
        s.evaluate(xb, yb).logits.reshape(xb.shape), want, rtol=1e-5, atol=1e-5
    )
    fd_check(s, xb, yb)


def test_concat_and_flatten(policy: str) -> None:
    def build(g: sn.Graph, x: sn.TensorHandle) -> sn.TensorHandle:
        a = g.conv2d(x, 2, 1, name="a")
        return g.flatten(g.concat([a, x, a], name="cat"), name="L")

    s, xb, yb = session_for(policy, (3, 2, 2), build)
    p = s.parameters()
    a = ref.conv2d(xb, p["a.weight"], p["a.bias"], (1, 1), (0, 0), (1, 1), 1)
    want = np.concatenate([a, xb, a], axis=1).reshape(2, -1)
    np.testing.assert_allclose(s.evaluate(xb, yb).logits, want, rtol=1e-5, atol=1e-5)
    fd_check(s, xb, yb)


def test_dropout_mask_is_replayed_and_changes_per_iteration(policy: str) -> None:
    p = 0.4
    s, xb, yb = session_for(policy, (4, 5, 5), lambda g, x: g.dropout(x, p, name="L"), n=4)
    # Inference: identity.
    np.testing.assert_array_equal(s.evaluate(xb, yb).logits.reshape(xb.shape), xb)
    _, _, dx1 = s.gradients(xb, yb)
    dx1 = dx1.copy()
    kept = dx1 != 0
    assert 0.45 < kept.mean() < 0.75  # about 1 - p of 400 elements
    _, _, dx2 = s.gradients(xb, yb)
    np.testing.assert_array_equal(dx1, dx2)  # same iteration, same mask
    fd_check(s, xb, yb)
    s.train_step(xb, yb, lr=0.0)
    _, _, dx3 = s.gradients(xb, yb)
    assert not np.array_equal(dx3 != 0, kept)  # the next iteration draws a new mask


def test_softmax_cross_entropy_loss_value(policy: str) -> None:
    s, xb, yb = session_for(policy, (6, 1, 1), lambda g, x: g.flatten(x, name="L"), n=5)
    r = s.evaluate(xb, yb)
    assert r.loss == pytest.approx(ref.softmax_xent(xb, yb), rel=1e-6)
    assert r.correct == int((xb.reshape(5, 6).argmax(1) == yb).sum())
    fd_check(s, xb, yb)


def test_partial_batch_gradients(policy: str) -> None:
    """A last batch smaller than the compiled one: same numbers as a session of that size."""
    build: Builder = lambda g, x: g.fc(g.relu(g.batchnorm(g.conv2d(x, 3, 3, padding=1))), 4)  # noqa: E731
    s, xb, yb = session_for(policy, (2, 4, 4), build, n=5)
    fd_check(s, xb[:3], yb[:3])
    small, _, _ = session_for(policy, (2, 4, 4), build, n=3)
    small.load_state_dict(s.state_dict())
    np.testing.assert_array_equal(
        s.gradients(xb[:3], yb[:3])[2], small.gradients(xb[:3], yb[:3])[2]
    )
