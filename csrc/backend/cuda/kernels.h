// Launchers of the CUDA backend's own kernels (the layers cuDNN and cuBLAS do not cover in
// the way the planner needs; see the header of cuda_backend.cpp). All pointers are device
// pointers; every launch is asynchronous on `stream` and checked with SN_CUDA_CHECK_LAUNCH.
// Contracts (accumulation, in-place, nullable) are those of backend/cpu/kernels.h; the
// per-element arithmetic is backend/cuda/kernel_math.h.
//
// Usage:
//   sn::cuda::relu_forward(stream, count, x, y);   // y may equal x
#pragma once

#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdint>

#include "backend/cuda/kernel_math.h"

namespace sn::cuda {

// ------------------------------------------------------------------ elementwise
void relu_forward(cudaStream_t s, int64_t count, const float* x, float* y);
void relu_backward(cudaStream_t s, int64_t count, const float* x, const float* dy, float* dx);
void add_forward(cudaStream_t s, int64_t count, const float* a, const float* b, float* y);
void accumulate(cudaStream_t s, int64_t count, const float* src, float* dst);  // dst += src
void dropout_forward(cudaStream_t s, int64_t count, float p, uint64_t seed, const float* x,
                     float* y);
void dropout_backward(cudaStream_t s, int64_t count, float p, uint64_t seed, const float* dy,
                      float* dx);
// Bits of the pass flags (Note [Deferred results] in exec/executor.cpp), a device int.
constexpr int kLossNonFinite = 1;
constexpr int kGradNonFinite = 2;
constexpr int kParamNonFinite = 4;
constexpr int kStopUpdates = 8;  // a previous update's result was non-finite
// The fused update, guarded by `flags`: skipped when the loss or this gradient is
// non-finite or an earlier update went bad; flags a non-finite result. flags == nullptr:
// unguarded (the update always applies).
void sgd_update(cudaStream_t s, int64_t count, float lr, float momentum, float weight_decay,
                float* w, const float* dw, float* velocity, int* flags);
void fill(cudaStream_t s, int64_t count, float value, float* data);
// Sets *flag (device int) to 1 when some element is NaN or infinite; never clears it.
void flag_non_finite(cudaStream_t s, int64_t count, const float* data, int* flag);
// y[n, c, hw] += bias[c] (rows = n * c planes of hw); hw == 1 for a fully connected layer.
void add_channel_bias(cudaStream_t s, int64_t n, int64_t c, int64_t hw, const float* bias,
                      float* y);
// dbias[c] = sum over n and hw of dy[n, c, hw] (overwritten).
void channel_sum(cudaStream_t s, int64_t n, int64_t c, int64_t hw, const float* dy, float* dbias);

// ------------------------------------------------------------------ pooling
void maxpool_forward(cudaStream_t s, const math::Pool& g, const float* x, float* y);
void maxpool_backward(cudaStream_t s, const math::Pool& g, const float* x, const float* dy,
                      float* dx);
void avgpool_forward(cudaStream_t s, const math::Pool& g, const float* x, float* y);
void avgpool_backward(cudaStream_t s, const math::Pool& g, const float* dy, float* dx);
void global_avgpool_forward(cudaStream_t s, int64_t planes, int64_t hw, const float* x, float* y);
void global_avgpool_backward(cudaStream_t s, int64_t planes, int64_t hw, const float* dy,
                             float* dx);

// ------------------------------------------------------------------ LRN
void lrn_forward(cudaStream_t s, const math::Lrn& g, const float* x, float* y);
void lrn_backward(cudaStream_t s, const math::Lrn& g, const float* x, const float* y,
                  const float* dy, float* dx);

// ------------------------------------------------------------------ concat
// One input [n, c, hw] to or from channels [first, first + c) of y [n, total_c, hw].
void concat_forward_part(cudaStream_t s, int64_t n, int64_t hw, int64_t c, int64_t first,
                         int64_t total_c, const float* x, float* y);
void concat_backward_part(cudaStream_t s, int64_t n, int64_t hw, int64_t c, int64_t first,
                          int64_t total_c, const float* dy, float* dx);

// ------------------------------------------------------------------ softmax xent
// probs and per-row results; then one thread sums the rows in order into *mean_loss and
// *correct (device pointers) and sets kLossNonFinite in *flags (nullable) for a NaN or
// infinite loss. row_loss is scratch of 2 * n doubles.
void softmax_xent_forward(cudaStream_t s, int64_t n, int64_t classes, const float* logits,
                          const int32_t* labels, float* probs, double* row_loss, double* mean_loss,
                          long long* correct, int* flags);
void softmax_xent_backward(cudaStream_t s, int64_t n, int64_t classes, const float* probs,
                           const int32_t* labels, float* dlogits);

// ------------------------------------------------------------------ batch norm
// [n, c, hw]; one block per channel, sums in double. running_* nullable (not updated).
// The fallback of the cuDNN pair below (Note [cuDNN batch norm]).
void batchnorm_forward_train(cudaStream_t s, int64_t n, int64_t c, int64_t hw, float eps,
                             float momentum, const float* x, const float* gamma, const float* beta,
                             float* y, float* save_mean, float* save_invstd, float* running_mean,
                             float* running_var);
void batchnorm_forward_infer(cudaStream_t s, int64_t n, int64_t c, int64_t hw, float eps,
                             const float* x, const float* gamma, const float* beta,
                             const float* running_mean, const float* running_var, float* y);
// dx nullable (accumulated when given); dgamma, dbeta overwritten.
void batchnorm_backward(cudaStream_t s, int64_t n, int64_t c, int64_t hw, const float* x,
                        const float* gamma, const float* save_mean, const float* save_invstd,
                        const float* dy, float* dx, float* dgamma, float* dbeta);

// The same contract on cuDNN's spatial kernels (Note [cuDNN batch norm] in
// batchnorm_cudnn.cpp), issued on the handle's stream; dx is required and accumulated.
// Use them only where cudnn_batchnorm_fits says cuDNN computes what the layer asks.
bool cudnn_batchnorm_fits(int64_t n, int64_t c, int64_t hw, float eps);
void cudnn_batchnorm_forward_train(cudnnHandle_t h, int64_t n, int64_t c, int64_t hw, float eps,
                                   float momentum, const float* x, const float* gamma,
                                   const float* beta, float* y, float* save_mean,
                                   float* save_invstd, float* running_mean, float* running_var);
void cudnn_batchnorm_backward(cudnnHandle_t h, int64_t n, int64_t c, int64_t hw, float eps,
                              const float* x, const float* gamma, const float* save_mean,
                              const float* save_invstd, const float* dy, float* dx, float* dgamma,
                              float* dbeta);

}  // namespace sn::cuda
