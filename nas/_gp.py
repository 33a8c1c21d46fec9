"""A small exact Gaussian process (Matern-5/2, ARD) for BO, TuRBO and LA-MCTS.

Note [Why our own GP]
scikit-learn's GaussianProcessRegressor optimizes ARD length scales with numeric
restarts and costs seconds per fit at 100 dimensions and a few hundred points;
the source's reference code needs ~2 s per suggestion for the same reason. This
one fits the log marginal likelihood with analytic gradients (O(n^2 d) per
step), warm-starts from the previous fit and caps the iterations, which keeps a
fit in the tens of milliseconds. Inputs are features in [0, 1]; outputs are
standardized inside. Hyper-parameter bounds follow TuRBO's defaults.

SciPy is imported inside the functions that use it, so ``import nas`` (and
``nas --help``) stays fast.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["GP", "MAX_GP_POINTS", "expected_improvement", "gp_subset"]

MAX_GP_POINTS = 250  # the usual gp_subset cap of BO, TuRBO and LA-MCTS (exact GP: O(n^3))

_SQRT5 = math.sqrt(5.0)
_LENGTH_BOUNDS = (0.005, 2.0)  # unit-cube length scales (TuRBO)
_SIGNAL_BOUNDS = (0.05, 20.0)  # signal variance of standardized outputs
_NOISE_BOUNDS = (1e-6, 0.2)  # noise variance of standardized outputs
_JITTER = 1e-8


def _matern52(r: np.ndarray) -> np.ndarray:
    out: np.ndarray = (1.0 + _SQRT5 * r + 5.0 / 3.0 * r * r) * np.exp(-_SQRT5 * r)
    return out


def _scaled_dist(a: np.ndarray, b: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    a = a / lengths
    b = b / lengths
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    out: np.ndarray = np.sqrt(np.maximum(d2, 0.0))
    return out


class GP:
    """Exact GP regression with a Matern-5/2 ARD kernel.

    >>> import numpy as np
    >>> x = np.linspace(0, 1, 12)[:, None]
    >>> gp = GP().fit(x, np.sin(6 * x[:, 0]))
    >>> mean, _ = gp.predict(np.array([[0.5]]))
    >>> bool(abs(mean[0] - np.sin(3.0)) < 0.05)
    True
    """

    def __init__(self, maxiter: int = 25) -> None:
        if maxiter < 0:
            raise ValueError(f"GP: maxiter must be >= 0, got {maxiter}")
        self.maxiter = maxiter
        self.theta: np.ndarray | None = None  # log [lengths..., signal, noise]
        self._opt_at = 0  # data size at which hyper-parameters are re-optimized next

    def refit_due(self, n_seen: int) -> bool:
        """True when the data grew by 10% since the last hyper-parameter fit.

        ``n_seen`` counts all the observations the model is about, not only the
        (capped) subset it is fit on, so a capped GP keeps adapting.
        """
        if n_seen >= self._opt_at:
            self._opt_at = n_seen + max(1, n_seen // 10)
            return True
        return False

    def schedule_refit(self) -> None:
        """Re-optimize hyper-parameters at the next ``refit_due`` (e.g. after a restart)."""
        self._opt_at = 0

    @property
    def lengthscales(self) -> np.ndarray:
        """Fitted ARD length scales (one per input feature)."""
        if self.theta is None:
            raise RuntimeError("GP: call fit() first")
        out: np.ndarray = np.exp(self.theta[:-2])
        return out

    def fit(self, x: np.ndarray, y: np.ndarray, optimize: bool = True) -> GP:
        """Fit the posterior; with ``optimize`` also the hyper-parameters.

        Hyper-parameters are warm-started from the previous fit; ``optimize=False``
        keeps them and only refactorizes (a Cholesky, milliseconds).
        """
        from scipy.linalg import cho_solve
        from scipy.optimize import minimize

        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float).ravel()
        if x.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(f"GP.fit: x must be (n, d) and y (n,), got {x.shape} and {y.shape}")
        n, d = x.shape
        self._mu = float(y.mean())
        self._sd = float(y.std()) or 1.0
        ys = (y - self._mu) / self._sd
        theta0 = self.theta
        if theta0 is None or theta0.shape[0] != d + 2:
            theta0 = np.concatenate([np.full(d, math.log(0.5)), [0.0, math.log(0.005)]])
        bounds = [tuple(map(math.log, _LENGTH_BOUNDS))] * d
        bounds += [tuple(map(math.log, _SIGNAL_BOUNDS)), tuple(map(math.log, _NOISE_BOUNDS))]
        theta0 = np.clip(theta0, [b[0] for b in bounds], [b[1] for b in bounds])
        if optimize and self.maxiter > 0 and n >= 2:
            res = minimize(
                self._nll,
                theta0,
                args=(x, ys),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": self.maxiter},
            )
            theta = res.x if np.all(np.isfinite(res.x)) else theta0
        else:
            theta = theta0
        self.theta = theta
        self._x = x
        lengths, s2, noise = np.exp(theta[:-2]), math.exp(theta[-2]), math.exp(theta[-1])
        k = s2 * _matern52(_scaled_dist(x, x, lengths))
        k[np.diag_indices_from(k)] += noise + _JITTER
        self._chol = np.linalg.cholesky(k)
        self._alpha = cho_solve((self._chol, True), ys)
        return self

    @staticmethod
    def _nll(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        from scipy.linalg import cho_solve
        from scipy.linalg.lapack import dpotri

        n = x.shape[0]
        lengths, s2, noise = np.exp(theta[:-2]), math.exp(theta[-2]), math.exp(theta[-1])
        r = _scaled_dist(x, x, lengths)
        e = np.exp(-_SQRT5 * r)
        kf = s2 * (1.0 + _SQRT5 * r + 5.0 / 3.0 * r * r) * e
        k = kf.copy()
        k[np.diag_indices_from(k)] += noise + _JITTER
        try:
            chol = np.linalg.cholesky(k)
        except np.linalg.LinAlgError:
            return 1e10, np.zeros_like(theta)
        alpha = cho_solve((chol, True), y)
        nll = 0.5 * y @ alpha + np.log(np.diag(chol)).sum() + 0.5 * n * math.log(2 * math.pi)
        # K^-1 from its Cholesky factor (LAPACK potri: about 2x faster than two
        # triangular solves against the identity, the step that dominated a fit)
        inv, info = dpotri(chol, lower=1)
        if info != 0:
            return 1e10, np.zeros_like(theta)
        kinv = np.tril(inv) + np.tril(inv, -1).T
        w = np.outer(alpha, alpha) - kinv
        grad = np.empty_like(theta)
        # d k / d log l_d = s2 * 5/3 * (1 + sqrt5 r) exp(-sqrt5 r) * (x_d - x'_d)^2 / l_d^2
        m = w * (s2 * 5.0 / 3.0 * (1.0 + _SQRT5 * r) * e)
        xs = x / lengths
        quad = 2.0 * ((xs * xs) * m.sum(1)[:, None]).sum(0) - 2.0 * (xs * (m @ xs)).sum(0)
        grad[:-2] = -0.5 * quad
        grad[-2] = -0.5 * float((w * kf).sum())
        grad[-1] = -0.5 * noise * float(np.trace(w))
        return float(nll), grad

    def predict(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation at ``xs`` (original output units)."""
        from scipy.linalg import solve_triangular

        if self.theta is None:
            raise RuntimeError("GP: call fit() first")
        lengths, s2 = np.exp(self.theta[:-2]), math.exp(self.theta[-2])
        ks = s2 * _matern52(_scaled_dist(np.asarray(xs, dtype=float), self._x, lengths))
        mean = ks @ self._alpha
        v = solve_triangular(self._chol, ks.T, lower=True)
        var = np.maximum(s2 - (v * v).sum(0), 1e-12)
        return self._mu + self._sd * mean, self._sd * np.sqrt(var)

    def sample(self, xs: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """Joint posterior draws at ``xs``: shape ``(n_samples, len(xs))``."""
        from scipy.linalg import solve_triangular

        if self.theta is None:
            raise RuntimeError("GP: call fit() first")
        xs = np.asarray(xs, dtype=float)
        lengths, s2 = np.exp(self.theta[:-2]), math.exp(self.theta[-2])
        ks = s2 * _matern52(_scaled_dist(xs, self._x, lengths))
        kss = s2 * _matern52(_scaled_dist(xs, xs, lengths))
        v = solve_triangular(self._chol, ks.T, lower=True)
        cov = kss - v.T @ v
        cov[np.diag_indices_from(cov)] += 1e-6
        try:
            lc = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            w, q = np.linalg.eigh(cov)
            lc = q * np.sqrt(np.maximum(w, 0.0))
        z = rng.standard_normal((xs.shape[0], n_samples))
        draws = (ks @ self._alpha)[:, None] + lc @ z
        out: np.ndarray = (self._mu + self._sd * draws).T
        return out


def gp_subset(
    idx: np.ndarray,
    scores: np.ndarray,
    rows: np.ndarray,
    cap: int,
    center: np.ndarray | None = None,
) -> np.ndarray:
    """At most ``cap`` of the indices ``idx`` to fit a GP on.

    With a ``center``: the nearest (L1 on native rows), a local model. Without: the
    best half and the most recent rest, so new (even bad) points always enter the
    model; a model of only the best points would keep proposing the same failures.
    """
    idx = np.asarray(idx)
    if len(idx) <= cap:
        return idx
    if center is not None:
        d = np.abs(rows[idx] - center).sum(1)
        return idx[np.argsort(d, kind="stable")[:cap]]
    best = idx[np.argsort(-scores[idx], kind="stable")[: cap // 2]]
    rest = np.setdiff1d(idx, best)
    return np.concatenate([best, np.sort(rest)[-(cap - len(best)) :]])


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """EI for maximization.

    >>> import numpy as np
    >>> float(expected_improvement(np.array([1.0]), np.array([1e-12]), 0.0)[0])
    1.0
    """
    from scipy.special import ndtr

    std = np.maximum(std, 1e-12)
    z = (mean - best) / std
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    out: np.ndarray = (mean - best) * ndtr(z) + std * pdf
    return out
