// Spatial batch normalization over [n, c, hw]: statistics per channel over n * hw values.
//
// Note [BN statistics]
// Per-channel sums are taken in double (two passes: mean, then squared deviations), so the
// variance does not suffer the cancellation of E[x^2] - E[x]^2 on large batches. The
// normalization uses the biased batch variance; running_var receives the unbiased one
// (times m / (m - 1), m = n * hw), as PyTorch does, falling back to the biased value when
// m == 1. Recomputation (DESIGN 3.5) reruns the training forward with null running
// statistics so that they are updated once per iteration.
//
// Note [BN threads and lanes]
// Channels are independent, so threads split channels. Within a channel each sum runs in
// kLanes interleaved double accumulators (element i of a plane goes to lane i % kLanes),
// combined in a fixed order at the end: the compiler vectorizes it, and the result depends
// only on the shape, never on the thread count.
#include <cmath>

#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"

namespace sn::cpu {
namespace {

constexpr int64_t kLanes = 8;  // accumulators per sum

struct Lanes {
  double v[kLanes] = {};
  double total() const {
    double s = 0.0;
    for (int64_t j = 0; j < kLanes; ++j) s += v[j];
    return s;
  }
};

// lanes += x[0, count) (element i into lane i % kLanes).
void add_sum(const float* x, int64_t count, Lanes& lanes) {
  const int64_t full = count - count % kLanes;
  for (int64_t i = 0; i < full; i += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) lanes.v[j] += x[i + j];
  }
  for (int64_t i = full; i < count; ++i) lanes.v[i - full] += x[i];
}

// lanes += (x - mean)^2 over x[0, count).
void add_sq_dev(const float* x, int64_t count, double mean, Lanes& lanes) {
  const int64_t full = count - count % kLanes;
  for (int64_t i = 0; i < full; i += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) {
      const double d = x[i + j] - mean;
      lanes.v[j] += d * d;
    }
  }
  for (int64_t i = full; i < count; ++i) {
    const double d = x[i] - mean;
    lanes.v[i - full] += d * d;
  }
}

// The output gradient the BN sees: dy, or dy masked by the fused ReLU's output y (y > 0
// exactly where the BN output is > 0, so this is relu_backward's mask).
template <bool kRelu>
inline float bn_grad(const float* y, const float* dy, int64_t i) {
  if constexpr (kRelu) {
    const float d = dy[i];  // loaded unconditionally, so the loops vectorize
    return y[i] > 0.0f ? d : 0.0f;
  } else {
    (void)y;
    return dy[i];
  }
}

// sum_dy += dy, sum_dy_xhat += dy * (x - mean) * invstd over [0, count) (dy as bn_grad).
template <bool kRelu>
void add_backward_sums(const float* x, const float* y, const float* dy, int64_t count, float mean,
                       float invstd, Lanes& sum_dy, Lanes& sum_dy_xhat) {
  const int64_t full = count - count % kLanes;
  for (int64_t i = 0; i < full; i += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) {
      const float d = bn_grad<kRelu>(y, dy, i + j);
      sum_dy.v[j] += d;
      sum_dy_xhat.v[j] += static_cast<double>(d) * ((x[i + j] - mean) * invstd);
    }
  }
  for (int64_t i = full; i < count; ++i) {
    const float d = bn_grad<kRelu>(y, dy, i);
    sum_dy.v[i - full] += d;
    sum_dy_xhat.v[i - full] += static_cast<double>(d) * ((x[i] - mean) * invstd);
  }
}

// y = x * scale + shift over [0, count), then max(y, 0) when the ReLU is fused.
template <bool kRelu>
void scale_shift(const float* x, int64_t count, float scale, float shift, float* y) {
  for (int64_t i = 0; i < count; ++i) {
    const float v = x[i] * scale + shift;
    if constexpr (kRelu) {
      y[i] = v > 0.0f ? v : 0.0f;
    } else {
      y[i] = v;
    }
  }
}

