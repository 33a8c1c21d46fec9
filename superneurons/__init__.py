"""superneurons: train networks far larger than device memory.

Example:
    >>> import superneurons as sn
    >>> g = sn.models.resnet(depth=8, num_classes=10, image_size=8, in_channels=1)
    >>> s = sn.Session(g, batch_size=16, seed=0)
    >>> s.batch_size, sn.build_info()["cpu"]
    (16, True)
"""

from __future__ import annotations

import os as _os

# Note [OpenMP wait policy]
# The CPU kernels' OpenMP threads would otherwise spin for a while at the end of every
# parallel loop; on a machine whose cores are shared (other jobs, other engineers) a
# spinning thread takes the core from the thread everyone waits for, and a training step
# took 10x longer than with sleeping threads in benchmarks/vs_pytorch_cpu.py on such a
# machine. libgomp reads this once, when the extension loads it (below), so it is set
# here, before any import of superneurons._C; a value the user set wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from typing import Any

from superneurons import compress, data, models
from superneurons._checkpoint import CheckpointError
from superneurons._device import cuda_devices
from superneurons._ext import _C
from superneurons._policies import PLANNED_POLICIES, POLICIES
from superneurons._threads import get_num_threads, set_num_threads
from superneurons._units import format_bytes, parse_budget, parse_bytes
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
    count, reason = cuda_devices()
    info["cuda_devices"] = count
    info["cuda_device_reason"] = reason
    return info


__all__ = [
    "PLANNED_POLICIES",
    "POLICIES",
    "CheckpointError",
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
    "compress",
    "data",
    "format_bytes",
    "get_num_threads",
    "load_checkpoint",
    "models",
    "parse_budget",
    "parse_bytes",
    "plan",
    "save_checkpoint",
    "set_num_threads",
]
