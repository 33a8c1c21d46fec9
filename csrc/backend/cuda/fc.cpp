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

// One GEMM of math::fc_gemms with its operands.
void gemm(cublasHandle_t h, const math::Gemm& g, const float* a, const float* b, float* c) {
  const float one = 1.0f;
  SN_CUBLAS_CHECK(cublasSgemm(h, g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                              g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, to_int(g.m), to_int(g.n),
                              to_int(g.k), &one, a, to_int(g.lda), b, to_int(g.ldb), &g.beta, c,
                              to_int(g.ldc)));
}

}  // namespace

void fc_forward(cublasHandle_t h, cudaStream_t s, int64_t n, int64_t in_features,
                int64_t out_features, const float* x, const float* w, const float* bias, float* y) {
  gemm(h, math::fc_gemms(n, in_features, out_features).forward, w, x, y);
  if (bias != nullptr) add_channel_bias(s, n, out_features, 1, bias, y);
}

void fc_backward(cublasHandle_t h, cudaStream_t s, int64_t n, int64_t in_features,
                 int64_t out_features, const float* x, const float* w, const float* dy, float* dx,
                 float* dw, float* dbias) {
  const math::FcGemms g = math::fc_gemms(n, in_features, out_features);
  if (dx != nullptr) gemm(h, g.backward_data, w, dy, dx);
  gemm(h, g.backward_weight, x, dy, dw);
  if (dbias != nullptr) channel_sum(s, n, out_features, 1, dy, dbias);
}

}  // namespace sn::cuda
