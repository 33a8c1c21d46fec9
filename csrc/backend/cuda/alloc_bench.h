// Times the arena pool over device memory against cudaMalloc/cudaFree on one random
// allocate/free sequence (benchmarks/pool_alloc.py --cuda prints the comparison).
#pragma once

#include <cstdint>

namespace sn::cuda {

struct AllocBenchResult {
  double pool_ns_per_op = 0.0;
  double cuda_ns_per_op = 0.0;
  int64_t ops = 0;
};

// `max_live` blocks stay live in a ring; sizes are uniform in [256, max_bytes].
AllocBenchResult bench_alloc(int64_t iterations, int64_t max_live, int64_t max_bytes,
                             uint64_t seed);

}  // namespace sn::cuda
