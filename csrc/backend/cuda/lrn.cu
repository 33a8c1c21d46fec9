// Local response normalization across channels, one thread per element; the window sums
// are recomputed per element instead of kept in a workspace (size is small, 5 in AlexNet).
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"

namespace sn::cuda {

void lrn_forward(cudaStream_t s, const math::Lrn& g, const float* x, float* y) {
  for_each(s, g.n * g.c * g.hw, [=] __device__(int64_t e) { y[e] = math::lrn_forward(g, x, e); });
}

void lrn_backward(cudaStream_t s, const math::Lrn& g, const float* x, const float* y,
                  const float* dy, float* dx) {
  for_each(s, g.n * g.c * g.hw,
           [=] __device__(int64_t e) { dx[e] = math::lrn_backward(g, x, y, dy, dx[e], e); });
}

}  // namespace sn::cuda
