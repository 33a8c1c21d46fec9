"""What the CUDA runtime says about devices, in words a user can act on.

On a machine with no NVIDIA driver at all, the CUDA runtime answers
``cudaErrorInsufficientDriver`` ("CUDA driver version is insufficient for CUDA runtime
version"), which reads as if a driver upgrade would help. Without a driver there is
nothing to upgrade: we say that no NVIDIA driver or GPU was found.
"""

from __future__ import annotations

import os

from superneurons._ext import _C

__all__ = ["auto_device", "cuda_devices", "cuda_index", "explain_cuda_reason"]

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


def cuda_index(device: str) -> int | None:
    """The CUDA device index a device name asks for, ``None`` for ``"cpu"`` and
    ``"auto"``; TypeError for a non-string, ValueError naming the choices for a bad name.

    Example:
        >>> cuda_index("cuda"), cuda_index("cuda:1"), cuda_index("cpu")
        (0, 1, None)
    """
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda:0', got {device!r}")
    if device in ("cpu", "auto"):
        return None
    if device in ("cuda", "gpu"):
        return 0
    if device.startswith("cuda:") and device[5:].isdigit() and len(device) < 9:
        return int(device[5:])
    raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'")
