// Python bindings of the device memory pool: a virtual ArenaPool for property tests and
// _bench_pool, the pool-versus-malloc microbenchmark behind benchmarks/pool_alloc.py.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/errors.h"
#include "memory/arena_pool.h"
#include "python/register.h"

namespace py = pybind11;

namespace sn::python {

py::dict pool_stats(const ArenaPool& pool) {
  const AllocatorStats s = pool.stats();
  py::dict d;
  d["capacity_bytes"] = s.capacity_bytes;
  d["in_use_bytes"] = s.in_use_bytes;
  d["peak_bytes"] = s.peak_bytes;
  d["num_allocs"] = s.num_allocs;
  d["total_allocs"] = s.total_allocs;
  d["largest_free_bytes"] = pool.largest_free_bytes();
  d["fragmentation"] = pool.fragmentation();
  d["high_water_bytes"] = pool.high_water_bytes();
  d["num_free_blocks"] = pool.num_free_blocks();
  return d;
}

namespace {

// Note [Pool benchmark]
// Both allocators replay one precomputed sequence: a ring of max_live slots; iteration i
// frees the block in slot i % max_live (once the ring is full) and allocates a new one
// there with a size drawn beforehand, so the RNG is outside the timed region. Each new block
// gets its first byte written, and that byte is read back before the free into a checksum,
// so the compiler cannot drop a malloc/free pair. One op is one allocate plus one free
// (the ring is drained at the end, inside the timing). Each allocator replays the sequence
// once untimed first: the arena is reserved once and reused every training iteration, so
// the steady state, not the first touch of fresh pages, is what a pool costs.
struct BenchTiming {
  int64_t elapsed_ns = 0;
  int64_t checksum = 0;
};

template <typename Alloc, typename Free>
BenchTiming run_ring(const std::vector<int64_t>& sizes_bytes, int64_t max_live, Alloc alloc,
                     Free release) {
  std::vector<char*> ring(static_cast<size_t>(max_live), nullptr);
  BenchTiming t;
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < sizes_bytes.size(); ++i) {
    char*& slot = ring[i % ring.size()];
    if (slot != nullptr) {
      t.checksum += slot[0];
      release(slot);
    }
    slot = alloc(sizes_bytes[i]);
    slot[0] = static_cast<char>(i);
  }
  for (char*& slot : ring) {
    if (slot == nullptr) continue;
    t.checksum += slot[0];
    release(slot);
    slot = nullptr;
  }
  t.elapsed_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count();
  return t;
}

py::dict bench_pool(int64_t iterations, int64_t max_live, int64_t max_bytes, uint64_t seed) {
  if (iterations < 1) throw ArgumentError("iterations must be >= 1");
  if (max_live < 1) throw ArgumentError("max_live must be >= 1");
  if (max_bytes < ArenaPool::kAlignmentBytes)
    throw ArgumentError("max_bytes must be >= " + std::to_string(ArenaPool::kAlignmentBytes));

  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> size_dist(ArenaPool::kAlignmentBytes, max_bytes);
  std::vector<int64_t> sizes_bytes(static_cast<size_t>(iterations));
  for (int64_t& s : sizes_bytes) s = size_dist(rng);

  // Twice the worst-case live set, so fragmentation can never make the pool run out.
  const int64_t arena_bytes = 2 * max_live * ArenaPool::rounded(max_bytes);
  struct FreeArena {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, FreeArena> arena(std::aligned_alloc(
      static_cast<size_t>(ArenaPool::kAlignmentBytes), static_cast<size_t>(arena_bytes)));
  if (!arena)
    throw OutOfMemoryError("_bench_pool: could not reserve a " + std::to_string(arena_bytes) +
                           "-byte arena; lower max_live or max_bytes");

  BenchTiming pool_t;
  BenchTiming malloc_t;
  bool pool_ran_out = false;
  bool malloc_failed = false;
  {
    py::gil_scoped_release no_gil;
    ArenaPool pool(arena_bytes, arena.get());
    char sink_byte = 0;  // stands in for a failed allocation; checked after the timing
    for (int pass = 0; pass < 2; ++pass) {  // pass 0 warms up, pass 1 is reported
      pool_t = run_ring(
          sizes_bytes, max_live,
          [&](int64_t n) {
            auto* p = static_cast<char*>(pool.allocate(n));
            if (p == nullptr) {
              pool_ran_out = true;
              return &sink_byte;
            }
            return p;
          },
          [&](char* p) {
            if (p != &sink_byte) pool.free(p);
          });
      malloc_t = run_ring(
          sizes_bytes, max_live,
          [&](int64_t n) {
            auto* p = static_cast<char*>(std::malloc(static_cast<size_t>(n)));
            if (p == nullptr) {
              malloc_failed = true;
              return &sink_byte;
            }
            return p;
          },
          [&](char* p) {
            if (p != &sink_byte) std::free(p);
          });
    }
  }
  SN_ASSERT(!pool_ran_out, "_bench_pool: the pool ran out with a 2x worst-case arena");
  if (malloc_failed) throw OutOfMemoryError("_bench_pool: std::malloc returned nullptr");
  SN_ASSERT(pool_t.checksum == malloc_t.checksum, "_bench_pool: the two replays differ");

  const auto ops = static_cast<double>(iterations);
  py::dict d;
  d["pool_ns_per_op"] = static_cast<double>(pool_t.elapsed_ns) / ops;
  d["malloc_ns_per_op"] = static_cast<double>(malloc_t.elapsed_ns) / ops;
  d["ops"] = iterations;
  d["arena_bytes"] = arena_bytes;
  return d;
}

}  // namespace

void register_memory(py::module_& m) {
  // A virtual pool (no memory behind it): offsets only, for tests and planning experiments.
  py::class_<ArenaPool>(m, "ArenaPool")
      .def(py::init([](int64_t capacity_bytes) {
             return std::make_unique<ArenaPool>(capacity_bytes, nullptr);
           }),
           py::arg("capacity_bytes"))
      .def("allocate", &ArenaPool::allocate_offset, py::arg("size_bytes"),
           "Offset of a new block of at least size_bytes, or -1 when nothing fits.")
      .def("free", &ArenaPool::free_offset, py::arg("offset"))
      .def("stats", &pool_stats)
      .def("blocks", &ArenaPool::used_blocks, "Used blocks as (offset, size), sorted by offset.")
      .def("free_blocks", &ArenaPool::free_blocks,
           "Free blocks as (offset, size), sorted by offset.");

  m.def("_bench_pool", &bench_pool, py::arg("iterations"), py::arg("max_live"),
        py::arg("max_bytes"), py::arg("seed"),
        "Times one random allocate/free ring through an ArenaPool and through std::malloc.");
}

}  // namespace sn::python
