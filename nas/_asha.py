"""ASHA (source 001, Alg. 3): asynchronous successive halving.

See Note [Schedulers and searchers] in ``_hyperband.py`` for how a scheduler
wraps a searcher. Rung ``k`` runs at fidelity ``r * eta**(s + k)``; ``get_job``
looks from the top rung down for a config in the top ``1/eta`` of its rung that
was not promoted yet, and otherwise grows the bottom rung with a new config.
Only *completed* results are in a rung; running jobs are not.

With ``mode="stop"`` (the stopping variant) every config starts at the top
fidelity instead, and an objective that calls ``nas.report`` is stopped at the
first rung where it falls out of the top ``1/eta`` (Note [Intermediate reports]
in ``_report.py``); its values at the rungs it passed are recorded there. An
objective that never reports is never stopped (random search at full fidelity).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nas._hyperband import make_searcher
from nas._numeric import as_number
from nas._registry import register
from nas._report import PruneRule
from nas._space import Config, Space, strip_meta
from nas._strategy import Strategy

__all__ = ["ASHA"]


@register("asha")
class ASHA(Strategy):
    """Asynchronous successive halving around any searcher.

    >>> import nas
    >>> asha = nas.ASHA(nas.Space({"x": nas.Real(0, 1)}), seed=0, min_fidelity=1,
    ...                 max_fidelity=9, eta=3)
    >>> jobs = asha.suggest(3)
    >>> asha.observe([(c, c["x"]) for c in jobs])
    >>> best = max(jobs, key=lambda c: c["x"])
    >>> [promoted] = asha.suggest(1)
    >>> promoted["x"] == best["x"], promoted["_fidelity"]
    (True, 3)
    """

    name = "asha"

    def __init__(
        self,
        space: Space,
        seed: int | None = None,
        maximize: bool = True,
        searcher: str | Strategy = "random",
        min_fidelity: float = 1,
        max_fidelity: float = 81,
        eta: int = 3,
        early_stopping_rate: int = 0,
        searcher_options: dict[str, Any] | None = None,
        mode: str = "promote",
    ) -> None:
        super().__init__(space, seed, maximize)
        if mode not in ("promote", "stop"):
            raise ValueError(f"asha: mode must be 'promote' or 'stop', got {mode!r}")
        if not 0 < min_fidelity <= max_fidelity:
            raise ValueError(
                f"asha: need 0 < min_fidelity <= max_fidelity, got {min_fidelity}, {max_fidelity}"
            )
        if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
            raise ValueError(f"asha: eta must be an int >= 2, got {eta!r}")
        top = 0
        while eta ** (top + 1) <= max_fidelity / min_fidelity * (1 + 1e-12):
            top += 1
        if not 0 <= early_stopping_rate <= top:
            raise ValueError(
                f"asha: early_stopping_rate must be in [0, {top}], got {early_stopping_rate}"
            )
        self.min_fidelity = min_fidelity
        self.max_fidelity = max_fidelity
        self.eta = eta
        self.mode = mode
        self.s = early_stopping_rate
        self.top_rung = top - early_stopping_rate  # floor(log_eta(R / r)) - s
        self.searcher = make_searcher(searcher, space, seed, maximize, searcher_options)
        self.rungs: list[list[tuple[int, float]]] = [[] for _ in range(self.top_rung + 1)]
        self.promoted: list[set[int]] = [set() for _ in range(self.top_rung + 1)]
        self._configs: list[Config] = []  # config id -> config (no metadata)
        self._searcher_cfg: dict[int, Config] = {}  # config id -> searcher's config
        self._jobs: dict[int, tuple[int, int]] = {}  # job id -> (config id, rung)
        self._reports: dict[int, Any] = {}  # job id -> metrics of a trial that reported

    def to_top(self) -> tuple[int, float]:
        """Fewest ``(trials, resource units)`` before one config runs at the top rung.

        Rung ``k`` promotes only from the top ``1/eta`` of its results, so one top
        run needs ``eta ** (top - k)`` results at each rung ``k`` below it.

        >>> import nas
        >>> nas.ASHA(nas.Space({"x": nas.Real(0, 1)}), max_fidelity=9, eta=3).to_top()
        (13, 27)
        """
        if self.mode == "stop":  # the first config runs to the top
            return 1, as_number(self.fidelity(self.top_rung))
        counts = [self.eta ** (self.top_rung - k) for k in range(self.top_rung + 1)]
        units = sum(c * self.fidelity(k) for k, c in enumerate(counts))
        return sum(counts), as_number(units)

    def fidelity(self, rung: int) -> float:
        """Resource of rung ``rung``: ``min_fidelity * eta ** (s + rung)``."""
        return as_number(self.min_fidelity * self.eta ** (self.s + rung))

    def _get_job(self) -> tuple[int, int]:
        for k in range(self.top_rung - 1 if self.mode == "promote" else -1, -1, -1):
            done = sorted(self.rungs[k], key=lambda cs: -cs[1])
            candidates = done[: len(done) // self.eta]
            promotable = [
                cid for cid, sc in candidates if cid not in self.promoted[k] and sc > -math.inf
            ]
            if promotable:
                self.promoted[k].add(promotable[0])
                return promotable[0], k + 1
        [cfg] = self.searcher.suggest(1)
        cid = len(self._configs)
        self._configs.append(strip_meta(cfg))
        self._searcher_cfg[cid] = cfg
        return cid, 0 if self.mode == "promote" else self.top_rung

    def prune_rule(self, config: Any) -> PruneRule | None:
        """``mode="stop"``: one check per rung below the top (Note [Intermediate reports]).

        A trial goes on past rung ``k`` when its score there would rank in the
        top ``max(1, (n + 1) // eta)`` of the rung's ``n`` results and itself.

        >>> import nas
        >>> asha = nas.ASHA(nas.Space({"x": nas.Real(0, 1)}), max_fidelity=9, eta=3, mode="stop")
        >>> [job] = asha.suggest(1)
        >>> job["_fidelity"], asha.prune_rule(job).checks  # nothing to compare with yet
        (9, ((1, None), (3, None)))
        """
        if self.mode != "stop":
            return None
        checks = []
        for k in range(self.top_rung):
            done = sorted((sc for _, sc in self.rungs[k]), reverse=True)
            keep = max(1, (len(done) + 1) // self.eta)
            least = done[keep - 1] if len(done) >= keep else None
            checks.append((self.fidelity(k), least))
        return PruneRule(tuple(checks), maximize=True)  # thresholds are scores

    def observe_reports(self, config: Any, metrics: Any) -> None:
        """Keep a reporting trial's rung values until its result is observed."""
        if self.mode == "stop" and config.get("_trial") in self._jobs:
            self._reports[int(config["_trial"])] = metrics

    def _suggest(self, n: int) -> list[Config]:
        out = []
        for _ in range(n):
            cid, k = self._get_job()
            jid = len(self._jobs)
            self._jobs[jid] = (cid, k)
            out.append({**self._configs[cid], "_fidelity": self.fidelity(k), "_trial": jid})
        return out

    def _record(self, config: Config, score: float) -> None:
        jid = int(config["_trial"])
        cid, k = self._jobs[jid]
        if self.mode == "stop":
            self._record_stop(jid, cid, score)
            return
        self.rungs[k].append((cid, score))
        if k == 0:
            self.searcher.observe([(self._searcher_cfg.pop(cid), self._user_value(score))])

    def _record_stop(self, jid: int, cid: int, score: float) -> None:
        """A stopping-mode trial: its value at each rung it reached, the top if not pruned."""
        metrics = self._reports.pop(jid, None) or {}
        sign = 1.0 if self.maximize else -1.0
        first = score
        for fid, value in metrics.get("rungs", []):
            k = self._rung_of(float(fid))
            self.rungs[k].append((cid, sign * float(value)))
            first = sign * float(value) if k == 0 else first
        if score > -math.inf and metrics.get("pruned_at") is None:
            self.rungs[self.top_rung].append((cid, score))
        self.searcher.observe([(self._searcher_cfg.pop(cid), self._user_value(first))])

    def _rung_of(self, fidelity: float) -> int:
        return min(range(self.top_rung + 1), key=lambda k: abs(self.fidelity(k) - fidelity))

    def _check_observation(self, config: Config) -> None:
        if config.get("_trial") not in self._jobs:
            raise ValueError("asha: observe() takes back only its own suggestions (with '_trial')")

    def _tell(self, configs: list[Config], rows: np.ndarray, scores: np.ndarray) -> None:
        for cfg, score in zip(configs, scores, strict=True):
            self._record(cfg, float(score))

    def _tell_failure(self, config: Config) -> None:
        self._record(config, -math.inf)
