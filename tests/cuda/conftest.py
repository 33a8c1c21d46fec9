"""The one skip rule of tests/cuda: the CUDA backend must be built and a GPU visible."""

from __future__ import annotations

import pytest

import superneurons as sn


@pytest.fixture
def cuda_device() -> str:
    """``"cuda:0"``, or the test is skipped with the reason (no CUDA build, no GPU)."""
    info = sn.build_info()
    if not info["cuda"]:
        pytest.skip(f"built without CUDA ({info['cuda_reason']})")
    if int(info["cuda_devices"]) == 0:
        pytest.skip(f"no CUDA device ({info['cuda_device_reason']})")
    return "cuda:0"
