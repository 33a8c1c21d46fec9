// Fully connected layer: three GEMMs (forward, dx, dw) and a column sum for dbias.
// Each GEMM is cut into blocks of output features (forward, dw) or input features (dx)
// whose sizes depend on the shape only (Note [Fixed GEMM blocks] in parallel.h).
#include "backend/cpu/blas.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"

namespace sn::cpu {
namespace {

constexpr int64_t kMinBlockFeatures = 64;  // features per GEMM block

void check_dims(int64_t n, int64_t in_features, int64_t out_features) {
  to_blasint(n);  // checked here: an exception cannot leave the parallel loops
  to_blasint(in_features);
  to_blasint(out_features);
}

}  // namespace

void fc_forward(int64_t n, int64_t in_features, int64_t out_features, const float* x,
                const float* w, const float* bias, float* y) {
  check_dims(n, in_features, out_features);
  // y[n, out] = x[n, in] * w[out, in]^T, by blocks of output features.
  const Blocks blocks = blocks_of(out_features, kMinBlockFeatures);
  parallel_blocks(blocks.count, num_threads(), [&](int64_t i) {
    const int64_t lo = blocks.lo(i), hi = blocks.hi(i, out_features);
    sgemm(false, true, n, hi - lo, in_features, 1.0f, x, in_features, w + lo * in_features,
          in_features, 0.0f, y + lo, out_features);
    if (bias == nullptr) return;
    for (int64_t r = 0; r < n; ++r) {
      float* y_r = y + r * out_features;
      for (int64_t o = lo; o < hi; ++o) y_r[o] += bias[o];
    }
  });
}

void fc_backward(int64_t n, int64_t in_features, int64_t out_features, const float* x,
                 const float* w, const float* dy, float* dx, float* dw, float* dbias) {
  check_dims(n, in_features, out_features);
  const int threads = num_threads();
  // dx[n, in] += dy[n, out] * w[out, in], by blocks of input features.
  if (dx != nullptr) {
    const Blocks blocks = blocks_of(in_features, kMinBlockFeatures);
    parallel_blocks(blocks.count, threads, [&](int64_t i) {
      const int64_t lo = blocks.lo(i), hi = blocks.hi(i, in_features);
      sgemm(false, false, n, hi - lo, out_features, 1.0f, dy, out_features, w + lo, in_features,
            1.0f, dx + lo, in_features);
    });
  }
  // dw[out, in] = dy[n, out]^T * x[n, in], by blocks of output features; dbias alongside.
  const Blocks blocks = blocks_of(out_features, kMinBlockFeatures);
  parallel_blocks(blocks.count, threads, [&](int64_t i) {
    const int64_t lo = blocks.lo(i), hi = blocks.hi(i, out_features);
    sgemm(true, false, hi - lo, in_features, n, 1.0f, dy + lo, out_features, x, in_features, 0.0f,
          dw + lo * in_features, in_features);
    if (dbias == nullptr) return;
    for (int64_t o = lo; o < hi; ++o) dbias[o] = 0.0f;
    for (int64_t r = 0; r < n; ++r) {
      const float* dy_r = dy + r * out_features;
      for (int64_t o = lo; o < hi; ++o) dbias[o] += dy_r[o];
    }
  });
}

}  // namespace sn::cpu
