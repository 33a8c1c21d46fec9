"""LA-MCTS (Wang et al., 2020; source Ch. 5): learned partitions + a local solver.

Each *round* rebuilds the partition tree from all samples (``_tree.py``),
selects a leaf by UCB from the root and samples inside the region bounded by the
SVMs on the path, with one of two leaf solvers:

- ``solver="turbo"`` (the source's default): a TuRBO-1 run seeded with the
  samples already in the leaf (no extra random evaluations), its trust region
  centred on the best of them and candidates kept inside both the trust region
  and the SVM region. A round lasts until the trust region collapses (as in the
  source) or ``max_round_evals`` results of the run came back.
- ``solver="bo"``: every suggestion is a round: a GP on all samples (250 at
  most, see ``gp_subset``) and EI over candidates drawn in boxes of several sizes around the
  leaf's best samples and uniformly, kept only inside the region (a
  simplification of the source's Fig. 5.4).

Candidates outside the region are pulled toward the leaf's best sample (see
``pull_inside``), so proposals satisfy every SVM constraint on the path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from nas._gp import GP, expected_improvement, gp_subset
from nas._space import Config, Space
from nas._strategy import Strategy
from nas._tree import Node, PartitionTree, Path, in_region
from nas._turbo import _MAX_GP_POINTS, Region, TrustRegion, propose_in_region, pull_inside

__all__ = ["LAMCTS"]

_BO_SCALES = (0.02, 0.05, 0.1, 0.2)  # half-widths of the boxes around leaf samples (unit)
_BO_SEEDS = 5  # best leaf samples that candidate boxes are drawn around


@dataclass
class _Round:
    path: Path
    idx: list[int]
    tr: TrustRegion
    keys: set[bytes] = field(default_factory=set)
    evals: int = 0


class LAMCTS(Strategy):
    """Latent Action MCTS with TuRBO or GP-BO leaves.

    Args:
        solver: ``"turbo"`` or ``"bo"``.
        n_init: uniform random samples before the first tree (source: 30).
        leaf_size: a leaf with more samples is split (source threshold theta: 20
            for synthetic functions, 10-100 elsewhere).
        cp: UCB exploration constant in score units; ``None`` means
            ``cp_fraction`` times the range of the observed scores.
        cp_fraction: see ``cp`` (source: Cp of about 1-10% of the objective scale).
        kernel: SVM kernel (``"rbf"``, ``"linear"``, ``"poly"``).
        max_round_evals: cap on results per TuRBO round (``None``: until collapse).

    >>> import nas
    >>> space = nas.Space({f"x{i}": nas.Real(-5, 5) for i in range(4)})
    >>> s = nas.LAMCTS(space, seed=0, maximize=False, n_init=10, leaf_size=5)
    >>> for _ in range(14):
    ...     s.observe([(c, sum(v * v for v in c.values())) for c in s.suggest(1)])
    >>> s.n_observed
    14
    """

    name = "lamcts"

    def __init__(
        self,
        space: Space,
        seed: int | None = None,
        maximize: bool = True,
        solver: str = "turbo",
        n_init: int = 30,
        leaf_size: int = 20,
        cp: float | None = None,
        cp_fraction: float = 0.05,
        kernel: str = "rbf",
        n_candidates: int | None = None,
        max_round_evals: int | None = None,
        batch_size: int = 1,
    ) -> None:
        super().__init__(space, seed, maximize)
        if solver not in ("turbo", "bo"):
            raise ValueError(f"lamcts: solver must be 'turbo' or 'bo', got {solver!r}")
        if n_init < 2:
            raise ValueError(f"lamcts: n_init must be >= 2, got {n_init}")
        if leaf_size < 2:
            raise ValueError(f"lamcts: leaf_size must be >= 2, got {leaf_size}")
        if cp is not None and cp < 0:
            raise ValueError(f"lamcts: cp must be >= 0, got {cp}")
        if cp_fraction < 0:
            raise ValueError(f"lamcts: cp_fraction must be >= 0, got {cp_fraction}")
        if kernel not in ("rbf", "linear", "poly"):
            raise ValueError(f"lamcts: kernel must be 'rbf', 'linear' or 'poly', got {kernel!r}")
        if max_round_evals is not None and max_round_evals < 1:
            raise ValueError(f"lamcts: max_round_evals must be >= 1, got {max_round_evals}")
        self.solver = solver
        self.n_init = n_init
        self.leaf_size = leaf_size
        self.cp = cp
        self.cp_fraction = cp_fraction
        self.kernel = kernel
        self.n_candidates = n_candidates or min(100 * space.n_params, 1000)
        self.max_round_evals = max_round_evals
        self.batch_size = batch_size
        self.gp = GP()
        self.rounds = 0
        self.last_path: Path = []
        self.last_leaf: Node | None = None
        self._round: _Round | None = None

    # --------------------------------------------------------------- tree
    def effective_cp(self) -> float:
        """The UCB constant used now (see ``cp`` / ``cp_fraction``)."""
        if self.cp is not None:
            return self.cp
        if not len(self._scores):
            return 0.0
        return self.cp_fraction * float(self._scores.max() - self._scores.min())

    def build_tree(self) -> PartitionTree:
        """A partition tree of all observations (splits are learned on demand)."""
        return PartitionTree(
            self.space.features(self._rows),
            self._scores,
            self.leaf_size,
            self.effective_cp(),
            self.kernel,
        )

    def region(self, path: Path) -> Region:
        """Membership test of the region bounded by the SVMs on ``path`` (native rows)."""
        space = self.space
        return lambda rows: in_region(path, space.features(rows))

    # ----------------------------------------------------------- suggest
    def _suggest(self, n: int) -> list[Config]:
        n_rand = (
            n
            if self.n_observed < 2
            else min(n, max(0, self.n_init - self.n_observed - len(self.pending)))
        )
        out = self._finish(self.space.sample_rows(self.rng, 2 * n_rand), n_rand) if n_rand else []
        if n > n_rand:
            if self.solver == "turbo":
                out += self._suggest_turbo(n - n_rand, out)
            else:
                out += self._suggest_bo(n - n_rand, out)
        return out

    def _new_round(self) -> _Round:
        tree = self.build_tree()
        leaf, path = tree.select()
        self.last_leaf, self.last_path = leaf, path
        self.rounds += 1
        self.gp.schedule_refit()
        tr = TrustRegion(self.space.n_params, batch_size=self.batch_size)
        return _Round(path=path, idx=[int(i) for i in leaf.idx], tr=tr)

    def _fit_gp(self, idx: np.ndarray, n_seen: int) -> None:
        optimize = self.gp.refit_due(n_seen)
        self.gp.fit(self.space.features(self._rows[idx]), self._scores[idx], optimize=optimize)

    def _suggest_turbo(self, n: int, exclude: list[Config]) -> list[Config]:
        rnd = self._round
        if (
            rnd is None
            or rnd.tr.collapsed
            or (self.max_round_evals is not None and rnd.evals >= self.max_round_evals)
        ):
            rnd = self._round = self._new_round()
        ridx = np.array(rnd.idx)
        center_idx = ridx[np.argmax(self._scores[ridx])]
        idx = gp_subset(
            ridx, self._scores, self._rows, _MAX_GP_POINTS, center=self._rows[center_idx]
        )
        self._fit_gp(idx, len(ridx))
        center = self._rows[idx[np.argmax(self._scores[idx])]]
        inside = self.region(rnd.path)
        cands = propose_in_region(
            self.space, self.rng, self.gp, center, rnd.tr.length, n, self.n_candidates, inside
        )
        if len(cands) < n:
            cands = np.vstack([cands, self._rejection_rows(inside, n)])
        out = self._finish(cands, n, exclude=exclude)
        rnd.keys.update(self.space.key(c) for c in out)
        return out

    def _suggest_bo(self, n: int, exclude: list[Config]) -> list[Config]:
        tree = self.build_tree()
        leaf, path = tree.select()
        self.last_leaf, self.last_path = leaf, path
        self.rounds += 1
        # The GP sees every sample (250 at most, see gp_subset): a leaf holds at most
        # leaf_size of them, too few for a GP in 20+ dimensions. The leaf decides
        # where to look: candidates are drawn around its best samples and kept
        # inside its region.
        idx = gp_subset(np.arange(self.n_observed), self._scores, self._rows, _MAX_GP_POINTS)
        self._fit_gp(idx, self.n_observed)
        inside = self.region(path)
        leaf_idx = np.asarray(leaf.idx)
        seeds = leaf_idx[np.argsort(-self._scores[leaf_idx])[:_BO_SEEDS]]
        per = max(1, self.n_candidates // (len(seeds) * len(_BO_SCALES)))
        prob = min(1.0, 20.0 / self.space.n_params)
        boxes = [
            self.space.box_rows(self.rng, self._rows[i], h, per, prob)
            for i in seeds
            for h in _BO_SCALES
        ]
        center = self._rows[seeds[0]]
        cands = np.vstack([*boxes, self.space.sample_rows(self.rng, self.n_candidates // 4)])
        cands = pull_inside(self.space, center, cands, inside)
        if len(cands) < n:
            cands = np.vstack([cands, self._rejection_rows(inside, n)])
        mean, std = self.gp.predict(self.space.features(cands))
        ei = expected_improvement(mean, std, float(self._scores.max()))
        return self._finish(cands[np.argsort(-ei)], n, exclude=exclude)

    def _rejection_rows(self, inside: Region, n: int) -> np.ndarray:
        rows = self.space.sample_rows(self.rng, max(64, 32 * n))
        return rows[inside(rows)]

    # ------------------------------------------------------------- tell
    def _tell(self, configs: list[Config], rows: np.ndarray, scores: np.ndarray) -> None:
        rnd = self._round
        if rnd is None:
            return
        start = self.n_observed - len(scores)
        mine = [i for i, r in enumerate(rows) if self.space.row_key(r) in rnd.keys]
        if not mine:
            return
        best_before = float(self._scores[rnd.idx].max()) if rnd.idx else -math.inf
        for i in mine:
            rnd.keys.discard(self.space.row_key(rows[i]))
            rnd.idx.append(start + i)
        rnd.evals += len(mine)
        rnd.tr.update(best_before, float(scores[mine].max()))
