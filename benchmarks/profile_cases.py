"""Where a training step's time goes, by layer kind and phase, for the cases of
benchmarks/vs_pytorch_cpu.py (Note [Kernel profile] in csrc/exec/executor.cpp).

    python benchmarks/profile_cases.py                 # all cases, 5 timed steps each
    python benchmarks/profile_cases.py --cases vgg11 --steps 10

One warm-up step, then `--steps` profiled steps under policy liveness; it prints the
median step time and the kernels' mean ms per step, largest first.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from vs_pytorch_cpu import CASES  # next to this script, so on sys.path when it runs

import superneurons as sn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--top", type=int, default=8, help="rows per case")
    args = parser.parse_args()
    steps = max(1, args.steps)
    for name in args.cases:
        description, build, batch, shape = CASES[name]
        s = sn.Session(build(), batch, policy="liveness")
        x = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
        y = np.zeros(batch, np.int32)
        s.train_step(x, y, lr=0.01)  # warm-up
        s.set_profiling(True)
        times_ms = []
        for _ in range(steps):
            start = time.perf_counter()
            s.train_step(x, y, lr=0.01)
            times_ms.append((time.perf_counter() - start) * 1e3)
        print(f"{description}: median step {statistics.median(times_ms):.1f} ms")
        for row in sorted(s.profile(), key=lambda r: -float(r["ms"]))[: args.top]:
            print(f"  {row['kind']:<24}{row['phase']:<10}{float(row['ms']) / steps:9.2f} ms")


if __name__ == "__main__":
    main()
