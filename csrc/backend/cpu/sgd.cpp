// SGD with momentum and L2 weight decay: one pass over w, dw and v, split over threads.
#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"

namespace sn::cpu {

void sgd_update(int64_t count, float lr, float momentum, float weight_decay, float* w,
                const float* dw, float* velocity) {
  parallel_for(count, 1, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const float v = momentum * velocity[i] + (dw[i] + weight_decay * w[i]);
      velocity[i] = v;
      w[i] -= lr * v;
    }
  });
}

}  // namespace sn::cpu
