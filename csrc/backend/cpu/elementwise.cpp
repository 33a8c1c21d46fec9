// ReLU, add, accumulate and inverted dropout: element-wise, split over threads by range.
#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"
#include "core/hash.h"

namespace sn::cpu {
namespace {

// Note [Dropout mask]
// The mask must be replayable (backward and recomputation regenerate it; DESIGN 3.5), so
// it is a pure function of (seed, element index) rather than a stream of a stateful RNG:
// uniform(seed, i) = top 24 bits of splitmix64(mix(seed) ^ (i * golden ratio)) / 2^24.
// Pre-mixing the seed keeps neighbouring seeds (0, 1, 2, ...) from giving related masks.
// 24 bits is what a float in [0, 1) can hold exactly.

float uniform(uint64_t mixed_seed, int64_t i) {
  const uint64_t bits = splitmix64(mixed_seed ^ (static_cast<uint64_t>(i) * kGoldenGamma));
  return static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);  // 2^-24
}

// 1 / (1 - p), or 0 when everything is dropped (p >= 1) so that no inf * 0 = NaN appears.
float keep_scale(float p) { return p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; }

}  // namespace

void relu_forward(int64_t count, const float* x, float* y) {
  parallel_for(count, 1, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  });
}

void relu_backward(int64_t count, const float* x, const float* dy, float* dx) {
  parallel_for(count, 1, [=](int64_t lo, int64_t hi) {
    // dy is loaded unconditionally: a load under the condition keeps the loop scalar.
    for (int64_t i = lo; i < hi; ++i) {
      const float d = dy[i];
      dx[i] += x[i] > 0.0f ? d : 0.0f;
    }
  });
}

void add_forward(int64_t count, const float* a, const float* b, float* y) {
  parallel_for(count, 1, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = a[i] + b[i];
  });
}

void accumulate(int64_t count, const float* src, float* dst) {
  parallel_for(count, 1, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dst[i] += src[i];
  });
}

void dropout_forward(int64_t count, float p, uint64_t seed, const float* x, float* y) {
  const uint64_t mixed = splitmix64(seed);
  const float scale = keep_scale(p);
  parallel_for(count, 1, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const float v = x[i] * scale;
      y[i] = uniform(mixed, i) >= p ? v : 0.0f;
    }
  });
}

void dropout_backward(int64_t count, float p, uint64_t seed, const float* dy, float* dx) {
  const uint64_t mixed = splitmix64(seed);
  const float scale = keep_scale(p);
  parallel_for(count, 1, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const float d = dy[i] * scale;
      dx[i] += uniform(mixed, i) >= p ? d : 0.0f;
    }
  });
}

}  // namespace sn::cpu
