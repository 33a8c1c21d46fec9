"""AlphaX-style MCTS (source Ch. 3) over actions that build an architecture.

States are partial architectures and actions edit them: on a ``CellSpace`` the
actions choose a node's op, add an edge or terminate (``CellActions``); on any
other space the actions fix one parameter after another (``SequentialActions``;
a real parameter picks one of ``bins`` equal intervals and is drawn uniformly
inside it). Each suggestion runs one MCTS iteration:

- *selection* by UCB1, ``Q/N + 2 c sqrt(2 ln N(s) / N(s, a))`` with ``c`` scaled by
  the spread of observed scores (the source sets c = 0.5 on accuracies);
- *expansion* of one untried action;
- *simulation*: random rollouts to a terminal state. With ``predictor=True``
  (a ridge regressor on the features standing in for the source's meta-DNN),
  ``n_simulations`` rollouts are scored and the best predicted one is
  dispatched; its backed-up value is ``(value + mean prediction) / 2`` (Eq. 3.2);
- *backpropagation* when the result is observed. Until then the path carries a
  virtual visit valued at the node's current mean, so a batch spreads out.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any, Protocol

import numpy as np

from nas._numeric import fit_linear
from nas._registry import register
from nas._space import Config, Space
from nas._strategy import Strategy

__all__ = ["AlphaX", "SequentialActions"]

_ROLLOUT_TRIES = 20  # restarts of a rollout that hit a dead end
_PREDICTOR_MIN = 10  # observations before the predictor is used


class ActionModel(Protocol):
    """What MCTS needs from a space: states, legal actions, and the final row."""

    def root(self) -> Any: ...
    def actions(self, state: Any) -> list[Hashable]: ...
    def step(self, state: Any, action: Hashable) -> Any: ...
    def is_terminal(self, state: Any) -> bool: ...
    def to_row(self, state: Any, rng: np.random.Generator) -> np.ndarray: ...


class SequentialActions:
    """Fix parameters in order; a state is the tuple of choices made so far.

    A categorical (and an integer with at most ``bins`` values, or one that a
    condition depends on) takes one action per value. A real, and any other
    integer, takes one action per bin of ``bins`` equal intervals; the final
    row draws the value uniformly inside the chosen bin, so the tree stays
    ``bins`` wide however large an ``Int`` range is.

    >>> import nas, numpy as np
    >>> m = SequentialActions(nas.Space({"n": nas.Int(0, 10**6)}), bins=4)
    >>> m.actions(m.root())
    [0, 1, 2, 3]
    >>> int(m.to_row((3,), np.random.default_rng(0))[0]) >= 750_000
    True
    """

    def __init__(self, space: Space, bins: int = 8) -> None:
        if bins < 1:
            raise ValueError(f"bins must be >= 1, got {bins}")
        self.space = space
        self.bins = bins
        parents = {space.index[p] for p, _ in space.conditions.values()}
        n_values = np.array([p.n_values for p in space.params])
        self._binned_int = np.array(
            [
                p.kind == "int" and n > bins and j not in parents
                for j, (p, n) in enumerate(zip(space.params, n_values, strict=True))
            ]
        )
        self._n_values = n_values

    def root(self) -> tuple[int, ...]:
        return ()

    def actions(self, state: tuple[int, ...]) -> list[Hashable]:
        j = len(state)
        if j == self.space.n_params:
            return []
        if self.space.conditions:
            row = np.zeros(self.space.n_params)
            row[:j] = state  # condition parents are never binned: these are their values
            if not self.space.active_mask(row)[0, j]:
                return [0]
        p = self.space.params[j]
        return list(range(self.bins if p.kind == "real" or self._binned_int[j] else p.n_values))

    def step(self, state: tuple[int, ...], action: Hashable) -> tuple[int, ...]:
        assert isinstance(action, int)
        return (*state, action)

    def is_terminal(self, state: tuple[int, ...]) -> bool:
        return len(state) == self.space.n_params

    def to_row(self, state: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        row = np.array(state, dtype=float)
        real = self.space.is_real
        row[real] = (row[real] + rng.random(int(real.sum()))) / self.bins
        for j in np.flatnonzero(self._binned_int):
            lo, hi = self.bin_range(int(j), int(state[j]))
            row[j] = float(rng.integers(lo, hi + 1))
        out: np.ndarray = self.space.canonical(row)[0]
        return out

    def bin_range(self, j: int, b: int) -> tuple[int, int]:
        """Native values ``[lo, hi]`` of bin ``b`` of a binned integer parameter ``j``."""
        n = int(self._n_values[j])  # bin b holds the v with b <= v * bins / n < b + 1
        return -((-b * n) // self.bins), -((-(b + 1) * n) // self.bins) - 1

    def state_of(self, row: np.ndarray) -> tuple[int, ...]:
        """The terminal state (choices) a native row falls in."""
        out = []
        for j, v in enumerate(np.asarray(row, dtype=float)):
            if self.space.is_real[j]:
                out.append(min(int(v * self.bins), self.bins - 1))
            elif self._binned_int[j]:
                out.append(int(v * self.bins // self._n_values[j]))
            else:
                out.append(int(v))
        return tuple(out)


@register("alphax")
class AlphaX(Strategy):
    """MCTS over architecture-editing actions with optional predictor-guided rollouts.

    >>> import nas
    >>> s = nas.AlphaX(nas.CellSpace(n_nodes=4, max_edges=4), seed=0)
    >>> cfgs = s.suggest(3)
    >>> s.observe([(c, float(c["e0_3"])) for c in cfgs])
    >>> all(s.space.contains(c) for c in cfgs)
    True
    """

    name = "alphax"

    def __init__(
        self,
        space: Space,
        seed: int | None = None,
        maximize: bool = True,
        c: float = 0.5,
        predictor: bool = True,
        n_simulations: int = 8,
        bins: int = 8,
    ) -> None:
        super().__init__(space, seed, maximize)
        if c < 0:
            raise ValueError(f"alphax: c must be >= 0, got {c}")
        if n_simulations < 1:
            raise ValueError(f"alphax: n_simulations must be >= 1, got {n_simulations}")
        factory = getattr(space, "action_model", None)
        self.model: ActionModel = factory() if callable(factory) else SequentialActions(space, bins)
        self.c = c
        self.predictor = predictor
        self.n_simulations = n_simulations
        self.visits: dict[Any, int] = {}
        self.value_sum: dict[Any, float] = {}
        self.children: dict[Any, list[Any]] = {}
        self.untried: dict[Any, list[Hashable]] = {}
        self._inflight: dict[Any, tuple[list[Any], list[float], float | None]] = {}

    # ------------------------------------------------------------- tree
    def _node(self, state: Any) -> None:
        if state not in self.visits:
            self.visits[state] = 0
            self.value_sum[state] = 0.0
            self.children[state] = []
            acts = list(self.model.actions(state))
            order = self.rng.permutation(len(acts))
            self.untried[state] = [acts[i] for i in order]

    def _mean(self, state: Any) -> float:
        n = self.visits[state]
        if n:
            return self.value_sum[state] / n
        return float(self._scores.mean()) if len(self._scores) else 0.0

    def _ucb(self, parent: Any, child: Any) -> float:
        n = self.visits[child]
        if n == 0:
            return math.inf
        spread = float(self._scores.max() - self._scores.min()) if len(self._scores) > 1 else 1.0
        bonus = (
            2.0
            * self.c
            * max(spread, 1e-12)
            * math.sqrt(2.0 * math.log(max(self.visits[parent], 1)) / n)
        )
        return self.value_sum[child] / n + bonus

    def _select_expand(self) -> list[Any]:
        state = self.model.root()
        self._node(state)
        path = [state]
        while not self.model.is_terminal(state):
            if self.untried[state]:
                action = self.untried[state].pop()
                child = self.model.step(state, action)
                self._node(child)
                self.children[state].append(child)
                path.append(child)
                break
            kids = self.children[state]
            if not kids:
                break
            scores = [self._ucb(state, k) for k in kids]
            state = kids[int(np.argmax(scores))]
            path.append(state)
        return path

    def _rollout(self, state: Any) -> np.ndarray | None:
        for _ in range(_ROLLOUT_TRIES):
            s = state
            while not self.model.is_terminal(s):
                acts = self.model.actions(s)
                if not acts:
                    break
                s = self.model.step(s, acts[int(self.rng.integers(len(acts)))])
            if self.model.is_terminal(s):
                return self.model.to_row(s, self.rng)
        return None

    # ---------------------------------------------------------- suggest
    def _suggest(self, n: int) -> list[Config]:
        out: list[Config] = []
        use_pred = self.predictor and self.n_observed >= _PREDICTOR_MIN
        weights = fit_linear(self.space.features(self._rows), self._scores) if use_pred else None
        for _ in range(n):
            path = self._select_expand()
            sims = self.n_simulations if use_pred else 1
            rows = [r for r in (self._rollout(path[-1]) for _ in range(sims)) if r is not None]
            q_pred: float | None = None
            if rows and weights is not None:
                feats = self.space.features(np.array(rows))
                preds = feats @ weights[:-1] + weights[-1]
                order = np.argsort(-preds)
                rows = [rows[i] for i in order]
                q_pred = float(preds.mean())
            cands = np.array(rows) if rows else np.zeros((0, self.space.n_params))
            [cfg] = self._finish(cands, 1, exclude=out)
            virtual = [self._mean(s) for s in path]
            for s, v in zip(path, virtual, strict=True):
                self.visits[s] += 1
                self.value_sum[s] += v
            self._inflight[self.trial_key(cfg)] = (path, virtual, q_pred)
            out.append(cfg)
        return out

    # ------------------------------------------------------------- tell
    def _tell(self, configs: list[Config], rows: np.ndarray, scores: np.ndarray) -> None:
        for cfg, score in zip(configs, scores, strict=True):
            info = self._inflight.pop(self.trial_key(cfg), None)
            if info is None:
                continue
            path, virtual, q_pred = info
            q = float(score) if q_pred is None else 0.5 * (float(score) + q_pred)
            for s, v in zip(path, virtual, strict=True):
                self.value_sum[s] += q - v

    def _tell_failure(self, config: Config) -> None:
        info = self._inflight.pop(self.trial_key(config), None)
        if info is None:
            return
        path, virtual, _ = info
        for s, v in zip(path, virtual, strict=True):
            self.visits[s] -= 1
            self.value_sum[s] -= v
