// Softmax cross-entropy loss over rows of logits.
#include <cmath>

#include "backend/cpu/kernels.h"

namespace sn::cpu {

// Note [Stable softmax]
// Each row is shifted by its maximum before exp, so exp never overflows; the loss is
// computed as log(sum exp(l - max)) - (l[label] - max) rather than -log(prob[label]),
// which stays finite when the label's probability underflows to 0.
float softmax_xent_forward(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                           float* probs, int64_t* correct) {
  double total_loss = 0.0;
  int64_t num_correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* l = logits + i * classes;
    float* p = probs + i * classes;
    int64_t argmax = 0;
    for (int64_t j = 1; j < classes; ++j) {
      if (l[j] > l[argmax]) argmax = j;
    }
    const float row_max = l[argmax];
    double sum = 0.0;
    for (int64_t j = 0; j < classes; ++j) {
      p[j] = std::exp(l[j] - row_max);
      sum += p[j];
    }
    const float inv_sum = static_cast<float>(1.0 / sum);
    for (int64_t j = 0; j < classes; ++j) p[j] *= inv_sum;
    const int32_t label = labels[i];
    total_loss += std::log(sum) - static_cast<double>(l[label] - row_max);
    if (argmax == label) ++num_correct;
  }
  if (correct != nullptr) *correct = num_correct;
  return static_cast<float>(total_loss / static_cast<double>(n));
}

void softmax_xent_backward(int64_t n, int64_t classes, const float* probs, const int32_t* labels,
                           float* dlogits) {
  const float inv_n = 1.0f / static_cast<float>(n);
  for (int64_t i = 0; i < n; ++i) {
    const float* p = probs + i * classes;
    float* d = dlogits + i * classes;
    for (int64_t j = 0; j < classes; ++j) d[j] += p[j] * inv_n;
    d[labels[i]] -= inv_n;
  }
}

}  // namespace sn::cpu
