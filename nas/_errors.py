"""Typed errors of ``nas``: bad journals, a journal in use, a search with no result.

``JournalError`` and ``JournalLockedError`` are ``ValueError`` s (bad input, like
every other argument check); ``SearchFailedError`` is a ``RuntimeError`` that
carries the ``Result`` of the search, so the failed trials stay inspectable.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["JournalError", "JournalLockedError", "SearchFailedError"]


class JournalError(ValueError):
    """A journal that cannot be read or written; names the file and, when known, the line.

    >>> str(JournalError("run.jsonl", "not a JSON object", line=3))
    'journal run.jsonl, line 3: not a JSON object'
    """

    def __init__(self, path: str | os.PathLike[str], message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        where = f"journal {self.path}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: {message}")


class JournalLockedError(JournalError):
    """Another process (or another writer in this one) holds the journal's lock.

    >>> err = JournalLockedError("run.jsonl", "in use by another nas search or resume")
    >>> isinstance(err, JournalError), str(err)
    (True, 'journal run.jsonl: in use by another nas search or resume')
    """


class SearchFailedError(RuntimeError):
    """Every trial of a search failed; ``result`` holds the history.

    >>> err = SearchFailedError("all 3 trials failed", result=None)
    >>> err.result is None
    True
    """

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result
