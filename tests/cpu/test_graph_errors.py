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


def test_labels_must_be_integers_in_range() -> None:
    g, h = base()
    g.softmax_cross_entropy(g.fc(h, 3))
    s = sn.Session(g, batch_size=2)
    x = np.zeros((2, 4, 6, 6), np.float32)
    with pytest.raises(TypeError, match="integer array"):
        s.train_step(x, np.array([1.9, 0.2]), lr=0.1)
    with pytest.raises(ValueError, match="label 4294967297 at index 0"):
        s.train_step(x, np.array([2**32 + 1, 0], np.int64), lr=0.1)
    assert s.iteration == 0
    assert s.train_step(x, np.array([2, 0], np.int64), lr=0.1).loss > 0  # int64 is fine


def test_sizes_that_would_overflow_are_rejected() -> None:
    g = sn.Graph()
    x = g.input(shape=(3, 8, 8))
    with pytest.raises(sn.GraphError, match="too large"):
        g.conv2d(x, 10**30, 3, name="huge")
    with pytest.raises(sn.GraphError, match="too large"):
        g.input(shape=(2**20, 2**20, 2**20), name="wide")  # a second input: size first
    g.softmax_cross_entropy(g.fc(x, 3))
    with pytest.raises(ValueError, match=r"batch_size must be in \[1, 2,147,483,647\]"):
        sn.plan(g, 2**62)
    with pytest.raises(ValueError, match="batch_size 1000000000000 is too large"):
        sn.Session(g, 10**12)


def test_hyperparameters_must_be_numbers() -> None:
    g = sn.Graph()
    x = g.input(shape=(3, 8, 8))
    with pytest.raises(sn.GraphError, match=r"'c1'.*out_channels must be a number"):
        g.conv2d(x, "16", 3, name="c1")  # type: ignore[arg-type]
    assert g.conv2d(x, np.int64(4), np.int64(3)).shape == (4, 6, 6)
    with pytest.raises(sn.GraphError, match="mapping"):
        sn.Graph.from_dict([1])  # type: ignore[arg-type]


def test_round_trip_keeps_order_and_initialisation() -> None:
    g = sn.models.resnet(depth=8, num_classes=10, image_size=8, in_channels=1)
    again = sn.Graph.from_dict(g.to_dict())
    assert [s.name for s in again.layers] == [s.name for s in g.layers]
    assert again.route() == g.route()
    a = sn.Session(g, batch_size=2, seed=3).parameters()
    b = sn.Session(again, batch_size=2, seed=3).parameters()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_cycle_error_names_a_layer_on_the_cycle() -> None:
    layers = [
        spec("after", "relu", ["b"]),  # downstream of the cycle, listed first
        GOOD[0],
        spec("a", "add", ["x", "b"]),
        spec("b", "relu", ["a"]),
    ]
    with pytest.raises(sn.GraphError, match=r"'(a|b)'.*cycle"):
        sn.Graph.from_dict({"layers": layers})
