// Fully connected layer: three GEMMs (forward, dx, dw) and a column sum for dbias.
#include "backend/cpu/blas.h"
#include "backend/cpu/kernels.h"

namespace sn::cpu {

void fc_forward(int64_t n, int64_t in_features, int64_t out_features, const float* x,
                const float* w, const float* bias, float* y) {
  // y[n, out] = x[n, in] * w[out, in]^T
  sgemm(false, true, n, out_features, in_features, 1.0f, x, in_features, w, in_features, 0.0f, y,
        out_features);
  if (bias == nullptr) return;
  for (int64_t i = 0; i < n; ++i) {
    float* y_i = y + i * out_features;
    for (int64_t o = 0; o < out_features; ++o) y_i[o] += bias[o];
  }
}

void fc_backward(int64_t n, int64_t in_features, int64_t out_features, const float* x,
                 const float* w, const float* dy, float* dx, float* dw, float* dbias) {
  // dx[n, in] += dy[n, out] * w[out, in]
  if (dx != nullptr) {
    sgemm(false, false, n, in_features, out_features, 1.0f, dy, out_features, w, in_features, 1.0f,
          dx, in_features);
  }
  // dw[out, in] = dy[n, out]^T * x[n, in]
  sgemm(true, false, out_features, in_features, n, 1.0f, dy, out_features, x, in_features, 0.0f, dw,
        in_features);
  if (dbias == nullptr) return;
  for (int64_t o = 0; o < out_features; ++o) dbias[o] = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float* dy_i = dy + i * out_features;
    for (int64_t o = 0; o < out_features; ++o) dbias[o] += dy_i[o];
  }
}

}  // namespace sn::cpu
