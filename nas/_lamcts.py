"""LA-MCTS (Wang et al., 2020; source Ch. 5): learned partitions + a local solver.

Note [LA-MCTS rounds]
A *round* learns the partition tree from all samples (``_tree.py``), selects a
leaf by UCB from the root and lets a leaf solver propose points inside the
region bounded by the SVMs on the path (Note [Sampling inside a region]).

- A round lasts until the solver's search collapses (the source's rule), or
  ``round_evals`` results of its own suggestions when that is given. The
  source's rule takes at least 7 x d failures for a TuRBO trust region: at 20
  dimensions and 300 evaluations the tree is then learned about once. Rounds of
  20 (and 50) results re-learn it often, but lost to the source's rule in the
  benchmark (docs/nas.md), so the default stays the source's.
- The solver's state (a TuRBO trust region, a CMA-ES distribution) *carries
  over* to the next round when the new leaf holds the solver's incumbent (the
  best sample it is centred on); otherwise the solver restarts around the new
  leaf's best sample, and the first ``leaf_init`` suggestions of that round are
  drawn uniformly inside the leaf's region (rejection sampling from the space;
  when a small region rejects every draw, ``keep_inside``'s boxes around the
  leaf's samples and moves toward them, never a uniform draw outside).

Leaf solvers:

- ``solver="turbo"``: TuRBO-1 (a GP on the leaf's samples, Thompson sampling in
  a trust region that grows and shrinks); each candidate perturbs about
  ``perturb_dims`` parameters, and one outside the region is shrunk toward the
  trust region's centre until inside (Note [Shrinking toward the centre]).
- ``solver="cmaes"``: CMA-ES from the ``cmaes`` package on the unit cube (a
  discrete parameter is relaxed to ``[0, 1]``, ``(index + 0.5) / n_values``, and
  rounded back), started at the leaf's best sample with a step size from the
  spread of the leaf's samples. Draws outside the region are replaced as in
  Note [Sampling inside a region]; CMA-ES is told the points actually evaluated.
- ``solver="bo"``: every suggestion is a round: a GP on all samples (250 at
  most, see ``gp_subset``) and EI over candidates drawn in boxes of several
  sizes around the leaf's best samples and uniformly, kept inside the region (a
  simplification of the source's Fig. 5.4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas._bo import N_INCUMBENTS, incumbent_boxes
from nas._gp import GP, MAX_GP_POINTS, expected_improvement, gp_subset
from nas._region import Region, keep_inside
from nas._registry import register
from nas._space import Config, Space
from nas._strategy import Strategy
from nas._tree import Node, PartitionTree, Path, effective_cp, in_region
from nas._turbo import TrustRegion, propose_in_region

__all__ = ["LAMCTS"]

_CMA_DRAWS = 16  # CMA-ES draws per wanted suggestion (rejection inside the region)
_CMA_SIGMA_MIN = 0.02  # least initial CMA-ES step size (unit cube)
_CMA_SIGMA_MAX = 0.3  # largest initial CMA-ES step size (unit cube)
_CMA_ANCHOR_HALF = 0.05  # box half-width around leaf samples when CMA draws miss the region
_SEED_ANCHOR_HALF = 0.1  # the same for leaf_init draws when uniform ones miss the region
_SOLVERS = ("turbo", "cmaes", "bo")
_INITS = ("uniform", "sobol", "lhs")
# perturb_dims=None: n_params / _PERTURB_SHARE parameters per candidate (TuRBO: 20).
# Levy-20 at 300 evaluations (seeds 0-4): 3 -> 10.3, 5 -> 5.3, 10 -> 6.9, 20 -> 7.9;
# Levy-100 (seeds 0-1; 0-4 for 25): 5 -> 228, 20 -> 101, 25 -> 141 (108 on seeds 0-1),
# 50 -> 137; the 9^5 table at 150 (10 seeds): 1.25 -> 0.25, 2 -> 0.38, 2.5 -> 0.44,
# 5 -> 0.82 (5 seeds). See docs/nas.md.
_PERTURB_SHARE = 4.0


@dataclass
class _Round:
    path: Path
    idx: list[int]  # samples of the round's leaf, plus the round's own results
    keys: set[bytes] = field(default_factory=set)  # the round's pending suggestions
    evals: int = 0
    seeds_left: int = 0  # leaf_init draws still to suggest


@dataclass
class _Solver:
    """The leaf solver's state that may carry over between rounds."""

    incumbent: bytes  # row key of the sample the solver is centred on
    tr: TrustRegion | None = None
    cma: Any = None  # cmaes.CMA
    told: list[tuple[np.ndarray, float]] = field(default_factory=list)
    asked: dict[bytes, np.ndarray] = field(default_factory=dict)  # row key -> relaxed x


