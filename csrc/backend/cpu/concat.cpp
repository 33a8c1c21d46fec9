// Channel concatenation: per image, the inputs' [c_i, hw] blocks are laid end to end.
#include <algorithm>

#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"

namespace sn::cpu {
namespace {

int64_t total_channels(int64_t num_inputs, const int64_t* channels) {
  int64_t total = 0;
  for (int64_t i = 0; i < num_inputs; ++i) total += channels[i];
  return total;
}

}  // namespace

void concat_forward(int64_t n, int64_t hw, int64_t num_inputs, const float* const* xs,
                    const int64_t* channels, float* y) {
  const int64_t y_image = total_channels(num_inputs, channels) * hw;
  parallel_for(n, y_image, [=](int64_t lo, int64_t hi) {  // images are disjoint
    for (int64_t b = lo; b < hi; ++b) {
      float* dst = y + b * y_image;
      for (int64_t i = 0; i < num_inputs; ++i) {
        const int64_t block = channels[i] * hw;
        const float* src = xs[i] + b * block;
        std::copy(src, src + block, dst);
        dst += block;
      }
    }
  });
}

void concat_backward(int64_t n, int64_t hw, int64_t num_inputs, const float* dy,
                     const int64_t* channels, float* const* dxs) {
  const int64_t y_image = total_channels(num_inputs, channels) * hw;
  parallel_for(n, y_image, [=](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      const float* src = dy + b * y_image;
      for (int64_t i = 0; i < num_inputs; ++i) {
        const int64_t block = channels[i] * hw;
        if (dxs[i] != nullptr) {
          float* dst = dxs[i] + b * block;
          for (int64_t j = 0; j < block; ++j) dst[j] += src[j];
        }
        src += block;
      }
    }
  });
}

}  // namespace sn::cpu
