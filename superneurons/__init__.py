"""superneurons: train networks far larger than device memory.

Example:
    >>> import superneurons as sn
    >>> g = sn.models.resnet(depth=8, num_classes=10, image_size=8, in_channels=1)
    >>> s = sn.Session(g, batch_size=16, seed=0)
    >>> s.batch_size, sn.build_info()["cpu"]
    (16, True)
"""

from __future__ import annotations

from typing import Any

from superneurons import data, models
from superneurons._ext import _C
from superneurons._policies import PLANNED_POLICIES, POLICIES
from superneurons._threads import get_num_threads, set_num_threads
from superneurons._units import format_bytes, parse_bytes
from superneurons.errors import GraphError, OutOfMemoryError
from superneurons.graph import Graph, LayerSpec, TensorHandle
from superneurons.planning import MemoryPlan, plan
from superneurons.session import Session, StepResult
from superneurons.trainer import Trainer, load_checkpoint, save_checkpoint

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
    "PLANNED_POLICIES",
    "POLICIES",
    "Graph",
    "GraphError",
    "LayerSpec",
    "MemoryPlan",
    "OutOfMemoryError",
    "Session",
    "StepResult",
    "TensorHandle",
    "Trainer",
    "__version__",
    "build_info",
    "data",
    "format_bytes",
    "get_num_threads",
    "load_checkpoint",
    "models",
    "parse_bytes",
    "plan",
    "save_checkpoint",
    "set_num_threads",
]
