"""Ready architecture spaces: NAS-Bench-101-style cells, NAS-Bench-201 cells, chains.

A NAS-Bench-101-style cell is a DAG on ``n_nodes`` nodes (node 0 the input, the
last the output) with an operation on every intermediate node. As a ``Space`` it
is ``op{k}`` categoricals plus ``e{i}_{j}`` edge bits (``i < j``), so every
strategy can search it and its feature vector is exactly "adjacency + one-hot
ops"; validity (at most ``max_edges`` edges, output reachable from input) is a
constraint. ``CellSpace.action_model()`` gives the AlphaX-style editing actions
(choose an op, add an edge, terminate) used by the ``alphax`` strategy.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from nas._params import Categorical, Int
from nas._space import Config, Space

__all__ = ["CellActions", "CellSpace", "chain_space", "nasbench201_space"]

NB101_OPS = ("conv3x3", "conv1x1", "maxpool3x3")
NB201_OPS = ("none", "skip_connect", "conv1x1", "conv3x3", "avgpool3x3")


class CellSpace(Space):
    """A NAS-Bench-101-style cell space (defaults: 7 nodes, 9 edges, 3 ops).

    >>> import nas
    >>> cell = nas.CellSpace()
    >>> cfg = cell.sample(1, seed=0)[0]
    >>> cell.contains(cfg), len(cell.edges(cfg)) <= 9, cell.n_features
    (True, True, 36)
    """

    def __init__(
        self, n_nodes: int = 7, max_edges: int = 9, ops: Sequence[str] = NB101_OPS
    ) -> None:
        if n_nodes < 2:
            raise ValueError(f"CellSpace: n_nodes must be >= 2, got {n_nodes}")
        if max_edges < 1:
            raise ValueError(f"CellSpace: max_edges must be >= 1, got {max_edges}")
        self.n_nodes = n_nodes
        self.max_edges = max_edges
        self.ops = tuple(ops)
        params: dict[str, Any] = {f"op{k}": Categorical(self.ops) for k in range(1, n_nodes - 1)}
        for i in range(n_nodes):
            for j in range(i + 1, n_nodes):
                params[f"e{i}_{j}"] = Int(0, 1)
        super().__init__(params, constraints=[self.is_valid_cell])

    def edges(self, config: Mapping[str, Any]) -> list[tuple[int, int]]:
        """The edges ``(i, j)`` present in ``config``."""
        n = self.n_nodes
        return [(i, j) for i in range(n) for j in range(i + 1, n) if config.get(f"e{i}_{j}") == 1]

    def adjacency(self, config: Mapping[str, Any]) -> np.ndarray:
        """Upper-triangular 0/1 adjacency matrix."""
        a = np.zeros((self.n_nodes, self.n_nodes), dtype=int)
        for i, j in self.edges(config):
            a[i, j] = 1
        return a

    def reachable(self, edges: Sequence[tuple[int, int]]) -> bool:
        """Whether the output node is reachable from the input node."""
        seen, todo = {0}, [0]
        while todo:
            u = todo.pop()
            for i, j in edges:
                if i == u and j not in seen:
                    seen.add(j)
                    todo.append(j)
        return self.n_nodes - 1 in seen

    def is_valid_cell(self, config: Mapping[str, Any]) -> bool:
        """At most ``max_edges`` edges and a path from input to output."""
        e = self.edges(config)
        return len(e) <= self.max_edges and self.reachable(e)

    def serializable(self) -> bool:
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "cell": {"n_nodes": self.n_nodes, "max_edges": self.max_edges, "ops": list(self.ops)}
        }

    def action_model(self) -> CellActions:
        """AlphaX editing actions on this cell space."""
        return CellActions(self)


State = tuple[tuple[tuple[int, int], ...], tuple[int, ...], bool]  # edges, ops (-1 unset), stopped


Space.register_json("cell", lambda data: CellSpace(**data["cell"]))


class CellActions:
    """AlphaX-style actions: choose the next node's op, add an edge, terminate.

    A state is ``(edges, ops, stopped)``; ``terminate`` is legal once every op is
    chosen and the output is reachable; edges can be added up to ``max_edges``.

    >>> import nas
    >>> actions = nas.CellActions(nas.CellSpace(n_nodes=4, max_edges=4))
    >>> state = actions.root()
    >>> actions.is_terminal(state), len(actions.actions(state)) > 0
    (False, True)
    """

    def __init__(self, space: CellSpace) -> None:
        self.space = space

    def root(self) -> State:
        return ((), (-1,) * (self.space.n_nodes - 2), False)

    def actions(self, state: State) -> list[Hashable]:
        edges, ops, stopped = state
        if stopped:
            return []
        if -1 in ops:
            k = ops.index(-1)
            return [("op", k, o) for o in range(len(self.space.ops))]
        acts: list[Hashable] = []
        if len(edges) < self.space.max_edges:
            n = self.space.n_nodes
            have = set(edges)
            acts += [
                ("edge", i, j) for i in range(n) for j in range(i + 1, n) if (i, j) not in have
            ]
        if self.space.reachable(edges):
            acts.append(("stop",))
        return acts

    def step(self, state: State, action: Hashable) -> State:
        edges, ops, _ = state
        assert isinstance(action, tuple)
        if action[0] == "op":
            new_ops = list(ops)
            new_ops[action[1]] = action[2]
            return edges, tuple(new_ops), False
        if action[0] == "edge":
            return tuple(sorted((*edges, (action[1], action[2])))), ops, False
        return edges, ops, True

    def is_terminal(self, state: State) -> bool:
        return state[2]

    def to_row(self, state: State, rng: np.random.Generator) -> np.ndarray:
        edges, ops, _ = state
        cfg: Config = {f"op{k + 1}": self.space.ops[o] for k, o in enumerate(ops)}
        n = self.space.n_nodes
        have = set(edges)
        for i in range(n):
            for j in range(i + 1, n):
                cfg[f"e{i}_{j}"] = 1 if (i, j) in have else 0
        row: np.ndarray = self.space.to_rows([cfg])[0]
        return row


def nasbench201_space(ops: Sequence[str] = NB201_OPS) -> Space:
    """A NAS-Bench-201-style cell: 4 nodes, 6 edges ``e{j}_{i}`` (i -> j), an op each.

    >>> import nas
    >>> nas.nasbench201_space().names
    ['e1_0', 'e2_0', 'e2_1', 'e3_0', 'e3_1', 'e3_2']
    """
    return Space({f"e{j}_{i}": Categorical(list(ops)) for j in range(1, 4) for i in range(j)})


def chain_space(
    max_depth: int = 10,
    ops: Sequence[str] = ("conv3x3", "conv5x5", "conv1x1", "maxpool3x3"),
    widths: Sequence[int] = (32, 64, 96),
) -> Space:
    """A chain of up to ``max_depth`` layers; layer ``i``'s op and width exist iff depth >= i.

    >>> import nas
    >>> s = nas.chain_space(max_depth=3)
    >>> sorted(s.sample(1, seed=0)[0])
    ['depth', 'op1', 'op2', 'width1', 'width2']
    """
    if max_depth < 1:
        raise ValueError(f"chain_space: max_depth must be >= 1, got {max_depth}")
    params: dict[str, Any] = {"depth": Int(1, max_depth)}
    conds: dict[str, tuple[str, list[int]]] = {}
    for i in range(1, max_depth + 1):
        params[f"op{i}"] = Categorical(list(ops))
        params[f"width{i}"] = Categorical(list(widths))
        if i > 1:
            conds[f"op{i}"] = ("depth", list(range(i, max_depth + 1)))
            conds[f"width{i}"] = ("depth", list(range(i, max_depth + 1)))
    return Space(params, conditions=conds)
