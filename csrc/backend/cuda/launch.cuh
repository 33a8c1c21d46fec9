// Grid-stride launch helpers shared by the backend's .cu files.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/library_check.h"

namespace sn::cuda {

constexpr int kThreads = 256;          // threads per block (a power of two, for block_sum)
constexpr int64_t kMaxBlocks = 65535;  // blocks per grid-stride launch (the loop covers the rest)

inline int blocks_for(int64_t count) {
  const int64_t b = (count + kThreads - 1) / kThreads;
  return static_cast<int>(b < 1 ? 1 : (b > kMaxBlocks ? kMaxBlocks : b));
}

// Calls f(i) for every i in [0, count), grid-stride.
template <typename F>
__global__ void for_each_kernel(int64_t count, F f) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride)
    f(i);
}

template <typename F>
void for_each(cudaStream_t s, int64_t count, F f) {
  if (count <= 0) return;
  for_each_kernel<<<blocks_for(count), kThreads, 0, s>>>(count, f);
  SN_CUDA_CHECK_LAUNCH();
}

// Sum over the block of one double per thread; the result is valid in thread 0.
// `shared` holds blockDim.x doubles; blockDim.x is a power of two.
__device__ inline double block_sum(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();  // shared may be reused right after
  return total;
}

}  // namespace sn::cuda
