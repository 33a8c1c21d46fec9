"""superneurons: train networks far larger than device memory.

Example:
    >>> import superneurons as sn
    >>> sorted(sn.build_info())[:3]
    ['blas', 'build_type', 'compiler']
"""

from __future__ import annotations

from typing import Any

from superneurons._ext import _C
from superneurons.errors import GraphError, OutOfMemoryError
from superneurons.graph import Graph, LayerSpec, TensorHandle

__version__ = "0.1.0"


def build_info() -> dict[str, Any]:
    """What this installation was built with, and whether a CUDA device is usable now.

    Example:
        >>> import superneurons as sn
        >>> sn.build_info()["cpu"]
        True
    """
    info = dict(_C._build_info)
    count, reason = _C.cuda_device_count()
    info["cuda_devices"] = count
    info["cuda_device_reason"] = reason
    return info


__all__ = [
    "Graph",
    "GraphError",
    "LayerSpec",
    "OutOfMemoryError",
    "TensorHandle",
    "__version__",
    "build_info",
]
