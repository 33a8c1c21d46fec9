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

Note [Shrinking toward the centre]
TuRBO leaves use ``shrink_inside`` instead. Their candidates come from a box
around the trust region's centre (the leaf's best sample, inside the region), so
an outside candidate ``x`` has a ray from the centre ``c`` to it that starts
inside: its offset is halved, ``c + t (x - c)`` for ``t = 1/2, 1/4, ...`` (at
most ``_SHRINK_STEPS`` times), and the first inside point is kept (on discrete
parameters as in step 3 above; a copy of ``c`` is dropped, so the centre, which
was evaluated, is never proposed). The candidates then cover the trust region
at several scales, denser near the centre in the directions where the region is
narrow, and keep their number (1000, not the 100-280 that rejection keeps).
A controlled experiment (Levy-20, 300 evaluations, seeds 0-4, everything else
equal) chose it: halving gave a median best of 7.9, ``keep_inside`` 13.2, pure
rejection until 1000 candidates are inside 18.9, and fresh draws in boxes of
half the size (instead of halving each ray) 11.1; see docs/nas.md. Halving is
what the earliest version did, with one difference: discrete parameters were
first reset to the centre's values, which made the copies the issue counted.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nas._space import Space

__all__ = ["Region", "keep_inside", "shrink_inside"]

Region = Callable[[np.ndarray], np.ndarray]  # native rows -> bool mask "inside"

_REDRAWS = 3  # extra rejection rounds of the proposal itself
_ANCHORS = 8  # anchors drawn around in step 2
_BISECT_STEPS = 8  # halvings of the anchor -> candidate segment (1/256 of its length)
_SHRINK_STEPS = 8  # halvings of an outside candidate's offset from the centre (shrink_inside)


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


def shrink_inside(
    space: Space,
    rows: np.ndarray,
    inside: Region,
    center: np.ndarray,
    steps: int = _SHRINK_STEPS,
) -> np.ndarray:
    """Rows inside the region: an outside row's offset from ``center`` is halved until inside.

    See Note [Shrinking toward the centre]. A row still outside after ``steps``
    halvings, and one that becomes a copy of ``center``, is dropped.

    >>> import nas, numpy as np
    >>> space = nas.Space({"a": nas.Real(0, 1), "b": nas.Real(0, 1)})
    >>> rows = np.array([[0.9, 0.5], [0.5, 0.9], [0.1, 0.5]])
    >>> shrink_inside(space, rows, lambda r: r[:, 0] < 0.6, np.array([0.5, 0.5]))
    array([[0.5 , 0.9 ],
           [0.1 , 0.5 ],
           [0.55, 0.5 ]])
    """
    ok = inside(rows) if len(rows) else np.zeros(0, dtype=bool)
    kept = [rows[ok]]
    bad = rows[~ok]
    base = np.asarray(center, dtype=float)[None, :]
    t = 1.0
    for _ in range(steps):
        if not len(bad):
            break
        t /= 2.0
        trial = _on_segment(space, np.repeat(base, len(bad), axis=0), bad, np.full(len(bad), t))
        got = inside(trial) & np.any(trial != base, axis=1)
        kept.append(trial[got])
        bad = bad[~got]
    return np.vstack(kept).reshape(-1, space.n_params)
