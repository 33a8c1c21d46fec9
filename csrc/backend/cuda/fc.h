// Fully connected layer through cuBLAS (row-major tensors, so each GEMM is written for
// cuBLAS's column-major view: a row-major [r, c] matrix is a column-major [c, r] one).
//
// Usage:
//   sn::cuda::fc_forward(cublas, stream, n, in, out, x, w, bias, y);
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace sn::cuda {

// y[n, out] = x[n, in] * w[out, in]^T + bias[out]; bias nullable.
void fc_forward(cublasHandle_t h, cudaStream_t s, int64_t n, int64_t in_features,
                int64_t out_features, const float* x, const float* w, const float* bias, float* y);
// dx += dy * w (nullable), dw = dy^T x, dbias = column sums of dy (nullable).
void fc_backward(cublasHandle_t h, cudaStream_t s, int64_t n, int64_t in_features,
                 int64_t out_features, const float* x, const float* w, const float* dy, float* dx,
                 float* dw, float* dbias);

}  // namespace sn::cuda
