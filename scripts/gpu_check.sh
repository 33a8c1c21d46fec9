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
python3 "$OLDPWD/benchmarks/pool_alloc.py" --quick --cuda | tee "$OUT/alloc_bench.txt"
cd - >/dev/null
# From tests/, so that the installed package is imported, not the source tree.
(cd tests && python3 -m pytest -q -p no:cacheprovider unit cpu 2>&1 | tail -15) | tee "$OUT/pytest.txt"
