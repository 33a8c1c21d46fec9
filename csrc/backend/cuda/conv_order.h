// The order in which the CUDA backend offers measured convolution algorithms to the
// planner (Note [Measured convolution algorithms] in cuda_backend.cpp): host-only, so
// tests/cuda/test_cuda_kernel_math.cpp checks it without a GPU.
//
// Usage:
//   std::vector<size_t> order = sn::cuda::measured_order(workspace_bytes, ms);
//   // choices[order[0]] is the fastest; choices[order.back()] needs the least workspace
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace sn::cuda {

// Indices of the choices, fastest measured first; a choice whose time is not finite (not
// measured: refused, or no room for its workspace) is left out; the measured choice with
// the least workspace is repeated at the end unless it is last already (the planner's
// last resort). Empty when nothing was measured: the caller keeps the heuristic's order.
inline std::vector<size_t> measured_order(const std::vector<size_t>& workspace_bytes,
                                          const std::vector<double>& ms) {
  std::vector<size_t> order;
  for (size_t k = 0; k < ms.size() && k < workspace_bytes.size(); ++k)
    if (std::isfinite(ms[k])) order.push_back(k);
  if (order.empty()) return order;
  size_t least = order.front();
  for (size_t k : order)
    if (workspace_bytes[k] < workspace_bytes[least]) least = k;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ms[a] < ms[b]; });
  if (order.back() != least) order.push_back(least);
  return order;
}

}  // namespace sn::cuda
