"""Architecture spaces that build superneurons networks: ``nb101``, ``nb201``, ``chain``.

Each space is a ``nas.Space`` (so every strategy searches it) with two more methods:

- ``space.to_graph(config, *, num_classes, image_size, in_channels=3, channels=16,
  cells=3)`` returns an ``sn.Graph``: a stem, three stages of ``cells`` cells with a
  reduction between stages (channels double, resolution halves), global average
  pooling and a classifier, as NAS-Bench-101 and NAS-Bench-201 define their skeletons.
- ``space.key(config)``: a hashable identity. On ``nb101`` it is invariant to graph
  isomorphism (see Note [Cell keys]).

Encodings (``space.encode``) are adjacency plus one-hot ops: ``nb101`` has one bit per
possible edge and a one-hot block per intermediate node; ``nb201`` has a one-hot op
block per edge of its fixed 4-node DAG (the op is the edge's label, ``none`` removes
it); ``chain`` has its depth plus one-hot op and width blocks per layer.

Note [Cell validity]
An ``nb101`` cell is valid when it has at most ``max_edges`` edges (counted before
pruning) and a path from the input node to the output node. Invalid cells are never
sampled or suggested (the check is a ``Space`` constraint), ``space.contains`` says
False, and ``to_graph`` raises ``ValueError`` naming the rule broken. An ``nb201``
cell is always valid: when ``none`` edges cut every path to the output, the cell's
output is zero, so the classifier sees zeros and learns the class prior, as in
NAS-Bench-201. Ops applied to a zero node are zero too (they are not built).

Note [Cell keys]
``nb101`` keys follow NAS-Bench-101: nodes not on a path from input to output are
pruned (their ops do not matter), then the remaining labelled DAG is hashed with
Weisfeiler-Lehman iterations: each node starts from (op, in-degree, out-degree) and is
rehashed ``n`` times with the sorted hashes of its predecessors and successors; the
key is the hash of the sorted final node hashes. Isomorphic cells (the same DAG
with intermediate nodes numbered differently) get the same key. NAS-Bench-101 checked
this hash against exact isomorphism over all 423k cells of its space.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nas._cells import NB101_OPS, NB201_OPS, CellSpace
from nas._params import Categorical, Int
from nas._space import Config, Space, strip_meta

if TYPE_CHECKING:  # superneurons is imported when a graph is built, not with nas
    import superneurons as sn
    from superneurons.graph import TensorHandle

__all__ = [
    "SPACES",
    "ChainSpace",
    "NB101Space",
    "NB201Space",
    "chain",
    "get_space",
    "graph_flops",
    "nb101",
    "nb201",
]

_STAGES = 3  # stages of the macro skeleton (NAS-Bench-101 and -201 both use three)
CHAIN_OPS = ("conv3x3", "conv5x5", "conv1x1", "maxpool3x3")
CHAIN_WIDTHS = (16, 32, 64)


def _check_build_args(
    num_classes: int, image_size: int, in_channels: int, channels: int, cells: int
) -> None:
    for name, value, low in (
        ("num_classes", num_classes, 2),
        ("image_size", image_size, 1),
        ("in_channels", in_channels, 1),
        ("channels", channels, 1),
        ("cells", cells, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"to_graph: {name} must be an int >= {low}, got {value!r}")


def _check_member(space: Space, config: Mapping[str, Any], what: str) -> Config:
    cfg = strip_meta(config)
    rows = space.to_rows([cfg])  # raises ValueError naming a bad or missing parameter
    expected = {n for n, a in zip(space.names, space.active_mask(rows)[0], strict=True) if a}
    extra = sorted(set(cfg) - expected)
    if extra:
        raise ValueError(f"{what}: config has parameters not in the space: {extra}")
    return cfg


def _conv_bn_relu(
    g: sn.Graph, x: TensorHandle, out: int, kernel: int, name: str, stride: int = 1
) -> TensorHandle:
    y = g.conv2d(x, out, kernel=kernel, stride=stride, padding=kernel // 2, bias=False, name=name)
    return g.relu(g.batchnorm(y, name=name + "_bn"), name=name + "_relu")


def _sum(g: sn.Graph, terms: Sequence[TensorHandle], name: str) -> TensorHandle:
    acc = terms[0]
    for k, t in enumerate(terms[1:]):
        acc = g.add(acc, t, name=f"{name}_add{k}")
    return acc


def _zero(g: sn.Graph, x: TensorHandle, name: str) -> TensorHandle:
    """An exactly-zero (C, 1, 1) tensor computed from ``x``.

    A bias-free 1x1 convolution whose single output position lies in the padding: it
    reads only padded zeros, so its value and its weight gradient are exactly zero.
    """
    c, h, w = x.shape
    stride = max(h, w) + 2
    return g.conv2d(x, c, kernel=1, stride=stride, padding=1, bias=False, name=name)


def _head(g: sn.Graph, x: TensorHandle, num_classes: int) -> None:
    pooled = x if x.shape[1:] == (1, 1) else g.global_avgpool(x, name="gap")
    g.softmax_cross_entropy(g.fc(pooled, num_classes, name="classifier"), name="loss")


def graph_flops(graph: sn.Graph) -> int:
    """Multiply-adds times two of one forward pass per sample (conv and fc layers).

    >>> import superneurons as sn
    >>> g = sn.Graph()
    >>> x = g.input(shape=(1, 4, 4))
    >>> _ = g.softmax_cross_entropy(g.fc(g.conv2d(x, 2, kernel=3, padding=1), 3))
    >>> graph_flops(g) == 2 * (2 * 16 * 9) + 2 * (32 * 3)
    True
    """
    shapes = {s.name: s.shape for s in graph.layers}
    total = 0
    for s in graph.layers:
        if s.kind == "conv2d":
            cin = shapes[s.inputs[0]][0] // int(s.attrs["groups"])
            kh, kw = int(s.attrs["kernel_h"]), int(s.attrs["kernel_w"])
            total += 2 * s.shape[0] * s.shape[1] * s.shape[2] * cin * kh * kw
        elif s.kind == "fc":
            c, h, w = shapes[s.inputs[0]]
            total += 2 * c * h * w * s.shape[0]
    return total


# --------------------------------------------------------------------- NAS-Bench-101
def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _wl_hash(n: int, edges: Sequence[tuple[int, int]], labels: Sequence[str]) -> bytes:
    """Weisfeiler-Lehman hash of a labelled DAG (see Note [Cell keys])."""
    preds: list[list[int]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for i, j in edges:
        succs[i].append(j)
        preds[j].append(i)
    h = [_digest(f"{labels[v]}|{len(preds[v])}|{len(succs[v])}") for v in range(n)]
    for _ in range(n):
        h = [
            _digest(
                "".join(sorted(h[u] for u in preds[v]))
                + "|"
                + "".join(sorted(h[u] for u in succs[v]))
                + "|"
                + h[v]
            )
            for v in range(n)
        ]
    return bytes.fromhex(_digest("".join(sorted(h))))


class NB101Space(CellSpace):
    """NAS-Bench-101 cells: ``op1..op{n-2}`` and edge bits ``e{i}_{j}``; builds graphs.

    A node sums its inputs (projected by a 1x1 conv-bn-relu where widths differ), then
    applies its op (conv3x3 / conv1x1 as conv-bn-relu, maxpool3x3 with stride 1). The
    output node concatenates the nodes that feed it (their widths split the cell's
    channels) and adds a 1x1 projection of the cell input when the input feeds it
    directly. See Note [Cell validity] and Note [Cell keys].

    >>> import nas.spaces as sp
    >>> s = sp.nb101()
    >>> cfg = s.sample(1, seed=0)[0]
    >>> g = s.to_graph(cfg, num_classes=10, image_size=8, in_channels=1, channels=8, cells=1)
    >>> g.layers[-1].kind, s.key(cfg) == s.key(dict(cfg))
    ('softmax_cross_entropy', True)
    """

    def __init__(self, n_nodes: int = 7, max_edges: int = 9) -> None:
        super().__init__(n_nodes, max_edges, NB101_OPS)

    def to_json(self) -> dict[str, Any]:
        return {"nas_space": "nb101", "n_nodes": self.n_nodes, "max_edges": self.max_edges}

    def pruned(self, config: Mapping[str, Any]) -> tuple[list[int], list[tuple[int, int]]]:
        """Nodes on a path from input to output, and the edges among them.

        Raises ``ValueError`` for an invalid cell (see Note [Cell validity]).
        """
        edges = self.edges(config)
        if len(edges) > self.max_edges:
            raise ValueError(
                f"nb101: cell has {len(edges)} edges, more than max_edges={self.max_edges}"
            )
        out = self.n_nodes - 1
        fwd = self._closure(0, edges, forward=True)
        back = self._closure(out, edges, forward=False)
        if out not in fwd:
            raise ValueError("nb101: cell has no path from the input node to the output node")
        keep = sorted(fwd & back)
        kept = set(keep)
        return keep, [(i, j) for i, j in edges if i in kept and j in kept]

    @staticmethod
    def _closure(start: int, edges: Sequence[tuple[int, int]], forward: bool) -> set[int]:
        seen, todo = {start}, [start]
        while todo:
            u = todo.pop()
            for i, j in edges:
                a, b = (i, j) if forward else (j, i)
                if a == u and b not in seen:
                    seen.add(b)
                    todo.append(b)
        return seen

    def _labels(self, config: Mapping[str, Any], nodes: Sequence[int]) -> list[str]:
        last = self.n_nodes - 1
        return [
            "input" if v == 0 else "output" if v == last else str(config[f"op{v}"]) for v in nodes
        ]

    def row_key(self, row: np.ndarray) -> bytes:
        """Isomorphism-invariant key of a native row (raw row bytes for an invalid cell)."""
        cfg = self.from_rows(np.asarray(row, dtype=float)[None, :])[0]
        try:
            nodes, edges = self.pruned(cfg)
        except ValueError:
            return b"invalid:" + super().row_key(row)
        index = {v: k for k, v in enumerate(nodes)}
        return _wl_hash(
            len(nodes), [(index[i], index[j]) for i, j in edges], self._labels(cfg, nodes)
        )

    def _widths(
        self, nodes: Sequence[int], edges: Sequence[tuple[int, int]], out_channels: int
    ) -> dict[int, int]:
        out = self.n_nodes - 1
        feeders = sorted(i for i, j in edges if j == out and i != 0)
        width: dict[int, int] = {}
        for k, v in enumerate(feeders):
            width[v] = out_channels // len(feeders) + (k < out_channels % len(feeders))
        for v in sorted(nodes, reverse=True):
            if v in (0, out) or v in width:
                continue
            width[v] = max(width[j] for i, j in edges if i == v and j != out)
        return width

    def _cell(
        self,
        g: sn.Graph,
        x: TensorHandle,
        cfg: Mapping[str, Any],
        nodes: Sequence[int],
        edges: Sequence[tuple[int, int]],
        out_channels: int,
        name: str,
    ) -> TensorHandle:
        out = self.n_nodes - 1
        width = self._widths(nodes, edges, out_channels)
        t: dict[int, TensorHandle] = {0: x}
        for v in nodes:
            if v in (0, out):
                continue
            terms = []
            for i in sorted(i for i, j in edges if j == v):
                src = t[i]
                if i == 0 or src.shape[0] != width[v]:
                    src = _conv_bn_relu(g, src, width[v], 1, f"{name}_proj{i}_{v}")
                terms.append(src)
            h = _sum(g, terms, f"{name}_n{v}")
            op = cfg[f"op{v}"]
            if op == "maxpool3x3":
                t[v] = g.maxpool(h, kernel=3, stride=1, padding=1, name=f"{name}_n{v}_maxpool")
            else:
                kernel = 3 if op == "conv3x3" else 1
                t[v] = _conv_bn_relu(g, h, width[v], kernel, f"{name}_n{v}_{op}")
        feeders = [t[i] for i in sorted(i for i, j in edges if j == out and i != 0)]
        result = None
        if len(feeders) == 1:
            result = feeders[0]
        elif feeders:
            result = g.concat(feeders, name=f"{name}_out")
        if (0, out) in edges:
            skip = _conv_bn_relu(g, x, out_channels, 1, f"{name}_proj0_out")
            result = skip if result is None else g.add(result, skip, name=f"{name}_out_add")
        assert result is not None  # a valid cell reaches the output
        return result

    def to_graph(
        self,
        config: Mapping[str, Any],
        *,
        num_classes: int,
        image_size: int,
        in_channels: int = 3,
        channels: int = 16,
        cells: int = 3,
    ) -> sn.Graph:
        """The NAS-Bench-101 network: stem conv3x3, 3 stages of ``cells`` cells, GAP, fc.

        Between stages a 2x2 max pool halves the resolution (while it is at least 2) and
        the next stage's cells double the channels.
        """
        import superneurons as sn

        _check_build_args(num_classes, image_size, in_channels, channels, cells)
        cfg = _check_member(self, config, "nb101")
        nodes, edges = self.pruned(cfg)
        g = sn.Graph()
        x = g.input(shape=(in_channels, image_size, image_size), name="data")
        x = _conv_bn_relu(g, x, channels, 3, "stem")
        width = channels
        for stage in range(_STAGES):
            if stage > 0:
                width *= 2
                if x.shape[1] >= 2:
                    x = g.maxpool(x, kernel=2, name=f"s{stage}_down")
            for c in range(cells):
                x = self._cell(g, x, cfg, nodes, edges, width, f"s{stage}c{c}")
        _head(g, x, num_classes)
        return g


def nb101(n_nodes: int = 7, max_edges: int = 9) -> NB101Space:
    """The NAS-Bench-101 cell space (ops conv3x3, conv1x1, maxpool3x3).

    >>> import nas.spaces as sp
    >>> s = sp.nb101()
    >>> s.names[:5], s.n_features
    (['op1', 'op2', 'op3', 'op4', 'op5'], 36)
    """
    return NB101Space(n_nodes, max_edges)


# --------------------------------------------------------------------- NAS-Bench-201
class NB201Space(Space):
    """NAS-Bench-201 cells: 4 nodes, edges ``e{j}_{i}`` (i -> j), an op on each edge.

    Node ``j`` sums ``op(e{j}_{i})(node i)`` over ``i < j``; ops are ``none`` (the edge
    is absent), ``skip_connect``, relu-conv-bn with a 1x1 or 3x3 kernel, and a 3x3
    average pool. Between stages, a residual block with stride 2 doubles the channels.
    See Note [Cell validity] for cells whose output is zero.

    >>> import nas.spaces as sp
    >>> s = sp.nb201()
    >>> cfg = {n: "conv3x3" for n in s.names}
    >>> g = s.to_graph(cfg, num_classes=10, image_size=8, in_channels=1, channels=8, cells=1)
    >>> g.num_params() > 0, s.names[0]
    (True, 'e1_0')
    """

    def __init__(self, ops: Sequence[str] = NB201_OPS) -> None:
        self.ops = tuple(ops)
        unknown = sorted(set(self.ops) - set(NB201_OPS))
        if unknown:
            raise ValueError(f"nb201: unknown ops {unknown}; choose from {list(NB201_OPS)}")
        super().__init__(
            {f"e{j}_{i}": Categorical(list(self.ops)) for j in range(1, 4) for i in range(j)}
        )

    def to_json(self) -> dict[str, Any]:
        return {"nas_space": "nb201", "ops": list(self.ops)}

    def live_nodes(self, config: Mapping[str, Any]) -> set[int]:
        """Nodes whose value is not identically zero (node 0 always is live)."""
        live = {0}
        for j in range(1, 4):
            if any(i in live and config[f"e{j}_{i}"] != "none" for i in range(j)):
                live.add(j)
        return live

    def _cell(
        self, g: sn.Graph, x: TensorHandle, cfg: Mapping[str, Any], name: str
    ) -> TensorHandle | None:
        live = self.live_nodes(cfg)
        if 3 not in live:
            return None
        needed = {3}  # nodes the output depends on
        for j in (3, 2, 1):
            if j in needed:
                needed |= {i for i in range(j) if i in live and cfg[f"e{j}_{i}"] != "none"}
        c = x.shape[0]
        t: dict[int, TensorHandle] = {0: x}
        for j in (1, 2, 3):
            if j not in needed:
                continue
            terms = []
            for i in range(j):
                op = cfg[f"e{j}_{i}"]
                if i not in needed or op == "none":
                    continue
                src, tag = t[i], f"{name}_e{j}_{i}_{op}"
                if op == "skip_connect":
                    terms.append(src)
                elif op == "avgpool3x3":
                    terms.append(g.avgpool(src, kernel=3, stride=1, padding=1, name=tag))
                else:
                    kernel = 3 if op == "conv3x3" else 1
                    y = g.relu(src, name=tag + "_relu")
                    y = g.conv2d(y, c, kernel=kernel, padding=kernel // 2, bias=False, name=tag)
                    terms.append(g.batchnorm(y, name=tag + "_bn"))
            t[j] = _sum(g, terms, f"{name}_n{j}")
        return t[3]

    @staticmethod
    def _reduction(g: sn.Graph, x: TensorHandle, out: int, name: str) -> TensorHandle:
        """NAS-Bench-201's residual block: two relu-conv3x3-bn (the first with stride 2)
        plus a 2x2 average pool and 1x1 conv shortcut."""
        stride = 2 if x.shape[1] >= 2 else 1
        a = g.relu(x, name=name + "_a_relu")
        a = g.conv2d(a, out, kernel=3, stride=stride, padding=1, bias=False, name=name + "_a")
        a = g.batchnorm(a, name=name + "_a_bn")
        b = g.relu(a, name=name + "_b_relu")
        b = g.conv2d(b, out, kernel=3, padding=1, bias=False, name=name + "_b")
        b = g.batchnorm(b, name=name + "_b_bn")
        s = g.avgpool(x, kernel=2, name=name + "_pool") if stride == 2 else x
        s = g.conv2d(s, out, kernel=1, bias=False, name=name + "_short")
        return g.add(b, s, name=name + "_add")

    def to_graph(
        self,
        config: Mapping[str, Any],
        *,
        num_classes: int,
        image_size: int,
        in_channels: int = 3,
        channels: int = 16,
        cells: int = 3,
    ) -> sn.Graph:
        """The NAS-Bench-201 network: stem conv3x3-bn, 3 stages of ``cells`` cells with a
        residual reduction block between them, then bn-relu, GAP and fc.

        When a cell's output is zero the network is cut there: the classifier reads an
        exactly-zero tensor (see Note [Cell validity]), and the graph still trains.
        """
        import superneurons as sn

        _check_build_args(num_classes, image_size, in_channels, channels, cells)
        cfg = _check_member(self, config, "nb201")
        g = sn.Graph()
        x = g.input(shape=(in_channels, image_size, image_size), name="data")
        x = g.conv2d(x, channels, kernel=3, padding=1, bias=False, name="stem")
        x = g.batchnorm(x, name="stem_bn")
        width = channels
        for stage in range(_STAGES):
            if stage > 0:
                width *= 2
                x = self._reduction(g, x, width, f"s{stage}_down")
            for c in range(cells):
                y = self._cell(g, x, cfg, f"s{stage}c{c}")
                if y is None:
                    _head(g, _zero(g, x, f"s{stage}c{c}_zero"), num_classes)
                    return g
                x = y
        x = g.relu(g.batchnorm(x, name="last_bn"), name="last_relu")
        _head(g, x, num_classes)
        return g


def nb201() -> NB201Space:
    """The NAS-Bench-201 cell space: six edges, each one of ``NB201_OPS``.

    >>> import nas.spaces as sp
    >>> sp.nb201().n_features
    30
    """
    return NB201Space()


# ------------------------------------------------------------------------- chains
class ChainSpace(Space):
    """A chain of ``depth`` layers, each an op with a width (conditional on depth).

    Convolutions are conv-bn-relu with the layer's width; ``maxpool3x3`` (stride 1)
    keeps its input's channels, so its width is unused. ``cells`` in ``to_graph`` is
    the number of stages: a 2x2 max pool follows the layers that end a stage.

    >>> import nas.spaces as sp
    >>> s = sp.chain(max_depth=3)
    >>> cfg = {"depth": 2, "op1": "conv3x3", "width1": 16, "op2": "conv1x1", "width2": 32}
    >>> g = s.to_graph(cfg, num_classes=10, image_size=8, in_channels=1)
    >>> g.num_params() == (9 * 16 + 2 * 16) + (16 * 32 + 2 * 32) + (32 * 10 + 10)
    True
    """

    def __init__(
        self,
        max_depth: int = 6,
        ops: Sequence[str] = CHAIN_OPS,
        widths: Sequence[int] = CHAIN_WIDTHS,
    ) -> None:
        if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1:
            raise ValueError(f"chain: max_depth must be an int >= 1, got {max_depth!r}")
        unknown = sorted(set(ops) - set(CHAIN_OPS))
        if unknown:
            raise ValueError(f"chain: unknown ops {unknown}; choose from {list(CHAIN_OPS)}")
        if not widths or any(
            isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths
        ):
            raise ValueError(f"chain: widths must be positive ints, got {list(widths)}")
        self.max_depth = max_depth
        self.ops = tuple(ops)
        self.widths = tuple(widths)
        params: dict[str, Any] = {"depth": Int(1, max_depth)}
        conds: dict[str, tuple[str, list[int]]] = {}
        for i in range(1, max_depth + 1):
            params[f"op{i}"] = Categorical(list(self.ops))
            params[f"width{i}"] = Categorical(list(self.widths))
            if i > 1:
                conds[f"op{i}"] = ("depth", list(range(i, max_depth + 1)))
                conds[f"width{i}"] = ("depth", list(range(i, max_depth + 1)))
        super().__init__(params, conditions=conds)

    def to_json(self) -> dict[str, Any]:
        return {
            "nas_space": "chain",
            "max_depth": self.max_depth,
            "ops": list(self.ops),
            "widths": list(self.widths),
        }

    def to_graph(
        self,
        config: Mapping[str, Any],
        *,
        num_classes: int,
        image_size: int,
        in_channels: int = 3,
        channels: int = 16,
        cells: int = 3,
    ) -> sn.Graph:
        """The chain, a 2x2 max pool after each stage but the last, GAP and fc.

        ``channels`` is unused (each layer has its own width).
        """
        import superneurons as sn

        _check_build_args(num_classes, image_size, in_channels, channels, cells)
        cfg = _check_member(self, config, "chain")
        depth = int(cfg["depth"])
        stages = min(cells, depth)
        ends = {round(depth * s / stages) for s in range(1, stages)}
        g = sn.Graph()
        x = g.input(shape=(in_channels, image_size, image_size), name="data")
        for i in range(1, depth + 1):
            op = cfg[f"op{i}"]
            if op == "maxpool3x3":
                x = g.maxpool(x, kernel=3, stride=1, padding=1, name=f"l{i}_maxpool")
            else:
                kernel = {"conv3x3": 3, "conv5x5": 5, "conv1x1": 1}[op]
                x = _conv_bn_relu(g, x, int(cfg[f"width{i}"]), kernel, f"l{i}_{op}")
            if i in ends and x.shape[1] >= 2:
                x = g.maxpool(x, kernel=2, name=f"l{i}_down")
        _head(g, x, num_classes)
        return g


def chain(
    max_depth: int = 6, ops: Sequence[str] = CHAIN_OPS, widths: Sequence[int] = CHAIN_WIDTHS
) -> ChainSpace:
    """A chain space: ``depth``, then ``op{i}`` and ``width{i}`` for each layer.

    >>> import nas.spaces as sp
    >>> sorted(sp.chain(max_depth=2).sample(1, seed=0)[0])
    ['depth', 'op1', 'op2', 'width1', 'width2']
    """
    return ChainSpace(max_depth, ops, widths)


SPACES: dict[str, Callable[[], Space]] = {"nb101": nb101, "nb201": nb201, "chain": chain}


def get_space(name: str) -> Space:
    """A ready architecture space by name (``nb101``, ``nb201`` or ``chain``).

    >>> get_space("nb201").n_params
    6
    """
    if name not in SPACES:
        raise ValueError(f"unknown architecture space {name!r}; choose from {sorted(SPACES)}")
    space: Space = SPACES[name]()
    return space


def from_json(data: Mapping[str, Any]) -> Space:
    """Rebuild a space written by ``to_json`` of a space in this module."""
    kind = data.get("nas_space")
    args = {k: v for k, v in data.items() if k != "nas_space"}
    if kind == "nb101":
        return NB101Space(**args)
    if kind == "nb201":
        return NB201Space(**args)
    if kind == "chain":
        return ChainSpace(**args)
    raise ValueError(f"unknown architecture space in JSON: {kind!r}")


Space.register_json("nas_space", from_json)
