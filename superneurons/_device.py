"""What the CUDA runtime says about devices, in words a user can act on.

On a machine with no NVIDIA driver at all, the CUDA runtime answers
``cudaErrorInsufficientDriver`` ("CUDA driver version is insufficient for CUDA runtime
version"), which reads as if a driver upgrade would help. Without a driver there is
nothing to upgrade: we say that no NVIDIA driver or GPU was found.
"""

from __future__ import annotations

import os

from superneurons._ext import _C

__all__ = ["auto_device", "cuda_devices", "explain_cuda_reason"]

# Present whenever the NVIDIA kernel driver is loaded (Linux).
_DRIVER_FILE = "/proc/driver/nvidia/version"


def explain_cuda_reason(reason: str, driver_present: bool) -> str:
    """The runtime's reason for seeing no device, rephrased when there is no driver.

    Example:
        >>> explain_cuda_reason("CUDA driver version is insufficient for CUDA runtime "
        ...                     "version", driver_present=False)
        'no NVIDIA GPU or driver was found on this machine'
        >>> explain_cuda_reason("out of memory", driver_present=True)
        'out of memory'
    """
    lowered = reason.lower()
    no_driver = "insufficient" in lowered or "no cuda-capable device" in lowered
    if no_driver and not driver_present:
        return "no NVIDIA GPU or driver was found on this machine"
    return reason


def cuda_devices() -> tuple[int, str]:
    """``(count, reason)``: usable CUDA devices and, when there are none, why."""
    count, reason = _C.cuda_device_count()
    if count == 0:
        reason = explain_cuda_reason(str(reason), os.path.exists(_DRIVER_FILE))
    return int(count), str(reason)


def auto_device() -> str:
    """What ``device="auto"`` means here: ``"cuda:0"`` where this build has CUDA and a GPU
    is visible, else ``"cpu"``.

    Example:
        >>> auto_device() in ("cpu", "cuda:0")
        True
    """
    usable = bool(_C._build_info["cuda"]) and cuda_devices()[0] > 0
    return "cuda:0" if usable else "cpu"
