#!/usr/bin/env bash
# The whole GPU check, one call on a lent GPU machine (about 8 minutes on an H100/H200):
# build superneurons with the CUDA backend into a private prefix, then run, each under its
# own time limit, and log everything under $OUT:
#   1. build_info and the C++ layer-by-layer comparison (tests/cuda/test_cuda_backend.cpp)
#   2. tests/cuda (pytest), then the README's main job on the GPU
#   3. compute-sanitizer memcheck and racecheck on a short training run under superneurons
#   4. benchmarks/gpu/vs_pytorch_gpu.py and the pool against cudaMalloc/cudaFree
#   5. the CPU test tiers, once (an earlier GPU run crashed them with a segfault)
# and print a short table last. Wheels missing on that machine (scipy-openblas32) are
# expected in .whl/ (carry it).
#   device run: bash scripts/gpu_check.sh        (carry: .whl)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SRC="$PWD"
OUT="${OUT:-/tmp/sn-gpu}"
# The device tool brings back at most 8 files from $OUT: each step logs to $LOGS, which
# is packed into $OUT/logs.tar.gz at the end; $OUT also gets summary.md and bench.json.
LOGS=/tmp/sn-gpu-logs
rm -rf "$LOGS"
mkdir -p "$OUT" "$LOGS" /tmp/site
declare -A RESULT
# The whole script stays inside GPU_CHECK_SECONDS (default 510 s, under the device tool's
# 600 s per call with room for the table): each step's limit is cut to what is left, and
# a step with under 15 s left is not started, so the table below always prints.
DEADLINE=$((SECONDS + ${GPU_CHECK_SECONDS:-510}))
step() {  # step NAME SECONDS COMMAND...: run with a limit, log to $LOGS/NAME.txt
  local name="$1" limit="$2"
  shift 2
  local left=$((DEADLINE - SECONDS))
  if [ "$left" -lt 15 ]; then
    RESULT[$name]="not run (out of time)"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0=$SECONDS
  timeout "$limit" "$@" >"$LOGS/$name.txt" 2>&1
  local rc=$?
  RESULT[$name]="rc=$rc $((SECONDS - t0))s"
  [ "$rc" -eq 124 ] && RESULT[$name]="timed out after ${limit}s"
  echo "== $name: ${RESULT[$name]}"
  tail -4 "$LOGS/$name.txt"
  return 0
}

if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
export SUPERNEURONS_CUDA=ON SUPERNEURONS_BUILD_DIR=/tmp/sn-build PYTHONUNBUFFERED=1
# On this machine a GPU is expected: the C++ layer test fails instead of skipping.
export SUPERNEURONS_REQUIRE_GPU=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$LOGS/gpu.txt"
# One CMake build (Hopper only, to save time) of the extension and the GPU test programs;
# the package is the source tree's Python files next to the built module.
step build 200 bash -c "cmake -S . -B /tmp/sn-build -G Ninja -DSUPERNEURONS_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DSUPERNEURONS_TESTS=ON -DPython_EXECUTABLE=$(command -v python3) \
  >/dev/null && cmake --build /tmp/sn-build -j 16 --target _C test_cuda_backend test_cuda_kernel_math \
  && rm -rf /tmp/site/superneurons /tmp/site/nas && cp -r superneurons nas /tmp/site/ \
  && cp /tmp/sn-build/_C*.so /tmp/site/superneurons/"
cd /tmp  # import the installed package, not the source tree
python3 -c "import json, superneurons as sn; print(json.dumps(sn.build_info()))" | tee "$LOGS/build_info.json"
step cuda_layers 40 /tmp/sn-build/test_cuda_backend
step pytest_cuda 100 env SUPERNEURONS_CUDA_TEST_BIN=/tmp/sn-build/test_cuda_backend \
  python3 -m pytest -q -p no:cacheprovider -rs "$SRC/tests/cuda"
# The README's main job on the GPU (scripts/train.sh's arguments; --device auto picks it).
step main_job 60 python3 -m superneurons train --model resnet --depth 20 --dataset digits \
  --epochs 3 --batch 64 --budget 256MB --device auto
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
# No convolution measurement under the sanitizers (minutes there); the heuristic's order.
step memcheck 60 env SUPERNEURONS_CUDNN_BENCHMARK=0 compute-sanitizer --tool memcheck --error-exitcode 9 python3 /tmp/sn_short_run.py
step racecheck 60 env SUPERNEURONS_CUDNN_BENCHMARK=0 compute-sanitizer --tool racecheck --error-exitcode 9 python3 /tmp/sn_short_run.py
# Its searches stop 40 s before the step's limit (150 s at most), so its last table ends
# inside it.
left=$((DEADLINE - SECONDS - 40))
step bench_vs_pytorch 200 python3 "$SRC/benchmarks/gpu/vs_pytorch_gpu.py" --steps 5 \
  --seconds $((left < 150 ? left : 150)) \
  --max-batch-limit 1024 --json "$OUT/bench.json"
step bench_pool 20 python3 "$SRC/benchmarks/pool_alloc.py" --quick --cuda
# Last: the CPU tiers, once (an earlier GPU run crashed them with a segfault); not -x, so
# one failing test does not hide the rest.
pushd "$SRC/tests" >/dev/null
step cpu_tiers 100 python3 -m pytest -q -p no:cacheprovider unit cpu
popd >/dev/null

{
  echo
  echo "| step | result |"
  echo "|---|---|"
  for k in build cuda_layers pytest_cuda main_job memcheck racecheck bench_vs_pytorch bench_pool \
    cpu_tiers; do
    echo "| $k | ${RESULT[$k]:-not run} |"
  done
} | tee "$OUT/summary.md"
grep -h "^|\|^## \|^device" "$LOGS/bench_vs_pytorch.txt" 2>/dev/null | tee -a "$OUT/summary.md"
tar -czf "$OUT/logs.tar.gz" -C "$LOGS" .
