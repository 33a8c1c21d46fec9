"""The GP, EI and the TuRBO trust region."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime

import nas
from nas._gp import GP, expected_improvement
from nas._turbo import TrustRegion, param_weights, pull_inside


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


def test_pull_inside_moves_outside_candidates_toward_the_centre() -> None:
    space = nas.Space({"a": nas.Real(0, 1), "b": nas.Real(0, 1)})
    center = np.array([0.5, 0.5])
    rows = np.array([[0.55, 0.5], [1.0, 1.0], [0.0, 0.0]])
    inside = pull_inside(space, center, rows, lambda r: np.abs(r - 0.5).max(1) <= 0.1)
    assert len(inside) == 3 and np.all(np.abs(inside - 0.5).max(1) <= 0.1)
    assert inside[0].tolist() == [0.55, 0.5]


def test_turbo_restarts_after_its_region_collapses() -> None:
    f = nas.synthetic("sphere", 2)
    s = nas.TuRBO(f.space, seed=0, maximize=False, n_init=4, fail_tol=1, n_candidates=64)
    for _ in range(60):
        s.observe([(c, f(c)) for c in s.suggest(1)])
    assert s.restarts >= 1


def test_model_based_strategies_beat_random_on_a_smooth_function() -> None:
    f = nas.synthetic("sphere", 4)

    def best(name: str, seed: int) -> float:
        opts = {"n_candidates": 300} if name != "random" else {}
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

    for name in ("bo", "turbo", "lamcts"):
        assert np.median([best(name, s) for s in range(3)]) < np.median(
            [best("random", s) for s in range(3)]
        )
