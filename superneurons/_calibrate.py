"""Measures this machine's rates for the planner's cost model (Note [Cost model rates] in
csrc/backend/cpu_backend.cpp): training FLOPs per second of the CPU backend and the
host copy bandwidth. Plans use fixed defaults (50 GFLOP/s, 5 GB/s) unless the two
environment variables this prints are set, so that plans are reproducible by default.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

import superneurons as sn

ENV_FLOPS = "SUPERNEURONS_CPU_GFLOPS"
ENV_COPY = "SUPERNEURONS_COPY_GBPS"


def measure(repeats: int = 5, copy_mib: int = 256) -> dict[str, float]:
    """Median rates over `repeats` runs: one training step of ResNet-20 (batch 32,
    32x32), counted by the planner's FLOP model, and a `copy_mib` MiB memory copy.

    >>> rates = measure(repeats=1, copy_mib=8)
    >>> rates["cpu_gflops"] > 0 and rates["copy_gbps"] > 0
    True
    """
    g = sn.models.resnet(depth=20, num_classes=10, image_size=32)
    s = sn.Session(g, 32, policy="liveness")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 32).astype(np.int32)
    s.train_step(x, y, lr=0.01)  # warm up
    step_s = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        s.train_step(x, y, lr=0.01)
        step_s.append(time.perf_counter() - t0)
    flops = s.plan().iteration_flops
    src = np.ones(copy_mib << 18, np.float32)  # copy_mib MiB
    dst = np.empty_like(src)
    np.copyto(dst, src)
    copy_s = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        copy_s.append(time.perf_counter() - t0)
    return {
        "cpu_gflops": flops / statistics.median(step_s) / 1e9,
        "copy_gbps": src.nbytes / statistics.median(copy_s) / 1e9,
    }


def shell_lines(rates: dict[str, float]) -> list[str]:
    """The settings that make plans use `rates`.

    >>> shell_lines({"cpu_gflops": 12.5, "copy_gbps": 3.25})
    ['export SUPERNEURONS_CPU_GFLOPS=12.5', 'export SUPERNEURONS_COPY_GBPS=3.25']
    """
    return [
        f"export {ENV_FLOPS}={rates['cpu_gflops']:.3g}",
        f"export {ENV_COPY}={rates['copy_gbps']:.3g}",
    ]
