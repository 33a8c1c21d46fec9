// The arithmetic of the CUDA backend's own kernels, one function per output element (or
// row, or channel finish), written once for the device and the host. The kernels in
// backend/cuda/*.cu are grid-stride loops over these; tests/cuda/test_cuda_kernel_math.cpp
// runs the same functions on the host against the CPU kernels (backend/cpu), so the math
// is checked on machines without a GPU, launches aside.
//
// Each function repeats the CPU kernel's operation order (Note [Gradient accumulation] in
// backend/cpu/kernels.h: input gradients are added to, parameter gradients overwritten),
// so that on the host the results are bit-identical; on the device they differ only by
// the libraries' powf/expf/log rounding.
//
// Usage:
//   const uint64_t mixed = sn::cuda::math::splitmix64(seed);
//   float y = sn::cuda::math::dropout(mixed, p, i, x[i]);
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define SN_HD __host__ __device__ inline
#else
#define SN_HD inline
#endif

namespace sn::cuda::math {

SN_HD int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
SN_HD int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
// floor(a / b) for b > 0 and any sign of a.
SN_HD int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// ------------------------------------------------------------------ NCHW indexing
// Channel of flat element i of [n, c, hw].
SN_HD int64_t channel_of(int64_t i, int64_t c, int64_t hw) { return (i / hw) % c; }
// Flat offset of the e-th element (of n * hw) of channel ch in [n, c, hw].
SN_HD int64_t channel_element(int64_t c, int64_t hw, int64_t ch, int64_t e) {
  return ((e / hw) * c + ch) * hw + e % hw;
}

// ------------------------------------------------------------------ dropout
// The same counter-based mask as backend/cpu/elementwise.cpp (Note [Dropout mask]) and
// core/hash.h's splitmix64, repeated here because those are host-only.
constexpr uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ull;

SN_HD uint64_t splitmix64(uint64_t z) {
  z += kGoldenGamma;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// uniform in [0, 1) on 24 bits; mixed_seed = splitmix64(seed).
SN_HD float dropout_uniform(uint64_t mixed_seed, int64_t i) {
  const uint64_t bits = splitmix64(mixed_seed ^ (static_cast<uint64_t>(i) * kGoldenGamma));
  return static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);
}

SN_HD float keep_scale(float p) { return p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; }

SN_HD float dropout(uint64_t mixed_seed, float p, float scale, int64_t i, float x) {
  const float v = x * scale;
  return dropout_uniform(mixed_seed, i) >= p ? v : 0.0f;
}

// ------------------------------------------------------------------ elementwise
SN_HD float relu(float x) { return x > 0.0f ? x : 0.0f; }
SN_HD float relu_grad(float x_or_y, float dy) { return x_or_y > 0.0f ? dy : 0.0f; }

// SGD with momentum and L2 weight decay, as backend/cpu/sgd.cpp.
SN_HD void sgd(float lr, float momentum, float weight_decay, float& w, float dw, float& velocity) {
  const float v = momentum * velocity + (dw + weight_decay * w);
  velocity = v;
  w -= lr * v;
}

// ------------------------------------------------------------------ pooling
// Geometry of one pooling layer (Note [Pool windows] in backend/cpu/pool.cpp).
struct Pool {
  int64_t n, c, h_in, w_in, h_out, w_out;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
};

struct Window {
  int64_t h_lo, h_hi, w_lo, w_hi;  // clipped input ranges [lo, hi)
};

SN_HD Window pool_window(const Pool& g, int64_t oh, int64_t ow) {
  const int64_t h0 = oh * g.stride_h - g.pad_h;
  const int64_t w0 = ow * g.stride_w - g.pad_w;
  return {imax(h0, 0), imin(h0 + g.kernel_h, g.h_in), imax(w0, 0), imin(w0 + g.kernel_w, g.w_in)};
}

SN_HD int64_t window_count(const Window& w) {
  return imax(0, w.h_hi - w.h_lo) * imax(0, w.w_hi - w.w_lo);
}

// Offset in the plane of the first maximum in row-major order; -1 for an empty window.
SN_HD int64_t pool_argmax(const Pool& g, const float* x_plane, const Window& win) {
  int64_t best = -1;
  for (int64_t ih = win.h_lo; ih < win.h_hi; ++ih) {
    for (int64_t iw = win.w_lo; iw < win.w_hi; ++iw) {
      const int64_t idx = ih * g.w_in + iw;
      if (best < 0 || x_plane[idx] > x_plane[best]) best = idx;
    }
  }
  return best;
}

// Output windows (oh in [lo, hi)) that contain input row ih (likewise for columns).
SN_HD void covering(int64_t i, int64_t kernel, int64_t stride, int64_t pad, int64_t out,
                    int64_t& lo, int64_t& hi) {
  lo = imax(0, floor_div(i + pad - kernel, stride) + 1);
  hi = imin(out, floor_div(i + pad, stride) + 1);
}

// y element `o` of [n * c, h_out, w_out].
SN_HD float maxpool_forward(const Pool& g, const float* x, int64_t o) {
  const int64_t plane = o / (g.h_out * g.w_out);
  const int64_t r = o % (g.h_out * g.w_out);
  const float* x_p = x + plane * g.h_in * g.w_in;
  const int64_t best = pool_argmax(g, x_p, pool_window(g, r / g.w_out, r % g.w_out));
  return best < 0 ? 0.0f : x_p[best];
}

// dx element `e` of [n * c, h_in, w_in] after adding, in the CPU's window order, the
// gradient of every window whose argmax it is.
SN_HD float maxpool_backward(const Pool& g, const float* x, const float* dy, float dx, int64_t e) {
  const int64_t plane = e / (g.h_in * g.w_in);
  const int64_t idx = e % (g.h_in * g.w_in);
  const int64_t ih = idx / g.w_in, iw = idx % g.w_in;
  const float* x_p = x + plane * g.h_in * g.w_in;
  const float* dy_p = dy + plane * g.h_out * g.w_out;
  int64_t oh_lo, oh_hi, ow_lo, ow_hi;
  covering(ih, g.kernel_h, g.stride_h, g.pad_h, g.h_out, oh_lo, oh_hi);
  covering(iw, g.kernel_w, g.stride_w, g.pad_w, g.w_out, ow_lo, ow_hi);
  float acc = dx;
  for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
    for (int64_t ow = ow_lo; ow < ow_hi; ++ow) {
      if (pool_argmax(g, x_p, pool_window(g, oh, ow)) == idx) acc += dy_p[oh * g.w_out + ow];
    }
  }
  return acc;
}

