#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and the CUDA toolkit (the lent device machine): build
# superneurons with the CUDA backend into a private prefix, then report build_info, run
# the CPU/unit test tiers and time the arena pool against cudaMalloc/cudaFree.
# Wheels missing on that machine (scipy-openblas32) are expected in .whl/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-/tmp/sn-gpu}"
mkdir -p "$OUT" /tmp/site
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
export SUPERNEURONS_CUDA=ON SUPERNEURONS_BUILD_DIR=/tmp/sn-build
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -m pip install -q --no-build-isolation --no-deps --target /tmp/site . 2>&1 | tail -3
cd /tmp  # import the installed package, not the source tree
python3 -c "import json, superneurons as sn; print(json.dumps(sn.build_info()))" | tee "$OUT/build_info.json"
python3 - <<'PY' | tee "$OUT/alloc_bench.txt"
import statistics
from superneurons._ext import _C
print("arena pool over device memory vs cudaMalloc/cudaFree (median of 5)")
print(f"{'live':>6}{'max size':>10}{'pool ns/op':>12}{'cuda ns/op':>12}{'speedup':>9}")
for live, size in ((16, 4 << 10), (256, 64 << 10), (1024, 1 << 20), (64, 16 << 20)):
    runs = [_C._bench_alloc_cuda(20000, live, size, s) for s in range(5)]
    pool = statistics.median(r["pool_ns_per_op"] for r in runs)
    cuda = statistics.median(r["cuda_ns_per_op"] for r in runs)
    print(f"{live:>6}{size >> 10:>8}Ki{pool:>12.1f}{cuda:>12.1f}{cuda / pool:>8.1f}x")
PY
cd - >/dev/null
# From tests/, so that the installed package is imported, not the source tree.
(cd tests && python3 -m pytest -q -p no:cacheprovider unit cpu 2>&1 | tail -15) | tee "$OUT/pytest.txt"
