"""The GP, EI and the TuRBO trust region."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime

import nas
from nas._gp import GP, expected_improvement
from nas._region import keep_inside, shrink_inside
from nas._turbo import TrustRegion, param_weights, propose_in_region


def test_gp_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((25, 3))
    y = np.sin(4 * x).sum(1)
    y = (y - y.mean()) / y.std()
    theta = np.log([0.3, 0.6, 1.1, 1.5, 0.01])
    _, grad = GP._nll(theta, x, y)
    numeric = approx_fprime(theta, lambda t: GP._nll(t, x, y)[0], 1e-6)
    assert np.allclose(grad, numeric, rtol=1e-4, atol=1e-4)


def test_gp_interpolates_and_is_uncertain_far_away() -> None:
    x = np.linspace(0, 1, 15)[:, None]
    gp = GP().fit(x, np.cos(5 * x[:, 0]))
    mean, std = gp.predict(x)
    assert np.allclose(mean, np.cos(5 * x[:, 0]), atol=1e-2)
    _, far = gp.predict(np.array([[3.0]]))
    assert far[0] > 10 * std.max()


def test_gp_samples_follow_the_posterior() -> None:
    x = np.linspace(0, 1, 10)[:, None]
    gp = GP().fit(x, x[:, 0] ** 2)
    xs = np.array([[0.25], [0.55]])
    draws = gp.sample(xs, 4000, np.random.default_rng(0))
    mean, std = gp.predict(xs)
    assert np.allclose(draws.mean(0), mean, atol=3 * std.max() / np.sqrt(4000) + 1e-3)


def test_gp_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="x must be"):
        GP().fit(np.zeros(3), np.zeros(3))
    with pytest.raises(RuntimeError, match="fit"):
        GP().predict(np.zeros((1, 1)))


def test_expected_improvement() -> None:
    ei = expected_improvement(np.array([0.0, 1.0, 0.0]), np.array([1.0, 1.0, 1e-9]), 0.5)
    assert ei[1] > ei[0] > ei[2] >= 0.0


def test_trust_region_grows_shrinks_and_collapses() -> None:
    tr = TrustRegion(n_params=4, fail_tol=2)
    for _ in range(3):
        tr.update(1.0, 2.0)
    assert tr.length == pytest.approx(1.6)
    tr.update(2.0, 1.0)
    tr.update(2.0, 1.0)
    assert tr.length == pytest.approx(0.8)
    assert TrustRegion(n_params=30).fail_tol == 30
    while not tr.collapsed:
        tr.update(2.0, 2.0)
    tr.reset()
    assert tr.length == 0.8 and not tr.collapsed


def test_param_weights_have_geometric_mean_one() -> None:
    space = nas.Space({"a": nas.Real(0, 1), "b": nas.Categorical(["x", "y"]), "c": nas.Int(0, 3)})
    w = param_weights(space, np.array([0.5, 1.0, 3.0, 2.0]))
    assert w.shape == (3,) and np.exp(np.log(w).mean()) == pytest.approx(1.0)


@pytest.mark.parametrize(("ard_power", "ratio"), [(1.0, 10.0), (0.5, 10.0**0.5), (0.0, 1.0)])
def test_ard_power_tempers_the_trust_region_box(ard_power: float, ratio: float) -> None:
    # a GP that found parameter a ten times as sensitive as b (length scales 0.1 and 1):
    # TuRBO's box (ard_power=1) is ten times narrower along a; 0 makes it a cube
    space = nas.Space({"a": nas.Real(0, 1), "b": nas.Real(0, 1)})
    rng = np.random.default_rng(0)
    gp = GP(maxiter=0).fit(rng.random((10, 2)), rng.random(10))
    gp.theta = np.log([0.1, 1.0, 1.0, 0.01])
    center = np.array([0.5, 0.5])
    rows = propose_in_region(
        space, rng, gp, center, 0.2, 1, 4000, perturb_dims=2.0, ard_power=ard_power
    )
    spread = np.abs(rows - center).max(0)  # the box's half-widths along a and b
    assert spread[1] / spread[0] == pytest.approx(ratio, rel=0.05)


def test_keep_inside_samples_the_region_not_the_centre() -> None:
    space = nas.Space({"a": nas.Real(0, 1), "b": nas.Real(0, 1), "c": nas.Categorical([0, 1, 2])})
    rng = np.random.default_rng(0)
    center = np.array([0.5, 0.5, 0.0])

    def region(r: np.ndarray) -> np.ndarray:
        return (r[:, 0] >= 0.5) & (r[:, 2] != 2)

    def box(m: int) -> np.ndarray:
        return space.box_rows(rng, center, 0.2, m)

    rows = keep_inside(space, rng, box(400), region, center[None, :], box, 0.2, 200)
    assert len(rows) >= 200 and region(rows).all()
    near = np.abs(rows[:, :2] - center[:2]).max(axis=1) < 0.02
    assert near.mean() < 0.05  # pulling onto the centre made this 72-90%
    assert not np.any(np.all(rows == center, axis=1))


def test_keep_inside_moves_stragglers_toward_the_region() -> None:
    space = nas.Space({"a": nas.Real(0, 1), "b": nas.Real(0, 1)})
    rng = np.random.default_rng(1)
    anchors = np.array([[0.9, 0.9], [0.85, 0.95]])

    def region(r: np.ndarray) -> np.ndarray:
        return np.asarray(r.sum(axis=1) >= 1.7)

    far = np.array([[0.1, 0.2], [0.0, 0.9], [0.5, 0.5]])  # never inside, nor any redraw
    rows = keep_inside(space, rng, far, region, anchors, lambda m: far, 0.0, 3)
    assert region(rows).all() and len(rows) == 3
    moved = rows
    # on the boundary (sum ~ 1.7), not on an anchor
    assert np.all(np.abs(moved.sum(axis=1) - 1.7) < 0.02), moved
    assert not any(np.allclose(m, a) for m in moved for a in anchors)


def test_shrink_inside_halves_each_outside_offset_until_inside() -> None:
    space = nas.Space({"a": nas.Real(0, 1), "b": nas.Real(0, 1), "c": nas.Categorical([0, 1, 2])})
    center = np.array([0.5, 0.5, 0.0])

    def region(r: np.ndarray) -> np.ndarray:
        return (np.abs(r[:, 0] - 0.5) < 0.12) & (r[:, 2] != 2)

    rows = np.array(
        [
            [0.55, 0.9, 1.0],  # inside: kept as is
            [0.9, 0.1, 0.0],  # offset (0.4, -0.4) halved twice: (0.1, -0.1)
            [0.7, 0.5, 2.0],  # t = 1/2 keeps c = 2 (outside), t = 1/4 takes the centre's c
            [0.5, 0.5, 2.0],  # only c differs: shrinking makes a copy of the centre, dropped
        ]
    )
    out = shrink_inside(space, rows, region, center)
    assert region(out).all() and not np.any(np.all(out == center, axis=1))
    np.testing.assert_allclose(out, [[0.55, 0.9, 1.0], [0.6, 0.4, 0.0], [0.55, 0.5, 0.0]])
    # a region that holds a neighbourhood of the centre keeps every candidate
    rng = np.random.default_rng(0)
    box = space.box_rows(rng, center, 0.4, 500)
    kept = shrink_inside(space, box, region, center)
    assert len(kept) == int(np.any(box[:, :2] != center[:2], axis=1).sum())
    assert region(kept).all()


def test_turbo_restarts_after_its_region_collapses() -> None:
    f = nas.synthetic("sphere", 2)
    s = nas.TuRBO(f.space, seed=0, maximize=False, n_init=4, fail_tol=1, n_candidates=64)
    for _ in range(60):
        s.observe([(c, f(c)) for c in s.suggest(1)])
    assert s.restarts >= 1


def test_model_based_strategies_beat_random_on_a_smooth_function() -> None:
    f = nas.synthetic("sphere", 4)

    def best(name: str, seed: int) -> float:
        opts = {"n_candidates": 300} if name in ("bo", "turbo", "lamcts") else {}
        res = nas.optimize(
            f,
            f.space,
            name,
            budget=50,
            seed=seed,
            maximize=False,
            executor="inline",
            strategy_options=opts,
        )
        assert res.best_value is not None
        return res.best_value

    for name in ("bo", "turbo", "lamcts", "lamcts-cmaes"):
        assert np.median([best(name, s) for s in range(3)]) < np.median(
            [best("random", s) for s in range(3)]
        )
