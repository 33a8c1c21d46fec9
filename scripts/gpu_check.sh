#!/usr/bin/env bash
# The whole GPU check, one call on a lent GPU machine (about 8 minutes on an H100/H200):
# build superneurons with the CUDA backend into a private prefix, then run, each under its
# own time limit, and log everything under $OUT:
#   1. build_info and the C++ layer-by-layer comparison (tests/cuda/test_cuda_backend.cpp)
#   2. tests/cuda (pytest)
#   3. compute-sanitizer memcheck and racecheck on a short training run under superneurons
#   4. the CPU test tiers, once (an earlier GPU run crashed them with a segfault)
#   5. benchmarks/gpu/vs_pytorch_gpu.py and the pool against cudaMalloc/cudaFree
# and print a short table last. Wheels missing on that machine (scipy-openblas32) are
# expected in .whl/ (carry it).
#   device run: bash scripts/gpu_check.sh        (carry: .whl)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SRC="$PWD"
OUT="${OUT:-/tmp/sn-gpu}"
mkdir -p "$OUT" /tmp/site
declare -A RESULT
step() {  # step NAME SECONDS COMMAND...: run with a limit, log to $OUT/NAME.txt
  local name="$1" limit="$2"
  shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.txt" 2>&1
  local rc=$?
  RESULT[$name]="rc=$rc $((SECONDS - t0))s"
  tail -4 "$OUT/$name.txt"
  return 0
}

if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
export SUPERNEURONS_CUDA=ON SUPERNEURONS_BUILD_DIR=/tmp/sn-build PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
# One CMake build (Hopper only, to save time) of the extension and the GPU test programs;
# the package is the source tree's Python files next to the built module.
step build 240 bash -c "cmake -S . -B /tmp/sn-build -G Ninja -DSUPERNEURONS_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DSUPERNEURONS_TESTS=ON -DPython_EXECUTABLE=$(command -v python3) \
  >/dev/null && cmake --build /tmp/sn-build -j 16 --target _C test_cuda_backend test_cuda_kernel_math \
  && rm -rf /tmp/site/superneurons && cp -r superneurons /tmp/site/ \
  && cp /tmp/sn-build/_C*.so /tmp/site/superneurons/"
cd /tmp  # import the installed package, not the source tree
python3 -c "import json, superneurons as sn; print(json.dumps(sn.build_info()))" | tee "$OUT/build_info.json"
step cuda_layers 60 /tmp/sn-build/test_cuda_backend
step pytest_cuda 150 env SUPERNEURONS_CUDA_TEST_BIN=/tmp/sn-build/test_cuda_backend \
  python3 -m pytest -q -p no:cacheprovider -rs "$SRC/tests/cuda"
cat >/tmp/sn_short_run.py <<'EOF'
import numpy as np, superneurons as sn
g = sn.models.resnet(depth=14, num_classes=10, image_size=16)
need = sn.plan(g, 16, policy="liveness", device="cuda").peak_bytes
s = sn.Session(g, 16, device="cuda", policy="superneurons", budget=int(need * 0.6), seed=0)
rng = np.random.default_rng(0)
for i in range(3):
    x = rng.standard_normal((16, 3, 16, 16), dtype=np.float32)
    print(s.train_step(x, rng.integers(0, 10, 16), lr=0.05), s.copy_stats())
EOF
step memcheck 90 compute-sanitizer --tool memcheck --error-exitcode 9 python3 /tmp/sn_short_run.py
step racecheck 90 compute-sanitizer --tool racecheck --error-exitcode 9 python3 /tmp/sn_short_run.py
pushd "$SRC/tests" >/dev/null
step cpu_tiers 150 python3 -m pytest -q -p no:cacheprovider -x unit cpu
popd >/dev/null
step bench_vs_pytorch 240 python3 "$SRC/benchmarks/gpu/vs_pytorch_gpu.py" --steps 5 \
  --max-batch-limit 1024 --json "$OUT/bench.json"
step bench_pool 30 python3 "$SRC/benchmarks/pool_alloc.py" --quick --cuda

echo
echo "| step | result |"
echo "|---|---|"
for k in build cuda_layers pytest_cuda memcheck racecheck cpu_tiers bench_vs_pytorch bench_pool; do
  echo "| $k | ${RESULT[$k]:-not run} |"
done
