// Max, average and global average pooling (Note [Pool windows] in backend/cpu/pool.cpp).
// Backward is a gather: each input element sums the windows covering it, in the CPU's
// window order, so no atomics are needed and the result is deterministic.
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"

namespace sn::cuda {

void maxpool_forward(cudaStream_t s, const math::Pool& g, const float* x, float* y) {
  for_each(s, g.n * g.c * g.h_out * g.w_out,
           [=] __device__(int64_t o) { y[o] = math::maxpool_forward(g, x, o); });
}

void maxpool_backward(cudaStream_t s, const math::Pool& g, const float* x, const float* dy,
                      float* dx) {
  for_each(s, g.n * g.c * g.h_in * g.w_in,
           [=] __device__(int64_t e) { dx[e] = math::maxpool_backward(g, x, dy, dx[e], e); });
}

void avgpool_forward(cudaStream_t s, const math::Pool& g, const float* x, float* y) {
  for_each(s, g.n * g.c * g.h_out * g.w_out,
           [=] __device__(int64_t o) { y[o] = math::avgpool_forward(g, x, o); });
}

void avgpool_backward(cudaStream_t s, const math::Pool& g, const float* dy, float* dx) {
  for_each(s, g.n * g.c * g.h_in * g.w_in,
           [=] __device__(int64_t e) { dx[e] = math::avgpool_backward(g, dy, dx[e], e); });
}

void global_avgpool_forward(cudaStream_t s, int64_t planes, int64_t hw, const float* x, float* y) {
  for_each(s, planes, [=] __device__(int64_t p) { y[p] = math::global_avgpool_forward(x, hw, p); });
}

void global_avgpool_backward(cudaStream_t s, int64_t planes, int64_t hw, const float* dy,
                             float* dx) {
  const float inv_hw = 1.0f / static_cast<float>(hw);
  for_each(s, planes * hw, [=] __device__(int64_t e) { dx[e] += dy[e / hw] * inv_hw; });
}

}  // namespace sn::cuda
