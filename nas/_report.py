"""Intermediate reports: an objective reports as it trains, and ASHA may stop it.

Note [Intermediate reports]
An objective may call ``nas.report(value, fidelity)`` while it runs (for
example the validation accuracy after each epoch). Outside a search, or under a
strategy that does not prune, the call does nothing. Under ASHA with
``mode="stop"`` (the stopping variant of successive halving) every trial is
started at the top fidelity with a ``PruneRule``: one check per rung fidelity
below the top, each with the score a trial must reach there to go on (the
boundary of the top ``1/eta`` of that rung's results, counting the trial
itself). The first report at or past a rung's fidelity is checked against it; a
trial below the boundary raises ``TrialPruned`` out of ``report`` and ends
there: it is a successful trial whose value is the one it reported at that rung
and whose metrics say ``pruned_at`` (the fidelity reached) and ``rungs`` (the
``[fidelity, value]`` checked at each rung). ASHA records those values in its
rungs, so later thresholds see them.

The rule is a snapshot taken when the trial starts, so it works the same inline,
in a forked process or on a Dask worker, with no messages back to the search
while the trial runs. With one worker it is exact; with several, a trial's
thresholds miss the results that arrive while it runs (they only get stricter
later), and with ``ordered=True`` the snapshots, like everything else, are a
function of the seed.
"""

from __future__ import annotations

import math
from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = ["PruneRule", "TrialPruned", "report"]

_TOL = 1e-9  # a report at fidelity 2.9999999999 still meets the rung at 3


class TrialPruned(Exception):  # noqa: N818 - the name says what happened, like StopIteration
    """Raised by ``nas.report`` when the scheduler stops the trial (let it propagate).

    >>> import nas
    >>> def objective(config, fidelity):
    ...     for epoch in range(1, int(fidelity) + 1):
    ...         nas.report(config["x"] * epoch, epoch)  # may raise TrialPruned
    ...     return config["x"] * fidelity
    >>> res = nas.optimize(objective, nas.Space({"x": nas.Real(0, 1)}), "asha", budget=12,
    ...                    seed=0, executor="inline",
    ...                    strategy_options={"mode": "stop", "max_fidelity": 9})
    >>> any(t.metrics and t.metrics.get("pruned_at") for t in res.history)
    True
    """


@dataclass(frozen=True)
class PruneRule:
    """Rung checks ``(fidelity, least score to go on or None)``; scores are maximized."""

    checks: tuple[tuple[float, float | None], ...]
    maximize: bool = True


@dataclass
class Reporter:
    """The reports of one running trial under ``rule`` (see ``reporting``)."""

    rule: PruneRule
    rungs: list[list[float]] = field(default_factory=list)  # [fidelity, value] per check
    pruned_at: float | None = None
    _next: int = 0

    def report(self, value: float, fidelity: float) -> None:
        """Check every rung that ``fidelity`` reached; raise ``TrialPruned`` below one."""
        checks = self.rule.checks
        while self._next < len(checks) and fidelity >= checks[self._next][0] - _TOL:
            fid, least = checks[self._next]
            self._next += 1
            self.rungs.append([fid, value])
            score = value if self.rule.maximize else -value
            if least is not None and score < least:
                self.pruned_at = fid
                raise TrialPruned(f"pruned at fidelity {fid:g}: {value:g} is below the rung's top")

    def metrics(self) -> dict[str, object]:
        """What the trial's metrics record: ``rungs`` and, when pruned, ``pruned_at``."""
        out: dict[str, object] = {"rungs": [list(r) for r in self.rungs]}
        if self.pruned_at is not None:
            out["pruned_at"] = self.pruned_at
        return out


_CURRENT: ContextVar[Reporter | None] = ContextVar("nas_reporter", default=None)


def current() -> Reporter | None:
    """The reporter of the trial running in this context, if any."""
    return _CURRENT.get()


def activate(reporter: Reporter | None) -> object:
    """Make ``reporter`` current (``deactivate`` with the returned token)."""
    return _CURRENT.set(reporter)


def deactivate(token: object) -> None:
    """Undo ``activate``."""
    _CURRENT.reset(token)  # type: ignore[arg-type]


def report(value: float, fidelity: float) -> None:
    """Report an intermediate ``value`` at ``fidelity`` from inside an objective.

    Does nothing unless the search prunes (ASHA with ``mode="stop"``, see
    Note [Intermediate reports]); then it raises ``nas.TrialPruned`` when the
    trial is below the top ``1/eta`` of a rung it reached. A non-finite value
    raises ``ValueError`` (the trial fails, as a non-finite result would).

    >>> import nas
    >>> def objective(config, fidelity):
    ...     for epoch in range(1, int(fidelity) + 1):
    ...         nas.report(config["x"] * epoch, epoch)  # pruned here when behind
    ...     return config["x"] * fidelity
    >>> objective({"x": 0.5}, 3)  # outside a search: report does nothing
    1.5
    """
    value, fidelity = float(value), float(fidelity)
    if not math.isfinite(value):
        raise ValueError(f"report: value must be finite, got {value}")
    rep = _CURRENT.get()
    if rep is not None:
        rep.report(value, fidelity)
