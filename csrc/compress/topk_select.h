// Top-k selection by magnitude, as a status bitmap.
//
// Usage:
//   int64_t k = sn::compress::kept_count(n, /*theta=*/0.85);  // n - floor(0.85 n)
//   std::vector<uint64_t> status = sn::compress::top_k_bitmap(values, n, k);
#pragma once

#include <cstdint>
#include <vector>

namespace sn::compress {

// How many of n values survive dropping the fraction theta (in [0, 1)): n - floor(theta n).
// Throws ArgumentError naming theta when it is outside [0, 1).
int64_t kept_count(int64_t n, double theta);

// The bitmap of exactly k elements with the largest |values[i]|; among equal magnitudes the
// lower indices win, so the result does not depend on the selection algorithm.
std::vector<uint64_t> top_k_bitmap(const float* values, int64_t n, int64_t k);

}  // namespace sn::compress
