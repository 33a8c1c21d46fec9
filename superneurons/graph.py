"""The graph builder: networks as DAGs of layers, checked as they are built.

Every builder method validates its layer in the C++ core (hyperparameters, shapes) and
either appends it or raises :class:`superneurons.GraphError` naming the layer, leaving the
graph unchanged.

Example:
    >>> import superneurons as sn
    >>> g = sn.Graph()
    >>> x = g.input(shape=(3, 32, 32))
    >>> y = g.relu(g.batchnorm(g.conv2d(x, 16, kernel=3, padding=1)))
    >>> y.shape
    (16, 32, 32)
    >>> loss = g.softmax_cross_entropy(g.fc(g.global_avgpool(y), 10))
    >>> len(g)
    7
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from superneurons._ext import _C
from superneurons.errors import GraphError

__all__ = ["Graph", "LayerSpec", "TensorHandle"]

IntPair = int | tuple[int, int]


@dataclass(frozen=True)
class TensorHandle:
    """The output of one layer: its name and per-sample shape (C, H, W)."""

    name: str
    shape: tuple[int, int, int]
    graph_id: int = field(repr=False, compare=False)


@dataclass(frozen=True)
class LayerSpec:
    """One layer as built: its kind, input layer names, hyperparameters and output shape."""

    name: str
    kind: str
    inputs: tuple[str, ...]
    attrs: dict[str, float]
    shape: tuple[int, int, int]

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON-ready data (see :meth:`Graph.from_dict`)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "inputs": list(self.inputs),
            "attrs": dict(self.attrs),
        }


def _is_int(v: object) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _pair(value: IntPair, what: str) -> tuple[int, int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, Sequence) and len(value) == 2 and all(_is_int(v) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"{what} must be an int or a pair of ints, got {value!r}")


def _numbers(layer: str, attrs: Mapping[str, object]) -> dict[str, float]:
    """Hyperparameters as the core takes them; anything not a real number is a GraphError."""
    out: dict[str, float] = {}
    for key, value in attrs.items():
        if isinstance(value, bool):
            out[key] = float(value)
        elif isinstance(value, numbers.Real):
            out[key] = value  # type: ignore[assignment]
        else:
            raise GraphError(f"layer '{layer}': {key} must be a number, got {value!r}")
    return out


class Graph:
    """A network under construction: an input, layers, and one softmax cross-entropy loss."""

    def __init__(self) -> None:
        self._core = _C.Graph()
        self._specs: list[LayerSpec] = []
        self._counts: dict[str, int] = {}
        self._names: set[str] = set()

    # ------------------------------------------------------------------ introspection
    @property
    def layers(self) -> list[LayerSpec]:
        """Every layer in insertion order (a topological order)."""
        return list(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"Graph({len(self)} layers, {self.num_params():,} parameters)"

    def tensor(self, name: str) -> TensorHandle:
        """The output of the layer called ``name``, to build on it later.

        Example:
            >>> import superneurons as sn
            >>> g = sn.Graph()
            >>> _ = g.input(shape=(3, 8, 8), name="data")
            >>> g.tensor("data").shape
            (3, 8, 8)
        """
        for spec in self._specs:
            if spec.name == name:
                return TensorHandle(name, spec.shape, id(self))
        raise GraphError(f"layer '{name}' does not exist")

    def num_params(self) -> int:
        """Number of trainable parameters.

        Example:
            >>> import superneurons as sn
            >>> g = sn.Graph()
            >>> _ = g.fc(g.input(shape=(4, 1, 1)), 3)
            >>> g.num_params()
            15
        """
        total = 0
        for i in range(len(self._specs)):
            for _role, shape, trainable in self._core.param_shapes(i):
                if trainable:
                    n = 1
                    for d in shape:
                        n *= d
                    total += n
        return total

    def to_dict(self) -> dict[str, Any]:
        """The graph as plain data, e.g. for JSON; :meth:`from_dict` rebuilds it."""
        return {"layers": [s.to_dict() for s in self._specs]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Graph:
        """Builds a graph from plain data whose layers may be listed in any order.

        Missing inputs, cycles, unknown kinds and bad hyperparameters raise GraphError
        naming the layer.

        Example:
            >>> import superneurons as sn
            >>> g = sn.Graph.from_dict({"layers": [
            ...     {"name": "loss", "kind": "softmax_cross_entropy", "inputs": ["fc"]},
            ...     {"name": "fc", "kind": "fc", "inputs": ["x"], "attrs": {"out_features": 2}},
            ...     {"name": "x", "kind": "input", "attrs": {"c": 3, "h": 1, "w": 1}}]})
            >>> [s.name for s in g.layers]
            ['x', 'fc', 'loss']
        """
        if not isinstance(data, Mapping):
            raise GraphError(f"graph data must be a mapping with a 'layers' list, got {data!r}")
        layers = data.get("layers")
        if not isinstance(layers, list):
            raise GraphError("graph data needs a 'layers' list")
        specs = []
        for i, item in enumerate(layers):
            if not isinstance(item, Mapping) or "name" not in item or "kind" not in item:
                raise GraphError(f"layer #{i} needs at least 'name' and 'kind'")
            raw_attrs = item.get("attrs", {})
            if not isinstance(raw_attrs, Mapping):
                raise GraphError(f"layer '{item['name']}': attrs must be a mapping")
            attrs = _numbers(str(item["name"]), {str(k): v for k, v in raw_attrs.items()})
            specs.append(
                (
                    str(item["name"]),
                    str(item["kind"]),
                    [str(s) for s in item.get("inputs", [])],
                    attrs,
                )
            )
        g = cls()
        g._core = _C.Graph.from_specs(specs)
        by_name = {s[0]: s for s in specs}
        for i in range(len(g._core)):
            name, _kind, inputs, attrs = by_name[g._core.name(i)]
            c, h, w = g._core.shape(i)
            g._specs.append(LayerSpec(name, g._core.kind(i), tuple(inputs), attrs, (c, h, w)))
            g._names.add(name)
        return g

    # ----------------------------------------------------------------------- builders
    def _add(
        self,
        kind: str,
        inputs: Iterable[TensorHandle],
        attrs: Mapping[str, object],
        name: str | None,
    ) -> TensorHandle:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"layer name must be a string, got {name!r}")
        ins = list(inputs)
        for t in ins:
            if not isinstance(t, TensorHandle) or t.graph_id != id(self):
                raise GraphError(
                    f"layer '{name or kind}': input {t!r} is not a tensor of this graph"
                )
        if name is None:
            n = self._counts.get(kind, 0) + 1
            while f"{kind}{n}" in self._names:
                n += 1
            self._counts[kind] = n
            name = f"{kind}{n}"
        values = _numbers(name, attrs)
        self._core.add(name, kind, [t.name for t in ins], values)
        c, h, w = self._core.shape(len(self._specs))
        spec = LayerSpec(name, kind, tuple(t.name for t in ins), values, (c, h, w))
        self._specs.append(spec)
        self._names.add(name)
        return TensorHandle(name, spec.shape, id(self))

    def input(self, shape: tuple[int, int, int], name: str | None = None) -> TensorHandle:
        """The data layer; ``shape`` is per sample, (C, H, W)."""
        if len(shape) != 3:
            raise GraphError(f"layer '{name or 'input'}': shape must be (C, H, W), got {shape!r}")
        c, h, w = shape
        return self._add("input", [], {"c": c, "h": h, "w": w}, name)

    def conv2d(
        self,
        x: TensorHandle,
        out_channels: int,
        kernel: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        bias: bool = True,
        name: str | None = None,
    ) -> TensorHandle:
        """2-D convolution, weights [out_channels, C/groups, kh, kw]."""
        kh, kw = _pair(kernel, "kernel")
        sh, sw = _pair(stride, "stride")
        ph, pw = _pair(padding, "padding")
        dh, dw = _pair(dilation, "dilation")
        attrs = {
            "out_channels": out_channels,
            "kernel_h": kh,
            "kernel_w": kw,
            "stride_h": sh,
            "stride_w": sw,
            "pad_h": ph,
            "pad_w": pw,
            "dilation_h": dh,
            "dilation_w": dw,
            "groups": groups,
            "bias": float(bool(bias)),
        }
        return self._add("conv2d", [x], attrs, name)

    def batchnorm(
        self, x: TensorHandle, eps: float = 1e-5, momentum: float = 0.1, name: str | None = None
    ) -> TensorHandle:
        """Batch normalisation over (N, H, W) per channel, with running statistics."""
        return self._add("batchnorm", [x], {"eps": eps, "momentum": momentum}, name)

    def relu(self, x: TensorHandle, name: str | None = None) -> TensorHandle:
        """max(x, 0)."""
        return self._add("relu", [x], {}, name)

    def _pool(
        self,
        kind: str,
        x: TensorHandle,
        kernel: IntPair,
        stride: IntPair | None,
        padding: IntPair,
        name: str | None,
    ) -> TensorHandle:
        kh, kw = _pair(kernel, "kernel")
        sh, sw = _pair(kernel if stride is None else stride, "stride")
        ph, pw = _pair(padding, "padding")
        attrs = {
            "kernel_h": kh,
            "kernel_w": kw,
            "stride_h": sh,
            "stride_w": sw,
            "pad_h": ph,
            "pad_w": pw,
        }
        return self._add(kind, [x], attrs, name)

    def maxpool(
        self,
        x: TensorHandle,
        kernel: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        name: str | None = None,
    ) -> TensorHandle:
        """Max pooling; ``stride`` defaults to ``kernel``; padding is ignored by the max."""
        return self._pool("maxpool", x, kernel, stride, padding, name)

    def avgpool(
        self,
        x: TensorHandle,
        kernel: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        name: str | None = None,
    ) -> TensorHandle:
        """Average pooling over the in-bounds part of each window."""
        return self._pool("avgpool", x, kernel, stride, padding, name)

    def global_avgpool(self, x: TensorHandle, name: str | None = None) -> TensorHandle:
        """Mean over H and W: (C, H, W) -> (C, 1, 1)."""
        return self._add("global_avgpool", [x], {}, name)

    def fc(
        self, x: TensorHandle, out_features: int, bias: bool = True, name: str | None = None
    ) -> TensorHandle:
        """Fully connected layer over the flattened (C*H*W) input."""
        return self._add("fc", [x], {"out_features": out_features, "bias": float(bool(bias))}, name)

    def dropout(self, x: TensorHandle, p: float, name: str | None = None) -> TensorHandle:
        """Inverted dropout with drop probability ``p`` in [0, 1); seeded per iteration."""
        return self._add("dropout", [x], {"p": p}, name)

    def lrn(
        self,
        x: TensorHandle,
        size: int = 5,
        alpha: float = 1e-4,
        beta: float = 0.75,
        k: float = 2.0,
        name: str | None = None,
    ) -> TensorHandle:
        """Local response normalisation across ``size`` channels (AlexNet)."""
        return self._add("lrn", [x], {"size": size, "alpha": alpha, "beta": beta, "k": k}, name)

    def add(self, a: TensorHandle, b: TensorHandle, name: str | None = None) -> TensorHandle:
        """Elementwise sum of two tensors of the same shape (a residual join)."""
        return self._add("add", [a, b], {}, name)

    def concat(self, xs: Sequence[TensorHandle], name: str | None = None) -> TensorHandle:
        """Channel concatenation of tensors with equal H and W (a fan-in)."""
        return self._add("concat", list(xs), {}, name)

    def flatten(self, x: TensorHandle, name: str | None = None) -> TensorHandle:
        """(C, H, W) -> (C*H*W, 1, 1)."""
        return self._add("flatten", [x], {}, name)

    def softmax_cross_entropy(self, logits: TensorHandle, name: str | None = None) -> TensorHandle:
        """Marks the loss: softmax over the logits, mean cross-entropy against the labels."""
        return self._add("softmax_cross_entropy", [logits], {}, name)

    def check(self) -> None:
        """Whole-graph checks: one input, one loss, every output used. Raises GraphError."""
        self._core.check_complete()

    def route(self) -> list[str]:
        """The forward execution order (a join after all its inputs); backward is its reverse.

        Example:
            >>> import superneurons as sn
            >>> g = sn.Graph()
            >>> x = g.input(shape=(2, 1, 1), name="x")
            >>> _ = g.softmax_cross_entropy(g.fc(x, 2, name="fc"), name="loss")
            >>> g.route()
            ['x', 'fc', 'loss']
        """
        return [self._specs[i].name for i in self._core.route()]
