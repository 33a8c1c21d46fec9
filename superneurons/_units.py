"""Byte sizes as users write them: ``"256MB"``, ``"12GiB"``, ``4096``."""

from __future__ import annotations

import re

__all__ = ["format_bytes", "parse_bytes"]

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

    Example:
        >>> parse_bytes("256MB"), parse_bytes("1.5 KiB"), parse_bytes(None)
        (268435456, 1536, 0)
    """
    if value is None:
        return 0
    if isinstance(value, bool):
        raise TypeError(f"a byte size must be an int or a string like '12GB', got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a byte size must be >= 0, got {value}")
        return value
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
    if m is None or m.group(2).lower() not in _UNITS:
        raise ValueError(
            f"cannot read {value!r} as a byte size; write a number with an optional unit "
            "B, KB, MB, GB or TB (binary multiples), e.g. '256MB'"
        )
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


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
