"""Synthetic test functions (to minimize) with their usual domains.

Configs are ``{"x0": ..., "x1": ..., ...}``; ``Synthetic.space`` is the matching
``Space``. Domains follow the source (Ch. 5 settings): Ackley [-5, 10],
Rosenbrock [-10, 10], Levy [-10, 10], Rastrigin [-5.12, 5.12]; all optima are 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from nas._params import Real
from nas._space import Space

__all__ = ["SYNTHETIC", "Synthetic", "synthetic"]


def _ackley(x: np.ndarray) -> float:
    d = x.shape[0]
    a = -20.0 * math.exp(-0.2 * math.sqrt(float(x @ x) / d))
    return a - math.exp(float(np.cos(2 * math.pi * x).sum()) / d) + 20.0 + math.e


def _levy(x: np.ndarray) -> float:
    w = 1.0 + (x - 1.0) / 4.0
    head = math.sin(math.pi * w[0]) ** 2
    mid = ((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2)).sum()
    tail = (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    return float(head + mid + tail)


def _rosenbrock(x: np.ndarray) -> float:
    return float((100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum())


def _rastrigin(x: np.ndarray) -> float:
    return float(10 * x.shape[0] + (x * x - 10 * np.cos(2 * math.pi * x)).sum())


def _sphere(x: np.ndarray) -> float:
    return float(x @ x)


def _griewank(x: np.ndarray) -> float:
    i = np.arange(1, x.shape[0] + 1)
    return float(1.0 + (x @ x) / 4000.0 - np.prod(np.cos(x / np.sqrt(i))))


SYNTHETIC: dict[str, tuple[Callable[[np.ndarray], float], float, float]] = {
    "ackley": (_ackley, -5.0, 10.0),
    "levy": (_levy, -10.0, 10.0),
    "rosenbrock": (_rosenbrock, -10.0, 10.0),
    "rastrigin": (_rastrigin, -5.12, 5.12),
    "sphere": (_sphere, -5.0, 5.0),
    "griewank": (_griewank, -600.0, 600.0),
}


class Synthetic:
    """A synthetic function of ``dim`` variables, callable on a config (minimize).

    >>> import nas
    >>> f = nas.synthetic("ackley", 3)
    >>> f({"x0": 0.0, "x1": 0.0, "x2": 0.0}) < 1e-12, f.space.n_params
    (True, 3)
    """

    optimum = 0.0

    def __init__(self, name: str, dim: int) -> None:
        if name not in SYNTHETIC:
            raise ValueError(
                f"unknown synthetic function {name!r}; choose from {sorted(SYNTHETIC)}"
            )
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
            raise ValueError(f"dim must be an int >= 2, got {dim!r}")
        self.name = name
        self.dim = dim
        self._fn, self.low, self.high = SYNTHETIC[name]

    @property
    def space(self) -> Space:
        """The function's domain as a ``Space`` of reals ``x0 .. x{dim-1}``."""
        return Space({f"x{i}": Real(self.low, self.high) for i in range(self.dim)})

    def evaluate(self, x: np.ndarray) -> float:
        """Value at a point given as an array of length ``dim``."""
        x = np.asarray(x, dtype=float)
        if x.shape != (self.dim,):
            raise ValueError(f"{self.name}: expected shape ({self.dim},), got {x.shape}")
        return self._fn(x)

    def __call__(self, config: Mapping[str, Any]) -> float:
        return self._fn(np.array([float(config[f"x{i}"]) for i in range(self.dim)]))

    def __repr__(self) -> str:
        return f"synthetic({self.name!r}, {self.dim})"


def synthetic(name: str, dim: int) -> Synthetic:
    """The synthetic function ``name`` at ``dim`` dimensions (see ``SYNTHETIC``).

    >>> import nas
    >>> round(nas.synthetic("rosenbrock", 2)({"x0": 1.0, "x1": 1.0}), 6)
    0.0
    """
    return Synthetic(name, dim)
