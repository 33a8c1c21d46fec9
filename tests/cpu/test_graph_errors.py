"""A catalogue of malformed graphs: each raises a typed error naming the offending layer,
and leaves the graph exactly as it was."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import superneurons as sn


def base() -> tuple[sn.Graph, sn.TensorHandle]:
    g = sn.Graph()
    x = g.input(shape=(4, 6, 6), name="data")
    return g, g.conv2d(x, 8, 3, padding=1, name="stem")


BUILDER_CASES: list[tuple[str, str, Callable[[sn.Graph, sn.TensorHandle], Any]]] = [
    ("kernel larger than input", "big", lambda g, h: g.conv2d(h, 4, 9, name="big")),
    ("groups do not divide channels", "grp", lambda g, h: g.conv2d(h, 6, 3, groups=3, name="grp")),
    ("zero stride", "s0", lambda g, h: g.conv2d(h, 4, 3, stride=0, name="s0")),
    ("negative padding", "negpad", lambda g, h: g.conv2d(h, 4, 3, padding=-1, name="negpad")),
    ("zero dilation", "dil0", lambda g, h: g.conv2d(h, 4, 3, dilation=0, name="dil0")),
    ("zero out_channels", "oc0", lambda g, h: g.conv2d(h, 0, 3, name="oc0")),
    (
        "add shape mismatch",
        "join",
        lambda g, h: g.add(h, g.maxpool(h, 2, name="half"), name="join"),
    ),
    (
        "concat spatial mismatch",
        "fan",
        lambda g, h: g.concat([h, g.maxpool(h, 2, name="half")], name="fan"),
    ),
    ("dropout p = 1", "drop", lambda g, h: g.dropout(h, 1.0, name="drop")),
    ("dropout p < 0", "dropneg", lambda g, h: g.dropout(h, -0.1, name="dropneg")),
    ("even LRN size", "norm", lambda g, h: g.lrn(h, size=4, name="norm")),
    ("fc without outputs", "head", lambda g, h: g.fc(h, 0, name="head")),
    ("batchnorm eps = 0", "bn", lambda g, h: g.batchnorm(h, eps=0.0, name="bn")),
    ("batchnorm momentum > 1", "bn2", lambda g, h: g.batchnorm(h, momentum=1.5, name="bn2")),
    (
        "pool padding beyond half the kernel",
        "mp",
        lambda g, h: g.maxpool(h, 2, 1, padding=2, name="mp"),
    ),
    ("pool window larger than input", "avg", lambda g, h: g.avgpool(h, 7, name="avg")),
    ("duplicate name", "stem", lambda g, h: g.relu(h, name="stem")),
    ("second input layer", "data2", lambda g, h: g.input(shape=(1, 2, 2), name="data2")),
    ("input with a zero dimension", "data3", lambda g, h: g.input(shape=(0, 2, 2), name="data3")),
    (
        "loss over one class",
        "loss1",
        lambda g, h: g.softmax_cross_entropy(g.fc(h, 1, name="one"), name="loss1"),
    ),
    (
        "consuming the loss",
        "after",
        lambda g, h: g.relu(g.softmax_cross_entropy(h, name="loss"), name="after"),
    ),
    (
        "second loss",
        "loss2",
        lambda g, h: (
            g.softmax_cross_entropy(g.fc(h, 3, name="f1"), name="loss"),
            g.softmax_cross_entropy(g.fc(h, 3, name="f2"), name="loss2"),
        ),
    ),
    ("input from another graph", "stranger", lambda g, h: g.relu(base()[1], name="stranger")),
]


@pytest.mark.parametrize("case", BUILDER_CASES, ids=[c[0] for c in BUILDER_CASES])
def test_builder_rejects_and_leaves_graph_unchanged(case: tuple) -> None:
    _, layer, build = case
    g, h = base()
    with pytest.raises(sn.GraphError, match=f"'{layer}'"):
        build(g, h)
    # Layers added by the case before the failing call stay (they were valid); the failing
    # one must be absent and the graph must still be usable.
    names = [s.name for s in g.layers]
    assert names.count(layer) == (1 if layer == "stem" else 0)
    before = len(g)
    ok = g.relu(h, name="still_usable")
    assert len(g) == before + 1 and ok.shape == h.shape == g.layers[-1].shape


def spec(name: str, kind: str, inputs: list[str] | None = None, **attrs: float) -> dict:
    return {"name": name, "kind": kind, "inputs": inputs or [], "attrs": attrs}


GOOD = [
    spec("x", "input", c=2, h=4, w=4),
    spec("f", "fc", ["x"], out_features=3),
    spec("loss", "softmax_cross_entropy", ["f"]),
]

DICT_CASES = [
    ("unknown kind", "weird", [*GOOD, spec("weird", "transformer", ["x"])]),
    ("missing input", "f2", [*GOOD[:1], spec("f2", "fc", ["nowhere"], out_features=3)]),
    ("cycle", "a", [GOOD[0], spec("a", "relu", ["b"]), spec("b", "relu", ["a"])]),
    (
        "unknown hyperparameter",
        "f",
        [GOOD[0], spec("f", "fc", ["x"], out_features=3, size=2), GOOD[2]],
    ),
    (
        "non-integer kernel",
        "c",
        [GOOD[0], spec("c", "conv2d", ["x"], out_channels=2, kernel_h=2.5, kernel_w=2)],
    ),
    ("wrong number of inputs", "j", [GOOD[0], spec("j", "add", ["x"])]),
    ("conv without out_channels", "c", [GOOD[0], spec("c", "conv2d", ["x"], kernel_h=3)]),
]


@pytest.mark.parametrize("case", DICT_CASES, ids=[c[0] for c in DICT_CASES])
def test_from_dict_rejects(case: tuple) -> None:
    _, layer, layers = case
    with pytest.raises(sn.GraphError, match=f"'{layer}'"):
        sn.Graph.from_dict({"layers": layers})


def test_from_dict_round_trip() -> None:
    g, h = base()
    g.softmax_cross_entropy(g.fc(g.global_avgpool(h), 3))
    again = sn.Graph.from_dict(g.to_dict())
    assert [(s.name, s.kind, s.shape) for s in again.layers] == [
        (s.name, s.kind, s.shape) for s in g.layers
    ]


def test_dangling_output_is_named_at_compile() -> None:
    g, h = base()
    g.relu(h, name="orphan")
    g.softmax_cross_entropy(g.fc(h, 3))
    with pytest.raises(sn.GraphError, match=r"'orphan'.*never used"):
        sn.Session(g, batch_size=2)


def test_graph_without_loss_is_rejected_at_compile() -> None:
    g, _ = base()
    with pytest.raises(sn.GraphError, match="no loss"):
        sn.Session(g, batch_size=2)


@pytest.mark.parametrize("batch", [0, -3])
def test_batch_below_one(batch: int) -> None:
    g, h = base()
    g.softmax_cross_entropy(g.fc(h, 3))
    with pytest.raises(ValueError, match="batch_size"):
        sn.Session(g, batch_size=batch)


def test_bad_batches_handed_to_a_session() -> None:
    g, h = base()
    g.softmax_cross_entropy(g.fc(h, 3))
    s = sn.Session(g, batch_size=2)
    x = np.zeros((2, 4, 6, 6), np.float32)
    with pytest.raises(ValueError, match="label 3 at index 1"):
        s.train_step(x, np.array([0, 3], np.int32), lr=0.1)
    with pytest.raises(ValueError, match=r"shape \(n, 4, 6, 6\)"):
        s.train_step(np.zeros((2, 4, 6, 5), np.float32), np.zeros(2, np.int32), lr=0.1)
    with pytest.raises(ValueError, match="between 1 and 2"):
        s.train_step(np.zeros((3, 4, 6, 6), np.float32), np.zeros(3, np.int32), lr=0.1)
    assert s.iteration == 0  # nothing ran
    s.train_step(x, np.array([0, 2], np.int32), lr=0.1)
    assert s.iteration == 1