SN_HD float avgpool_forward(const Pool& g, const float* x, int64_t o) {
  const int64_t plane = o / (g.h_out * g.w_out);
  const int64_t r = o % (g.h_out * g.w_out);
  const float* x_p = x + plane * g.h_in * g.w_in;
  const Window win = pool_window(g, r / g.w_out, r % g.w_out);
  float sum = 0.0f;
  for (int64_t ih = win.h_lo; ih < win.h_hi; ++ih) {
    for (int64_t iw = win.w_lo; iw < win.w_hi; ++iw) sum += x_p[ih * g.w_in + iw];
  }
  const int64_t count = window_count(win);
  return count > 0 ? sum / static_cast<float>(count) : 0.0f;
}

SN_HD float avgpool_backward(const Pool& g, const float* dy, float dx, int64_t e) {
  const int64_t plane = e / (g.h_in * g.w_in);
  const int64_t idx = e % (g.h_in * g.w_in);
  const float* dy_p = dy + plane * g.h_out * g.w_out;
  int64_t oh_lo, oh_hi, ow_lo, ow_hi;
  covering(idx / g.w_in, g.kernel_h, g.stride_h, g.pad_h, g.h_out, oh_lo, oh_hi);
  covering(idx % g.w_in, g.kernel_w, g.stride_w, g.pad_w, g.w_out, ow_lo, ow_hi);
  float acc = dx;
  for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
    for (int64_t ow = ow_lo; ow < ow_hi; ++ow) {
      const int64_t count = window_count(pool_window(g, oh, ow));
      if (count > 0) acc += dy_p[oh * g.w_out + ow] / static_cast<float>(count);
    }
  }
  return acc;
}

