"""The ask/tell interface every strategy implements.

Note [Strategy contract]
- ``suggest(n)`` returns ``n`` configs; none repeats a config that is still
  pending (suggested and not yet observed) or another one in the same batch.
- ``observe([(config, value), ...])`` reports results; ``value=None``, NaN or
  +-inf marks a failed trial, which only clears it from the pending set
  (schedulers treat it as the worst value in its rung): no model ever sees a
  non-finite score.
- Same seed and same sequence of calls give the same suggestions.
- A strategy is a plain picklable object (NumPy arrays and a ``Generator``).
Internally every strategy maximizes a *score*: ``value`` when ``maximize`` is
True, ``-value`` otherwise.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from threadpoolctl import ThreadpoolController

    from nas._report import PruneRule

from nas._space import Config, Space, strip_meta

__all__ = ["Strategy"]

_FILL_TRIES = 200
_CONTROLLER: list[ThreadpoolController] = []


def _blas_controller() -> ThreadpoolController:
    """One cached controller (building one scans the loaded libraries, ~4 ms)."""
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]  # random draws per missing suggestion before declaring exhaustion


class Strategy(ABC):
    """Base class: pending bookkeeping, observed data, sign convention, seeding.

    Subclasses implement ``_suggest(n)`` (return ``n`` configs, usually through
    ``_finish``) and may override ``_tell`` and ``_tell_failure``.

    >>> import nas
    >>> s = nas.make_strategy("random", nas.Space({"x": nas.Real(0, 1)}), seed=0)
    >>> [c] = s.suggest(1)
    >>> s.observe([(c, 0.5)])
    >>> s.n_observed, len(s.pending)
    (1, 0)
    """

    name: str = "strategy"

    def __init__(self, space: Space, seed: int | None = None, maximize: bool = True) -> None:
        if not isinstance(space, Space):
            raise TypeError(f"space must be a nas.Space, got {type(space).__name__}")
        if seed is not None and (
            not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0
        ):
            raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
        self.space = space
        self.seed = seed
        self.maximize = bool(maximize)
        self.rng = np.random.default_rng(seed)
        self.pending: dict[Any, Config] = {}
        self._rows = np.zeros((0, space.n_params))
        self._scores = np.zeros(0)
        self._observed_keys: set[bytes] = set()

    # ------------------------------------------------------------ public API
    def suggest(self, n: int = 1) -> list[Config]:
        """Return ``n`` new configs to evaluate (see Note [Strategy contract])."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"suggest: n must be a positive int, got {n!r}")
        # Note [BLAS threads]: the matrices here are small (a few hundred rows);
        # multi-threaded BLAS is slower on them and collapses under contention
        # with parallel trials (100x on a busy 2-core machine), so one thread.
        with _blas_controller().limit(limits=1, user_api="blas"):
            configs = self._suggest(int(n))
        if len(configs) != n:
            raise AssertionError(
                f"{type(self).__name__}._suggest returned {len(configs)} configs, wanted {n}"
            )
        for cfg in configs:
            self.pending[self.trial_key(cfg)] = cfg
        return [dict(c) for c in configs]

    def observe(self, results: Iterable[tuple[Mapping[str, Any], float | None]]) -> None:
        """Report ``(config, value)`` pairs; ``value`` None, NaN or inf means failed."""
        ok_cfgs: list[Config] = []
        ok_scores: list[float] = []
        for item in results:
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise ValueError(f"observe: expected (config, value) pairs, got {item!r}")
            cfg, value = dict(item[0]), item[1]
            self._check_observation(cfg)
            if value is not None:
                if isinstance(value, bool) or not isinstance(
                    value, (int, float, np.integer, np.floating)
                ):
                    raise ValueError(f"observe: value must be a number or None, got {value!r}")
                value = float(value)
            self.pending.pop(self.trial_key(cfg), None)
            if value is None or not math.isfinite(value):
                self._tell_failure(cfg)
                continue
            ok_cfgs.append(cfg)
            ok_scores.append(value if self.maximize else -value)
        if not ok_cfgs:
            return
        rows = self.space.to_rows([strip_meta(c) for c in ok_cfgs])
        scores = np.asarray(ok_scores, dtype=float)
        self._rows = np.vstack([self._rows, rows])
        self._scores = np.concatenate([self._scores, scores])
        self._observed_keys.update(self.space.row_key(r) for r in rows)
        self._tell(ok_cfgs, rows, scores)

    def prune_rule(self, config: Mapping[str, Any]) -> PruneRule | None:
        """The rule a trial of ``config`` reports against, or None (no pruning).

        Asked when the trial starts; see Note [Intermediate reports] in ``_report.py``.
        """
        return None

    def observe_reports(self, config: Mapping[str, Any], metrics: Mapping[str, Any]) -> None:
        """Take the metrics of a finished trial that reported (before ``observe``)."""
        return None

    def replay(self, configs: Sequence[Mapping[str, Any]]) -> bool:
        """Redo a journaled ``suggest`` call; returns False if it diverged.

        On divergence (e.g. a different library version) the journaled configs
        replace the fresh ones in the pending set, so the search can go on.
        """
        fresh = self.suggest(len(configs))
        same = [self.trial_key(a) for a in fresh] == [self.trial_key(b) for b in configs]
        if not same:
            for new in fresh:
                self.pending.pop(self.trial_key(new), None)
            for old in configs:
                self.pending[self.trial_key(old)] = dict(old)
        return same

    @property
    def n_observed(self) -> int:
        """Number of successful observations told so far."""
        return len(self._scores)

    def best(self) -> tuple[Config, float] | None:
        """Best observed ``(config, value)`` in the user's sign, or None."""
        if not len(self._scores):
            return None
        i = int(np.argmax(self._scores))
        value = float(self._scores[i]) if self.maximize else -float(self._scores[i])
        return self.space.from_rows(self._rows[i : i + 1])[0], value

    def trial_key(self, config: Mapping[str, Any]) -> Any:
        """Identity of a suggestion: the config plus its scheduler trial id."""
        return (self.space.key(config), config.get("_trial"))

    # ------------------------------------------------------- subclass hooks
    @abstractmethod
    def _suggest(self, n: int) -> list[Config]:
        """Return ``n`` configs (pending bookkeeping is done by ``suggest``)."""

    def _tell(self, configs: list[Config], rows: np.ndarray, scores: np.ndarray) -> None:
        """Hook: new successful observations (already appended to the data)."""
        return None

    def _check_observation(self, config: Config) -> None:
        """Hook: raise ``ValueError`` for a config this strategy cannot take back."""
        return None

    def _tell_failure(self, config: Config) -> None:
        """Hook: a suggested trial failed for good."""
        return None

    # --------------------------------------------------------------- helpers
    def _initial_phase(
        self, n: int, n_init: int, n_have: int | None = None, n_pending: int | None = None
    ) -> list[Config]:
        """The uniform draws among ``n`` suggestions still due to an ``n_init`` start.

        ``n_have`` results and ``n_pending`` pending suggestions count toward
        ``n_init`` (by default all results and all pending suggestions; TuRBO
        counts those of its current run only); with fewer than two results
        every suggestion is uniform (a model needs two).
        """
        have = self.n_observed if n_have is None else n_have
        pending = len(self.pending) if n_pending is None else n_pending
        k = n if have < 2 else min(n, max(0, n_init - have - pending))
        return self._finish(self._initial_rows(k), k) if k else []

    def _initial_rows(self, k: int) -> np.ndarray:
        """Hook: candidate rows, in preference order, for ``k`` initial suggestions."""
        return self.space.sample_rows(self.rng, 2 * k)

    def _user_value(self, score: float) -> float | None:
        """A score back in the user's sign; ``-inf`` (a failed trial) is None."""
        if score == -math.inf:
            return None
        return score if self.maximize else -score

    def _taken_keys(self) -> set[bytes]:
        return {k[0] for k in self.pending}

    def _finish(
        self,
        candidates: np.ndarray,
        n: int,
        avoid_observed: bool = True,
        exclude: Sequence[Mapping[str, Any]] = (),
    ) -> list[Config]:
        """Pick ``n`` configs from candidate rows in preference order.

        Skips rows that are pending, repeated in the batch or infeasible (and,
        where possible, already observed); tops up with uniform random rows.
        """
        taken = self._taken_keys() | {self.space.key(c) for c in exclude}
        chosen: list[Config] = []

        def take(rows: np.ndarray, allow_observed: bool) -> None:
            if not len(rows):
                return
            rows = self.space.canonical(rows)
            for row in rows:
                if len(chosen) == n:
                    return
                key = self.space.row_key(row)
                if key in taken or (not allow_observed and key in self._observed_keys):
                    continue
                cfg = self.space.from_rows(row[None, :])[0]
                if self.space.constraints and not self.space.is_feasible(cfg):
                    continue
                taken.add(key)
                chosen.append(cfg)

        take(
            np.asarray(candidates, dtype=float).reshape(-1, self.space.n_params), not avoid_observed
        )
        for allow in (not avoid_observed, True):
            tries = 0
            while len(chosen) < n and tries < _FILL_TRIES:
                take(self.space.sample_rows(self.rng, 4 * (n - len(chosen))), allow)
                tries += 1
        if len(chosen) < n:
            raise ValueError(
                f"{type(self).__name__}: could not find {n} distinct valid configs that are "
                "not pending; "
                "the space may be exhausted (suggest fewer at a time)"
            )
        return chosen
