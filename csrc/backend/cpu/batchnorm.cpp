// Spatial batch normalization over [n, c, hw]: statistics per channel over n * hw values.
//
// Note [BN statistics]
// Per-channel sums are taken in double (two passes: mean, then squared deviations), so the
// variance does not suffer the cancellation of E[x^2] - E[x]^2 on large batches. The
// normalization uses the biased batch variance; running_var receives the unbiased one
// (times m / (m - 1), m = n * hw), as PyTorch does, falling back to the biased value when
// m == 1. Recomputation (DESIGN 3.5) reruns the training forward with null running
// statistics so that they are updated once per iteration.
#include <cmath>

#include "backend/cpu/kernels.h"

namespace sn::cpu {

void batchnorm_forward_train(const BatchNormGeom& g, const float* x, const float* gamma,
                             const float* beta, float* y, float* save_mean, float* save_invstd,
                             float* running_mean, float* running_var) {
  const int64_t m = g.n * g.hw;
  const int64_t image_stride = g.c * g.hw;
  for (int64_t c = 0; c < g.c; ++c) {
    double sum = 0.0;
    for (int64_t b = 0; b < g.n; ++b) {
      const float* x_c = x + b * image_stride + c * g.hw;
      for (int64_t i = 0; i < g.hw; ++i) sum += x_c[i];
    }
    const double mean = sum / static_cast<double>(m);
    double sq_dev = 0.0;
    for (int64_t b = 0; b < g.n; ++b) {
      const float* x_c = x + b * image_stride + c * g.hw;
      for (int64_t i = 0; i < g.hw; ++i) {
        const double d = x_c[i] - mean;
        sq_dev += d * d;
      }
    }
    const double var = sq_dev / static_cast<double>(m);
    const double invstd = 1.0 / std::sqrt(var + static_cast<double>(g.eps));

    // y = x * scale + shift, with scale = gamma * invstd and shift = beta - mean * scale.
    const float scale = static_cast<float>(gamma[c] * invstd);
    const float shift = static_cast<float>(beta[c] - mean * gamma[c] * invstd);
    for (int64_t b = 0; b < g.n; ++b) {
      const float* x_c = x + b * image_stride + c * g.hw;
      float* y_c = y + b * image_stride + c * g.hw;
      for (int64_t i = 0; i < g.hw; ++i) y_c[i] = x_c[i] * scale + shift;
    }

    save_mean[c] = static_cast<float>(mean);
    save_invstd[c] = static_cast<float>(invstd);
    const double unbiased = m > 1 ? sq_dev / static_cast<double>(m - 1) : var;
    const float mom = g.momentum;
    if (running_mean != nullptr) {
      running_mean[c] = (1.0f - mom) * running_mean[c] + mom * static_cast<float>(mean);
    }
    if (running_var != nullptr) {
      running_var[c] = (1.0f - mom) * running_var[c] + mom * static_cast<float>(unbiased);
    }
  }
}

void batchnorm_forward_infer(const BatchNormGeom& g, const float* x, const float* gamma,
                             const float* beta, const float* running_mean, const float* running_var,
                             float* y) {
  const int64_t image_stride = g.c * g.hw;
  for (int64_t c = 0; c < g.c; ++c) {
    const double invstd = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + g.eps);
    const float scale = static_cast<float>(gamma[c] * invstd);
    const float shift = static_cast<float>(beta[c] - running_mean[c] * gamma[c] * invstd);
    for (int64_t b = 0; b < g.n; ++b) {
      const float* x_c = x + b * image_stride + c * g.hw;
      float* y_c = y + b * image_stride + c * g.hw;
      for (int64_t i = 0; i < g.hw; ++i) y_c[i] = x_c[i] * scale + shift;
    }
  }
}

// With xhat = (x - mean) * invstd and m = n * hw:
//   dbeta = sum(dy), dgamma = sum(dy * xhat),
//   dx = gamma * invstd * (dy - dbeta / m - xhat * dgamma / m).
void batchnorm_backward(const BatchNormGeom& g, const float* x, const float* gamma,
                        const float* save_mean, const float* save_invstd, const float* dy,
                        float* dx, float* dgamma, float* dbeta) {
  const int64_t m = g.n * g.hw;
  const int64_t image_stride = g.c * g.hw;
  for (int64_t c = 0; c < g.c; ++c) {
    const float mean = save_mean[c];
    const float invstd = save_invstd[c];
    double sum_dy = 0.0;
    double sum_dy_xhat = 0.0;
    for (int64_t b = 0; b < g.n; ++b) {
      const float* x_c = x + b * image_stride + c * g.hw;
      const float* dy_c = dy + b * image_stride + c * g.hw;
      for (int64_t i = 0; i < g.hw; ++i) {
        sum_dy += dy_c[i];
        sum_dy_xhat += static_cast<double>(dy_c[i]) * ((x_c[i] - mean) * invstd);
      }
    }
    dbeta[c] = static_cast<float>(sum_dy);
    dgamma[c] = static_cast<float>(sum_dy_xhat);

    if (dx == nullptr) continue;  // the data layer: only dgamma and dbeta are wanted
    const float k = gamma[c] * invstd;
    const float mean_dy = static_cast<float>(sum_dy / static_cast<double>(m));
    const float mean_dy_xhat = static_cast<float>(sum_dy_xhat / static_cast<double>(m));
    for (int64_t b = 0; b < g.n; ++b) {
      const float* x_c = x + b * image_stride + c * g.hw;
      const float* dy_c = dy + b * image_stride + c * g.hw;
      float* dx_c = dx + b * image_stride + c * g.hw;
      for (int64_t i = 0; i < g.hw; ++i) {
        const float xhat = (x_c[i] - mean) * invstd;
        dx_c[i] += k * (dy_c[i] - mean_dy - xhat * mean_dy_xhat);
      }
    }
  }
}

}  // namespace sn::cpu
