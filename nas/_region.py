"""Candidates inside a region: rejection first, then a move *toward* the region.

Note [Sampling inside a region]
LA-MCTS (and its leaf solvers) must propose points inside the region cut out by
the SVMs on the selected path, but their proposal boxes (trust regions, CMA-ES
draws) straddle its boundary. ``keep_inside`` gets candidates inside in three
steps, cheapest first:

1. *rejection*: keep the candidates that are inside, and redraw the proposal
   (``redraw``) up to ``_REDRAWS`` times while fewer than ``want`` are inside;
2. *anchors*: draw boxes of the same size around up to 8 *anchors* (observed samples
   of the leaf, inside by construction) and keep those inside (copies of an
   anchor excepted);
3. *toward the region*: each still-outside candidate ``x`` is moved along the
   segment from a random anchor ``a`` to ``x``, by bisection, to the inside point
   nearest ``x`` (the region's boundary, or ``x`` itself). On discrete parameters
   the point takes ``x``'s value past the segment's middle, ``a``'s before.
   A candidate that ends on its anchor is dropped (that anchor was evaluated).

Earlier code pulled outside candidates onto the trust region's centre: 72-90% of
the kept candidates were then (near) copies of an evaluated point.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nas._space import Space

__all__ = ["Region", "keep_inside"]

Region = Callable[[np.ndarray], np.ndarray]  # native rows -> bool mask "inside"

_REDRAWS = 3  # extra rejection rounds of the proposal itself
_ANCHORS = 8  # anchors drawn around in step 2
_BISECT_STEPS = 8  # halvings of the anchor -> candidate segment (1/256 of its length)


def keep_inside(
    space: Space,
    rng: np.random.Generator,
    cands: np.ndarray,
    inside: Region,
    anchors: np.ndarray,
    redraw: Callable[[int], np.ndarray],
    half_width: np.ndarray | float,
    want: int,
) -> np.ndarray:
    """Rows inside the region, rejection-sampled first (see Note [Sampling inside a region]).

    Args:
        cands: the first proposal (native rows).
        inside: the region's membership test.
        anchors: native rows known to be inside (may be empty).
        redraw: ``redraw(m)`` gives ``m`` fresh proposal rows.
        half_width: box half-width (unit) used around anchors in step 2.
        want: how many inside candidates to aim for.

    >>> import nas, numpy as np
    >>> space = nas.Space({"a": nas.Real(0, 1), "b": nas.Real(0, 1)})
    >>> rng = np.random.default_rng(0)
    >>> region = lambda r: r[:, 0] > 0.8
    >>> rows = keep_inside(space, rng, space.sample_rows(rng, 50), region,
    ...                    np.array([[0.9, 0.5]]), lambda m: space.sample_rows(rng, m), 0.1, 50)
    >>> bool(region(rows).all()), len(rows) >= 40
    (True, True)
    """
    ok = inside(cands) if len(cands) else np.zeros(0, dtype=bool)
    kept = [cands[ok]]
    n_kept = int(ok.sum())
    outside = cands[~ok]
    for _ in range(_REDRAWS):
        if n_kept >= want:
            break
        more = redraw(max(want, 1))
        ok = inside(more)
        kept.append(more[ok])
        n_kept += int(ok.sum())
        outside = more[~ok] if not len(outside) else outside
    if n_kept < want and len(anchors):
        picked = anchors[rng.permutation(len(anchors))[:_ANCHORS]]
        per = -(-2 * (want - n_kept) // len(picked))
        boxed = np.vstack([space.box_rows(rng, c, half_width, per) for c in picked])
        centers = np.repeat(picked, per, axis=0)
        ok = inside(boxed) & np.any(boxed != centers, axis=1)  # no copy of an anchor
        kept.append(boxed[ok][: want - n_kept])
        n_kept += min(int(ok.sum()), want - n_kept)
    if n_kept < want and len(anchors) and len(outside):
        kept.append(_toward(space, rng, outside[: want - n_kept], inside, anchors))
    return np.vstack(kept).reshape(-1, space.n_params)


def _toward(
    space: Space, rng: np.random.Generator, rows: np.ndarray, inside: Region, anchors: np.ndarray
) -> np.ndarray:
    """Move each row toward a random anchor, by bisection, to the inside point nearest it."""
    a = anchors[rng.integers(0, len(anchors), size=len(rows))]
    lo = np.zeros(len(rows))  # a + lo * (x - a) is inside
    hi = np.ones(len(rows))  # a + hi * (x - a) is outside
    for _ in range(_BISECT_STEPS):
        mid = (lo + hi) / 2.0
        ok = inside(_on_segment(space, a, rows, mid))
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    out = _on_segment(space, a, rows, lo)
    moved = np.any(out != a, axis=1) & inside(out)
    result: np.ndarray = out[moved]
    return result


def _on_segment(space: Space, a: np.ndarray, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    pts = a + t[:, None] * (x - a)
    disc = ~space.is_real
    if disc.any():
        pts[:, space.is_int] = np.round(pts[:, space.is_int])
        pts[:, space.is_categorical] = np.where(t[:, None] >= 0.5, x, a)[:, space.is_categorical]
    return space.canonical(pts)
