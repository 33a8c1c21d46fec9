"""Append-only JSON-lines journal of a search, with one writer at a time.

Note [Journal format]
One JSON object per line, each with an ``event`` field:
``start`` (the header: strategy, options, seed, sign, budget, space, objective),
``suggest`` (one ``suggest`` call: ``trials`` = ``[{"id", "config"}]``, configs
with scheduler metadata), ``result`` (a trial's final outcome), ``retry`` and
``resume`` (informational), ``warm`` (results of another journal told to the
strategy first; ``suggest`` events of warm-start configs carry ``"warm": true``
and are not strategy suggestions). Lines are standard JSON: a non-finite objective
value is a failed trial whose ``value`` is null and whose ``nonfinite_value`` is
the string ``"nan"``, ``"inf"`` or ``"-inf"`` (a non-finite entry of a result's
``metrics`` is null there and named in ``nonfinite_metrics``). A result's
``status`` is ``ok``, ``failed``, ``timeout`` or ``infeasible`` (the objective's
verdict that the config breaks a limit; never retried). Replaying ``suggest`` and
``result`` events in order rebuilds a strategy.

Note [Journal writer]
- *One writer.* A ``JournalWriter`` holds an exclusive ``fcntl.flock`` on the
  file for its whole life, taken without waiting: a second ``nas search`` or
  ``nas resume`` on the same journal fails at once with ``JournalLockedError``
  (the lock also covers the "already exists" check, so two searches started
  together cannot both pass it). Readers (``read_journal``, ``nas report``) do
  not lock. ``flock`` is POSIX-only and advisory; on network file systems that
  do not implement it the guarantee is lost.
- *Torn lines.* Each line goes to the OS in one ``write`` as it is produced, so
  a killed process leaves at most one torn last line (no newline at the end).
  The reader skips it; a writer opening the journal to append truncates it
  away first and logs the repair (``logging`` warning on the ``nas`` logger,
  and ``repaired_bytes`` in the ``resume`` event), so the next event never
  lands on a fragment.
- *Validation.* Every line must decode as UTF-8, parse as a JSON object with a
  known ``event`` and carry that event's fields with the right types; anything
  else is a ``JournalError`` naming the file and the line.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nas._errors import JournalError, JournalLockedError

__all__ = ["JournalWriter", "read_journal"]

FORMAT = 1
_LOG = logging.getLogger("nas")
_TAIL_CHUNK_BYTES = 1 << 16  # read size when looking back for the last newline

_NUM = (int, float)
_NONE = type(None)
# event -> field -> accepted JSON types (bool is never accepted as a number)
_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "start": {
        "format": (int,),
        "strategy": (str,),
        "strategy_options": (dict, _NONE),
        "seed": (int, _NONE),
        "maximize": (bool,),
        "budget": (int,),
        "workers": (int,),
        "executor": (str,),
        "timeout_s": (*_NUM, _NONE),
        "retries": (int,),
        "space": (dict, _NONE),
        "objective": (str, _NONE),
    },
    "suggest": {"trials": (list,), "time": _NUM},
    "result": {
        "id": (int,),
        "status": (str,),
        "value": (*_NUM, _NONE),
        "fidelity": (*_NUM, _NONE),
        "attempts": (int,),
        "started_at": (*_NUM, _NONE),
        "finished_at": (*_NUM, _NONE),
        "error": (str, _NONE),
    },
    "retry": {"id": (int,)},
    "resume": {},
    "warm": {"results": (list,)},
}
_STATUSES = ("ok", "failed", "timeout", "infeasible")
_NONFINITE = ("nan", "inf", "-inf")


def _type_ok(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


class JournalWriter:
    """Appends events to a journal it holds the exclusive lock of.

    ``create=True`` starts a new journal (the file must be missing or empty);
    ``create=False`` appends to an existing one after cutting a torn last line.
    See Note [Journal writer].

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "j.jsonl")
    >>> w = JournalWriter(path, create=True)
    >>> try:
    ...     JournalWriter(path, create=False)
    ... except JournalLockedError as err:
    ...     print("locked:", "in use by another nas search" in str(err))
    locked: True
    >>> w.close()
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.repaired_bytes = 0
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | (os.O_CREAT if create else 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except FileNotFoundError:
            raise JournalError(self.path, "does not exist") from None
        except OSError as err:
            raise JournalError(self.path, f"cannot be opened for writing: {err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise JournalLockedError(
                self.path,
                "in use by another nas search or resume (it holds the journal's lock); "
                "wait for it to finish or use another journal",
            ) from None
        self._fd: int | None = fd
        try:
            if create and os.fstat(fd).st_size > 0:
                raise JournalError(self.path, "already exists; use nas.resume() to continue it")
            if not create:
                self.repaired_bytes = self._repair_tail(fd)
        except BaseException:
            self.close()
            raise

    def _repair_tail(self, fd: int) -> int:
        """Cut a torn last line (no newline at the end); returns the bytes dropped."""
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return 0
        start, pos = 0, size
        while pos > 0:
            lo = max(0, pos - _TAIL_CHUNK_BYTES)
            cut = os.pread(fd, pos - lo, lo).rfind(b"\n")
            if cut >= 0:
                start = lo + cut + 1
                break
            pos = lo
        if _parse_line(os.pread(fd, size - start, start)) is not None:
            os.write(fd, b"\n")  # a whole event that only lost its newline
            return 0
        os.ftruncate(fd, start)
        _LOG.warning(
            "journal %s: dropped a torn last line (%d bytes, from a crash mid-write) "
            "before appending",
            self.path,
            size - start,
        )
        return size - start

    def write(self, event: Mapping[str, Any]) -> None:
        """Append one event (a JSON-able dict with an ``event`` key) as one line."""
        if self._fd is None:
            raise RuntimeError(f"journal {self.path} is closed")
        data = (json.dumps(event, separators=(",", ":"), allow_nan=False) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        if self.fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        """Release the lock and close the file (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse_line(raw: bytes) -> dict[str, Any] | None:
    """The event on a line, or None when it is not UTF-8 JSON object text."""
    try:
        ev = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return ev if isinstance(ev, dict) else None


def _why_unreadable(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"not UTF-8 text ({err.reason} at byte {err.start})"
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        return f"not JSON ({err.msg}, column {err.colno})"
    return f"not a JSON object: {text[:60]!r}"


def _check(path: Path, lineno: int, ev: dict[str, Any], suggested: set[int]) -> None:
    kind = ev.get("event")
    if kind not in _FIELDS:
        known = ", ".join(sorted(_FIELDS))
        raise JournalError(path, f"unknown event {kind!r} (expected one of {known})", lineno)
    for name, types in _FIELDS[kind].items():
        if name not in ev:
            raise JournalError(path, f"{kind} event is missing field {name!r}", lineno)
        if not _type_ok(ev[name], types):
            want = " or ".join("null" if t is _NONE else t.__name__ for t in types)
            raise JournalError(
                path, f"{kind} event field {name!r} must be {want}, got {ev[name]!r}", lineno
            )
    if kind == "suggest":
        for entry in ev["trials"]:
            if (
                not isinstance(entry, dict)
                or not _type_ok(entry.get("id"), (int,))
                or not isinstance(entry.get("config"), dict)
            ):
                raise JournalError(
                    path, f"suggest entry {entry!r} needs an int 'id' and a 'config' object", lineno
                )
            if entry["id"] in suggested:
                raise JournalError(path, f"trial {entry['id']} was suggested twice", lineno)
            suggested.add(entry["id"])
    elif kind == "result":
        if ev["id"] not in suggested:
            raise JournalError(path, f"result for trial {ev['id']}, never suggested", lineno)
        if ev["status"] not in _STATUSES:
            raise JournalError(path, f"result status {ev['status']!r} not in {_STATUSES}", lineno)
        value = ev["value"]
        if ev["status"] == "ok" and (value is None or not math.isfinite(value)):
            raise JournalError(path, f"ok result needs a finite value, got {value!r}", lineno)
        if ev.get("nonfinite_value", "nan") not in _NONFINITE:
            raise JournalError(path, f"bad nonfinite_value {ev['nonfinite_value']!r}", lineno)
        metrics = ev.get("metrics")  # optional: journals from before metrics lack it
        if not _type_ok(metrics, (dict, _NONE)):
            raise JournalError(
                path, f"result metrics must be an object or null, got {metrics!r}", lineno
            )
        bad = ev.get("nonfinite_metrics", {})
        if not isinstance(bad, dict) or any(
            v not in _NONFINITE or k not in (metrics or {}) for k, v in bad.items()
        ):
            raise JournalError(path, f"bad nonfinite_metrics {bad!r}", lineno)


def read_journal(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All events of a journal; a torn final line (crash mid-write) is dropped.

    Raises ``JournalError`` (a ``ValueError``) naming the file and line for a
    missing file, a line that is not UTF-8 JSON, not an object, an unknown event,
    a missing or mistyped field, a result for an unknown trial, or a missing
    ``start`` header. See Note [Journal writer].

    >>> import nas, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "run.jsonl")
    >>> f = nas.synthetic("sphere", 2)
    >>> _ = nas.optimize(f, f.space, "random", budget=3, executor="inline", journal=path)
    >>> [e["event"] for e in nas.read_journal(path)][:3]
    ['start', 'suggest', 'result']
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise JournalError(p, "does not exist") from None
    except OSError as err:
        raise JournalError(p, f"cannot be read: {err}") from None
    lines = data.split(b"\n")
    torn = lines.pop()  # b"" when the file ends with a newline
    events: list[dict[str, Any]] = []
    suggested: set[int] = set()
    for i, raw in enumerate([*lines, torn]):
        lineno = i + 1
        if not raw.strip():
            continue
        ev = _parse_line(raw)
        if ev is None:
            if i == len(lines):
                break  # the torn last line of a crash: ignored
            raise JournalError(p, _why_unreadable(raw), lineno)
        if not events:
            if ev.get("event") != "start":
                raise JournalError(p, "missing 'start' header", lineno)
            if ev.get("format") != FORMAT:
                raise JournalError(p, f"unsupported format {ev.get('format')!r}", lineno)
        _check(p, lineno, ev, suggested)
        events.append(ev)
    if not events:
        raise JournalError(p, "missing 'start' header (the file is empty)")
    return events
