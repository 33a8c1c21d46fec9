// SGD with momentum and L2 weight decay.
#include "backend/cpu/kernels.h"

namespace sn::cpu {

void sgd_update(int64_t count, float lr, float momentum, float weight_decay, float* w,
                const float* dw, float* velocity) {
  for (int64_t i = 0; i < count; ++i) {
    const float v = momentum * velocity[i] + (dw[i] + weight_decay * w[i]);
    velocity[i] = v;
    w[i] -= lr * v;
  }
}

}  // namespace sn::cpu
