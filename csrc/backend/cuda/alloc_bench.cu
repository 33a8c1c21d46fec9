#include <chrono>
#include <memory>
#include <random>
#include <vector>

#include "backend/cuda/alloc_bench.h"
#include "backend/cuda/cuda_check.h"
#include "core/errors.h"
#include "memory/arena_pool.h"

namespace sn::cuda {
namespace {

std::vector<int64_t> draw_sizes(int64_t n, int64_t max_bytes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> size(256, max_bytes);
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (auto& s : out) s = size(rng);
  return out;
}

template <typename Alloc, typename Free>
double time_ring(const std::vector<int64_t>& sizes, int64_t max_live, Alloc alloc, Free free_fn) {
  std::vector<void*> ring(static_cast<size_t>(max_live), nullptr);
  auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < sizes.size(); ++i) {
    void*& slot = ring[i % ring.size()];
    if (slot) free_fn(slot);
    slot = alloc(sizes[i]);
  }
  for (void*& p : ring)
    if (p) free_fn(p);
  auto stop = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::nano>(stop - start).count() /
         static_cast<double>(sizes.size());
}

}  // namespace

AllocBenchResult bench_alloc(int64_t iterations, int64_t max_live, int64_t max_bytes,
                             uint64_t seed) {
  if (iterations < 1 || max_live < 1 || max_bytes < 256)
    throw ArgumentError("bench_alloc needs iterations >= 1, max_live >= 1, max_bytes >= 256");
  const std::vector<int64_t> sizes = draw_sizes(iterations, max_bytes, seed);
  const int64_t arena_bytes = ArenaPool::rounded(max_live * max_bytes * 2);
  void* raw = nullptr;
  SN_CUDA_CHECK(cudaMalloc(&raw, static_cast<size_t>(arena_bytes)));
  // Freed on every path, also when the timing loop throws.
  std::unique_ptr<void, void (*)(void*)> arena(raw, [](void* p) { cudaFree(p); });
  AllocBenchResult r;
  r.ops = iterations;
  {
    ArenaPool pool(arena_bytes, arena.get());
    r.pool_ns_per_op = time_ring(
        sizes, max_live,
        [&](int64_t b) {
          void* p = pool.allocate(b);
          SN_ASSERT(p != nullptr, "benchmark arena too small");
          return p;
        },
        [&](void* p) { pool.free(p); });
  }
  arena.reset();
  r.cuda_ns_per_op = time_ring(
      sizes, max_live,
      [](int64_t b) {
        void* p = nullptr;
        SN_CUDA_CHECK(cudaMalloc(&p, static_cast<size_t>(b)));
        return p;
      },
      [](void* p) { SN_CUDA_CHECK(cudaFree(p)); });
  return r;
}

}  // namespace sn::cuda