SN_HD float global_avgpool_forward(const float* x, int64_t hw, int64_t plane) {
  const float* x_p = x + plane * hw;
  double sum = 0.0;
  for (int64_t i = 0; i < hw; ++i) sum += x_p[i];
  return static_cast<float>(sum / static_cast<double>(hw));
}

// ------------------------------------------------------------------ LRN
// Note [LRN window and gradient] in backend/cpu/lrn.cpp; element e of [n, c, hw].
struct Lrn {
  int64_t n, c, hw, size;
  float alpha, beta, k;
};

SN_HD float lrn_scale(const Lrn& g, const float* x_image, int64_t ch, int64_t i) {
  const int64_t pre = (g.size - 1) / 2;
  const int64_t lo = imax(0, ch - pre);
  const int64_t hi = imin(g.c, ch - pre + g.size);
  float s = 0.0f;
  for (int64_t j = lo; j < hi; ++j) {
    const float v = x_image[j * g.hw + i];
    s += v * v;
  }
  return g.k + g.alpha / static_cast<float>(g.size) * s;
}

SN_HD float lrn_forward(const Lrn& g, const float* x, int64_t e) {
  const int64_t image = g.c * g.hw;
  const float* x_b = x + (e / image) * image;
  const int64_t r = e % image;
  return x[e] * powf(lrn_scale(g, x_b, r / g.hw, r % g.hw), -g.beta);
}

SN_HD float lrn_backward(const Lrn& g, const float* x, const float* y, const float* dy, float dx,
                         int64_t e) {
  const int64_t image = g.c * g.hw;
  const int64_t base = (e / image) * image;
  const int64_t r = e % image;
  const int64_t ch = r / g.hw, i = r % g.hw;
  const int64_t pre = (g.size - 1) / 2;
  const float coeff = 2.0f * g.alpha * g.beta / static_cast<float>(g.size);
  float acc = dx + dy[e] * powf(lrn_scale(g, x + base, ch, i), -g.beta);
  // Channels j whose window holds ch: j - pre <= ch < j - pre + size.
  const int64_t lo = imax(0, ch + pre - g.size + 1);
  const int64_t hi = imin(g.c, ch + pre + 1);
  float window_sum = 0.0f;
  for (int64_t j = lo; j < hi; ++j) {
    const int64_t ej = base + j * g.hw + i;
    window_sum += dy[ej] * y[ej] / lrn_scale(g, x + base, j, i);
  }
  return acc - coeff * x[e] * window_sum;
}

// ------------------------------------------------------------------ concat
// Offset in y [n, total_c, hw] of element e of one input [n, c, hw] whose channels start
// at channel `first` of y.
SN_HD int64_t concat_offset(int64_t hw, int64_t c, int64_t first, int64_t total_c, int64_t e) {
  const int64_t b = e / (c * hw);
  const int64_t r = e % (c * hw);
  return (b * total_c + first) * hw + r;
}

// ------------------------------------------------------------------ softmax xent
// Row `r` of softmax cross-entropy (Note [Stable softmax] in backend/cpu/softmax_xent.cpp):
// writes probs, returns the row's loss in double and whether its argmax is the label.
SN_HD double softmax_xent_row(int64_t classes, const float* logits, int32_t label, float* probs,
                              int64_t r, bool& correct) {
  const float* l = logits + r * classes;
  float* p = probs + r * classes;
  int64_t argmax = 0;
  for (int64_t j = 1; j < classes; ++j) {
    if (l[j] > l[argmax]) argmax = j;
  }
  const float row_max = l[argmax];
  double sum = 0.0;
  for (int64_t j = 0; j < classes; ++j) {
    p[j] = expf(l[j] - row_max);
    sum += p[j];
  }
  const float inv_sum = static_cast<float>(1.0 / sum);
  for (int64_t j = 0; j < classes; ++j) p[j] *= inv_sum;
  correct = argmax == label;
  return log(sum) - static_cast<double>(l[label] - row_max);
}

