"""Parameter types of a search space: ``Real``, ``Int`` and ``Categorical``.

Note [Native representation]
Every parameter has a *native row value*: a float in [0, 1] for ``Real`` (the
position inside its range, on a log scale when ``log=True``) and an integer index
for ``Int`` and ``Categorical``. Strategies generate candidates on these native
values (so an integer is always drawn among the integers of its range, a category
among its categories: nothing is floored from a continuous relaxation), and
models see the *features* built from them (see ``Space.features``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Categorical", "Int", "Param", "Real"]


class Param:
    """Base class of one search-space dimension (``Real``, ``Int``, ``Categorical``).

    >>> import nas
    >>> [(p.kind, p.n_features) for p in (nas.Real(0, 1), nas.Categorical("abc"))]
    [('real', 1), ('categorical', 3)]
    """

    kind: str = "param"

    @property
    def n_features(self) -> int:
        """Number of model features this parameter contributes."""
        return 1

    @property
    def n_values(self) -> int:
        """Number of distinct native values (0 for continuous)."""
        return 0

    def from_row(self, value: float) -> Any:
        """Native row value -> user value."""
        raise NotImplementedError

    def to_row(self, value: Any) -> float:
        """User value -> native row value; raises ``ValueError`` if out of range."""
        raise NotImplementedError

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a legal value of this parameter."""
        try:
            self.to_row(value)
        except (ValueError, TypeError):
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        """A JSON-able description, inverse of ``param_from_json``."""
        raise NotImplementedError


@dataclass(frozen=True)
class Real(Param):
    """A continuous parameter in ``[low, high]``, optionally on a log scale.

    >>> import nas
    >>> round(nas.Real(1e-4, 1e-1, log=True).from_row(0.5), 6)  # geometric midpoint
    0.003162
    """

    low: float
    high: float
    log: bool = False
    kind = "real"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"Real: low and high must be finite, got {self.low}, {self.high}")
        if not self.low < self.high:
            raise ValueError(f"Real: low={self.low} must be below high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"Real(log=True): low must be positive, got {self.low}")

    def _span(self) -> tuple[float, float]:
        if self.log:
            return math.log(self.low), math.log(self.high)
        return float(self.low), float(self.high)

    def from_row(self, value: float) -> float:
        lo, hi = self._span()
        x = lo + min(max(float(value), 0.0), 1.0) * (hi - lo)
        x = math.exp(x) if self.log else x
        return min(max(x, float(self.low)), float(self.high))

    def to_row(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"Real expects a number, got {value!r}")
        v = float(value)
        if not self.low <= v <= self.high:
            raise ValueError(f"value {v} outside [{self.low}, {self.high}]")
        lo, hi = self._span()
        x = math.log(v) if self.log else v
        return (x - lo) / (hi - lo)

    def to_json(self) -> dict[str, Any]:
        return {"type": "real", "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Int(Param):
    """An integer parameter in ``[low, high]`` (both inclusive), ordinal.

    >>> import nas
    >>> nas.Int(1, 10).n_values
    10
    """

    low: int
    high: int
    kind = "int"

    def __post_init__(self) -> None:
        if not (
            isinstance(self.low, (int, np.integer)) and isinstance(self.high, (int, np.integer))
        ):
            raise TypeError(f"Int: low and high must be integers, got {self.low!r}, {self.high!r}")
        if not self.low <= self.high:
            raise ValueError(f"Int: low={self.low} must not exceed high={self.high}")

    @property
    def n_values(self) -> int:
        return int(self.high - self.low + 1)

    def from_row(self, value: float) -> int:
        return int(self.low + int(value))

    def to_row(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"Int expects an integer, got {value!r}")
        if not self.low <= value <= self.high:
            raise ValueError(f"value {value} outside [{self.low}, {self.high}]")
        return float(value - self.low)

    def to_json(self) -> dict[str, Any]:
        return {"type": "int", "low": int(self.low), "high": int(self.high)}


@dataclass(frozen=True, init=False)
class Categorical(Param):
    """An unordered choice among hashable values (one-hot in the model features).

    >>> import nas
    >>> op = nas.Categorical(["conv3x3", "conv1x1", "maxpool"])
    >>> op.from_row(2), op.n_features
    ('maxpool', 3)
    """

    choices: tuple[Hashable, ...]
    kind = "categorical"

    def __init__(self, choices: Sequence[Hashable]) -> None:
        values = tuple(choices)
        if len(values) < 1:
            raise ValueError("Categorical: choices must not be empty")
        if len(set(values)) != len(values):
            raise ValueError(f"Categorical: choices must be distinct, got {values!r}")
        object.__setattr__(self, "choices", values)

    @property
    def n_features(self) -> int:
        return len(self.choices)

    @property
    def n_values(self) -> int:
        return len(self.choices)

    def from_row(self, value: float) -> Hashable:
        return self.choices[int(value)]

    def to_row(self, value: Any) -> float:
        for i, c in enumerate(self.choices):
            if c == value and type(c) is type(value):
                return float(i)
        raise ValueError(f"value {value!r} not among {self.choices!r}")

    def to_json(self) -> dict[str, Any]:
        return {"type": "categorical", "choices": list(self.choices)}


def param_from_json(data: dict[str, Any]) -> Param:
    """Rebuild a parameter from ``Param.to_json`` output."""
    kind = data.get("type")
    if kind == "real":
        return Real(float(data["low"]), float(data["high"]), bool(data.get("log", False)))
    if kind == "int":
        return Int(int(data["low"]), int(data["high"]))
    if kind == "categorical":
        return Categorical(data["choices"])
    raise ValueError(f"unknown parameter type {kind!r} in {data!r}")
