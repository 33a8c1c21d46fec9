// SGD with momentum and L2 weight decay: one pass over w, dw and v, split over threads;
// and the finiteness check the executor runs around each update.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

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

// A float is NaN or infinite exactly when its exponent bits are all ones. OR-ing the
// masked bits is an integer reduction, which the compiler vectorizes (a float sum would
// stay scalar without fast-math), and threads split the range.
bool all_finite(int64_t count, const float* data) {
  constexpr uint32_t kExponent = 0x7f800000u;
  std::atomic<bool> finite{true};
  parallel_for(count, 1, [&](int64_t lo, int64_t hi) {
    constexpr int64_t kChunk = 4096;  // floats between early exits
    for (int64_t c = lo; c < hi && finite.load(std::memory_order_relaxed); c += kChunk) {
      const int64_t end = std::min(hi, c + kChunk);
      uint32_t bad = 0;
      for (int64_t i = c; i < end; ++i) {
        uint32_t bits;
        std::memcpy(&bits, data + i, sizeof(bits));
        bad |= static_cast<uint32_t>((bits & kExponent) == kExponent);
      }
      if (bad != 0) finite.store(false, std::memory_order_relaxed);
    }
  });
  return finite.load();
}

}  // namespace sn::cpu
