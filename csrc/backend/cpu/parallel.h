// Internal to the CPU kernels: the one threading mechanism (OpenMP) and its helpers.
//
// Usage:
//   sn::cpu::parallel_for(channels, kGrainFloats / plane, [&](int64_t lo, int64_t hi) {
//     for (int64_t c = lo; c < hi; ++c) work(c);
//   });
//
// Note [Deterministic threading]
// Every parallel loop splits work whose results do not depend on the split: elements,
// channels, planes, images, or GEMM output blocks whose reduction order over the inner
// dimension is unchanged. No value is ever summed across threads, so a seed gives the
// same bits on 1 thread and on 16. OpenBLAS is held at one thread (see threads.cpp): its
// GEMMs run inside these loops on slices, never with threads of their own, so the two
// never oversubscribe the cores.
#pragma once

#include <algorithm>
#include <cstdint>

#include "backend/cpu/kernels.h"

#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

namespace sn::cpu {

// Note [Denormals]
// Subnormal floats (below 1.2e-38) cost x86 cores about a hundred times a normal
// multiply-add, in OpenBLAS and in our loops alike. They are what training produces once
// a loss is nearly zero: a ResNet-50 step went from 0.35 s to 12 s when its loss reached
// 0. Every kernel therefore runs with flush-to-zero and denormals-are-zero on every thread
// it uses, as oneDNN does inside PyTorch: a subnormal input or result counts as 0, the
// same on every thread, so the results still do not depend on the thread count. The
// calling thread's and the pool threads' own settings are restored afterwards, so NumPy
// and other code in the process see no change.
class FlushDenormals {
 public:
#if defined(__x86_64__) || defined(_M_X64)
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFtz | kDaz); }
  ~FlushDenormals() { _mm_setcsr(saved_); }

 private:
  static constexpr unsigned kFtz = 0x8000;  // MXCSR flush-to-zero
  static constexpr unsigned kDaz = 0x0040;  // MXCSR denormals-are-zero
  unsigned saved_;
#endif
};

// Work below this many floats per thread runs on fewer threads: a parallel region costs
// a few microseconds, about what 16 K floats of a memory-bound loop take.
constexpr int64_t kGrainFloats = 16384;  // floats

// Threads to use for `items` units of work when one unit touches `floats_per_item`
// floats: at least 1, at most num_threads() and at most `items`.
inline int threads_for(int64_t items, int64_t floats_per_item) {
  const int64_t total = items * std::max<int64_t>(1, floats_per_item);
  const int64_t by_size = std::max<int64_t>(1, total / kGrainFloats);
  return static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>({static_cast<int64_t>(num_threads()), by_size,
                                              std::max<int64_t>(1, items)})));
}

// Calls f(lo, hi) on contiguous ranges covering [0, items) from `threads` threads, one
// range per thread; f must not throw (an exception cannot leave an OpenMP region).
template <class F>
void parallel_ranges(int64_t items, int threads, F&& f) {
  if (threads <= 1 || items <= 1) {
    const FlushDenormals ftz;
    f(int64_t{0}, items);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
  {
    const FlushDenormals ftz;
    const int64_t id = omp_get_thread_num();
    const int64_t nt = omp_get_num_threads();
    const int64_t lo = items * id / nt;
    const int64_t hi = items * (id + 1) / nt;
    if (lo < hi) f(lo, hi);
  }
#else
  const FlushDenormals ftz;
  f(int64_t{0}, items);
#endif
}

// Note [Fixed GEMM blocks]
// OpenBLAS's result for one output element depends on the shape of the GEMM it sits in
// (edge kernels, a small-matrix path below about 1e6 multiply-adds), so a GEMM split by
// thread count would give different bits on different machines. Kernels therefore cut
// their GEMMs into blocks whose sizes depend on the problem shape only, and threads take
// whole blocks (in any order: blocks write disjoint outputs).
struct Blocks {
  int64_t size = 1;   // items per block (the last block may be smaller)
  int64_t count = 1;  // blocks
  int64_t lo(int64_t block) const { return block * size; }
  int64_t hi(int64_t block, int64_t extent) const { return std::min(extent, (block + 1) * size); }
};

constexpr int64_t kMaxBlocks = 8;  // blocks per split: enough for 8 threads, few narrow GEMMs

// Splits `extent` items into at most kMaxBlocks blocks of at least `min_size` items.
inline Blocks blocks_of(int64_t extent, int64_t min_size) {
  Blocks b;
  if (extent <= 0) {
    b.count = 0;
    return b;
  }
  b.size = std::min(extent, std::max((extent + kMaxBlocks - 1) / kMaxBlocks, min_size));
  b.count = (extent + b.size - 1) / b.size;
  return b;
}

// Calls f(block) for every block in [0, count) on up to `threads` threads, each block on
// exactly one thread, taken dynamically (a thread descheduled on a busy machine does not
// hold the others up). f must not throw.
template <class F>
void parallel_blocks(int64_t count, int threads, F&& f) {
  const int t = static_cast<int>(std::min<int64_t>(threads, count));
  if (t <= 1) {
    const FlushDenormals ftz;
    for (int64_t i = 0; i < count; ++i) f(i);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel num_threads(t)
  {
    const FlushDenormals ftz;
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < count; ++i) f(i);
  }
#else
  const FlushDenormals ftz;
  for (int64_t i = 0; i < count; ++i) f(i);
#endif
}

// parallel_ranges with the thread count from threads_for.
template <class F>
void parallel_for(int64_t items, int64_t floats_per_item, F&& f) {
  parallel_ranges(items, threads_for(items, floats_per_item), f);
}

}  // namespace sn::cpu
