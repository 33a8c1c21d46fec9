"""Typed errors raised by superneurons.

``GraphError`` (a ``ValueError``) names the offending layer; ``OutOfMemoryError`` (a
``MemoryError``) says the step, the layer, the bytes requested and free, and what to try.

Example:
    >>> import superneurons as sn
    >>> g = sn.Graph()
    >>> x = g.input(shape=(1, 4, 4))
    >>> try:
    ...     g.conv2d(x, 8, kernel=5)
    ... except sn.GraphError as e:
    ...     print(type(e).__name__, "conv2d" in str(e))
    GraphError True
"""

from __future__ import annotations

from superneurons._ext import _C

GraphError: type[ValueError] = _C.GraphError
OutOfMemoryError: type[MemoryError] = _C.OutOfMemoryError

__all__ = ["GraphError", "OutOfMemoryError"]
