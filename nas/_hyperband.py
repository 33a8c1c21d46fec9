"""Hyperband (source 001, Alg. 1): successive-halving brackets over fidelities.

Note [Schedulers and searchers]
A scheduler decides *when* (which fidelity, which trial is promoted or dropped);
a searcher (any strategy) decides *what* (the new configs). The scheduler is
itself a ``Strategy``: its suggestions are the searcher's configs plus two
metadata keys, ``_fidelity`` (the resource for this run) and ``_trial`` (the
scheduler's job id). The searcher sees every config once, with its value at the
fidelity it was first run at (rung 0 of its bracket).

Brackets are synchronous: rung ``i + 1`` of a bracket starts when all of rung
``i`` came back. When no bracket has a job ready (all waiting on results), the
next bracket opens, so parallel workers stay busy; brackets cycle
``s = 0 .. s_max`` and then repeat, as the source recommends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas._numeric import as_number
from nas._registry import make_strategy, register
from nas._space import Config, Space, strip_meta
from nas._strategy import Strategy

__all__ = ["Hyperband", "hyperband_brackets"]


def hyperband_brackets(max_fidelity: float, eta: int = 3) -> list[tuple[int, float]]:
    """``(n, r)`` of each bracket ``s = 0 .. s_max`` (Alg. 1, lines 1-2).

    ``n`` is the number of configurations the bracket starts with and ``r`` the
    resource each gets in its first rung.

    >>> hyperband_brackets(81, 3)
    [(81, 1), (34, 3), (15, 9), (8, 27), (5, 81)]
    """
    if max_fidelity < 1:
        raise ValueError(f"max_fidelity must be >= 1, got {max_fidelity}")
    if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
        raise ValueError(f"eta must be an int >= 2, got {eta!r}")
    s_max = 0
    while eta ** (s_max + 1) <= max_fidelity * (1 + 1e-12):
        s_max += 1
    budget = (s_max + 1) * max_fidelity
    out: list[tuple[int, float]] = []
    for s in range(s_max + 1):
        k = s_max - s
        n = math.ceil(budget / max_fidelity * eta**k / (k + 1) - 1e-9)
        out.append((n, as_number(max_fidelity * eta ** (-k))))
    return out


def bracket_rungs(n: int, r: float, eta: int, rounds: int) -> list[tuple[int, float]]:
    """``(n_i, r_i)`` of the successive-halving rounds of one bracket (Alg. 1, lines 4-6)."""
    return [(n // eta**i, as_number(r * eta**i)) for i in range(rounds)]


@dataclass
class _Bracket:
    bid: int
    rungs: list[tuple[int, float]]
    rung: int = 0
    jobs: list[int] = field(default_factory=list)  # job ids of the current rung
    queued: list[int] = field(default_factory=list)  # not yet dispatched
    asked: int = 0  # rung-0 configs requested from the searcher so far


@register("hyperband")
class Hyperband(Strategy):
    """Hyperband scheduler around any searcher (see Note [Schedulers and searchers]).

    >>> import nas
    >>> hb = nas.Hyperband(nas.Space({"x": nas.Real(0, 1)}), seed=0, max_fidelity=9, eta=3)
    >>> [(round(c["x"], 3), c["_fidelity"]) for c in hb.suggest(2)]
    [(0.637, 1), (0.27, 1)]
    """

    name = "hyperband"

    def __init__(
        self,
        space: Space,
        seed: int | None = None,
        maximize: bool = True,
        searcher: str | Strategy = "random",
        max_fidelity: float = 81,
        eta: int = 3,
        searcher_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(space, seed, maximize)
        self.brackets = hyperband_brackets(max_fidelity, eta)
        self.eta = eta
        self.max_fidelity = max_fidelity
        self.searcher = make_searcher(searcher, space, seed, maximize, searcher_options)
        self._active: list[_Bracket] = []
        self._next_s = 0
        self._next_bid = 0
        self._jobs: dict[int, dict[str, Any]] = {}  # job id -> config, bracket, score, rung

    def to_top(self) -> tuple[int, float]:
        """Fewest ``(trials, resource units)`` before one config runs at ``max_fidelity``.

        Brackets open in the order ``s = 0, 1, ...``: the first, most aggressive
        one reaches the top fidelity only in its last rung.

        >>> import nas
        >>> nas.Hyperband(nas.Space({"x": nas.Real(0, 1)}), max_fidelity=81).to_top()
        (121, 405)
        """
        n, r = self.brackets[0]
        rungs = bracket_rungs(n, r, self.eta, len(self.brackets))
        return sum(k for k, _ in rungs), as_number(sum(k * f for k, f in rungs))

    def _open_bracket(self) -> _Bracket:
        s = self._next_s
        self._next_s = (s + 1) % len(self.brackets)
        n, r = self.brackets[s]
        rounds = len(self.brackets) - s
        b = _Bracket(self._next_bid, bracket_rungs(n, r, self.eta, rounds))
        self._next_bid += 1
        self._active.append(b)
        return b

    def _new_job(self, b: _Bracket, config: Config) -> int:
        jid = len(self._jobs)
        self._jobs[jid] = {
            "config": strip_meta(config),
            "bracket": b.bid,
            "score": None,
            "rung": b.rung,
            "searcher_config": config if b.rung == 0 else None,
        }
        b.jobs.append(jid)
        return jid

    def _ready(self, b: _Bracket, want: int) -> list[int]:
        """Dispatchable job ids of ``b`` (asks the searcher for rung-0 configs)."""
        if b.rung == 0:
            n0 = b.rungs[0][0]
            k = min(want - len(b.queued), n0 - b.asked)
            if k > 0:
                for cfg in self.searcher.suggest(k):
                    b.queued.append(self._new_job(b, cfg))
                b.asked += k
        take, b.queued = b.queued[:want], b.queued[want:]
        return take

    def _suggest(self, n: int) -> list[Config]:
        out: list[Config] = []
        while len(out) < n:
            jids: list[int] = []
            for b in self._active:
                jids = self._ready(b, n - len(out))
                if jids:
                    break
            if not jids:
                jids = self._ready(self._open_bracket(), n - len(out))
            for jid in jids:
                job = self._jobs[jid]
                b_rungs = next(b.rungs for b in self._active if b.bid == job["bracket"])
                out.append({**job["config"], "_fidelity": b_rungs[job["rung"]][1], "_trial": jid})
        return out

    def _record(self, config: Config, score: float) -> None:
        jid = int(config["_trial"])
        job = self._jobs[jid]
        job["score"] = score
        if job["searcher_config"] is not None:
            self.searcher.observe([(job["searcher_config"], self._user_value(score))])
        b = next((b for b in self._active if b.bid == job["bracket"]), None)
        if b is None or b.rung != job["rung"]:
            return
        rung_done = len(b.jobs) == b.rungs[b.rung][0] and all(
            self._jobs[j]["score"] is not None for j in b.jobs
        )
        if not rung_done:
            return
        if b.rung + 1 >= len(b.rungs):
            self._active.remove(b)
            return
        keep = b.rungs[b.rung + 1][0]
        ranked = sorted(b.jobs, key=lambda j: -float(self._jobs[j]["score"]))
        survivors = [self._jobs[j]["config"] for j in ranked[:keep]]
        b.rung += 1
        b.jobs, b.queued = [], []
        for cfg in survivors:
            b.queued.append(self._new_job(b, cfg))
        if not b.queued:
            self._active.remove(b)

    def _check_observation(self, config: Config) -> None:
        if config.get("_trial") not in self._jobs:
            raise ValueError(
                "hyperband: observe() takes back only its own suggestions (with '_trial')"
            )

    def _tell(self, configs: list[Config], rows: np.ndarray, scores: np.ndarray) -> None:
        for cfg, score in zip(configs, scores, strict=True):
            self._record(cfg, float(score))

    def _tell_failure(self, config: Config) -> None:
        self._record(config, -math.inf)


def make_searcher(
    searcher: str | Strategy,
    space: Space,
    seed: int | None,
    maximize: bool,
    options: dict[str, Any] | None,
) -> Strategy:
    if isinstance(searcher, Strategy):
        return searcher

    if searcher in ("hyperband", "asha"):
        raise ValueError(f"searcher must not be a scheduler, got {searcher!r}")
    return make_strategy(searcher, space, seed, maximize, **(options or {}))