template <bool kRelu>
void forward_train(const BatchNormGeom& g, const float* x, const float* gamma, const float* beta,
                   float* y, float* save_mean, float* save_invstd, float* running_mean,
                   float* running_var) {
  const int64_t m = g.n * g.hw;
  const int64_t image_stride = g.c * g.hw;
  parallel_for(g.c, m, [&](int64_t c_lo, int64_t c_hi) {
    for (int64_t c = c_lo; c < c_hi; ++c) {
      Lanes sum;
      for (int64_t b = 0; b < g.n; ++b) add_sum(x + b * image_stride + c * g.hw, g.hw, sum);
      const double mean = sum.total() / static_cast<double>(m);
      Lanes sq;
      for (int64_t b = 0; b < g.n; ++b) add_sq_dev(x + b * image_stride + c * g.hw, g.hw, mean, sq);
      const double sq_dev = sq.total();
      const double var = sq_dev / static_cast<double>(m);
      const double invstd = 1.0 / std::sqrt(var + static_cast<double>(g.eps));

      // y = x * scale + shift, with scale = gamma * invstd and shift = beta - mean * scale.
      const float scale = static_cast<float>(gamma[c] * invstd);
      const float shift = static_cast<float>(beta[c] - mean * gamma[c] * invstd);
      for (int64_t b = 0; b < g.n; ++b) {
        const int64_t off = b * image_stride + c * g.hw;
        scale_shift<kRelu>(x + off, g.hw, scale, shift, y + off);
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
  });
}

template <bool kRelu>
void forward_infer(const BatchNormGeom& g, const float* x, const float* gamma, const float* beta,
                   const float* running_mean, const float* running_var, float* y) {
  const int64_t image_stride = g.c * g.hw;
  parallel_for(g.c, g.n * g.hw, [&](int64_t c_lo, int64_t c_hi) {
    for (int64_t c = c_lo; c < c_hi; ++c) {
      const double invstd = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + g.eps);
      const float scale = static_cast<float>(gamma[c] * invstd);
      const float shift = static_cast<float>(beta[c] - running_mean[c] * gamma[c] * invstd);
      for (int64_t b = 0; b < g.n; ++b) {
        const int64_t off = b * image_stride + c * g.hw;
        scale_shift<kRelu>(x + off, g.hw, scale, shift, y + off);
      }
    }
  });
}

// With xhat = (x - mean) * invstd and m = n * hw:
//   dbeta = sum(dy), dgamma = sum(dy * xhat),
//   dx = gamma * invstd * (dy - dbeta / m - xhat * dgamma / m).
template <bool kRelu>
void backward(const BatchNormGeom& g, const float* x, const float* y, const float* gamma,
              const float* save_mean, const float* save_invstd, const float* dy, float* dx,
              float* dgamma, float* dbeta) {
  const int64_t m = g.n * g.hw;
  const int64_t image_stride = g.c * g.hw;
  parallel_for(g.c, 2 * m, [&](int64_t c_lo, int64_t c_hi) {
    for (int64_t c = c_lo; c < c_hi; ++c) {
      const float mean = save_mean[c];
      const float invstd = save_invstd[c];
      Lanes dy_lanes, dy_xhat_lanes;
      for (int64_t b = 0; b < g.n; ++b) {
        const int64_t off = b * image_stride + c * g.hw;
        add_backward_sums<kRelu>(x + off, y + off, dy + off, g.hw, mean, invstd, dy_lanes,
                                 dy_xhat_lanes);
      }
      const double sum_dy = dy_lanes.total();
      const double sum_dy_xhat = dy_xhat_lanes.total();
      dbeta[c] = static_cast<float>(sum_dy);
      dgamma[c] = static_cast<float>(sum_dy_xhat);

      if (dx == nullptr) continue;  // the data layer: only dgamma and dbeta are wanted
      const float k = gamma[c] * invstd;
      const float mean_dy = static_cast<float>(sum_dy / static_cast<double>(m));
      const float mean_dy_xhat = static_cast<float>(sum_dy_xhat / static_cast<double>(m));
      for (int64_t b = 0; b < g.n; ++b) {
        const int64_t off = b * image_stride + c * g.hw;
        const float* x_c = x + off;
        float* dx_c = dx + off;
        for (int64_t i = 0; i < g.hw; ++i) {
          const float xhat = (x_c[i] - mean) * invstd;
          dx_c[i] += k * (bn_grad<kRelu>(y + off, dy + off, i) - mean_dy - xhat * mean_dy_xhat);
        }
      }
    }
  });
}

}  // namespace

void batchnorm_forward_train(const BatchNormGeom& g, const float* x, const float* gamma,
                             const float* beta, float* y, float* save_mean, float* save_invstd,
                             float* running_mean, float* running_var) {
  forward_train<false>(g, x, gamma, beta, y, save_mean, save_invstd, running_mean, running_var);
}

void batchnorm_forward_infer(const BatchNormGeom& g, const float* x, const float* gamma,
                             const float* beta, const float* running_mean, const float* running_var,
                             float* y) {
  forward_infer<false>(g, x, gamma, beta, running_mean, running_var, y);
}

void batchnorm_backward(const BatchNormGeom& g, const float* x, const float* gamma,
                        const float* save_mean, const float* save_invstd, const float* dy,
                        float* dx, float* dgamma, float* dbeta) {
  backward<false>(g, x, nullptr, gamma, save_mean, save_invstd, dy, dx, dgamma, dbeta);
}

void batchnorm_relu_forward_train(const BatchNormGeom& g, const float* x, const float* gamma,
                                  const float* beta, float* y, float* save_mean, float* save_invstd,
                                  float* running_mean, float* running_var) {
  forward_train<true>(g, x, gamma, beta, y, save_mean, save_invstd, running_mean, running_var);
}

void batchnorm_relu_forward_infer(const BatchNormGeom& g, const float* x, const float* gamma,
                                  const float* beta, const float* running_mean,
                                  const float* running_var, float* y) {
  forward_infer<true>(g, x, gamma, beta, running_mean, running_var, y);
}

void batchnorm_relu_backward(const BatchNormGeom& g, const float* x, const float* y,
                             const float* gamma, const float* save_mean, const float* save_invstd,
                             const float* dy, float* dx, float* dgamma, float* dbeta) {
  backward<true>(g, x, y, gamma, save_mean, save_invstd, dy, dx, dgamma, dbeta);
}

}  // namespace sn::cpu