@register("lamcts")
class LAMCTS(Strategy):
    """Latent Action MCTS with TuRBO, CMA-ES or GP-BO leaves (Note [LA-MCTS rounds]).

    Args:
        solver: ``"turbo"``, ``"cmaes"`` or ``"bo"``.
        n_init: initial samples before the first tree (source: 30).
        init: how the ``n_init`` samples are drawn: ``"uniform"`` (the source's),
            ``"sobol"`` (a scrambled Sobol sequence) or ``"lhs"`` (a Latin
            hypercube); see ``Space.design_rows``.
        leaf_size: a leaf with more samples is split (source threshold theta: 20
            for synthetic functions, 10-100 elsewhere).
        cp: UCB exploration constant in score units; ``None`` means
            ``cp_fraction`` times the range of the observed scores.
        cp_fraction: see ``cp`` (source: Cp of about 1-10% of the objective scale).
        kernel: SVM kernel (``"rbf"``, ``"linear"``, ``"poly"``).
        round_evals: results per round before the tree is re-learned
            (``None``, the default chosen by ``benchmarks/nas_synthetic.py``:
            until the solver collapses, as in the source; 20 lost on Ackley
            and Rosenbrock and tied on Levy at 20 dimensions, see docs/nas.md).
        leaf_init: uniform draws inside a new leaf's region that open a round
            whose solver restarted.
        perturb_dims: TuRBO leaves: parameters perturbed per candidate, on
            average. ``None``: a quarter of them (TuRBO perturbs 20, all of
            them at 20 dimensions; chosen by the benchmarks, see docs/nas.md).
        fail_tol: TuRBO leaves: failures in a row that halve the trust region
            (0: TuRBO's ``ceil(max(4, d) / batch_size)``); a round ends when it
            collapsed, after 7 halvings.
        ard_power: TuRBO leaves: the trust-region box's widths follow the GP's
            length scales raised to this power (1, TuRBO's box; 0, a cube; see
            docs/nas.md for the benchmark of 0 and 0.5).

    >>> import nas
    >>> space = nas.Space({f"x{i}": nas.Real(-5, 5) for i in range(4)})
    >>> s = nas.LAMCTS(space, seed=0, maximize=False, n_init=10, leaf_size=5)
    >>> for _ in range(14):
    ...     s.observe([(c, sum(v * v for v in c.values())) for c in s.suggest(1)])
    >>> s.n_observed
    14
    """

    name = "lamcts"

    def __init__(
        self,
        space: Space,
        seed: int | None = None,
        maximize: bool = True,
        solver: str = "turbo",
        n_init: int = 30,
        leaf_size: int = 20,
        cp: float | None = None,
        cp_fraction: float = 0.05,
        kernel: str = "rbf",
        n_candidates: int | None = None,
        round_evals: int | None = None,
        leaf_init: int = 0,
        batch_size: int = 1,
        perturb_dims: float | None = None,
        fail_tol: int = 0,
        ard_power: float = 1.0,
        init: str = "uniform",
    ) -> None:
        super().__init__(space, seed, maximize)
        if solver not in _SOLVERS:
            raise ValueError(f"lamcts: solver must be one of {_SOLVERS}, got {solver!r}")
        if n_init < 2:
            raise ValueError(f"lamcts: n_init must be >= 2, got {n_init}")
        if leaf_size < 2:
            raise ValueError(f"lamcts: leaf_size must be >= 2, got {leaf_size}")
        if cp is not None and cp < 0:
            raise ValueError(f"lamcts: cp must be >= 0, got {cp}")
        if cp_fraction < 0:
            raise ValueError(f"lamcts: cp_fraction must be >= 0, got {cp_fraction}")
        if kernel not in ("rbf", "linear", "poly"):
            raise ValueError(f"lamcts: kernel must be 'rbf', 'linear' or 'poly', got {kernel!r}")
        if round_evals is not None and round_evals < 1:
            raise ValueError(f"lamcts: round_evals must be >= 1 or None, got {round_evals}")
        if leaf_init < 0:
            raise ValueError(f"lamcts: leaf_init must be >= 0, got {leaf_init}")
        if isinstance(fail_tol, bool) or not isinstance(fail_tol, int) or fail_tol < 0:
            raise ValueError(f"lamcts: fail_tol must be an int >= 0, got {fail_tol!r}")
        if perturb_dims is not None and not perturb_dims > 0:
            raise ValueError(f"lamcts: perturb_dims must be > 0 or None, got {perturb_dims}")
        if not ard_power >= 0:
            raise ValueError(f"lamcts: ard_power must be >= 0, got {ard_power}")
        if init not in _INITS:
            raise ValueError(f"lamcts: init must be one of {_INITS}, got {init!r}")
        self.init = init
        self._design: np.ndarray | None = None  # the initial design's rows (init != "uniform")
        self._design_next = 0
        self.ard_power = ard_power
        self.solver = solver
        self.n_init = n_init
        self.leaf_size = leaf_size
        self.cp = cp
        self.cp_fraction = cp_fraction
        self.kernel = kernel
        self.n_candidates = n_candidates or min(100 * space.n_params, 1000)
        self.round_evals = round_evals
        self.leaf_init = leaf_init
        self.batch_size = batch_size
        self.fail_tol = fail_tol
        self.perturb_dims = (
            perturb_dims if perturb_dims is not None else space.n_params / _PERTURB_SHARE
        )
        self.gp = GP()
        self.rounds = 0
        self.restarts = 0  # rounds whose solver started afresh
        self.last_path: Path = []
        self.last_leaf: Node | None = None
        self._round: _Round | None = None
        self._solver: _Solver | None = None

    # --------------------------------------------------------------- tree
    def effective_cp(self) -> float:
        """The UCB constant used now (see ``cp`` / ``cp_fraction``)."""
        return effective_cp(self.cp, self.cp_fraction, self._scores)

    def build_tree(self) -> PartitionTree:
        """A partition tree of all observations (splits are learned on demand)."""
        return PartitionTree(
            self.space.features(self._rows),
            self._scores,
            self.leaf_size,
            self.effective_cp(),
            self.kernel,
        )

    def region(self, path: Path) -> Region:
        """Membership test of the region bounded by the SVMs on ``path`` (native rows)."""
        space = self.space
        return lambda rows: in_region(path, space.features(rows))

    # ----------------------------------------------------------- suggest
    def _suggest(self, n: int) -> list[Config]:
        out = self._initial_phase(n, self.n_init)
        if n > len(out):
            if self.solver == "bo":
                out += self._suggest_bo(n - len(out), out)
            else:
                out += self._suggest_local(n - len(out), out)
        return out

    def _initial_rows(self, k: int) -> np.ndarray:
        if self.init == "uniform":
            return super()._initial_rows(k)
        if self._design is None:
            self._design = self.space.design_rows(self.rng, self.n_init, self.init)
        rows = self._design[self._design_next : self._design_next + k]
        self._design_next += len(rows)
        # uniform draws stand in for design rows that are infeasible or already taken
        return np.vstack([rows, self.space.sample_rows(self.rng, 2 * k)])

    def _round_over(self) -> bool:
        rnd, sol = self._round, self._solver
        if rnd is None or sol is None:
            return True
        if self.round_evals is not None and rnd.evals >= self.round_evals:
            return True
        if sol.tr is not None and sol.tr.collapsed:
            return True
        return sol.cma is not None and bool(sol.cma.should_stop())

    def _new_round(self) -> _Round:
        leaf, path = self.build_tree().select()
        self.last_leaf, self.last_path = leaf, path
        self.rounds += 1
        self.gp.schedule_refit()
        idx = [int(i) for i in leaf.idx]
        rnd = _Round(path=path, idx=idx)
        sol = self._solver
        keys = {self.space.row_key(self._rows[i]) for i in idx}
        stale = sol is None or sol.incumbent not in keys
        if sol is not None and sol.tr is not None and sol.tr.collapsed:
            stale = True
        if sol is not None and sol.cma is not None and sol.cma.should_stop():
            stale = True
        if stale:
            best = idx[int(np.argmax(self._scores[idx]))]
            self._solver = self._start_solver(best, idx)
            self.restarts += 1
            rnd.seeds_left = self.leaf_init
        return rnd

    def _start_solver(self, best: int, idx: list[int]) -> _Solver:
        sol = _Solver(incumbent=self.space.row_key(self._rows[best]))
        if self.solver == "turbo":
            sol.tr = TrustRegion(
                self.space.n_params, batch_size=self.batch_size, fail_tol=self.fail_tol
            )
        else:
            from cmaes import CMA  # imported lazily, like SciPy (see _gp.py)

            x = self._relax(self._rows[idx])
            spread = float(np.mean(x.std(axis=0))) if len(idx) > 1 else _CMA_SIGMA_MAX
            sigma = min(max(spread, _CMA_SIGMA_MIN), _CMA_SIGMA_MAX)
            bounds = np.tile([0.0, 1.0], (self.space.n_params, 1))
            mean = self._relax(self._rows[best : best + 1])[0]
            sol.cma = CMA(mean=mean, sigma=sigma, bounds=bounds, seed=0)  # reseeded per ask
        return sol

    def _suggest_local(self, n: int, exclude: list[Config]) -> list[Config]:
        if self._round_over():
            self._round = self._new_round()
        rnd, sol = self._round, self._solver
        assert rnd is not None and sol is not None
        inside = self.region(rnd.path)
        anchors = self._rows[rnd.idx]
        out: list[Config] = []
        n_seed = min(n, rnd.seeds_left)
        if n_seed:
            rows = self._uniform_inside(inside, anchors, n_seed)
            out = self._finish(rows, n_seed, exclude=exclude)
            rnd.seeds_left -= n_seed
        if n > n_seed:
            if sol.tr is not None:
                out += self._propose_turbo(rnd, sol, n - n_seed, inside, exclude + out)
            else:
                out += self._propose_cma(sol, n - n_seed, inside, anchors, exclude + out)
        rnd.keys.update(self.space.key(c) for c in out)
        return out

    def _propose_turbo(
        self,
        rnd: _Round,
        sol: _Solver,
        n: int,
        inside: Region,
        exclude: list[Config],
    ) -> list[Config]:
        assert sol.tr is not None
        ridx = np.array(rnd.idx)
        center_idx = ridx[np.argmax(self._scores[ridx])]
        idx = gp_subset(
            ridx, self._scores, self._rows, MAX_GP_POINTS, center=self._rows[center_idx]
        )
        # hyper-parameters refit on 10% growth of the round's data: refitting on
        # growth of all data instead (10x cheaper) lost Levy-20 (12.5 -> 43, one seed)
        self._fit_gp(idx, len(ridx))
        center = self._rows[idx[np.argmax(self._scores[idx])]]
        cands = propose_in_region(
            self.space,
            self.rng,
            self.gp,
            center,
            sol.tr.length,
            n,
            self.n_candidates,
            inside,
            self.perturb_dims,
            ard_power=self.ard_power,
        )
        if len(cands) < n:
            cands = np.vstack([cands, self._uniform_inside(inside, self._rows[ridx], n)])
        return self._finish(cands, n, exclude=exclude)

    def _propose_cma(
        self, sol: _Solver, n: int, inside: Region, anchors: np.ndarray, exclude: list[Config]
    ) -> list[Config]:
        cma = sol.cma
        # cmaes drops its generator when pickled: draw from one seeded by ours
        cma.reseed_rng(int(self.rng.integers(2**31 - 1)))

        def draw(m: int) -> np.ndarray:
            return self._unrelax(np.array([cma.ask() for _ in range(m)]))

        want = _CMA_DRAWS * n
        cands = keep_inside(
            self.space, self.rng, draw(want), inside, anchors, draw, _CMA_ANCHOR_HALF, want
        )
        if len(cands) < n:
            cands = np.vstack([cands, self._uniform_inside(inside, anchors, n)])
        return self._finish(cands, n, exclude=exclude)

    def _fit_gp(self, idx: np.ndarray, n_seen: int) -> None:
        optimize = self.gp.refit_due(n_seen)
        self.gp.fit(self.space.features(self._rows[idx]), self._scores[idx], optimize=optimize)

    def _suggest_bo(self, n: int, exclude: list[Config]) -> list[Config]:
        tree = self.build_tree()
        leaf, path = tree.select()
        self.last_leaf, self.last_path = leaf, path
        self.rounds += 1
        # The GP sees every sample (250 at most, see gp_subset): a leaf holds at most
        # leaf_size of them, too few for a GP in 20+ dimensions. The leaf decides
        # where to look: candidates are drawn around its best samples and kept
        # inside its region.
        idx = gp_subset(np.arange(self.n_observed), self._scores, self._rows, MAX_GP_POINTS)
        self._fit_gp(idx, self.n_observed)
        inside = self.region(path)
        leaf_idx = np.asarray(leaf.idx)
        seeds = leaf_idx[np.argsort(-self._scores[leaf_idx])[:N_INCUMBENTS]]
        boxes = incumbent_boxes(self.space, self.rng, self._rows[seeds], self.n_candidates)
        cands = np.vstack([boxes, self.space.sample_rows(self.rng, self.n_candidates // 4)])

        def draw(m: int) -> np.ndarray:
            return self.space.sample_rows(self.rng, m)

        cands = keep_inside(
            self.space, self.rng, cands, inside, self._rows[leaf_idx], draw, 0.05, len(cands) // 2
        )
        if len(cands) < n:
            cands = np.vstack([cands, self._uniform_inside(inside, self._rows[leaf_idx], n)])
        mean, std = self.gp.predict(self.space.features(cands))
        ei = expected_improvement(mean, std, float(self._scores.max()))
        return self._finish(cands[np.argsort(-ei)], n, exclude=exclude)

    def _uniform_inside(self, inside: Region, anchors: np.ndarray, n: int) -> np.ndarray:
        """Uniform rows inside the region: rejection, then ``keep_inside``.

        For ``leaf_init`` draws, and to top up a proposal that kept too few
        candidates inside (so ``_finish`` need not fill in uniform rows outside).

        A small region (a deep leaf) may hold none of a few hundred uniform draws;
        the draws are then boxes around the leaf's samples and, last, outside
        draws moved toward them (Note [Sampling inside a region]), never uniform
        rows outside the region.
        """

        def draw(m: int) -> np.ndarray:
            return self.space.sample_rows(self.rng, max(64, 32 * m))

        return keep_inside(
            self.space, self.rng, draw(n), inside, anchors, draw, _SEED_ANCHOR_HALF, 2 * n
        )

    # ------------------------------------------------ relaxed coordinates
    def _relax(self, rows: np.ndarray) -> np.ndarray:
        """Native rows -> unit cube (a discrete index i of k -> (i + 0.5) / k)."""
        x = np.array(rows, dtype=float)
        disc = ~self.space.is_real
        k = np.array([max(p.n_values, 1) for p in self.space.params], dtype=float)
        x[:, disc] = (x[:, disc] + 0.5) / k[disc]
        return x

    def _unrelax(self, x: np.ndarray) -> np.ndarray:
        rows = np.clip(np.array(x, dtype=float), 0.0, 1.0)
        disc = ~self.space.is_real
        k = np.array([max(p.n_values, 1) for p in self.space.params], dtype=float)
        rows[:, disc] = np.minimum(np.floor(rows[:, disc] * k[disc]), k[disc] - 1)
        return self.space.canonical(rows)

    # ------------------------------------------------------------- tell
    def _tell(self, configs: list[Config], rows: np.ndarray, scores: np.ndarray) -> None:
        rnd, sol = self._round, self._solver
        if rnd is None or sol is None:
            return
        start = self.n_observed - len(scores)
        mine = [i for i, r in enumerate(rows) if self.space.row_key(r) in rnd.keys]
        if not mine:
            return
        best_before = float(self._scores[rnd.idx].max()) if rnd.idx else -math.inf
        for i in mine:
            rnd.keys.discard(self.space.row_key(rows[i]))
            rnd.idx.append(start + i)
        rnd.evals += len(mine)
        best_i = max(mine, key=lambda i: float(scores[i]))
        if float(scores[best_i]) > best_before:
            sol.incumbent = self.space.row_key(rows[best_i])
        if sol.tr is not None:
            sol.tr.update(best_before, float(scores[mine].max()))
        if sol.cma is not None:
            for i in mine:
                sol.told.append((self._relax(rows[i : i + 1])[0], -float(scores[i])))
            self._tell_cma(sol)

    def _tell_failure(self, config: Config) -> None:
        rnd, sol = self._round, self._solver
        key = self.space.key(config)
        if rnd is None or key not in rnd.keys:
            return
        rnd.keys.discard(key)
        rnd.evals += 1
        if sol is not None and sol.cma is not None and len(self._scores):
            worst = -float(self._scores.min())  # CMA-ES minimizes: the worst seen
            sol.told.append((self._relax(self.space.to_rows([config]))[0], worst))
            self._tell_cma(sol)

    @staticmethod
    def _tell_cma(sol: _Solver) -> None:
        pop = int(sol.cma.population_size)
        while len(sol.told) >= pop:
            batch, sol.told = sol.told[:pop], sol.told[pop:]
            sol.cma.tell(batch)


@register("lamcts-turbo")
def _lamcts_turbo(space: Space, seed: int | None, maximize: bool, **kw: Any) -> LAMCTS:
    return LAMCTS(space, seed, maximize, solver="turbo", **kw)


@register("lamcts-cmaes")
def _lamcts_cmaes(space: Space, seed: int | None, maximize: bool, **kw: Any) -> LAMCTS:
    return LAMCTS(space, seed, maximize, solver="cmaes", **kw)


@register("lamcts-bo")
def _lamcts_bo(space: Space, seed: int | None, maximize: bool, **kw: Any) -> LAMCTS:
    return LAMCTS(space, seed, maximize, solver="bo", **kw)
