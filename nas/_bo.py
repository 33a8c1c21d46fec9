"""Global GP Bayesian optimization with expected improvement."""

from __future__ import annotations

import numpy as np

from nas._gp import GP, MAX_GP_POINTS, expected_improvement, gp_subset
from nas._registry import register
from nas._space import Config, Space
from nas._strategy import Strategy

__all__ = ["N_INCUMBENTS", "BayesOpt", "incumbent_boxes"]

LOCAL_SCALES = (0.02, 0.05, 0.1, 0.2)  # half-widths of boxes around the incumbents (unit)
N_INCUMBENTS = 5  # best samples that candidate boxes are drawn around


def incumbent_boxes(
    space: Space, rng: np.random.Generator, centers: np.ndarray, n_total: int
) -> np.ndarray:
    """About ``n_total`` rows in boxes of each ``LOCAL_SCALES`` half-width around ``centers``.

    The local half of the EI candidates of BO and of LA-MCTS's BO leaves.

    >>> import nas, numpy as np
    >>> space = nas.Space({"x": nas.Real(0, 1)})
    >>> rows = incumbent_boxes(space, np.random.default_rng(0), np.array([[0.5]]), 40)
    >>> rows.shape, bool(np.all(np.abs(rows - 0.5) <= 0.2))
    ((40, 1), True)
    """
    per = max(1, n_total // (len(centers) * len(LOCAL_SCALES)))
    prob = min(1.0, 20.0 / space.n_params)
    boxes = [space.box_rows(rng, c, h, per, prob) for c in centers for h in LOCAL_SCALES]
    return np.vstack(boxes).reshape(-1, space.n_params)


@register("bo")
class BayesOpt(Strategy):
    """GP (Matern-5/2 ARD) + EI over random and incumbent-local candidates.

    After ``n_init`` uniform points, each batch takes the top-EI distinct
    candidates among ``n_candidates`` uniform draws and as many drawn in boxes
    around the best few points. The GP is fit on 250 points at most (see
    ``gp_subset``).

    >>> import nas
    >>> space = nas.Space({"x": nas.Real(-2, 2)})
    >>> s = nas.BayesOpt(space, seed=0, maximize=False, n_init=4)
    >>> for _ in range(8):
    ...     s.observe([(c, (c["x"] - 1.0) ** 2) for c in s.suggest(1)])
    >>> bool(s.best()[1] < 0.1)
    True
    """

    name = "bo"

    def __init__(
        self,
        space: Space,
        seed: int | None = None,
        maximize: bool = True,
        n_init: int | None = None,
        n_candidates: int | None = None,
    ) -> None:
        super().__init__(space, seed, maximize)
        self.n_init = n_init if n_init is not None else min(30, max(10, 2 * space.n_params))
        if self.n_init < 2:
            raise ValueError(f"bo: n_init must be >= 2, got {n_init}")
        self.n_candidates = n_candidates or min(100 * space.n_params, 2000)
        if self.n_candidates < 1:
            raise ValueError(f"bo: n_candidates must be >= 1, got {n_candidates}")
        self.gp = GP()

    def _suggest(self, n: int) -> list[Config]:
        out = self._initial_phase(n, self.n_init)
        if n == len(out):
            return out
        idx = gp_subset(np.arange(self.n_observed), self._scores, self._rows, MAX_GP_POINTS)
        optimize = self.gp.refit_due(self.n_observed)
        self.gp.fit(self.space.features(self._rows[idx]), self._scores[idx], optimize=optimize)
        best = self._rows[np.argsort(-self._scores)[:N_INCUMBENTS]]
        local = incumbent_boxes(self.space, self.rng, best, self.n_candidates)
        cands = np.vstack([self.space.sample_rows(self.rng, self.n_candidates), local])
        mean, std = self.gp.predict(self.space.features(cands))
        ei = expected_improvement(mean, std, float(self._scores.max()))
        return out + self._finish(cands[np.argsort(-ei)], n - len(out), exclude=out)
