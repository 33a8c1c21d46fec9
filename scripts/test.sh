#!/usr/bin/env bash
# Installs superneurons with its test tools and runs every check: lint and types, the C++
# tests (plain and under AddressSanitizer + UBSan), then the Python tests and doctests.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" "[test]"
cd "$ROOT"
export PATH="$VENV/bin:$PATH"
jobs="$(nproc 2>/dev/null || echo 2)"

echo "== ruff, mypy, clang-format"
ruff check superneurons nas tests benchmarks
ruff format --check superneurons nas tests benchmarks
mypy
if command -v clang-format >/dev/null; then
  clang-format --dry-run --Werror $(git ls-files 'csrc/*.cpp' 'csrc/*.h' 'csrc/*.cu' 'tests/cpp/*.cpp')
fi

echo "== C++ tests (ctest), plain and sanitized"
for mode in plain sanitize; do
  build="build/ctest-$mode"
  flag=OFF; [ "$mode" = sanitize ] && flag=ON
  cmake -S . -B "$build" -G Ninja -DPython_EXECUTABLE="$VENV/bin/python" \
    -DSUPERNEURONS_CUDA=OFF -DSUPERNEURONS_TESTS=ON -DSUPERNEURONS_SANITIZE="$flag" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j "$jobs" --target cpp_tests
  ctest --test-dir "$build" --output-on-failure
done
# The copy engine's threads, the arena pool and the tensor cache under ThreadSanitizer
# (the other tests run OpenMP kernels, whose runtime TSan cannot see into).
build="build/ctest-thread"
cmake -S . -B "$build" -G Ninja -DPython_EXECUTABLE="$VENV/bin/python" \
  -DSUPERNEURONS_CUDA=OFF -DSUPERNEURONS_TESTS=ON -DSUPERNEURONS_SANITIZE_THREAD=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$jobs" --target test_copy_engine test_arena_pool test_tensor_cache
ctest --test-dir "$build" --output-on-failure -R "test_copy_engine|test_arena_pool|test_tensor_cache"

echo "== pytest"
# Run from the tests folder against the installed package, not the source tree.
pytest tests -q "$@"
pytest -q --doctest-modules --pyargs superneurons -p no:cacheprovider
