"""Global GP Bayesian optimization with expected improvement."""

from __future__ import annotations

import numpy as np

from nas._gp import GP, expected_improvement, gp_subset
from nas._registry import register
from nas._space import Config, Space
from nas._strategy import Strategy
from nas._turbo import _MAX_GP_POINTS

__all__ = ["BayesOpt"]

_LOCAL_SCALES = (0.02, 0.05, 0.1, 0.2)  # half-widths of boxes around the incumbents (unit)
_N_INCUMBENTS = 5


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
        n_rand = (
            n
            if self.n_observed < 2
            else min(n, max(0, self.n_init - self.n_observed - len(self.pending)))
        )
        out = self._finish(self.space.sample_rows(self.rng, 2 * n_rand), n_rand) if n_rand else []
        if n == n_rand:
            return out
        idx = gp_subset(np.arange(self.n_observed), self._scores, self._rows, _MAX_GP_POINTS)
        optimize = self.gp.refit_due(self.n_observed)
        self.gp.fit(self.space.features(self._rows[idx]), self._scores[idx], optimize=optimize)
        local = []
        per = max(1, self.n_candidates // (_N_INCUMBENTS * len(_LOCAL_SCALES)))
        for i in np.argsort(-self._scores)[:_N_INCUMBENTS]:
            for h in _LOCAL_SCALES:
                local.append(
                    self.space.box_rows(
                        self.rng, self._rows[i], h, per, min(1.0, 20 / self.space.n_params)
                    )
                )
        cands = np.vstack([self.space.sample_rows(self.rng, self.n_candidates), *local])
        mean, std = self.gp.predict(self.space.features(cands))
        ei = expected_improvement(mean, std, float(self._scores.max()))
        return out + self._finish(cands[np.argsort(-ei)], n - n_rand, exclude=out)
