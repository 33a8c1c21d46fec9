"""Small numeric helpers shared by several strategies."""

from __future__ import annotations

import numpy as np

__all__ = ["as_number", "fit_linear"]

_RIDGE = 1e-6  # ridge term of the least-squares fit (underdetermined nodes)


def fit_linear(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares ``[w, b]`` with a tiny ridge (a node may hold few samples).

    >>> import numpy as np
    >>> np.round(fit_linear(np.array([[0.0], [1.0], [2.0]]), np.array([1.0, 3.0, 5.0])), 4)
    array([2., 1.])
    """
    a = np.hstack([x, np.ones((len(x), 1))])
    out: np.ndarray = np.linalg.solve(a.T @ a + _RIDGE * np.eye(a.shape[1]), a.T @ y)
    return out


def as_number(r: float) -> float | int:
    """``r`` as an int when it is one (fidelities print as ``3``, not ``3.0000000001``).

    >>> as_number(3.0000000000001), as_number(2.5)
    (3, 2.5)
    """
    return round(r) if abs(r - round(r)) < 1e-9 else r
