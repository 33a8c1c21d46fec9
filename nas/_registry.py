"""Strategies by name: ``make_strategy("lamcts", space, seed=0, ...)``.

Each strategy module registers its names here (``@register("random")`` on the
class, or ``register(name)(factory)`` for a preset of options), so this module
imports no strategy and none of them imports back through it in a cycle;
``import nas`` imports every strategy module, which fills ``STRATEGIES``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from nas._space import Space
    from nas._strategy import Strategy

__all__ = ["STRATEGIES", "make_strategy", "register"]

STRATEGIES: dict[str, Callable[..., Strategy]] = {}
# Former names, still accepted (a journal written before the rename names them).
ALIASES = {"mcts": "alphax"}  # the AlphaX class was registered as "mcts"
F = TypeVar("F", bound=Callable[..., Any])


def register(name: str) -> Callable[[F], F]:
    """Register a strategy class or factory ``(space, seed, maximize, **options)`` as ``name``."""

    def deco(factory: F) -> F:
        if name in STRATEGIES:
            raise ValueError(f"strategy name {name!r} is already registered")
        STRATEGIES[name] = factory
        return factory

    return deco


def make_strategy(
    name: str, space: Space, seed: int | None = None, maximize: bool = True, **options: Any
) -> Strategy:
    """Build a strategy by name with its options (see ``STRATEGIES``).

    >>> import nas
    >>> s = nas.make_strategy("evolution", nas.Space({"x": nas.Int(0, 5)}), seed=1, population=4)
    >>> type(s).__name__
    'RegularizedEvolution'
    >>> make_strategy("mcts", nas.Space({"x": nas.Int(0, 5)})).name  # a former name
    'alphax'
    """
    name = ALIASES.get(name, name)
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose from {sorted(STRATEGIES)}")
    try:
        return STRATEGIES[name](space, seed, maximize, **options)
    except TypeError as err:
        raise ValueError(f"strategy {name!r}: bad options {sorted(options)}: {err}") from None
