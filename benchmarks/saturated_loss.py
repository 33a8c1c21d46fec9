"""Step time while a loss runs to zero: the regime where gradients go subnormal.

    python benchmarks/saturated_loss.py                 # ResNet-50 at 64x64, batch 16
    python benchmarks/saturated_loss.py --steps 10

Every label is 0, so the network learns it within a few steps and the loss reaches 0; from
then on the gradients are subnormal floats, which cost x86 cores about a hundred times a
normal multiply-add unless the kernels flush them (Note [Denormals] in
csrc/backend/cpu/parallel.h). The script prints each step's time and loss, and the ratio
of the last steps' median to the first steps': about 1.0 when subnormals are flushed (a
build without the flush printed 11.8 and 13.2 s steps against 0.35 s).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import superneurons as sn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="training steps (>= 4)")
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    steps = max(4, args.steps)
    g = sn.models.resnet50(num_classes=100, image_size=64)
    s = sn.Session(g, args.batch, policy="liveness")
    x = np.random.default_rng(0).standard_normal((args.batch, 3, 64, 64)).astype(np.float32)
    y = np.zeros(args.batch, np.int32)
    times_ms = []
    print(f"ResNet-50, 64x64, batch {args.batch}, every label 0, {sn.get_num_threads()} threads")
    for i in range(steps):
        start = time.perf_counter()
        loss = s.train_step(x, y, lr=0.01).loss
        times_ms.append((time.perf_counter() - start) * 1e3)
        print(f"step {i}: {times_ms[-1]:8.1f} ms  loss {loss:.3g}")
    first = statistics.median(times_ms[1:3])  # after the first step's warm-up
    last = statistics.median(times_ms[-3:])
    print(f"last 3 steps / steps 1-2 (median): {last / first:.2f}")


if __name__ == "__main__":
    main()
