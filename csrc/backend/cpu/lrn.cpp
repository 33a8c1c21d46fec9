// Local response normalization across channels (AlexNet).
//
// Note [LRN window and gradient]
// Channel c is normalized over channels [c - pre, c - pre + size - 1] clipped to [0, C),
// pre = (size - 1) / 2 (centred for odd sizes, one more channel after c for even ones):
//   scale_c = k + alpha / size * sum_{j in win(c)} x_j^2,   y_c = x_c * scale_c^-beta.
// Differentiating, with i in win(j) exactly when j is in [i + pre - size + 1, i + pre]:
//   dx_i = dy_i * scale_i^-beta
//          - 2 * alpha * beta / size * x_i * sum_{j : i in win(j)} dy_j * y_j / scale_j.
// Workspace per image: scale [C, hw] (overwritten in backward by dy * y / scale) and one
// [hw] row accumulating the window sum.
#include <algorithm>
#include <cmath>

#include "backend/cpu/kernels.h"

namespace sn::cpu {
namespace {

// scale[c, :] for one image x [C, hw].
void compute_scale(const LrnGeom& g, const float* x, float* scale) {
  const int64_t pre = (g.size - 1) / 2;
  const float coeff = g.alpha / static_cast<float>(g.size);
  for (int64_t c = 0; c < g.c; ++c) {
    float* s = scale + c * g.hw;
    std::fill(s, s + g.hw, 0.0f);
    const int64_t lo = std::max<int64_t>(0, c - pre);
    const int64_t hi = std::min(g.c, c - pre + g.size);  // exclusive
    for (int64_t j = lo; j < hi; ++j) {
      const float* x_j = x + j * g.hw;
      for (int64_t i = 0; i < g.hw; ++i) s[i] += x_j[i] * x_j[i];
    }
    for (int64_t i = 0; i < g.hw; ++i) s[i] = g.k + coeff * s[i];
  }
}

}  // namespace

int64_t lrn_workspace_floats(const LrnGeom& g) { return (g.c + 1) * g.hw; }

void lrn_forward(const LrnGeom& g, const float* x, float* y, float* workspace) {
  const int64_t image = g.c * g.hw;
  for (int64_t b = 0; b < g.n; ++b) {
    const float* x_b = x + b * image;
    float* y_b = y + b * image;
    compute_scale(g, x_b, workspace);
    for (int64_t i = 0; i < image; ++i) y_b[i] = x_b[i] * std::pow(workspace[i], -g.beta);
  }
}

void lrn_backward(const LrnGeom& g, const float* x, const float* y, const float* dy, float* dx,
                  float* workspace) {
  const int64_t image = g.c * g.hw;
  const int64_t pre = (g.size - 1) / 2;
  const float coeff = 2.0f * g.alpha * g.beta / static_cast<float>(g.size);
  float* ratio = workspace;  // scale, then dy * y / scale
  float* window_sum = workspace + image;
  for (int64_t b = 0; b < g.n; ++b) {
    const float* x_b = x + b * image;
    const float* y_b = y + b * image;
    const float* dy_b = dy + b * image;
    float* dx_b = dx + b * image;
    compute_scale(g, x_b, ratio);
    for (int64_t i = 0; i < image; ++i) {
      dx_b[i] += dy_b[i] * std::pow(ratio[i], -g.beta);
      ratio[i] = dy_b[i] * y_b[i] / ratio[i];
    }
    for (int64_t c = 0; c < g.c; ++c) {
      std::fill(window_sum, window_sum + g.hw, 0.0f);
      const int64_t lo = std::max<int64_t>(0, c + pre - g.size + 1);
      const int64_t hi = std::min(g.c, c + pre + 1);  // exclusive
      for (int64_t j = lo; j < hi; ++j) {
        const float* r_j = ratio + j * g.hw;
        for (int64_t i = 0; i < g.hw; ++i) window_sum[i] += r_j[i];
      }
      const float* x_c = x_b + c * g.hw;
      float* dx_c = dx_b + c * g.hw;
      for (int64_t i = 0; i < g.hw; ++i) dx_c[i] -= coeff * x_c[i] * window_sum[i];
    }
  }
}

}  // namespace sn::cpu
