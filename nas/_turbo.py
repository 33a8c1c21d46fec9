"""TuRBO-1 (Eriksson et al., 2019): a GP-driven trust region that grows and shrinks.

The trust-region machinery here is also LA-MCTS's leaf solver (``_lamcts.py``),
where candidates are additionally kept inside the selected region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from nas._gp import GP, MAX_GP_POINTS, gp_subset
from nas._region import Region, shrink_inside
from nas._registry import register
from nas._space import Config, Space
from nas._strategy import Strategy

__all__ = ["TrustRegion", "TuRBO"]

_TS_POOL = 200  # candidates in the joint Thompson draw (see propose_in_region)


@dataclass
class TrustRegion:
    """Length and success/failure counters of one TuRBO-1 trust region."""

    n_params: int
    batch_size: int = 1
    length_init: float = 0.8
    length_min: float = 0.5**7
    length_max: float = 1.6
    succ_tol: int = 3
    fail_tol: int = 0  # 0: TuRBO's default ceil(max(4, d) / batch_size)
    length: float = field(init=False)
    succ: int = field(init=False, default=0)
    fail: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if not 0 < self.length_min <= self.length_init <= self.length_max:
            raise ValueError("TrustRegion: need 0 < length_min <= length_init <= length_max")
        if self.fail_tol <= 0:
            self.fail_tol = math.ceil(max(4.0, float(self.n_params)) / self.batch_size)
        self.length = self.length_init

    def update(self, best_before: float, batch_best: float) -> None:
        """Count a success when the batch beats the best by 1e-3 relative."""
        if batch_best > best_before + 1e-3 * abs(best_before):
            self.succ, self.fail = self.succ + 1, 0
        else:
            self.succ, self.fail = 0, self.fail + 1
        if self.succ == self.succ_tol:
            self.length, self.succ = min(2.0 * self.length, self.length_max), 0
        elif self.fail == self.fail_tol:
            self.length, self.fail = self.length / 2.0, 0

    @property
    def collapsed(self) -> bool:
        """True once the region shrank below ``length_min`` (time to restart)."""
        return self.length < self.length_min

    def reset(self) -> None:
        """Start a new region (after a restart)."""
        self.length, self.succ, self.fail = self.length_init, 0, 0


def param_weights(space: Space, lengthscales: np.ndarray) -> np.ndarray:
    """Per-parameter box weights from GP length scales (geometric mean 1)."""
    per = np.empty(space.n_params)
    offs = space.feature_offsets
    for j in range(space.n_params):
        per[j] = float(np.mean(lengthscales[offs[j] : offs[j + 1]]))
    return per / math.exp(float(np.mean(np.log(per))))


def propose_in_region(
    space: Space,
    rng: np.random.Generator,
    gp: GP,
    center: np.ndarray,
    length: float,
    n: int,
    n_candidates: int,
    inside: Region | None = None,
    perturb_dims: float = 20.0,
    ard_power: float = 1.0,
) -> np.ndarray:
    """Candidate rows from the trust region, best Thompson draws first.

    Each candidate perturbs about ``perturb_dims`` parameters (TuRBO: 20). With
    ``inside`` (LA-MCTS), candidates outside that region are shrunk toward the
    centre until inside (Note [Shrinking toward the centre] in ``_region.py``).
    The box's per-parameter widths are ``param_weights`` raised to ``ard_power``
    (1: TuRBO's box, 0: a cube), renormalized to geometric mean 1.
    """
    weights = param_weights(space, gp.lengthscales) ** ard_power  # keeps geometric mean 1
    half = np.clip(weights * length / 2.0, 0.0, 1.0)
    prob = min(perturb_dims / space.n_params, 1.0)
    cands = space.box_rows(rng, center, half, n_candidates, perturb_prob=prob)
    if inside is not None:
        cands = shrink_inside(space, cands, inside, center)
    if not len(cands):
        return cands
    feats = space.features(cands)
    mean, std = gp.predict(feats)
    # Joint Thompson draws cost a Cholesky of the candidates' covariance; drawing
    # over the _TS_POOL candidates with the best upper bound keeps it cheap and
    # loses little, since a draw rarely wins far below mean + 2 std.
    ranked = np.argsort(-(mean + 2.0 * std))
    pool = ranked[:_TS_POOL]
    draws = gp.sample(feats[pool], n, rng)
    order: list[int] = []
    for draw in draws:
        for i in pool[np.argsort(-draw)]:
            if int(i) not in order:
                order.append(int(i))
                break
    taken = set(order)
    rest = [int(i) for i in ranked if int(i) not in taken]
    return cands[order + rest]


@register("turbo")
class TuRBO(Strategy):
    """TuRBO-1: a local GP in a trust region centred on the best point of the run.

    A *run* starts with ``n_init`` uniform points; then each suggestion draws
    ``n_candidates`` points from the trust region (a box scaled by the GP length
    scales, perturbing about 20 parameters per candidate) and takes the winners of
    Thompson samples. Success/failure counters grow or shrink the region; when it
    collapses the run restarts from scratch (older data stays in the history).

    >>> import nas
    >>> space = nas.Space({f"x{i}": nas.Real(-1, 1) for i in range(3)})
    >>> s = nas.TuRBO(space, seed=0, maximize=False, n_init=5)
    >>> for _ in range(8):
    ...     s.observe([(c, sum(v * v for v in c.values())) for c in s.suggest(1)])
    >>> s.n_observed
    8
    """

    name = "turbo"

    def __init__(
        self,
        space: Space,
        seed: int | None = None,
        maximize: bool = True,
        n_init: int | None = None,
        batch_size: int = 1,
        n_candidates: int | None = None,
        fail_tol: int = 0,
    ) -> None:
        super().__init__(space, seed, maximize)
        n_init = n_init if n_init is not None else min(30, max(10, 2 * space.n_params))
        if n_init < 2:
            raise ValueError(f"turbo: n_init must be >= 2, got {n_init}")
        if batch_size < 1:
            raise ValueError(f"turbo: batch_size must be >= 1, got {batch_size}")
        self.n_init = n_init
        self.n_candidates = n_candidates or min(100 * space.n_params, 1000)
        if self.n_candidates < 1:
            raise ValueError(f"turbo: n_candidates must be >= 1, got {n_candidates}")
        self.tr = TrustRegion(space.n_params, batch_size=batch_size, fail_tol=fail_tol)
        self.gp = GP()
        self.restarts = 0
        self._run_idx: list[int] = []
        self._run_keys: set[bytes] = set()

    def _suggest(self, n: int) -> list[Config]:
        in_flight = len(self._run_keys & self._taken_keys())
        # each run (a restart included) opens with its own n_init uniform points
        out = self._initial_phase(n, self.n_init, len(self._run_idx), in_flight)
        if n > len(out):
            rows = self._run_rows_for_gp()
            k = n - len(out)
            out += self._finish(self._tr_candidates(rows, k), k, exclude=out)
        self._run_keys.update(self.space.key(c) for c in out)
        return out

    def _run_rows_for_gp(self) -> np.ndarray:
        idx = np.array(self._run_idx)
        best = idx[np.argmax(self._scores[idx])]
        return gp_subset(idx, self._scores, self._rows, MAX_GP_POINTS, center=self._rows[best])

    def _tr_candidates(self, idx: np.ndarray, n: int) -> np.ndarray:
        feats = self.space.features(self._rows[idx])
        self.gp.fit(feats, self._scores[idx], optimize=self.gp.refit_due(len(self._run_idx)))
        center = self._rows[idx[np.argmax(self._scores[idx])]]
        return propose_in_region(
            self.space, self.rng, self.gp, center, self.tr.length, n, self.n_candidates
        )

    def _tell(self, configs: list[Config], rows: np.ndarray, scores: np.ndarray) -> None:
        start = self.n_observed - len(scores)
        in_run = [i for i, r in enumerate(rows) if self.space.row_key(r) in self._run_keys]
        if not in_run:
            return
        run_before = len(self._run_idx)
        best_before = float(self._scores[self._run_idx].max()) if run_before else -math.inf
        for i in in_run:
            self._run_keys.discard(self.space.row_key(rows[i]))
            self._run_idx.append(start + i)
        if run_before >= self.n_init:
            self.tr.update(best_before, float(scores[in_run].max()))
            if self.tr.collapsed:
                self.restarts += 1
                self.tr.reset()
                self._run_idx, self._run_keys = [], set()
                self.gp.schedule_refit()
