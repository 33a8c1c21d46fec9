"""Regularized (aging) evolution, after Real et al. (2019)."""

from __future__ import annotations

import numpy as np

from nas._registry import register
from nas._space import Config, Space
from nas._strategy import Strategy

__all__ = ["RegularizedEvolution"]


@register("evolution")
class RegularizedEvolution(Strategy):
    """Tournament selection from an aging population, one mutation per child.

    The population is the ``population`` most recent observations (the oldest
    dies, not the worst). Until it is full, suggestions are uniform random. A
    child copies the best of ``sample_size`` random members and mutates each
    parameter with probability ``mutation_rate`` (default ``1 / n_params``, at
    least one parameter; see ``Space.mutate_rows``).

    >>> import nas
    >>> s = nas.RegularizedEvolution(nas.Space({"x": nas.Real(0, 1)}), seed=0, population=4)
    >>> s.observe([(c, c["x"]) for c in s.suggest(4)])
    >>> 0.0 <= s.suggest(1)[0]["x"] <= 1.0
    True
    """

    name = "evolution"

    def __init__(
        self,
        space: Space,
        seed: int | None = None,
        maximize: bool = True,
        population: int = 50,
        sample_size: int | None = None,
        mutation_rate: float | None = None,
        sigma: float = 0.1,
    ) -> None:
        super().__init__(space, seed, maximize)
        if population < 2:
            raise ValueError(f"evolution: population must be >= 2, got {population}")
        sample_size = min(10, population) if sample_size is None else sample_size
        if not 1 <= sample_size <= population:
            raise ValueError(
                f"evolution: sample_size must be in [1, population], got {sample_size}"
            )
        if mutation_rate is not None and not 0.0 < mutation_rate <= 1.0:
            raise ValueError(f"evolution: mutation_rate must be in (0, 1], got {mutation_rate}")
        if sigma <= 0:
            raise ValueError(f"evolution: sigma must be positive, got {sigma}")
        self.population = population
        self.sample_size = sample_size
        self.mutation_rate = mutation_rate if mutation_rate is not None else 1.0 / space.n_params
        self.sigma = sigma

    def _suggest(self, n: int) -> list[Config]:
        if self.n_observed < self.population:
            return self._finish(self.space.sample_rows(self.rng, 2 * n), n)
        pop_rows = self._rows[-self.population :]
        pop_scores = self._scores[-self.population :]
        parents = np.empty((2 * n, self.space.n_params))
        for i in range(2 * n):
            idx = self.rng.choice(self.population, size=self.sample_size, replace=False)
            parents[i] = pop_rows[idx[np.argmax(pop_scores[idx])]]
        children = self.space.mutate_rows(self.rng, parents, self.mutation_rate, self.sigma)
        return self._finish(children, n)
