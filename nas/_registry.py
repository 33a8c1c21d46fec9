"""Strategies by name: ``make_strategy("lamcts", space, seed=0, ...)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nas._asha import ASHA
from nas._bo import BayesOpt
from nas._evolution import RegularizedEvolution
from nas._hyperband import Hyperband
from nas._lamcts import LAMCTS
from nas._lanas import LaNAS
from nas._mcts import AlphaX
from nas._random import RandomSearch
from nas._space import Space
from nas._strategy import Strategy
from nas._turbo import TuRBO

__all__ = ["STRATEGIES", "make_strategy"]


def _lamcts_turbo(space: Space, seed: int | None, maximize: bool, **kw: Any) -> Strategy:
    return LAMCTS(space, seed, maximize, solver="turbo", **kw)


def _lamcts_cmaes(space: Space, seed: int | None, maximize: bool, **kw: Any) -> Strategy:
    return LAMCTS(space, seed, maximize, solver="cmaes", **kw)


def _lamcts_bo(space: Space, seed: int | None, maximize: bool, **kw: Any) -> Strategy:
    return LAMCTS(space, seed, maximize, solver="bo", **kw)


STRATEGIES: dict[str, Callable[..., Strategy]] = {
    "random": RandomSearch,
    "evolution": RegularizedEvolution,
    "bo": BayesOpt,
    "turbo": TuRBO,
    "lamcts": LAMCTS,
    "lamcts-turbo": _lamcts_turbo,
    "lamcts-bo": _lamcts_bo,
    "lamcts-cmaes": _lamcts_cmaes,
    "lanas": LaNAS,
    "mcts": AlphaX,
    "hyperband": Hyperband,
    "asha": ASHA,
}


def make_strategy(
    name: str, space: Space, seed: int | None = None, maximize: bool = True, **options: Any
) -> Strategy:
    """Build a strategy by name with its options (see ``STRATEGIES``).

    >>> import nas
    >>> s = nas.make_strategy("evolution", nas.Space({"x": nas.Int(0, 5)}), seed=1, population=4)
    >>> type(s).__name__
    'RegularizedEvolution'
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose from {sorted(STRATEGIES)}")
    try:
        return STRATEGIES[name](space, seed, maximize, **options)
    except TypeError as err:
        raise ValueError(f"strategy {name!r}: bad options {sorted(options)}: {err}") from None
