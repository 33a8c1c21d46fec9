"""Pareto fronts of trials over several metrics (accuracy up, parameters and memory down)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["pareto_front"]


def pareto_front(points: np.ndarray, maximize: Sequence[bool]) -> list[int]:
    """Indices of the non-dominated rows of ``points`` (n, k), in input order.

    Row ``a`` dominates ``b`` when it is at least as good on every column and
    strictly better on one; ``maximize[j]`` says which way column ``j`` is better.
    Equal rows are all kept.

    >>> pts = np.array([[0.9, 100], [0.8, 50], [0.7, 80], [0.9, 120]])
    >>> pareto_front(pts, maximize=[True, False])
    [0, 1]
    """
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != len(maximize):
        raise ValueError(f"pareto_front: points must be (n, {len(maximize)}), got {pts.shape}")
    sign = np.where(np.asarray(maximize, dtype=bool), 1.0, -1.0)
    p = pts * sign  # larger is better in every column now
    keep = []
    for i in range(len(p)):
        ge = (p >= p[i]).all(axis=1)
        gt = (p > p[i]).any(axis=1)
        if not (ge & gt).any():
            keep.append(i)
    return keep
