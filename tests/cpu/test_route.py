"""The execution route: a topological order in which a join waits for all of its inputs,
depth-first along branches (Alg. 8 of the source); backward is its reverse."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st

import superneurons as sn


def nested_fan() -> sn.Graph:
    """A fan of three branches, the middle one itself a residual block, joined by concat,
    followed by a residual join (like Fig. 8.6 of the source)."""
    g = sn.Graph()
    x = g.input(shape=(2, 6, 6), name="x")
    stem = g.relu(g.conv2d(x, 4, 3, padding=1, name="c0"), name="r0")
    b1 = g.conv2d(stem, 2, 1, name="b1")
    m = g.conv2d(stem, 4, 3, padding=1, name="b2a")
    m = g.add(g.relu(m, name="b2r"), stem, name="b2join")
    b3 = g.maxpool(stem, 3, 1, padding=1, name="b3")
    cat = g.concat([b1, m, b3], name="cat")
    fused = g.conv2d(cat, 4, 1, name="fuse")
    out = g.add(fused, stem, name="res")
    g.softmax_cross_entropy(g.fc(g.global_avgpool(out, name="gap"), 3, name="fc"), name="loss")
    return g


def test_nested_fan_route_order() -> None:
    route = nested_fan().route()
    pos = {name: i for i, name in enumerate(route)}
    g = nested_fan()
    for spec in g.layers:
        for inp in spec.inputs:
            assert pos[inp] < pos[spec.name]
    # Depth-first: a branch runs to its end before the next branch starts.
    assert route.index("b2a") + 1 == route.index("b2r")
    assert route[-2:] == ["fc", "loss"] and route[0] == "x"
    assert route.index("cat") > max(route.index(b) for b in ("b1", "b2join", "b3"))


def test_nested_fan_end_to_end_against_numpy() -> None:
    g = nested_fan()
    s = sn.Session(g, batch_size=3, seed=1)
    rng = np.random.default_rng(0)
    for arr in s.parameters().values():
        arr += rng.standard_normal(arr.shape).astype(np.float32) * 0.1
    p = s.parameters()
    x = rng.standard_normal((3, 2, 6, 6)).astype(np.float32)
    y = np.array([0, 1, 2], np.int32)

    def conv(name: str, inp: np.ndarray, pad: int) -> np.ndarray:
        return ref.conv2d(
            inp, p[f"{name}.weight"], p[f"{name}.bias"], (1, 1), (pad, pad), (1, 1), 1
        )

    stem = np.maximum(conv("c0", x, 1), 0)
    m = np.maximum(conv("b2a", stem, 1), 0) + stem
    cat = np.concatenate(
        [conv("b1", stem, 0), m, ref.pool(stem, (3, 3), (1, 1), (1, 1), "max")], axis=1
    )
    out = conv("fuse", cat, 0) + stem
    logits = ref.fc(out.mean(axis=(2, 3)).reshape(3, 4, 1, 1), p["fc.weight"], p["fc.bias"])
    r = s.evaluate(x, y)
    np.testing.assert_allclose(r.logits, logits.reshape(3, 3), rtol=1e-4, atol=1e-5)
    assert r.loss == pytest.approx(ref.softmax_xent(logits, y), rel=1e-4)

    # Whole-DAG gradients against central differences on a few parameters.
    _, grads, _ = s.gradients(x, y)
    grads = {k: v.copy() for k, v in grads.items()}
    for name in ("c0.weight", "b2a.weight", "fuse.weight", "b1.bias"):
        flat = p[name].reshape(-1)
        for i in (0, flat.size // 2, flat.size - 1):
            old = flat[i]
            flat[i] = old + 1e-2
            up = s.gradients(x, y)[0]
            flat[i] = old - 1e-2
            down = s.gradients(x, y)[0]
            flat[i] = old
            numeric = (up - down) / 2e-2
            assert abs(grads[name].reshape(-1)[i] - numeric) <= 2e-3 + 3e-2 * abs(numeric), name


@st.composite
def random_dags(draw: st.DrawFn) -> sn.Graph:
    """Random DAGs of shape-preserving layers with fans (add, concat) over earlier tensors."""
    g = sn.Graph()
    tensors = [g.input(shape=(2, 3, 3), name="x")]
    for i in range(draw(st.integers(1, 12))):
        op = draw(st.sampled_from(["relu", "conv", "add", "concat"]))
        a = tensors[draw(st.integers(0, len(tensors) - 1))]
        b = tensors[draw(st.integers(0, len(tensors) - 1))]
        if op == "relu":
            t = g.relu(a, name=f"n{i}")
        elif op == "conv":
            t = g.conv2d(a, 2, 1, name=f"n{i}")
        elif op == "add" and a.shape == b.shape:
            t = g.add(a, b, name=f"n{i}")
        else:
            t = g.conv2d(g.concat([a, b], name=f"cat{i}"), 2, 1, name=f"n{i}")
        tensors.append(t)
    # Join every unused tensor into the head so nothing dangles.
    used = {inp for s in g.layers for inp in s.inputs}
    loose = [t for t in tensors if t.name not in used]
    head = loose[0] if len(loose) == 1 else g.concat(loose, name="gather")
    g.softmax_cross_entropy(g.fc(head, 3, name="head"), name="loss")
    return g


@settings(max_examples=60, deadline=None)
@given(random_dags())
def test_route_is_topological_and_complete(g: sn.Graph) -> None:
    route = g.route()
    assert sorted(route) == sorted(s.name for s in g.layers)
    pos = {name: i for i, name in enumerate(route)}
    for spec in g.layers:
        assert all(pos[inp] < pos[spec.name] for inp in spec.inputs)
