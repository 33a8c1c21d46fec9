"""Infeasible trials and objective metrics through the checked journal (write, read, resume)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

import nas
from nas.cli import history_from_journal

SPACE = nas.Space({"a": nas.Real(-1, 1), "b": nas.Real(-1, 1)})


class Metered:
    """A dict-returning objective: infeasible when ``a > 0.3``, a NaN ``loss`` metric."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(dict(config))
        if config["a"] > 0.3:
            return {"feasible": False, "error": "a over 0.3", "size": 7}
        value = -(config["a"] ** 2) - config["b"] ** 2
        return {"value": value, "loss": math.nan, "size": 3, "best": math.inf}


def _no_nan(text: str) -> None:
    def refuse(name: str) -> None:
        raise AssertionError(f"journal line holds {name}, not standard JSON")

    for line in text.splitlines():
        json.loads(line, parse_constant=refuse)


def test_metrics_and_infeasible_survive_journal_and_resume(tmp_path: Path) -> None:
    journal = tmp_path / "m.jsonl"
    obj = Metered()
    res = nas.optimize(obj, SPACE, "random", budget=12, seed=0, executor="inline", journal=journal)
    assert res.n_infeasible >= 1 and res.n_finished >= 1
    assert res.n_infeasible + res.n_finished == 12
    assert len(obj.calls) == 12  # infeasible trials were not retried
    _no_nan(journal.read_text())
    for t in res.history:
        assert t.metrics is not None
        if t.status == "infeasible":
            assert t.value is None and t.error == "a over 0.3" and t.metrics["size"] == 7
        else:
            assert math.isnan(t.metrics["loss"]) and t.metrics["best"] == math.inf

    again = Metered()
    more = nas.resume(journal, again, SPACE, budget=15, executor="inline")
    assert len(again.calls) == 3  # only the new trials ran
    assert len(more.history) == 15 and more.n_infeasible >= res.n_infeasible
    for old, new in zip(res.history, more.history[:12], strict=True):
        assert (new.status, new.value, new.error) == (old.status, old.value, old.error)
        assert new.metrics is not None and old.metrics is not None
        assert new.metrics.keys() == old.metrics.keys()
        assert new.metrics["size"] == old.metrics["size"]
        if old.status == "ok":
            assert math.isnan(new.metrics["loss"]) and new.metrics["best"] == math.inf
    history, _ = history_from_journal(str(journal))  # nas report's reader
    assert [t.metrics is not None for t in history] == [True] * 15
    assert [t.status for t in history] == [t.status for t in more.history]


def test_all_infeasible_is_a_failed_search_that_says_so() -> None:
    def never(config: dict[str, Any]) -> dict[str, Any]:
        return {"feasible": False, "error": "too big"}

    with pytest.raises(nas.SearchFailedError, match=r"all 3 trials failed or were infeasible"):
        nas.optimize(never, SPACE, "random", budget=3, seed=0, executor="inline")


def _journal_with(tmp_path: Path, **result: Any) -> Path:
    path = tmp_path / f"bad{len(list(tmp_path.iterdir()))}.jsonl"

    def metered(config: dict[str, Any]) -> dict[str, Any]:
        return {"value": config["a"], "loss": math.nan}

    res = nas.optimize(metered, SPACE, "random", budget=1, seed=1, executor="inline", journal=path)
    assert res.n_finished == 1
    lines = path.read_text().splitlines()
    ev = json.loads(lines[-1])
    assert ev["event"] == "result"
    ev.update(result)
    lines[-1] = json.dumps(ev)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_infeasible_status_is_a_known_result_status(tmp_path: Path) -> None:
    path = _journal_with(tmp_path, status="infeasible", value=None, error="too big")
    assert nas.read_journal(path)[-1]["status"] == "infeasible"
    with pytest.raises(nas.JournalError, match="status 'exploded'"):
        nas.read_journal(_journal_with(tmp_path, status="exploded"))


@pytest.mark.parametrize(
    ("field", "match"),
    [
        ({"metrics": [1, 2]}, "metrics must be an object or null"),
        ({"nonfinite_metrics": {"nope": "nan"}}, "bad nonfinite_metrics"),
        ({"nonfinite_metrics": {"loss": "huge"}}, "bad nonfinite_metrics"),
        ({"metrics": None, "nonfinite_metrics": {"loss": "nan"}}, "bad nonfinite_metrics"),
    ],
)
def test_malformed_metrics_are_journal_errors(
    tmp_path: Path, field: dict[str, Any], match: str
) -> None:
    with pytest.raises(nas.JournalError, match=match):
        nas.read_journal(_journal_with(tmp_path, **field))
