"""Every GPU test of test_cuda_session.py, run with ``device="cpu"`` (the CPU against
itself), so that a GPU test cannot rot where no GPU is lent: a wrong policy name, a
renamed API or a test whose premise does not hold (an input that does not overflow)
fails here, on every machine. What only a GPU can show (the device index check, CuPy
views) is left out by name.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import test_cuda_session as gpu_tests

# Tests whose subject exists only on a GPU.
GPU_ONLY = {
    "test_a_device_index_beyond_the_visible_gpus_is_an_error",  # no GPU: a warning instead
    "test_state_round_trip_and_device_views",  # CuPy views of device memory
}


def _cases() -> list[tuple[str, dict[str, Any]]]:
    cases: list[tuple[str, dict[str, Any]]] = []
    for name, f in inspect.getmembers(gpu_tests, inspect.isfunction):
        if not name.startswith("test_") or name in GPU_ONLY:
            continue
        if "kind" in inspect.signature(f).parameters:
            cases.extend((name, {"kind": k}) for k in sorted(gpu_tests.LAYERS))
        else:
            cases.append((name, {}))
    return cases


def test_every_gpu_test_is_run_here_or_named_as_gpu_only() -> None:
    names = {n for n, _ in inspect.getmembers(gpu_tests, inspect.isfunction)}
    assert names >= GPU_ONLY  # a renamed GPU-only test must be renamed here too
    assert len(_cases()) >= 20


@pytest.mark.parametrize(("name", "kwargs"), _cases(), ids=lambda c: str(c))
def test_the_gpu_test_passes_on_the_cpu(name: str, kwargs: dict[str, Any]) -> None:
    test: Callable[..., None] = getattr(gpu_tests, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        test(cuda_device="cpu", **kwargs)