// dlogits element e after the CPU's two steps (+= p / n, then -= 1 / n at the label).
SN_HD float softmax_xent_grad(int64_t classes, const float* probs, const int32_t* labels,
                              float inv_n, float d, int64_t e) {
  float acc = d + probs[e] * inv_n;
  if (e % classes == labels[e / classes]) acc -= inv_n;
  return acc;
}

// ------------------------------------------------------------------ fully connected
// The three cuBLAS GEMMs of a fully connected layer, C = alpha * op(A) * op(B) + beta * C
// in cuBLAS's column-major terms (a row-major [r, c] matrix is a column-major [c, r] one;
// alpha is 1). Operands: forward A = w, B = x, C = y; data gradient A = w, B = dy, C = dx
// (beta 1: accumulated); weight gradient A = x, B = dy, C = dw (beta 0: overwritten).
struct Gemm {
  bool trans_a, trans_b;
  int64_t m, n, k, lda, ldb, ldc;
  float beta;
};

struct FcGemms {
  Gemm forward, backward_data, backward_weight;
};

SN_HD FcGemms fc_gemms(int64_t rows, int64_t in, int64_t out) {
  FcGemms g;
  g.forward = {true, false, out, rows, in, in, in, out, 0.0f};          // y^T = w x^T
  g.backward_data = {false, false, in, rows, out, in, out, in, 1.0f};   // dx^T += w^T dy^T
  g.backward_weight = {false, true, in, out, rows, in, out, in, 0.0f};  // dw^T = x^T dy
  return g;
}

// ------------------------------------------------------------------ batch norm
// Per-channel finish of the training forward from the double sums (Note [BN statistics] in
// backend/cpu/batchnorm.cpp). scale/shift: y = x * scale + shift.
struct BnChannel {
  float scale, shift, save_mean, save_invstd, batch_mean, unbiased_var;
};

SN_HD BnChannel bn_train_channel(double sum, double sq_dev_sum, int64_t m, float eps, float gamma,
                                 float beta) {
  const double mean = sum / static_cast<double>(m);
  const double var = sq_dev_sum / static_cast<double>(m);
  const double invstd = 1.0 / sqrt(var + static_cast<double>(eps));
  BnChannel r;
  r.scale = static_cast<float>(gamma * invstd);
  r.shift = static_cast<float>(beta - mean * gamma * invstd);
  r.save_mean = static_cast<float>(mean);
  r.save_invstd = static_cast<float>(invstd);
  r.batch_mean = static_cast<float>(mean);
  r.unbiased_var = static_cast<float>(m > 1 ? sq_dev_sum / static_cast<double>(m - 1) : var);
  return r;
}

SN_HD float running_update(float running, float momentum, float batch_value) {
  return (1.0f - momentum) * running + momentum * batch_value;
}

SN_HD void bn_infer_channel(float gamma, float beta, float running_mean, float running_var,
                            float eps, float& scale, float& shift) {
  const double invstd = 1.0 / sqrt(static_cast<double>(running_var) + eps);
  scale = static_cast<float>(gamma * invstd);
  shift = static_cast<float>(beta - running_mean * gamma * invstd);
}

// dx element given the channel's saved statistics and its mean dy and mean dy * xhat.
SN_HD float bn_dx(float x, float dy, float dx, float gamma, float mean, float invstd, float mean_dy,
                  float mean_dy_xhat) {
  const float k = gamma * invstd;
  const float xhat = (x - mean) * invstd;
  return dx + k * (dy - mean_dy - xhat * mean_dy_xhat);
}

}  // namespace sn::cuda::math
