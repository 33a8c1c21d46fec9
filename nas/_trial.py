"""What a search returns: ``Trial`` records and the ``Result``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nas._space import Config

__all__ = ["Result", "Trial", "apply_result_event", "result_event"]

OK, FAILED, TIMEOUT, PENDING = "ok", "failed", "timeout", "pending"
INFEASIBLE = "infeasible"  # the objective ran and said the config breaks a constraint


@dataclass
class Trial:
    """One evaluation: its config, fidelity, outcome and timings (unix seconds).

    >>> t = Trial(0, {"x": 1.0}, status="ok", value=2.5, started_at=10.0, finished_at=12.0)
    >>> t.duration_s, t.reached_fidelity
    (2.0, None)
    """

    id: int
    config: Config
    fidelity: float | None = None
    status: str = PENDING
    value: float | None = None
    attempts: int = 0
    suggested_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    metrics: dict[str, Any] | None = None  # what a dict-returning objective reported

    @property
    def reached_fidelity(self) -> float | None:
        """The fidelity its value is at: ``pruned_at`` for a pruned trial, else ``fidelity``."""
        if self.metrics is not None and self.metrics.get("pruned_at") is not None:
            return float(self.metrics["pruned_at"])
        return self.fidelity

    @property
    def duration_s(self) -> float | None:
        """Wall time of the successful (or last) attempt."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the record."""
        return asdict(self)


def result_event(t: Trial) -> dict[str, Any]:
    """The journal's ``result`` event of a finished trial (standard JSON).

    A non-finite value (a failed trial, see ``nonfinite_reason``) is written as
    ``value: null`` plus ``nonfinite_value: "nan" | "inf" | "-inf"``; a
    non-finite number among the top-level ``metrics`` likewise as null, named in
    ``nonfinite_metrics`` (metric -> ``"nan" | "inf" | "-inf"``).

    >>> ev = result_event(Trial(0, {"x": 1}, status=FAILED, value=float("inf")))
    >>> ev["value"], ev["nonfinite_value"]
    (None, 'inf')
    >>> ev = result_event(Trial(1, {"x": 1}, status=OK, value=0.5,
    ...                         metrics={"accuracy": 0.5, "loss": float("nan")}))
    >>> ev["metrics"], ev["nonfinite_metrics"]
    ({'accuracy': 0.5, 'loss': None}, {'loss': 'nan'})
    """
    ev: dict[str, Any] = {
        "event": "result",
        "id": t.id,
        "status": t.status,
        "value": t.value,
        "fidelity": t.fidelity,
        "attempts": t.attempts,
        "started_at": t.started_at,
        "finished_at": t.finished_at,
        "error": t.error,
        "metrics": t.metrics,
    }
    if t.value is not None and not math.isfinite(t.value):
        ev["value"], ev["nonfinite_value"] = None, str(t.value)
    if t.metrics is not None:
        bad = {k: str(float(v)) for k, v in t.metrics.items() if _nonfinite_number(v)}
        if bad:
            ev["metrics"] = {k: None if k in bad else v for k, v in t.metrics.items()}
            ev["nonfinite_metrics"] = bad
    return ev


def _nonfinite_number(v: Any) -> bool:
    return isinstance(v, (float, np.floating)) and not math.isfinite(v)


def apply_result_event(t: Trial, ev: dict[str, Any]) -> None:
    """Copy a journaled ``result`` event onto its trial (inverse of ``result_event``).

    >>> t = Trial(1, {"x": 1})
    >>> apply_result_event(t, result_event(Trial(1, {"x": 1}, status=OK, value=0.5,
    ...                                          metrics={"loss": float("inf")})))
    >>> t.status, t.value, t.metrics
    ('ok', 0.5, {'loss': inf})
    """
    t.status, t.attempts, t.error = ev["status"], ev["attempts"], ev["error"]
    t.value = float(ev["nonfinite_value"]) if "nonfinite_value" in ev else ev["value"]
    t.started_at, t.finished_at = ev["started_at"], ev["finished_at"]
    metrics = ev.get("metrics")  # absent in journals written before metrics existed
    if metrics is not None:
        metrics = dict(metrics)
        metrics.update({k: float(v) for k, v in ev.get("nonfinite_metrics", {}).items()})
    t.metrics = metrics


def nonfinite_reason(value: float) -> str | None:
    """Why ``value`` counts as a failed trial, or None for a finite value.

    >>> nonfinite_reason(float("nan"))
    'objective returned nan (a non-finite value is a failed trial)'
    """
    if math.isfinite(value):
        return None
    return f"objective returned {value} (a non-finite value is a failed trial)"


@dataclass
class Result:
    """Outcome of ``nas.optimize`` / ``nas.resume``.

    ``best_config`` / ``best_value`` come from the successful trials at the
    highest fidelity reached (all trials when there is no fidelity; a pruned
    trial's value is at the fidelity it was pruned at); a trial
    whose objective returned NaN or inf is failed, so ``best_value`` is always
    finite (or None when no trial succeeded).

    >>> import nas
    >>> res = nas.optimize(lambda c: c["x"] ** 2, nas.Space({"x": nas.Real(-1, 1)}),
    ...                    "random", budget=5, seed=0, maximize=False, executor="inline")
    >>> res.n_finished, res.best_value == min(t.value for t in res.history)
    (5, True)
    """

    best_config: Config | None
    best_value: float | None
    history: list[Trial] = field(default_factory=list)
    maximize: bool = True
    strategy: str = ""
    journal: str | None = None
    resume_mismatches: int = 0

    @property
    def n_finished(self) -> int:
        """Trials that returned a value."""
        return sum(t.status == OK for t in self.history)

    @property
    def n_failed(self) -> int:
        """Trials that failed or timed out after all retries."""
        return sum(t.status in (FAILED, TIMEOUT) for t in self.history)

    @property
    def n_infeasible(self) -> int:
        """Trials the objective reported infeasible (over a memory or size limit)."""
        return sum(t.status == INFEASIBLE for t in self.history)

    def best_so_far(self) -> np.ndarray:
        """Best value after each trial in completion order (NaN before the first)."""
        done = sorted(
            (t for t in self.history if t.status == OK), key=lambda t: (t.finished_at or 0.0, t.id)
        )
        vals = np.array([t.value for t in done], dtype=float)
        if not len(vals):
            return vals
        return np.maximum.accumulate(vals) if self.maximize else np.minimum.accumulate(vals)


def summarize(history: list[Trial], maximize: bool) -> tuple[Config | None, float | None]:
    """Best (config, value) at the highest fidelity that has a successful trial."""
    ok = [t for t in history if t.status == OK and t.value is not None]
    if not ok:
        return None, None
    fids = [f for f in (t.reached_fidelity for t in ok) if f is not None]
    if fids:
        top = max(fids)
        ok = [t for t in ok if t.reached_fidelity == top]
    pick = max if maximize else min
    best = pick(ok, key=lambda t: float(t.value))  # type: ignore[arg-type]
    return dict(best.config), best.value
