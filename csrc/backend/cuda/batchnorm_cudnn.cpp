// Spatial batch normalization on cuDNN (Note [cuDNN batch norm]). Like conv.cpp, this file
// uses cuDNN's legacy API, which cuDNN 9 marks deprecated, and silences that warning.
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif

#include <climits>

#include "backend/cuda/kernels.h"
#include "backend/cuda/library_check.h"

// Note [cuDNN batch norm]
// Training-mode batch norm runs on cuDNN's spatial kernels: our own kernel
// (batchnorm.cu) gives one block to a channel, which leaves most of a large GPU idle on
// the early layers of a ResNet (64 channels of 200k values each at batch 64). cuDNN
// computes exactly our contract: y = gamma (x - mean) invstd + beta with the biased batch
// variance, saves mean and 1 / sqrt(var + eps) (our aux layout: mean then invstd), and
// updates the running statistics as (1 - momentum) running + momentum batch with the
// unbiased variance; backward overwrites dgamma/dbeta and, with beta = 1, accumulates dx
// as our backward does. It sums in its own order, so it agrees with the CPU to rounding,
// like our kernel. Our kernel stays for what cuDNN cannot take: a batch of one value per
// channel (no unbiased variance), an epsilon below CUDNN_BN_MIN_EPSILON (1e-5 before
// cuDNN 9, 0 since), dimensions past int, and the backward of a BN on the network input
// (no dx wanted; cuDNN always writes one), which then reads cuDNN's saved statistics.
// Both are deterministic, so every policy still gives the same bits.
namespace sn::cuda {
namespace {

struct BnDescriptors {
  cudnnTensorDescriptor_t x = nullptr, stats = nullptr;

  BnDescriptors(int64_t n, int64_t c, int64_t hw) {
    try {
      SN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
      SN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&stats));
      SN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                                static_cast<int>(n), static_cast<int>(c),
                                                static_cast<int>(hw), 1));
      SN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(stats, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1,
                                                static_cast<int>(c), 1, 1));
    } catch (...) {
      release();
      throw;
    }
  }
  ~BnDescriptors() { release(); }
  BnDescriptors(const BnDescriptors&) = delete;
  BnDescriptors& operator=(const BnDescriptors&) = delete;

  void release() noexcept {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (stats) cudnnDestroyTensorDescriptor(stats);
    x = stats = nullptr;
  }
};

}  // namespace

bool cudnn_batchnorm_fits(int64_t n, int64_t c, int64_t hw, float eps) {
  const int64_t m = n * hw;
  return m >= 2 && c >= 1 && n <= INT_MAX && c <= INT_MAX && hw <= INT_MAX &&
         n * c * hw <= INT_MAX && static_cast<double>(eps) >= CUDNN_BN_MIN_EPSILON;
}

void cudnn_batchnorm_forward_train(cudnnHandle_t h, int64_t n, int64_t c, int64_t hw, float eps,
                                   float momentum, const float* x, const float* gamma,
                                   const float* beta, float* y, float* save_mean,
                                   float* save_invstd, float* running_mean, float* running_var) {
  const BnDescriptors d(n, c, hw);
  const float one = 1.0f, zero = 0.0f;
  // Both running pointers null: cuDNN leaves the running statistics alone (recomputation).
  SN_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
      h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.x, x, d.x, y, d.stats, gamma, beta,
      static_cast<double>(momentum), running_mean, running_var, static_cast<double>(eps), save_mean,
      save_invstd));
}

void cudnn_batchnorm_backward(cudnnHandle_t h, int64_t n, int64_t c, int64_t hw, float eps,
                              const float* x, const float* gamma, const float* save_mean,
                              const float* save_invstd, const float* dy, float* dx, float* dgamma,
                              float* dbeta) {
  const BnDescriptors d(n, c, hw);
  const float one = 1.0f, zero = 0.0f;
  SN_CUDNN_CHECK(cudnnBatchNormalizationBackward(
      h, CUDNN_BATCHNORM_SPATIAL, &one, &one, &one, &zero, d.x, x, d.x, dy, d.x, dx, d.stats, gamma,
      dgamma, dbeta, static_cast<double>(eps), save_mean, save_invstd));
}

}  // namespace sn::cuda
