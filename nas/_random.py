"""Uniform random search."""

from __future__ import annotations

from nas._registry import register
from nas._space import Config
from nas._strategy import Strategy

__all__ = ["RandomSearch"]


@register("random")
class RandomSearch(Strategy):
    """Independent uniform draws from the space (constraints by rejection).

    >>> import nas
    >>> s = nas.RandomSearch(nas.Space({"x": nas.Int(0, 9)}), seed=0)
    >>> len({c["x"] for c in s.suggest(5)})
    5
    """

    name = "random"

    def _suggest(self, n: int) -> list[Config]:
        return self._finish(self.space.sample_rows(self.rng, 2 * n), n)
