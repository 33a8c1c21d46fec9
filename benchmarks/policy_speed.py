"""Each memory policy trains the same network on the same batch, side by side in one run:
peak bytes (measured by the arena), median step time and whether the losses are identical.

    python benchmarks/policy_speed.py                      # ResNet-20, batch 32, CPU
    python benchmarks/policy_speed.py --depth 56 --batch 64

A thin wrapper over ``superneurons bench``; extra arguments go to it.
"""

from __future__ import annotations

import sys

from superneurons.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    defaults = ["--model", "resnet", "--depth", "20", "--batch", "32", "--iterations", "5"]
    sys.exit(main(["bench", *defaults, *args]))
