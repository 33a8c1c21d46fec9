"""Errors raised by the dataset readers."""

from __future__ import annotations

__all__ = ["DatasetFormatError"]


class DatasetFormatError(ValueError):
    """A dataset file is not in the format its reader expects.

    The message names the file and says what is wrong (bad magic number, size that
    does not match the header, label out of range, truncated archive, ...).
    """
