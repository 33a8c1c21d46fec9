"""The CUDA backend against the CPU backend, layer by layer (issue 9).

The kernel-level comparison is the C++ program tests/cuda/test_cuda_backend.cpp (the
Session-level comparisons are in test_cuda_session.py). These tests run it when the
extension was built with CUDA, a device is visible and the program was built
(``cmake --build <dir> --target test_cuda_backend``, or point SUPERNEURONS_CUDA_TEST_BIN at
it); everywhere else they are skipped, and the module imports without a GPU or toolkit.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from superneurons._device import cuda_devices

pytestmark = pytest.mark.cuda

ROOT = Path(__file__).resolve().parents[2]


def _binary(name: str) -> Path:
    """The built C++ test program `name`, newest first among build folders."""
    env = os.environ.get("SUPERNEURONS_CUDA_TEST_BIN")
    if env and name == "test_cuda_backend":
        return Path(env)
    found = sorted(ROOT.glob(f"build/**/{name}"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not found:
        pytest.skip(f"{name} is not built (cmake --build <dir> --target {name})")
    return found[0]


def test_every_layer_matches_the_cpu_backend(cuda_device: str) -> None:
    result = subprocess.run(
        [str(_binary("test_cuda_backend"))], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failures" in result.stdout


def test_build_info_reports_the_device(cuda_device: str) -> None:
    count, reason = cuda_devices()
    assert count >= 1
    assert isinstance(reason, str)
