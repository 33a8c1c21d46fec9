// cuBLAS GEMMs of the fully connected layer (see fc.h).
#include "backend/cuda/fc.h"

#include <climits>
#include <string>

#include "backend/cuda/kernels.h"
#include "backend/cuda/library_check.h"
#include "core/errors.h"

namespace sn::cuda {
namespace {

int to_int(int64_t v) {
  if (v < 0 || v > INT_MAX)
    throw ArgumentError("fully connected dimension does not fit cuBLAS's int: " +
                        std::to_string(v));
  return static_cast<int>(v);
}

}  // namespace

void fc_forward(cublasHandle_t h, cudaStream_t s, int64_t n, int64_t in_features,
                int64_t out_features, const float* x, const float* w, const float* bias, float* y) {
  const int rows = to_int(n), in = to_int(in_features), out = to_int(out_features);
  const float one = 1.0f, zero = 0.0f;
  // Column-major: y^T [out, n] = (w^T [in, out])^T * x^T [in, n].
  SN_CUBLAS_CHECK(
      cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, out, rows, in, &one, w, in, x, in, &zero, y, out));
  if (bias != nullptr) add_channel_bias(s, n, out_features, 1, bias, y);
}

void fc_backward(cublasHandle_t h, cudaStream_t s, int64_t n, int64_t in_features,
                 int64_t out_features, const float* x, const float* w, const float* dy, float* dx,
                 float* dw, float* dbias) {
  const int rows = to_int(n), in = to_int(in_features), out = to_int(out_features);
  const float one = 1.0f, zero = 0.0f;
  // dx^T [in, n] += w^T [in, out] * dy^T [out, n].
  if (dx != nullptr)
    SN_CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, in, rows, out, &one, w, in, dy, out,
                                &one, dx, in));
  // dw^T [in, out] = x^T [in, n] * dy [n, out] (dy^T transposed).
  SN_CUBLAS_CHECK(
      cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, in, out, rows, &one, x, in, dy, out, &zero, dw, in));
  if (dbias != nullptr) channel_sum(s, n, out_features, 1, dy, dbias);
}

}  // namespace sn::cuda
