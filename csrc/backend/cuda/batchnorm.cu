// Spatial batch normalization, one block per channel: the sums in double, in two passes
// (mean, then squared deviations) as in Note [BN statistics] of backend/cpu/batchnorm.cpp;
// the order of the additions differs from the CPU's, so results agree to rounding.
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"

namespace sn::cuda {
namespace {

__device__ inline int64_t at(int64_t c, int64_t hw, int64_t ch, int64_t e) {
  return math::channel_element(c, hw, ch, e);
}

__global__ void forward_train_kernel(int64_t n, int64_t c, int64_t hw, float eps, float momentum,
                                     const float* x, const float* gamma, const float* beta,
                                     float* y, float* save_mean, float* save_invstd,
                                     float* running_mean, float* running_var) {
  __shared__ double shared[kThreads];
  const int64_t ch = blockIdx.x;
  const int64_t m = n * hw;
  double acc = 0.0;
  for (int64_t e = threadIdx.x; e < m; e += blockDim.x) acc += x[at(c, hw, ch, e)];
  const double sum = block_sum(acc, shared);
  const double mean = sum / static_cast<double>(m);
  acc = 0.0;
  for (int64_t e = threadIdx.x; e < m; e += blockDim.x) {
    const double d = x[at(c, hw, ch, e)] - mean;
    acc += d * d;
  }
  const double sq_dev = block_sum(acc, shared);
  const math::BnChannel r = math::bn_train_channel(sum, sq_dev, m, eps, gamma[ch], beta[ch]);
  for (int64_t e = threadIdx.x; e < m; e += blockDim.x) {
    const int64_t o = at(c, hw, ch, e);
    y[o] = x[o] * r.scale + r.shift;
  }
  if (threadIdx.x == 0) {
    save_mean[ch] = r.save_mean;
    save_invstd[ch] = r.save_invstd;
    if (running_mean != nullptr)
      running_mean[ch] = math::running_update(running_mean[ch], momentum, r.batch_mean);
    if (running_var != nullptr)
      running_var[ch] = math::running_update(running_var[ch], momentum, r.unbiased_var);
  }
}

__global__ void backward_kernel(int64_t n, int64_t c, int64_t hw, const float* x,
                                const float* gamma, const float* save_mean,
                                const float* save_invstd, const float* dy, float* dx, float* dgamma,
                                float* dbeta) {
  __shared__ double shared[kThreads];
  const int64_t ch = blockIdx.x;
  const int64_t m = n * hw;
  const float mean = save_mean[ch];
  const float invstd = save_invstd[ch];
  double acc_dy = 0.0, acc_dy_xhat = 0.0;
  for (int64_t e = threadIdx.x; e < m; e += blockDim.x) {
    const int64_t o = at(c, hw, ch, e);
    const float d = dy[o];
    acc_dy += d;
    acc_dy_xhat += static_cast<double>(d) * ((x[o] - mean) * invstd);
  }
  const double sum_dy = block_sum(acc_dy, shared);
  const double sum_dy_xhat = block_sum(acc_dy_xhat, shared);
  if (threadIdx.x == 0) {
    dbeta[ch] = static_cast<float>(sum_dy);
    dgamma[ch] = static_cast<float>(sum_dy_xhat);
  }
  if (dx == nullptr) return;  // the data layer: only dgamma and dbeta are wanted
  const float mean_dy = static_cast<float>(sum_dy / static_cast<double>(m));
  const float mean_dy_xhat = static_cast<float>(sum_dy_xhat / static_cast<double>(m));
  for (int64_t e = threadIdx.x; e < m; e += blockDim.x) {
    const int64_t o = at(c, hw, ch, e);
    dx[o] = math::bn_dx(x[o], dy[o], dx[o], gamma[ch], mean, invstd, mean_dy, mean_dy_xhat);
  }
}

}  // namespace

void batchnorm_forward_train(cudaStream_t s, int64_t n, int64_t c, int64_t hw, float eps,
                             float momentum, const float* x, const float* gamma, const float* beta,
                             float* y, float* save_mean, float* save_invstd, float* running_mean,
                             float* running_var) {
  if (c <= 0 || n * hw <= 0) return;
  forward_train_kernel<<<static_cast<unsigned>(c), kThreads, 0, s>>>(
      n, c, hw, eps, momentum, x, gamma, beta, y, save_mean, save_invstd, running_mean,
      running_var);
  SN_CUDA_CHECK_LAUNCH();
}

void batchnorm_forward_infer(cudaStream_t s, int64_t n, int64_t c, int64_t hw, float eps,
                             const float* x, const float* gamma, const float* beta,
                             const float* running_mean, const float* running_var, float* y) {
  for_each(s, n * c * hw, [=] __device__(int64_t i) {
    const int64_t ch = math::channel_of(i, c, hw);
    float scale, shift;
    math::bn_infer_channel(gamma[ch], beta[ch], running_mean[ch], running_var[ch], eps, scale,
                           shift);
    y[i] = x[i] * scale + shift;
  });
}

void batchnorm_backward(cudaStream_t s, int64_t n, int64_t c, int64_t hw, const float* x,
                        const float* gamma, const float* save_mean, const float* save_invstd,
                        const float* dy, float* dx, float* dgamma, float* dbeta) {
  if (c <= 0 || n * hw <= 0) return;
  backward_kernel<<<static_cast<unsigned>(c), kThreads, 0, s>>>(n, c, hw, x, gamma, save_mean,
                                                                save_invstd, dy, dx, dgamma, dbeta);
  SN_CUDA_CHECK_LAUNCH();
}

}  // namespace sn::cuda
