"""Byte sizes as users write them: ``"256MB"``, ``"12GiB"``, ``4096``.

Every unit is a binary multiple: ``MB`` and ``MiB`` both mean 2**20 bytes.
"""

from __future__ import annotations

import re

__all__ = ["MAX_BYTES", "format_bytes", "parse_budget", "parse_bytes"]

MAX_BYTES = 2**62  # bytes: the largest size accepted (the core counts bytes in int64)

# Binary multiples: a GPU's "12 GB" is 12 GiB, so "GB" and "GiB" mean the same here.
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "tib": 1024**4,
}


def parse_bytes(value: str | int | None) -> int:
    """Bytes from an int or a string with a binary unit; ``None`` means unlimited (0).

    Raises ``TypeError`` for a value that is neither, ``ValueError`` naming the value
    for a negative, unreadable or absurdly large one (over 2**62 bytes).

    Example:
        >>> parse_bytes("256MB"), parse_bytes("1.5 KiB"), parse_bytes(None)
        (268435456, 1536, 0)
        >>> parse_bytes("256MB") == parse_bytes("256MiB")
        True
    """
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"a byte size must be an int or a string like '12GB', got {value!r}")
    if isinstance(value, int):
        size = value
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", value)
        if m is None or m.group(2).lower() not in _UNITS:
            raise ValueError(
                f"cannot read {value!r} as a byte size; write a number with an optional unit "
                "B, KB, MB, GB or TB (binary multiples: MB = MiB), e.g. '256MB'"
            )
        size = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if size < 0:
        raise ValueError(f"a byte size must be >= 0, got {value!r}")
    if size > MAX_BYTES:
        raise ValueError(f"byte size {value!r} is too large (the limit is 2**62 bytes, 4 EiB)")
    return size


def parse_budget(value: str | int | None) -> int:
    """A memory budget in bytes for the core: ``None`` means no budget (returned as the
    core's sentinel 0); a budget of zero bytes is an error, not "unlimited".

    Example:
        >>> parse_budget("12GB") == 12 * 2**30, parse_budget(None)
        (True, 0)
        >>> parse_budget(0)
        Traceback (most recent call last):
        ...
        ValueError: a memory budget must be > 0 bytes, got 0; use None for no budget
    """
    if value is None:
        return 0
    size = parse_bytes(value)
    if size == 0:
        raise ValueError(
            f"a memory budget must be > 0 bytes, got {value!r}; use None for no budget"
        )
    return size


def format_bytes(n: int) -> str:
    """A short human-readable size.

    Example:
        >>> format_bytes(3 * 1024**2)
        '3.00 MiB'
    """
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} B" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
