// ReLU, add, accumulate, dropout, SGD, the non-finite check and the bias helpers.
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"

namespace sn::cuda {

void relu_forward(cudaStream_t s, int64_t count, const float* x, float* y) {
  for_each(s, count, [=] __device__(int64_t i) { y[i] = math::relu(x[i]); });
}

void relu_backward(cudaStream_t s, int64_t count, const float* x, const float* dy, float* dx) {
  for_each(s, count, [=] __device__(int64_t i) { dx[i] += math::relu_grad(x[i], dy[i]); });
}

void add_forward(cudaStream_t s, int64_t count, const float* a, const float* b, float* y) {
  for_each(s, count, [=] __device__(int64_t i) { y[i] = a[i] + b[i]; });
}

void accumulate(cudaStream_t s, int64_t count, const float* src, float* dst) {
  for_each(s, count, [=] __device__(int64_t i) { dst[i] += src[i]; });
}

void dropout_forward(cudaStream_t s, int64_t count, float p, uint64_t seed, const float* x,
                     float* y) {
  const uint64_t mixed = math::splitmix64(seed);
  const float scale = math::keep_scale(p);
  for_each(s, count, [=] __device__(int64_t i) { y[i] = math::dropout(mixed, p, scale, i, x[i]); });
}

void dropout_backward(cudaStream_t s, int64_t count, float p, uint64_t seed, const float* dy,
                      float* dx) {
  const uint64_t mixed = math::splitmix64(seed);
  const float scale = math::keep_scale(p);
  for_each(s, count,
           [=] __device__(int64_t i) { dx[i] += math::dropout(mixed, p, scale, i, dy[i]); });
}

void sgd_update(cudaStream_t s, int64_t count, float lr, float momentum, float weight_decay,
                float* w, const float* dw, float* velocity, int* flags) {
  if (flags == nullptr) {  // unguarded: the update as it comes, as on the CPU
    for_each(s, count, [=] __device__(int64_t i) {
      math::sgd(lr, momentum, weight_decay, w[i], dw[i], velocity[i]);
    });
    return;
  }
  // First the checks (a bad earlier result stops this update too), then the update: within
  // the second kernel only kParamNonFinite changes, which it does not read.
  for_each(s, count, [=] __device__(int64_t i) {
    if (i == 0 && (*flags & kParamNonFinite)) atomicOr(flags, kStopUpdates);
    if (!isfinite(dw[i])) atomicOr(flags, kGradNonFinite);
  });
  for_each(s, count, [=] __device__(int64_t i) {
    if (*flags & (kLossNonFinite | kGradNonFinite | kStopUpdates)) return;
    math::sgd(lr, momentum, weight_decay, w[i], dw[i], velocity[i]);
    if (!isfinite(w[i])) atomicOr(flags, kParamNonFinite);
  });
}

void fill(cudaStream_t s, int64_t count, float value, float* data) {
  for_each(s, count, [=] __device__(int64_t i) { data[i] = value; });
}

void flag_non_finite(cudaStream_t s, int64_t count, const float* data, int* flag) {
  for_each(s, count, [=] __device__(int64_t i) {
    if (!isfinite(data[i])) *flag = 1;  // every writer stores the same value
  });
}

void add_channel_bias(cudaStream_t s, int64_t n, int64_t c, int64_t hw, const float* bias,
                      float* y) {
  for_each(s, n * c * hw, [=] __device__(int64_t i) { y[i] += bias[math::channel_of(i, c, hw)]; });
}

namespace {

__global__ void channel_sum_kernel(int64_t n, int64_t c, int64_t hw, const float* dy,
                                   float* dbias) {
  __shared__ double shared[kThreads];
  const int64_t ch = blockIdx.x;
  double acc = 0.0;
  for (int64_t e = threadIdx.x; e < n * hw; e += blockDim.x)
    acc += dy[math::channel_element(c, hw, ch, e)];
  const double total = block_sum(acc, shared);
  if (threadIdx.x == 0) dbias[ch] = static_cast<float>(total);
}

}  // namespace

void channel_sum(cudaStream_t s, int64_t n, int64_t c, int64_t hw, const float* dy, float* dbias) {
  if (c <= 0) return;
  channel_sum_kernel<<<static_cast<unsigned>(c), kThreads, 0, s>>>(n, c, hw, dy, dbias);
  SN_CUDA_CHECK_LAUNCH();
}

}  // namespace sn::cuda
