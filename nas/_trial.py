"""What a search returns: ``Trial`` records and the ``Result``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nas._space import Config

__all__ = ["Result", "Trial"]

OK, FAILED, TIMEOUT, PENDING = "ok", "failed", "timeout", "pending"
INFEASIBLE = "infeasible"  # the objective ran and said the config breaks a constraint


@dataclass
class Trial:
    """One evaluation: its config, fidelity, outcome and timings (unix seconds)."""

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
    def duration_s(self) -> float | None:
        """Wall time of the successful (or last) attempt."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the record."""
        return asdict(self)


@dataclass
class Result:
    """Outcome of ``nas.optimize`` / ``nas.resume``.

    ``best_config`` / ``best_value`` come from the successful trials at the
    highest fidelity reached (all trials when there is no fidelity).
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
    fids = [t.fidelity for t in ok if t.fidelity is not None]
    if fids:
        top = max(fids)
        ok = [t for t in ok if t.fidelity == top]
    pick = max if maximize else min
    best = pick(ok, key=lambda t: float(t.value))  # type: ignore[arg-type]
    return dict(best.config), best.value
