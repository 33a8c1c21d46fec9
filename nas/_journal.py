"""Append-only JSON-lines journal of a search.

Note [Journal format]
One JSON object per line, each with an ``event`` field:
``start`` (the header: strategy, options, seed, sign, budget, space, objective),
``suggest`` (one ``suggest`` call: ``trials`` = ``[{"id", "config"}]``, configs
with scheduler metadata), ``result`` (a trial's final outcome), ``retry`` and
``resume`` (informational). Each line is flushed to the OS as it is written, so
a killed process loses at most a torn last line, which the reader skips.
Replaying ``suggest`` and ``result`` events in order rebuilds a strategy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

__all__ = ["JournalWriter", "read_journal"]

FORMAT = 1


class JournalWriter:
    """Appends events to a journal file, flushing every line."""

    def __init__(self, path: str | os.PathLike[str], fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._fh: IO[str] | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, event: dict[str, Any]) -> None:
        """Append one event (a JSON-able dict with an ``event`` key)."""
        if self._fh is None:
            raise RuntimeError(f"journal {self.path} is closed")
        self._fh.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_journal(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All events of a journal; a torn final line (crash mid-write) is dropped.

    Raises ``ValueError`` if the file has no ``start`` header or a corrupt line
    other than the last.

    >>> import nas, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "run.jsonl")
    >>> f = nas.synthetic("sphere", 2)
    >>> _ = nas.optimize(f, f.space, "random", budget=3, executor="inline", journal=path)
    >>> [e["event"] for e in nas.read_journal(path)][:3]
    ['start', 'suggest', 'result']
    """
    p = Path(path)
    if not p.exists():
        raise ValueError(f"journal {p} does not exist")
    lines = p.read_text(encoding="utf-8").splitlines()
    events: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise ValueError(f"journal {p}: corrupt line {i + 1}") from None
    if not events or events[0].get("event") != "start":
        raise ValueError(f"journal {p}: missing 'start' header")
    if events[0].get("format") != FORMAT:
        raise ValueError(f"journal {p}: unsupported format {events[0].get('format')!r}")
    return events
