// Softmax cross-entropy: one thread per row (the loss layer is small next to the network),
// then one thread adds the rows' losses in row order, in double, as the CPU does.
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"

namespace sn::cuda {
namespace {

// row_loss holds (loss, 1.0 if the argmax is the label else 0.0) per row.
__global__ void reduce_rows_kernel(int64_t n, const double* row_loss, double* mean_loss,
                                   long long* correct, int* flags) {
  double total = 0.0;
  long long right = 0;
  for (int64_t r = 0; r < n; ++r) {
    total += row_loss[2 * r];
    right += row_loss[2 * r + 1] > 0.5 ? 1 : 0;
  }
  *mean_loss = total / static_cast<double>(n);
  *correct = right;
  // The CPU returns the loss as a float: a sum that overflows float is non-finite there too.
  if (flags && !isfinite(static_cast<float>(*mean_loss))) *flags |= kLossNonFinite;
}

}  // namespace

void softmax_xent_forward(cudaStream_t s, int64_t n, int64_t classes, const float* logits,
                          const int32_t* labels, float* probs, double* row_loss, double* mean_loss,
                          long long* correct, int* flags) {
  if (n <= 0) return;
  for_each(s, n, [=] __device__(int64_t r) {
    bool right = false;
    row_loss[2 * r] = math::softmax_xent_row(classes, logits, labels[r], probs, r, right);
    row_loss[2 * r + 1] = right ? 1.0 : 0.0;
  });
  reduce_rows_kernel<<<1, 1, 0, s>>>(n, row_loss, mean_loss, correct, flags);
  SN_CUDA_CHECK_LAUNCH();
}

void softmax_xent_backward(cudaStream_t s, int64_t n, int64_t classes, const float* probs,
                           const int32_t* labels, float* dlogits) {
  const float inv_n = 1.0f / static_cast<float>(n);
  for_each(s, n * classes, [=] __device__(int64_t e) {
    dlogits[e] = math::softmax_xent_grad(classes, probs, labels, inv_n, dlogits[e], e);
  });
}

}  // namespace sn::cuda
