"""The one skip rule of tests/cuda: the CUDA backend must be built and a GPU visible."""

from __future__ import annotations

import os

import pytest

import superneurons as sn


@pytest.fixture
def cuda_device() -> str:
    """``"cuda:0"``, or the test is skipped with the reason (no CUDA build, no GPU)."""
    info = sn.build_info()
    if os.environ.get("SUPERNEURONS_REQUIRE_GPU") == "1" and (
        not info["cuda"] or int(info["cuda_devices"]) == 0
    ):  # scripts/gpu_check.sh: on a GPU machine a skip would hide the failure
        pytest.fail(f"SUPERNEURONS_REQUIRE_GPU=1 but no usable GPU: {info['cuda_device_reason']}")
    if not info["cuda"]:
        pytest.skip(f"built without CUDA ({info['cuda_reason']})")
    if int(info["cuda_devices"]) == 0:
        pytest.skip(f"no CUDA device ({info['cuda_device_reason']})")
    return "cuda:0"
