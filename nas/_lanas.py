"""LaNAS (source Ch. 4): a fixed-height tree of linear-regression partitions.

Every suggestion rebuilds the tree from all samples: at each node a linear
regressor ``f_j`` is fit (least squares on the node's features) and the node's
mean value ``V_j`` splits it: ``f_j(a) > V_j`` goes left (the good side, Eq. 4.2
and the latent actions of 4.2.1). Selection follows the UCB of ``_tree.py``
(same form and sign convention as LA-MCTS) down to a leaf, and new samples are
drawn uniformly and kept only if they satisfy every linear constraint on the
path (rejection sampling, the source's ``pi_rand``); when the leaf is too small
for uniform draws, candidates are drawn around the samples already in it, and
only as a last resort the least-violating draws are used.
"""

from __future__ import annotations

import numpy as np

from nas._numeric import fit_linear
from nas._registry import register
from nas._space import Config, Space
from nas._strategy import Strategy
from nas._tree import effective_cp, ucb_score

__all__ = ["LaNAS"]

_BATCH = 256  # rejection-sampling draws per round
_ROUNDS = 40  # rounds before falling back to the least-violating draws
_LOCAL_SCALES = (0.02, 0.05, 0.1)  # half-widths of boxes around in-leaf samples (unit)


@register("lanas")
class LaNAS(Strategy):
    """Latent actions as linear constraints + UCB over a full binary tree.

    >>> import nas
    >>> s = nas.LaNAS(nas.Space({"x": nas.Real(0, 1), "y": nas.Real(0, 1)}), seed=0,
    ...               height=3, n_init=8)
    >>> for _ in range(12):
    ...     s.observe([(c, c["x"] + c["y"]) for c in s.suggest(1)])
    >>> s.n_observed
    12
    """

    name = "lanas"

    def __init__(
        self,
        space: Space,
        seed: int | None = None,
        maximize: bool = True,
        height: int = 5,
        n_init: int = 30,
        cp: float | None = None,
        cp_fraction: float = 0.05,
    ) -> None:
        super().__init__(space, seed, maximize)
        if height < 1:
            raise ValueError(f"lanas: height must be >= 1, got {height}")
        if n_init < 2:
            raise ValueError(f"lanas: n_init must be >= 2, got {n_init}")
        if cp is not None and cp < 0:
            raise ValueError(f"lanas: cp must be >= 0, got {cp}")
        self.height = height
        self.n_init = n_init
        self.cp = cp
        self.cp_fraction = cp_fraction
        self.last_path: list[tuple[np.ndarray, float, bool]] = []

    def _cp(self) -> float:
        return effective_cp(self.cp, self.cp_fraction, self._scores)

    def select_path(self) -> list[tuple[np.ndarray, float, bool]]:
        """Walk the tree by UCB; returns ``(weights, threshold, went_left)`` per level."""
        feats = self.space.features(self._rows)
        idx = np.arange(self.n_observed)
        cp = self._cp()
        path: list[tuple[np.ndarray, float, bool]] = []
        for _ in range(self.height - 1):
            if len(idx) < 2:
                break
            y = self._scores[idx]
            w = fit_linear(feats[idx], y)
            thr = float(y.mean())
            pred = feats[idx] @ w[:-1] + w[-1]
            left, right = idx[pred > thr], idx[pred <= thr]
            mean_l = float(self._scores[left].mean()) if len(left) else 0.0
            mean_r = float(self._scores[right].mean()) if len(right) else 0.0
            go_left = ucb_score(mean_l, len(left), len(idx), cp) >= ucb_score(
                mean_r, len(right), len(idx), cp
            )
            path.append((w, thr, go_left))
            idx = left if go_left else right
        return path

    @staticmethod
    def violation(path: list[tuple[np.ndarray, float, bool]], feats: np.ndarray) -> np.ndarray:
        """Total margin by which feature rows break the path's constraints (0 = inside)."""
        total = np.zeros(len(feats))
        for w, thr, left in path:
            margin = feats @ w[:-1] + w[-1] - thr
            total += np.maximum(-margin, 0.0) if left else np.maximum(margin, 0.0)
        return total

    def _suggest(self, n: int) -> list[Config]:
        out = self._initial_phase(n, self.n_init)
        if len(out) == n:
            return out
        path = self.last_path = self.select_path()
        # Uniform draws first (the source's rejection sampling). A deep leaf can be
        # too small for that, so later rounds draw around the observed samples that
        # lie in the leaf (they satisfy every constraint by construction).
        homes = self._rows[self.violation(path, self.space.features(self._rows)) <= 0]
        inside: list[np.ndarray] = []
        best_out = np.zeros((0, self.space.n_params))
        best_v = np.zeros(0)
        for r in range(_ROUNDS):
            if r < _ROUNDS // 4 or not len(homes):
                rows = self.space.sample_rows(self.rng, _BATCH)
            else:
                centers = homes[self.rng.integers(0, len(homes), size=_BATCH)]
                half = self.rng.choice(_LOCAL_SCALES)
                rows = np.vstack([self.space.box_rows(self.rng, c, half, 1) for c in centers])
            v = self.violation(path, self.space.features(rows))
            inside.append(rows[v <= 0])
            best_out, best_v = np.vstack([best_out, rows]), np.concatenate([best_v, v])
            keep = np.argsort(best_v)[: 4 * n]
            best_out, best_v = best_out[keep], best_v[keep]
            if sum(len(r) for r in inside) >= 2 * n:
                break
        cands = np.vstack([*inside, best_out])
        return out + self._finish(cands, n - len(out), exclude=out)
