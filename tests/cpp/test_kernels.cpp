// Checks every CPU kernel in backend/cpu/kernels.h: forward against naive references
// written independently here (double precision, direct loops), backward against central
// finite differences of L = sum(y * r) for a random r, and the buffer contracts
// (input gradients accumulate, parameter gradients and outputs are overwritten).
//
// Standalone: no test framework. Prints each failed check and exits non-zero on failure.
//   ./test_kernels          run everything
//   ./test_kernels conv     run only the groups whose name contains "conv"
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/kernels.h"
#include "core/errors.h"

namespace {

using sn::cpu::ConvGeom;

// ------------------------------------------------------------------ harness
int64_t g_checks = 0;
int64_t g_failures = 0;

void check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  }
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Element-wise |got - want| <= rtol * |want| + atol; reports the worst element.
void check_close(const std::string& what, const std::vector<float>& got,
                 const std::vector<double>& want, double rtol, double atol) {
  if (got.size() != want.size()) {
    check(false,
          what + ": size " + std::to_string(got.size()) + " vs " + std::to_string(want.size()));
    return;
  }
  double worst_excess = 0.0;
  size_t worst = 0;
  bool ok = true;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    const double tol = rtol * std::fabs(want[i]) + atol;
    // `!(err <= tol)` also catches NaN.
    if (!(err <= tol)) {
      const double excess = std::isnan(err) ? std::numeric_limits<double>::infinity() : err - tol;
      if (ok || excess > worst_excess) {
        worst_excess = excess;
        worst = i;
      }
      ok = false;
    }
  }
  std::string detail;
  if (!ok) {
    detail = ": element " + std::to_string(worst) + " got " + std::to_string(got[worst]) +
             " want " + std::to_string(want[worst]);
  }
  check(ok, what + detail);
}

// Gradient tolerance: relative 1e-2 plus an absolute floor scaled to the gradient's size,
// which absorbs float rounding in the finite differences of near-zero entries.
void check_grad(const std::string& what, const std::vector<float>& analytic,
                const std::vector<double>& numeric) {
  double max_abs = 1.0;
  for (double v : numeric) max_abs = std::max(max_abs, std::fabs(v));
  check_close(what, analytic, numeric, 1e-2, 2e-3 * max_abs);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  std::vector<float> uniform(size_t count, float lo = -1.0f, float hi = 1.0f) {
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(count);
    for (float& e : v) e = dist(engine_);
    return v;
  }
  // Uniform in +-[lo, hi]: keeps values away from a kink at zero.
  std::vector<float> away_from_zero(size_t count, float lo, float hi) {
    std::vector<float> v = uniform(count, lo, hi);
    std::bernoulli_distribution sign(0.5);
    for (float& e : v) e = sign(engine_) ? e : -e;
    return v;
  }
  int64_t integer(int64_t lo, int64_t hi) {  // inclusive
    return std::uniform_int_distribution<int64_t>(lo, hi)(engine_);
  }
  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
};

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// Central differences of `loss` with respect to every element of v (perturbed in place
// and restored).
std::vector<double> numeric_grad(std::vector<float>& v, const std::function<double()>& loss,
                                 float eps = 1e-2f) {
  std::vector<double> grad(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const float saved = v[i];
    v[i] = saved + eps;
    const double plus = loss();
    v[i] = saved - eps;
    const double minus = loss();
    v[i] = saved;
    grad[i] = (plus - minus) / (2.0 * static_cast<double>(eps));
  }
  return grad;
}

std::vector<float> minus_constant(std::vector<float> v, float c) {
  for (float& e : v) e -= c;
  return v;
}

size_t sz(int64_t v) { return static_cast<size_t>(v); }

// Input gradients are pre-filled with this to check that backward adds to them.
constexpr float kPrefill = 0.5f;

// ------------------------------------------------------------------ conv2d
int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

std::vector<double> conv_reference(const ConvGeom& g, const std::vector<float>& x,
                                   const std::vector<float>& w, const float* bias) {
  std::vector<double> y(sz(g.n * g.c_out * g.h_out * g.w_out));
  const int64_t cin_g = g.c_in / g.groups, cout_g = g.c_out / g.groups;
  for (int64_t b = 0; b < g.n; ++b)
    for (int64_t co = 0; co < g.c_out; ++co)
      for (int64_t oh = 0; oh < g.h_out; ++oh)
        for (int64_t ow = 0; ow < g.w_out; ++ow) {
          double s = bias != nullptr ? bias[co] : 0.0;
          const int64_t grp = co / cout_g;
          for (int64_t ci = 0; ci < cin_g; ++ci)
            for (int64_t ki = 0; ki < g.kernel_h; ++ki)
              for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
                const int64_t ih = oh * g.stride_h - g.pad_h + ki * g.dilation_h;
                const int64_t iw = ow * g.stride_w - g.pad_w + kj * g.dilation_w;
                if (ih < 0 || ih >= g.h_in || iw < 0 || iw >= g.w_in) continue;
                const double xv =
                    x[sz(((b * g.c_in + grp * cin_g + ci) * g.h_in + ih) * g.w_in + iw)];
                const double wv = w[sz(((co * cin_g + ci) * g.kernel_h + ki) * g.kernel_w + kj)];
                s += xv * wv;
              }
          y[sz(((b * g.c_out + co) * g.h_out + oh) * g.w_out + ow)] = s;
        }
  return y;
}

// Slots in the conv workspace (Note [Conv slots]): more than most test thread counts.
constexpr int kConvSlots = 8;

struct ConvCase {
  std::string name;
  int64_t n, c_in, h_in, w_in, c_out, kernel_h, kernel_w;
  int64_t stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups;
  bool bias, dx;
};

void test_conv_case(const ConvCase& cc, Rng& rng) {
  ConvGeom g;
  g.n = cc.n;
  g.c_in = cc.c_in;
  g.h_in = cc.h_in;
  g.w_in = cc.w_in;
  g.c_out = cc.c_out;
  g.kernel_h = cc.kernel_h;
  g.kernel_w = cc.kernel_w;
  g.stride_h = cc.stride_h;
  g.stride_w = cc.stride_w;
  g.pad_h = cc.pad_h;
  g.pad_w = cc.pad_w;
  g.dilation_h = cc.dilation_h;
  g.dilation_w = cc.dilation_w;
  g.groups = cc.groups;
  g.h_out = conv_out(g.h_in, g.kernel_h, g.stride_h, g.pad_h, g.dilation_h);
  g.w_out = conv_out(g.w_in, g.kernel_w, g.stride_w, g.pad_w, g.dilation_w);
  const std::string tag = "conv2d[" + cc.name + "]";

  std::vector<float> x = rng.uniform(sz(g.n * g.c_in * g.h_in * g.w_in));
  std::vector<float> w = rng.uniform(sz(g.c_out * (g.c_in / g.groups) * g.kernel_h * g.kernel_w));
  std::vector<float> bias = rng.uniform(sz(g.c_out));
  const float* bias_ptr = cc.bias ? bias.data() : nullptr;
  const size_t y_count = sz(g.n * g.c_out * g.h_out * g.w_out);
  // Exactly the advertised size, so ASan catches a kernel that writes past it.
  std::vector<float> ws(sz(sn::cpu::conv2d_workspace_floats(g, kConvSlots)));

  std::vector<float> y(y_count, kNaN);  // NaN: forward must overwrite every output
  sn::cpu::conv2d_forward(g, x.data(), w.data(), bias_ptr, y.data(), ws.data(), kConvSlots);
  check_close(tag + " forward", y, conv_reference(g, x, w, bias_ptr), 1e-4, 1e-4);

  const std::vector<float> r = rng.uniform(y_count);
  std::vector<float> dx(x.size(), kPrefill);
  std::vector<float> dw(w.size(), kNaN);  // NaN: parameter gradients are overwritten
  std::vector<float> dbias(bias.size(), kNaN);
  sn::cpu::conv2d_backward(g, x.data(), w.data(), r.data(), cc.dx ? dx.data() : nullptr, dw.data(),
                           cc.bias ? dbias.data() : nullptr, ws.data(), kConvSlots);

  std::vector<float> y_tmp(y_count);
  auto loss = [&] {
    sn::cpu::conv2d_forward(g, x.data(), w.data(), bias_ptr, y_tmp.data(), ws.data(), kConvSlots);
    return dot(y_tmp, r);
  };
  if (cc.dx) {
    check_grad(tag + " dx (accumulated)", minus_constant(dx, kPrefill), numeric_grad(x, loss));
  } else {
    check(dx == std::vector<float>(x.size(), kPrefill), tag + " dx=nullptr leaves dx alone");
  }
  check_grad(tag + " dw", dw, numeric_grad(w, loss));
  if (cc.bias) check_grad(tag + " dbias", dbias, numeric_grad(bias, loss));
}

void test_conv() {
  Rng rng(1);
  const std::vector<ConvCase> cases = {
      // name                     n cin  h  w cout kh kw sh sw ph pw dh dw grp bias dx
      {"3x3 s1 p1", 2, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, true},
      {"3x3 s2 p1", 2, 3, 7, 6, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, true, true},
      {"3x2 non-square s2x1 p1x0", 2, 2, 7, 6, 3, 3, 2, 2, 1, 1, 0, 1, 1, 1, true, true},
      {"dilation 2 p2", 1, 3, 7, 7, 2, 3, 3, 1, 1, 2, 2, 2, 2, 1, true, true},
      {"dilation 2x1 stride 1x2", 2, 2, 8, 7, 3, 2, 3, 1, 2, 1, 1, 2, 1, 1, true, true},
      {"groups 2", 2, 4, 5, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, true, true},
      {"groups 2 s2 p1 d2", 2, 4, 8, 7, 4, 3, 2, 2, 2, 1, 1, 2, 2, 2, true, true},
      {"depthwise", 2, 4, 6, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4, true, true},
      {"depthwise x2 s2", 2, 3, 7, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, 3, true, true},
      {"1x1 (no im2col)", 2, 5, 4, 3, 6, 1, 1, 1, 1, 0, 0, 1, 1, 1, true, true},
      {"1x1 groups 2 (no im2col)", 2, 4, 3, 3, 6, 1, 1, 1, 1, 0, 0, 1, 1, 2, true, true},
      {"1x1 s2", 2, 3, 5, 5, 4, 1, 1, 2, 2, 0, 0, 1, 1, 1, true, true},
      {"1x1 p1", 1, 2, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, true},
      {"no bias, no dx", 2, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, false, false},
      {"1x1 no bias, no dx", 2, 3, 4, 4, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1, false, false},
      {"kernel wider than input", 1, 2, 3, 2, 2, 3, 5, 1, 1, 1, 2, 1, 1, 1, true, true},
      {"large pad", 1, 2, 3, 3, 2, 2, 2, 1, 1, 2, 1, 1, 1, 1, true, true},
      {"5x5 s3 p2", 2, 2, 9, 8, 2, 5, 5, 3, 3, 2, 2, 1, 1, 1, true, true},
  };
  for (const ConvCase& cc : cases) test_conv_case(cc, rng);

  // A larger forward-only case, so BLAS takes its blocked paths.
  ConvGeom g;
  g.n = 2;
  g.c_in = 32;
  g.h_in = g.w_in = 14;
  g.c_out = 48;
  g.kernel_h = g.kernel_w = 3;
  g.pad_h = g.pad_w = 1;
  g.h_out = g.w_out = 14;
  std::vector<float> x = rng.uniform(sz(g.n * g.c_in * g.h_in * g.w_in));
  std::vector<float> w = rng.uniform(sz(g.c_out * g.c_in * 9));
  std::vector<float> y(sz(g.n * g.c_out * g.h_out * g.w_out));
  std::vector<float> ws(sz(sn::cpu::conv2d_workspace_floats(g, 2)));
  sn::cpu::conv2d_forward(g, x.data(), w.data(), nullptr, y.data(), ws.data(), 2);
  check_close("conv2d[large] forward", y, conv_reference(g, x, w, nullptr), 1e-4, 1e-4);

  // Workspace (Note [Conv slots]): a 1x1 over 16x16 images reads x itself; strided, its
  // 8x8 outputs go in blocks of 4 whole images (256 columns): im2col rows K = 4 and the
  // gathered output rows c_out/groups = 1, per slot.
  ConvGeom pw;
  pw.n = 4;
  pw.c_in = 8;
  pw.c_out = 2;
  pw.groups = 2;
  pw.h_in = pw.w_in = pw.h_out = pw.w_out = 16;
  check(sn::cpu::conv2d_workspace_floats(pw, 3) == 0, "conv2d 1x1 s1 p0 needs no workspace");
  pw.stride_h = pw.stride_w = 2;
  pw.h_out = pw.w_out = 8;
  check(sn::cpu::conv2d_workspace_floats(pw, 3) == 3 * (4 + 1) * 256,
        "conv2d 1x1 s2 workspace = slots * (K + c_out/groups) * 256");
}

// ---------------------------------------------------------------------- fc
void test_fc_case(int64_t n, int64_t in, int64_t out, bool with_bias, bool with_dx, Rng& rng) {
  const std::string tag = "fc[" + std::to_string(n) + "x" + std::to_string(in) + "->" +
                          std::to_string(out) + (with_bias ? "" : " no bias") +
                          (with_dx ? "" : " no dx") + "]";
  std::vector<float> x = rng.uniform(sz(n * in));
  std::vector<float> w = rng.uniform(sz(out * in));
  std::vector<float> bias = rng.uniform(sz(out));
  const float* bias_ptr = with_bias ? bias.data() : nullptr;

  std::vector<double> want(sz(n * out));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < out; ++o) {
      double s = with_bias ? bias[sz(o)] : 0.0;
      for (int64_t k = 0; k < in; ++k)
        s += static_cast<double>(x[sz(i * in + k)]) * w[sz(o * in + k)];
      want[sz(i * out + o)] = s;
    }
  std::vector<float> y(sz(n * out), kNaN);
  sn::cpu::fc_forward(n, in, out, x.data(), w.data(), bias_ptr, y.data());
  check_close(tag + " forward", y, want, 1e-4, 1e-4);

  const std::vector<float> r = rng.uniform(y.size());
  std::vector<float> dx(x.size(), kPrefill), dw(w.size(), kNaN), dbias(bias.size(), kNaN);
  sn::cpu::fc_backward(n, in, out, x.data(), w.data(), r.data(), with_dx ? dx.data() : nullptr,
                       dw.data(), with_bias ? dbias.data() : nullptr);
  auto loss = [&] {
    std::vector<float> y_tmp(y.size());
    sn::cpu::fc_forward(n, in, out, x.data(), w.data(), bias_ptr, y_tmp.data());
    return dot(y_tmp, r);
  };
  if (with_dx) {
    check_grad(tag + " dx (accumulated)", minus_constant(dx, kPrefill), numeric_grad(x, loss));
  } else {
    check(dx == std::vector<float>(x.size(), kPrefill), tag + " dx=nullptr leaves dx alone");
  }
  check_grad(tag + " dw", dw, numeric_grad(w, loss));
  if (with_bias) check_grad(tag + " dbias", dbias, numeric_grad(bias, loss));
}

void test_fc() {
  Rng rng(2);
  test_fc_case(3, 5, 4, true, true, rng);
  test_fc_case(1, 7, 2, true, true, rng);
  test_fc_case(4, 6, 3, false, false, rng);
  test_fc_case(5, 1, 1, true, true, rng);
}

// -------------------------------------------------------------- elementwise
void test_relu() {
  Rng rng(3);
  const int64_t count = 37;
  std::vector<float> x = rng.away_from_zero(sz(count), 0.05f, 1.0f);
  std::vector<double> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = x[i] > 0 ? x[i] : 0.0;
  std::vector<float> y(x.size(), kNaN);
  sn::cpu::relu_forward(count, x.data(), y.data());
  check_close("relu forward", y, want, 0, 0);

  const std::vector<float> r = rng.uniform(x.size());
  std::vector<float> dx(x.size(), kPrefill);
  sn::cpu::relu_backward(count, x.data(), r.data(), dx.data());
  auto loss = [&] {
    std::vector<float> y_tmp(x.size());
    sn::cpu::relu_forward(count, x.data(), y_tmp.data());
    return dot(y_tmp, r);
  };
  check_grad("relu dx (accumulated)", minus_constant(dx, kPrefill), numeric_grad(x, loss));

  // In place (y aliases x) is how an executor may run it.
  std::vector<float> inplace = x;
  sn::cpu::relu_forward(count, inplace.data(), inplace.data());
  check_close("relu forward in place", inplace, want, 0, 0);
}

void test_add_accumulate() {
  Rng rng(4);
  const int64_t count = 29;
  const std::vector<float> a = rng.uniform(sz(count)), b = rng.uniform(sz(count));
  std::vector<float> y(sz(count), kNaN);
  sn::cpu::add_forward(count, a.data(), b.data(), y.data());
  std::vector<double> want(sz(count));
  for (size_t i = 0; i < want.size(); ++i) want[i] = static_cast<double>(a[i]) + b[i];
  check_close("add forward", y, want, 1e-6, 1e-6);

  std::vector<float> dst(sz(count), kPrefill);
  sn::cpu::accumulate(count, a.data(), dst.data());
  sn::cpu::accumulate(count, b.data(), dst.data());
  for (size_t i = 0; i < want.size(); ++i) want[i] += kPrefill;
  check_close("accumulate adds to dst", dst, want, 1e-6, 1e-6);
}

// ---------------------------------------------------- softmax cross-entropy
void test_softmax_xent() {
  Rng rng(5);
  const int64_t n = 6, classes = 5;
  std::vector<float> logits = rng.uniform(sz(n * classes), -3.0f, 3.0f);
  std::vector<int32_t> labels(sz(n));
  for (auto& l : labels) l = static_cast<int32_t>(rng.integer(0, classes - 1));
  // Make rows 0 and 1 correct and row 2 wrong, whatever the random draw was.
  logits[sz(0 * classes + labels[0])] = 10.0f;
  logits[sz(1 * classes + labels[1])] = 9.0f;
  logits[sz(2 * classes + (labels[2] + 1) % classes)] = 8.0f;

  double want_loss = 0.0;
  int64_t want_correct = 0;
  std::vector<double> want_probs(logits.size());
  for (int64_t i = 0; i < n; ++i) {
    double z = 0.0;
    int64_t argmax = 0;
    for (int64_t j = 0; j < classes; ++j) {
      z += std::exp(static_cast<double>(logits[sz(i * classes + j)]));
      if (logits[sz(i * classes + j)] > logits[sz(i * classes + argmax)]) argmax = j;
    }
    for (int64_t j = 0; j < classes; ++j)
      want_probs[sz(i * classes + j)] =
          std::exp(static_cast<double>(logits[sz(i * classes + j)])) / z;
    want_loss -= std::log(want_probs[sz(i * classes + labels[sz(i)])]);
    if (argmax == labels[sz(i)]) ++want_correct;
  }
  want_loss /= static_cast<double>(n);

  std::vector<float> probs(logits.size(), kNaN);
  int64_t correct = -1;
  const float loss_value = sn::cpu::softmax_xent_forward(n, classes, logits.data(), labels.data(),
                                                         probs.data(), &correct);
  check(std::fabs(loss_value - want_loss) <= 1e-5 * (1.0 + want_loss),
        "softmax_xent loss " + std::to_string(loss_value) + " want " + std::to_string(want_loss));
  check(correct == want_correct, "softmax_xent correct " + std::to_string(correct) + " want " +
                                     std::to_string(want_correct));
  check(want_correct >= 2, "softmax_xent test has correct rows");
  check_close("softmax_xent probs", probs, want_probs, 1e-5, 1e-7);
  // nullptr for `correct` is allowed.
  sn::cpu::softmax_xent_forward(n, classes, logits.data(), labels.data(), probs.data(), nullptr);

  std::vector<float> dlogits(logits.size(), kPrefill);
  sn::cpu::softmax_xent_backward(n, classes, probs.data(), labels.data(), dlogits.data());
  auto loss = [&] {
    std::vector<float> p(logits.size());
    return static_cast<double>(
        sn::cpu::softmax_xent_forward(n, classes, logits.data(), labels.data(), p.data(), nullptr));
  };
  check_grad("softmax_xent dlogits (accumulated)", minus_constant(dlogits, kPrefill),
             numeric_grad(logits, loss, 1e-2f));

  // Stability: huge logits neither overflow nor produce NaN; an underflowed label
  // probability still gives a finite loss.
  const std::vector<float> big = {1000.0f, 0.0f, -1000.0f, 1000.0f, 999.0f, 998.0f};
  const std::vector<int32_t> big_labels = {2, 0};
  std::vector<float> big_probs(big.size());
  const float big_loss =
      sn::cpu::softmax_xent_forward(2, 3, big.data(), big_labels.data(), big_probs.data(), nullptr);
  // Row 0 loses log(1 + e^-1000 + e^-2000) + 2000, row 1 loses log(1 + e^-1 + e^-2).
  const double z1 = 1.0 + std::exp(-1.0) + std::exp(-2.0);
  const double want_big = (2000.0 + std::log(z1)) / 2.0;
  check(std::isfinite(big_loss) && std::fabs(big_loss - want_big) < 1e-3,
        "softmax_xent stable for large logits: " + std::to_string(big_loss) + " want " +
            std::to_string(want_big));
  bool finite = true;
  for (float p : big_probs) finite = finite && std::isfinite(p);
  check(finite, "softmax_xent probs finite for large logits");
}

// --------------------------------------------------------------------- SGD
// all_finite: NaN and both infinities anywhere (first, last, across the 4096-float
// chunks), on 1 and 3 threads; large, tiny and denormal values are finite.
void test_all_finite() {
  const int saved = sn::cpu::num_threads();
  const float bad_values[] = {kNaN, std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity()};
  for (int t : {1, 3}) {
    sn::cpu::set_num_threads(t);
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{4096}, int64_t{100003}}) {
      std::vector<float> v(sz(n), 1.5f);
      v[0] = std::numeric_limits<float>::max();
      v[sz(n - 1)] = std::numeric_limits<float>::denorm_min();
      if (n > 2) v[1] = -std::numeric_limits<float>::max();
      const std::string tag = "all_finite[n=" + std::to_string(n) + ", " + std::to_string(t) + "t]";
      check(sn::cpu::all_finite(n, v.data()), tag + " finite values");
      for (int64_t at : {int64_t{0}, n / 2, n - 1, std::min<int64_t>(n - 1, 4096)}) {
        for (float bad : bad_values) {
          std::vector<float> w = v;
          w[sz(at)] = bad;
          check(!sn::cpu::all_finite(n, w.data()),
                tag + " finds " + std::to_string(bad) + " at " + std::to_string(at));
        }
      }
    }
  }
  check(sn::cpu::all_finite(0, nullptr), "all_finite of nothing is true");
  sn::cpu::set_num_threads(saved);
}

// Note [Denormals]: kernels treat subnormal floats as 0 on every thread, and the calling
// thread keeps its own setting afterwards.
void test_denormals() {
  const int saved = sn::cpu::num_threads();
  const float tiny = std::numeric_limits<float>::denorm_min();
  for (int t : {1, 3}) {
    sn::cpu::set_num_threads(t);
    std::vector<float> x(100000, tiny), y(x.size(), 1.0f);
    sn::cpu::relu_forward(static_cast<int64_t>(x.size()), x.data(), y.data());
    check(std::all_of(y.begin(), y.end(), [](float v) { return v == 0.0f; }),
          "relu of a subnormal is 0 inside the kernel (" + std::to_string(t) + " threads)");
    volatile float a = tiny, one = 1.0f;
    check(a * one == tiny, "the calling thread still computes with subnormals afterwards");
  }
  sn::cpu::set_num_threads(saved);
}

void test_sgd() {
  Rng rng(6);
  const int64_t count = 11;
  const float lr = 0.1f, momentum = 0.9f, wd = 0.01f;
  std::vector<float> w = rng.uniform(sz(count)), v = rng.uniform(sz(count));
  std::vector<double> w_ref(w.begin(), w.end()), v_ref(v.begin(), v.end());
  for (int step = 0; step < 3; ++step) {
    const std::vector<float> dw = rng.uniform(sz(count));
    sn::cpu::sgd_update(count, lr, momentum, wd, w.data(), dw.data(), v.data());
    for (size_t i = 0; i < w_ref.size(); ++i) {
      v_ref[i] = momentum * v_ref[i] + (dw[i] + wd * w_ref[i]);
      w_ref[i] -= lr * v_ref[i];
    }
  }
  check_close("sgd_update velocity", v, v_ref, 1e-5, 1e-6);
  check_close("sgd_update weights", w, w_ref, 1e-5, 1e-6);
}

// ----------------------------------------------------------------- pooling
struct PoolCase {
  std::string name;
  int64_t n, c, h_in, w_in, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
};

sn::cpu::PoolGeom pool_geom(const PoolCase& pc) {
  sn::cpu::PoolGeom g;
  g.n = pc.n;
  g.c = pc.c;
  g.h_in = pc.h_in;
  g.w_in = pc.w_in;
  g.kernel_h = pc.kernel_h;
  g.kernel_w = pc.kernel_w;
  g.stride_h = pc.stride_h;
  g.stride_w = pc.stride_w;
  g.pad_h = pc.pad_h;
  g.pad_w = pc.pad_w;
  g.h_out = (g.h_in + 2 * g.pad_h - g.kernel_h) / g.stride_h + 1;
  g.w_out = (g.w_in + 2 * g.pad_w - g.kernel_w) / g.stride_w + 1;
  return g;
}

// Reference max (is_max) or average over the in-bounds part of each window.
std::vector<double> pool_reference(const sn::cpu::PoolGeom& g, const std::vector<float>& x,
                                   bool is_max) {
  std::vector<double> y(sz(g.n * g.c * g.h_out * g.w_out));
  for (int64_t p = 0; p < g.n * g.c; ++p)
    for (int64_t oh = 0; oh < g.h_out; ++oh)
      for (int64_t ow = 0; ow < g.w_out; ++ow) {
        double acc = is_max ? -std::numeric_limits<double>::infinity() : 0.0;
        int64_t count = 0;
        for (int64_t ki = 0; ki < g.kernel_h; ++ki)
          for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
            const int64_t ih = oh * g.stride_h - g.pad_h + ki;
            const int64_t iw = ow * g.stride_w - g.pad_w + kj;
            if (ih < 0 || ih >= g.h_in || iw < 0 || iw >= g.w_in) continue;
            const double v = x[sz((p * g.h_in + ih) * g.w_in + iw)];
            acc = is_max ? std::max(acc, v) : acc + v;
            ++count;
          }
        y[sz((p * g.h_out + oh) * g.w_out + ow)] = is_max ? acc : acc / static_cast<double>(count);
      }
  return y;
}

void test_pool_case(const PoolCase& pc, Rng& rng) {
  const sn::cpu::PoolGeom g = pool_geom(pc);
  const size_t x_count = sz(g.n * g.c * g.h_in * g.w_in);
  const size_t y_count = sz(g.n * g.c * g.h_out * g.w_out);
  // Distinct values 0.05 apart: a finite-difference step of 0.01 never changes an argmax.
  std::vector<float> x(x_count);
  for (size_t i = 0; i < x_count; ++i) x[i] = 0.05f * static_cast<float>(i) - 1.0f;
  std::shuffle(x.begin(), x.end(), rng.engine());
  const std::vector<float> r = rng.uniform(y_count);

  for (bool is_max : {true, false}) {
    const std::string tag = std::string(is_max ? "maxpool[" : "avgpool[") + pc.name + "]";
    auto forward = [&](std::vector<float>& out) {
      if (is_max) {
        sn::cpu::maxpool_forward(g, x.data(), out.data());
      } else {
        sn::cpu::avgpool_forward(g, x.data(), out.data());
      }
    };
    std::vector<float> y(y_count, kNaN);
    forward(y);
    check_close(tag + " forward", y, pool_reference(g, x, is_max), 1e-5, 1e-6);

    std::vector<float> dx(x_count, kPrefill);
    if (is_max) {
      sn::cpu::maxpool_backward(g, x.data(), r.data(), dx.data());
    } else {
      sn::cpu::avgpool_backward(g, r.data(), dx.data());
    }
    auto loss = [&] {
      std::vector<float> y_tmp(y_count);
      forward(y_tmp);
      return dot(y_tmp, r);
    };
    check_grad(tag + " dx (accumulated)", minus_constant(dx, kPrefill), numeric_grad(x, loss));
  }
}

void test_pool() {
  Rng rng(7);
  const std::vector<PoolCase> cases = {
      // name                      n  c  h  w kh kw sh sw ph pw
      {"2x2 s2", 2, 3, 4, 6, 2, 2, 2, 2, 0, 0},
      {"3x3 s2 p1 overlapping", 2, 2, 7, 6, 3, 3, 2, 2, 1, 1},
      {"3x3 s1 p1", 1, 2, 5, 5, 3, 3, 1, 1, 1, 1},
      {"3x3 s2 odd input", 1, 3, 7, 7, 3, 3, 2, 2, 0, 0},
      {"3x2 s2x1 p1x0", 2, 2, 6, 5, 3, 2, 2, 1, 1, 0},
      {"2x3 s1x3 p1x1", 1, 2, 4, 7, 2, 3, 1, 3, 1, 1},
  };
  for (const PoolCase& pc : cases) test_pool_case(pc, rng);

  // Padding is left out of the average's count: a corner of a 3x3 p1 window over ones
  // averages 4 ones, not 4/9.
  const sn::cpu::PoolGeom g = pool_geom({"ones", 1, 1, 3, 3, 3, 3, 1, 1, 1, 1});
  const std::vector<float> ones(9, 1.0f);
  std::vector<float> y(9);
  sn::cpu::avgpool_forward(g, ones.data(), y.data());
  check_close("avgpool excludes padding from the count", y, std::vector<double>(9, 1.0), 1e-6, 0);

  // Ties: the first maximum in row-major window order takes the whole gradient. Over a
  // constant 3x3 plane with 3x3 p1 windows, window (oh, ow) starts at input
  // (max(oh - 1, 0), max(ow - 1, 0)).
  const std::vector<float> dy(9, 1.0f);
  std::vector<float> dx(9, 0.0f);
  sn::cpu::maxpool_backward(g, ones.data(), dy.data(), dx.data());
  const std::vector<double> want_dx = {4, 2, 0, 2, 1, 0, 0, 0, 0};
  check_close("maxpool ties: first maximum wins", dx, want_dx, 0, 0);
}

void test_global_avgpool() {
  Rng rng(8);
  const int64_t n = 2, c = 3, hw = 5;
  std::vector<float> x = rng.uniform(sz(n * c * hw));
  std::vector<double> want(sz(n * c));
  for (int64_t p = 0; p < n * c; ++p) {
    for (int64_t i = 0; i < hw; ++i) want[sz(p)] += x[sz(p * hw + i)];
    want[sz(p)] /= static_cast<double>(hw);
  }
  std::vector<float> y(sz(n * c), kNaN);
  sn::cpu::global_avgpool_forward(n, c, hw, x.data(), y.data());
  check_close("global_avgpool forward", y, want, 1e-6, 1e-7);

  const std::vector<float> r = rng.uniform(y.size());
  std::vector<float> dx(x.size(), kPrefill);
  sn::cpu::global_avgpool_backward(n, c, hw, r.data(), dx.data());
  auto loss = [&] {
    std::vector<float> y_tmp(y.size());
    sn::cpu::global_avgpool_forward(n, c, hw, x.data(), y_tmp.data());
    return dot(y_tmp, r);
  };
  check_grad("global_avgpool dx (accumulated)", minus_constant(dx, kPrefill),
             numeric_grad(x, loss));
}

// --------------------------------------------------------------- batch norm
void test_batchnorm_case(int64_t n, int64_t c, int64_t hw, Rng& rng) {
  const std::string tag =
      "batchnorm[" + std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(hw) + "]";
  sn::cpu::BatchNormGeom g;
  g.n = n;
  g.c = c;
  g.hw = hw;
  g.eps = 1e-3f;
  g.momentum = 0.2f;
  const int64_t m = n * hw;
  std::vector<float> x = rng.uniform(sz(n * c * hw), -2.0f, 3.0f);
  std::vector<float> gamma = rng.uniform(sz(c), 0.5f, 1.5f);
  std::vector<float> beta = rng.uniform(sz(c));
  const std::vector<float> rm0 = rng.uniform(sz(c));
  const std::vector<float> rv0 = rng.uniform(sz(c), 0.5f, 2.0f);

  // Reference statistics and output in double.
  std::vector<double> mean(sz(c)), var(sz(c)), want_y(x.size());
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < hw; ++i) mean[sz(ch)] += x[sz((b * c + ch) * hw + i)];
    mean[sz(ch)] /= static_cast<double>(m);
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < hw; ++i) {
        const double d = x[sz((b * c + ch) * hw + i)] - mean[sz(ch)];
        var[sz(ch)] += d * d;
      }
    var[sz(ch)] /= static_cast<double>(m);
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < hw; ++i) {
        const size_t k = sz((b * c + ch) * hw + i);
        want_y[k] =
            gamma[sz(ch)] * (x[k] - mean[sz(ch)]) / std::sqrt(var[sz(ch)] + g.eps) + beta[sz(ch)];
      }
  }
  std::vector<double> want_invstd(sz(c)), want_rm(sz(c)), want_rv(sz(c));
  for (size_t ch = 0; ch < sz(c); ++ch) {
    want_invstd[ch] = 1.0 / std::sqrt(var[ch] + g.eps);
    const double unbiased =
        m > 1 ? var[ch] * static_cast<double>(m) / static_cast<double>(m - 1) : var[ch];
    want_rm[ch] = (1.0 - g.momentum) * rm0[ch] + g.momentum * mean[ch];
    want_rv[ch] = (1.0 - g.momentum) * rv0[ch] + g.momentum * unbiased;
  }

  std::vector<float> y(x.size(), kNaN), save_mean(sz(c), kNaN), save_invstd(sz(c), kNaN);
  std::vector<float> rm = rm0, rv = rv0;
  sn::cpu::batchnorm_forward_train(g, x.data(), gamma.data(), beta.data(), y.data(),
                                   save_mean.data(), save_invstd.data(), rm.data(), rv.data());
  check_close(tag + " train forward", y, want_y, 1e-4, 1e-4);
  check_close(tag + " save_mean", save_mean, mean, 1e-5, 1e-6);
  check_close(tag + " save_invstd", save_invstd, want_invstd, 1e-5, 1e-6);
  check_close(tag + " running_mean update", rm, want_rm, 1e-5, 1e-6);
  check_close(tag + " running_var update (unbiased)", rv, want_rv, 1e-5, 1e-6);

  // A recomputed forward passes no running statistics and gives the same output bits.
  std::vector<float> y_again(x.size(), kNaN);
  sn::cpu::batchnorm_forward_train(g, x.data(), gamma.data(), beta.data(), y_again.data(),
                                   save_mean.data(), save_invstd.data(), nullptr, nullptr);
  check(y_again == y, tag + " recompute without running stats is bit-exact");

  // Inference uses the running statistics.
  std::vector<double> want_infer(x.size());
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < hw; ++i) {
        const size_t k = sz((b * c + ch) * hw + i);
        want_infer[k] =
            gamma[sz(ch)] * (x[k] - rm[sz(ch)]) / std::sqrt(rv[sz(ch)] + g.eps) + beta[sz(ch)];
      }
  std::vector<float> y_infer(x.size(), kNaN);
  sn::cpu::batchnorm_forward_infer(g, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(),
                                   y_infer.data());
  check_close(tag + " infer forward", y_infer, want_infer, 1e-4, 1e-4);

  // Backward through the batch statistics.
  const std::vector<float> r = rng.uniform(x.size());
  std::vector<float> dx(x.size(), kPrefill), dgamma(sz(c), kNaN), dbeta(sz(c), kNaN);
  sn::cpu::batchnorm_backward(g, x.data(), gamma.data(), save_mean.data(), save_invstd.data(),
                              r.data(), dx.data(), dgamma.data(), dbeta.data());
  auto loss = [&] {
    std::vector<float> y_tmp(x.size()), sm(sz(c)), si(sz(c));
    sn::cpu::batchnorm_forward_train(g, x.data(), gamma.data(), beta.data(), y_tmp.data(),
                                     sm.data(), si.data(), nullptr, nullptr);
    return dot(y_tmp, r);
  };
  check_grad(tag + " dx (accumulated)", minus_constant(dx, kPrefill), numeric_grad(x, loss, 1e-3f));
  check_grad(tag + " dgamma", dgamma, numeric_grad(gamma, loss, 1e-3f));
  check_grad(tag + " dbeta", dbeta, numeric_grad(beta, loss, 1e-3f));
}

void test_batchnorm() {
  Rng rng(9);
  test_batchnorm_case(3, 4, 5, rng);
  test_batchnorm_case(2, 3, 1, rng);  // after an fc layer: hw == 1
  test_batchnorm_case(1, 2, 7, rng);
  test_batchnorm_case(1, 2, 1, rng);  // m == 1: running_var takes the biased (zero) variance
}

// ------------------------------------------------------------------ dropout
void test_dropout() {
  Rng rng(10);
  const int64_t count = 200000;
  const float p = 0.3f;
  const float scale = 1.0f / (1.0f - p);
  const std::vector<float> ones(sz(count), 1.0f);

  std::vector<float> y(sz(count), kNaN);
  sn::cpu::dropout_forward(count, p, 42, ones.data(), y.data());
  int64_t kept = 0;
  bool values_ok = true;
  for (float v : y) {
    if (v != 0.0f) ++kept;
    values_ok = values_ok && (v == 0.0f || v == scale);
  }
  const double keep_rate = static_cast<double>(kept) / static_cast<double>(count);
  check(std::fabs(keep_rate - (1.0 - p)) < 0.005,
        "dropout keep rate " + std::to_string(keep_rate) + " want ~0.7");
  check(values_ok, "dropout outputs are 0 or x / (1 - p)");

  std::vector<float> same(sz(count));
  sn::cpu::dropout_forward(count, p, 42, ones.data(), same.data());
  check(same == y, "dropout mask reproducible for the same seed");

  // Neighbouring seeds give unrelated masks: they disagree where exactly one keeps,
  // probability 2 p (1 - p) = 0.42.
  for (uint64_t other_seed : {43ull, 0ull}) {
    std::vector<float> other(sz(count));
    sn::cpu::dropout_forward(count, p, other_seed, ones.data(), other.data());
    int64_t differ = 0;
    for (size_t i = 0; i < other.size(); ++i) differ += (other[i] != y[i]) ? 1 : 0;
    const double frac = static_cast<double>(differ) / static_cast<double>(count);
    check(std::fabs(frac - 2.0 * p * (1.0 - p)) < 0.01,
          "dropout mask for seed " + std::to_string(other_seed) + " differs from seed 42 in " +
              std::to_string(frac) + " of positions, want ~0.42");
  }

  // The mask depends on the element index only, not on count.
  std::vector<float> prefix(1000);
  sn::cpu::dropout_forward(1000, p, 42, ones.data(), prefix.data());
  check(std::equal(prefix.begin(), prefix.end(), y.begin()), "dropout mask independent of count");

  // Backward replays the forward mask and accumulates.
  const int64_t small = 513;
  std::vector<float> x = rng.uniform(sz(small));
  const std::vector<float> dy = rng.uniform(sz(small));
  std::vector<float> y_small(sz(small));
  sn::cpu::dropout_forward(small, p, 7, x.data(), y_small.data());
  std::vector<float> dx(sz(small), kPrefill);
  sn::cpu::dropout_backward(small, p, 7, dy.data(), dx.data());
  std::vector<double> want_dx(sz(small));
  std::vector<double> want_y(sz(small));
  std::vector<float> mask(sz(small));  // 0 or 1 / (1 - p), from the forward on ones
  sn::cpu::dropout_forward(small, p, 7, ones.data(), mask.data());
  for (size_t i = 0; i < sz(small); ++i) {
    want_y[i] = static_cast<double>(x[i]) * mask[i];
    want_dx[i] = kPrefill + static_cast<double>(dy[i]) * mask[i];
  }
  check_close("dropout forward = x * mask / (1 - p)", y_small, want_y, 1e-6, 0);
  check_close("dropout backward replays the mask (accumulated)", dx, want_dx, 1e-6, 1e-6);

  // Edge rates: p = 0 is the identity, p = 1 drops everything without NaN.
  std::vector<float> y0(sz(small));
  sn::cpu::dropout_forward(small, 0.0f, 7, x.data(), y0.data());
  check(y0 == x, "dropout p=0 is the identity");
  std::vector<float> y1(sz(small), kNaN);
  sn::cpu::dropout_forward(small, 1.0f, 7, x.data(), y1.data());
  check(y1 == std::vector<float>(sz(small), 0.0f), "dropout p=1 gives zeros");
  std::vector<float> dx1(sz(small), kPrefill);
  sn::cpu::dropout_backward(small, 1.0f, 7, dy.data(), dx1.data());
  check(dx1 == std::vector<float>(sz(small), kPrefill), "dropout p=1 passes no gradient");
}

// ---------------------------------------------------------------------- LRN
std::vector<double> lrn_reference(const sn::cpu::LrnGeom& g, const std::vector<float>& x) {
  std::vector<double> y(x.size());
  const int64_t pre = (g.size - 1) / 2;
  for (int64_t b = 0; b < g.n; ++b)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t i = 0; i < g.hw; ++i) {
        double sq = 0.0;
        for (int64_t j = c - pre; j <= c - pre + g.size - 1; ++j) {
          if (j < 0 || j >= g.c) continue;
          const double v = x[sz((b * g.c + j) * g.hw + i)];
          sq += v * v;
        }
        const double scale = g.k + g.alpha / static_cast<double>(g.size) * sq;
        const size_t k = sz((b * g.c + c) * g.hw + i);
        y[k] = x[k] / std::pow(scale, static_cast<double>(g.beta));
      }
  return y;
}

void test_lrn_case(int64_t n, int64_t c, int64_t hw, int64_t size, float alpha, float beta, float k,
                   Rng& rng) {
  const std::string tag = "lrn[c=" + std::to_string(c) + " size=" + std::to_string(size) +
                          " alpha=" + std::to_string(alpha) + "]";
  sn::cpu::LrnGeom g;
  g.n = n;
  g.c = c;
  g.hw = hw;
  g.size = size;
  g.alpha = alpha;
  g.beta = beta;
  g.k = k;
  std::vector<float> x = rng.uniform(sz(n * c * hw), -2.0f, 2.0f);
  std::vector<float> ws(sz(sn::cpu::lrn_workspace_floats(g)));
  std::vector<float> y(x.size(), kNaN);
  sn::cpu::lrn_forward(g, x.data(), y.data(), ws.data());
  check_close(tag + " forward", y, lrn_reference(g, x), 1e-5, 1e-6);

  const std::vector<float> r = rng.uniform(x.size());
  std::vector<float> dx(x.size(), kPrefill);
  sn::cpu::lrn_backward(g, x.data(), y.data(), r.data(), dx.data(), ws.data());
  auto loss = [&] {
    std::vector<float> y_tmp(x.size());
    sn::cpu::lrn_forward(g, x.data(), y_tmp.data(), ws.data());
    return dot(y_tmp, r);
  };
  check_grad(tag + " dx (accumulated)", minus_constant(dx, kPrefill), numeric_grad(x, loss, 1e-2f));
}

void test_lrn() {
  Rng rng(11);
  test_lrn_case(2, 7, 6, 5, 0.5f, 0.75f, 2.0f, rng);
  test_lrn_case(2, 6, 4, 4, 0.8f, 0.75f, 1.0f, rng);   // even size: one more channel after c
  test_lrn_case(1, 2, 5, 3, 1.0f, 0.5f, 1.0f, rng);    // window wider than the channels
  test_lrn_case(2, 5, 3, 5, 1e-4f, 0.75f, 2.0f, rng);  // AlexNet's values
}

// ------------------------------------------------------------------- concat
void test_concat() {
  Rng rng(12);
  const int64_t n = 2, hw = 4;
  const std::vector<int64_t> channels = {2, 3, 1};
  const int64_t total = 6;
  std::vector<std::vector<float>> xs;
  for (int64_t ch : channels) xs.push_back(rng.uniform(sz(n * ch * hw)));
  const std::vector<const float*> x_ptrs = {xs[0].data(), xs[1].data(), xs[2].data()};

  std::vector<float> y(sz(n * total * hw), kNaN);
  sn::cpu::concat_forward(n, hw, 3, x_ptrs.data(), channels.data(), y.data());
  std::vector<double> want(y.size());
  for (int64_t b = 0; b < n; ++b) {
    int64_t c_out = 0;
    for (size_t i = 0; i < xs.size(); ++i)
      for (int64_t ch = 0; ch < channels[i]; ++ch, ++c_out)
        for (int64_t p = 0; p < hw; ++p)
          want[sz((b * total + c_out) * hw + p)] = xs[i][sz((b * channels[i] + ch) * hw + p)];
  }
  check_close("concat forward", y, want, 0, 0);

  // Round trip: the backward of y returns each input, added to the prefilled gradient;
  // a null gradient pointer is skipped.
  std::vector<std::vector<float>> dxs;
  for (int64_t ch : channels) dxs.emplace_back(sz(n * ch * hw), kPrefill);
  const std::vector<float*> dx_ptrs = {dxs[0].data(), nullptr, dxs[2].data()};
  sn::cpu::concat_backward(n, hw, 3, y.data(), channels.data(), dx_ptrs.data());
  for (size_t i : {size_t{0}, size_t{2}}) {
    std::vector<double> want_dx(xs[i].size());
    for (size_t k = 0; k < want_dx.size(); ++k)
      want_dx[k] = kPrefill + static_cast<double>(xs[i][k]);
    check_close("concat backward round trip, input " + std::to_string(i), dxs[i], want_dx, 1e-6, 0);
  }
  check(dxs[1] == std::vector<float>(dxs[1].size(), kPrefill), "concat backward skips null dx");
}

// ------------------------------------------------------------------ threads
// Every kernel gives the same bits on any number of threads (Note [Deterministic
// threading] in parallel.h), on shapes like those of ResNets, where the kernels split
// their work; bad thread counts are a typed error.
ConvGeom conv_geom(int64_t n, int64_t c_in, int64_t hw, int64_t c_out, int64_t kernel,
                   int64_t stride, int64_t pad) {
  ConvGeom g;
  g.n = n;
  g.c_in = c_in;
  g.h_in = g.w_in = hw;
  g.c_out = c_out;
  g.kernel_h = g.kernel_w = kernel;
  g.stride_h = g.stride_w = stride;
  g.pad_h = g.pad_w = pad;
  g.h_out = g.w_out = conv_out(hw, kernel, stride, pad, 1);
  return g;
}

// dx (without the prefill) and dw of a convolution for output gradient dy, by direct loops
// in double: the adjoint of conv_reference.
void conv_backward_reference(const ConvGeom& g, const std::vector<float>& x,
                             const std::vector<float>& w, const std::vector<float>& dy,
                             std::vector<double>* dx, std::vector<double>* dw) {
  dx->assign(x.size(), 0.0);
  dw->assign(w.size(), 0.0);
  const int64_t cin_g = g.c_in / g.groups, cout_g = g.c_out / g.groups;
  for (int64_t b = 0; b < g.n; ++b)
    for (int64_t co = 0; co < g.c_out; ++co)
      for (int64_t oh = 0; oh < g.h_out; ++oh)
        for (int64_t ow = 0; ow < g.w_out; ++ow) {
          const double d = dy[sz(((b * g.c_out + co) * g.h_out + oh) * g.w_out + ow)];
          const int64_t grp = co / cout_g;
          for (int64_t ci = 0; ci < cin_g; ++ci)
            for (int64_t ki = 0; ki < g.kernel_h; ++ki)
              for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
                const int64_t ih = oh * g.stride_h - g.pad_h + ki * g.dilation_h;
                const int64_t iw = ow * g.stride_w - g.pad_w + kj * g.dilation_w;
                if (ih < 0 || ih >= g.h_in || iw < 0 || iw >= g.w_in) continue;
                const size_t xi = sz(((b * g.c_in + grp * cin_g + ci) * g.h_in + ih) * g.w_in + iw);
                const size_t wi = sz(((co * cin_g + ci) * g.kernel_h + ki) * g.kernel_w + kj);
                (*dx)[xi] += d * w[wi];
                (*dw)[wi] += d * x[xi];
              }
        }
}

struct ConvRun {
  std::vector<float> y, dx, dw, dbias;
  bool operator==(const ConvRun& o) const {
    return y == o.y && dx == o.dx && dw == o.dw && dbias == o.dbias;
  }
};

ConvRun run_conv(const ConvGeom& g, const std::vector<float>& x, const std::vector<float>& w,
                 const std::vector<float>& bias, const std::vector<float>& dy,
                 int slots = kConvSlots) {
  ConvRun r;
  r.y.assign(sz(g.n * g.c_out * g.h_out * g.w_out), kNaN);
  r.dx.assign(x.size(), kPrefill);
  r.dw.assign(w.size(), kNaN);
  r.dbias.assign(bias.size(), kNaN);
  std::vector<float> ws(sz(sn::cpu::conv2d_workspace_floats(g, slots)), kNaN);
  sn::cpu::conv2d_forward(g, x.data(), w.data(), bias.data(), r.y.data(), ws.data(), slots);
  sn::cpu::conv2d_backward(g, x.data(), w.data(), dy.data(), r.dx.data(), r.dw.data(),
                           r.dbias.data(), ws.data(), slots);
  return r;
}

// y, dx (after the prefill) and dw of run r against the double-precision references.
void check_conv_run(const std::string& tag, const ConvGeom& g, const std::vector<float>& x,
                    const std::vector<float>& w, const std::vector<float>& bias,
                    const std::vector<float>& dy, const ConvRun& r) {
  check_close(tag + " forward", r.y, conv_reference(g, x, w, bias.data()), 1e-4, 1e-4);
  std::vector<double> want_dx, want_dw;
  conv_backward_reference(g, x, w, dy, &want_dx, &want_dw);
  for (double& v : want_dx) v += kPrefill;
  check_close(tag + " dx", r.dx, want_dx, 1e-4, 1e-3);
  check_close(tag + " dw", r.dw, want_dw, 1e-4, 1e-3);
}

void test_threads() {
  Rng rng(7);
  const int saved = sn::cpu::num_threads();
  const std::vector<ConvGeom> convs = {
      conv_geom(4, 3, 32, 16, 3, 1, 1),    // a CIFAR stem
      conv_geom(4, 16, 32, 16, 3, 1, 1),   // ResNet-20 stage 1: output positions split
      conv_geom(4, 32, 16, 64, 3, 2, 1),   // a strided stage entry
      conv_geom(4, 64, 8, 64, 3, 1, 1),    // small P: output channels split, with barriers
      conv_geom(4, 64, 8, 256, 1, 1, 0),   // a bottleneck 1x1 (no im2col)
      conv_geom(4, 256, 4, 512, 1, 2, 0),  // a strided projection shortcut
      conv_geom(2, 128, 4, 128, 3, 1, 1),  // deep and tiny
      conv_geom(3, 512, 2, 128, 1, 1, 0),  // ResNet-50 stage 4 at 64x64: a 2x2 map
  };
  for (const ConvGeom& g : convs) {
    const std::string tag = "threads conv2d[" + std::to_string(g.c_in) + "->" +
                            std::to_string(g.c_out) + " k" + std::to_string(g.kernel_h) + " s" +
                            std::to_string(g.stride_h) + " " + std::to_string(g.h_in) + "x" +
                            std::to_string(g.w_in) + "]";
    std::vector<float> x = rng.uniform(sz(g.n * g.c_in * g.h_in * g.w_in));
    std::vector<float> w = rng.uniform(sz(g.c_out * g.c_in * g.kernel_h * g.kernel_w));
    std::vector<float> bias = rng.uniform(sz(g.c_out));
    std::vector<float> dy = rng.uniform(sz(g.n * g.c_out * g.h_out * g.w_out));
    sn::cpu::set_num_threads(1);
    const ConvRun one = run_conv(g, x, w, bias, dy);
    check_conv_run(tag, g, x, w, bias, dy, one);
    for (int t : {2, 3, 5}) {
      sn::cpu::set_num_threads(t);
      const ConvRun many = run_conv(g, x, w, bias, dy);
      const std::string which =
          std::string(many.y == one.y ? "" : " y") + (many.dx == one.dx ? "" : " dx") +
          (many.dw == one.dw ? "" : " dw") + (many.dbias == one.dbias ? "" : " dbias");
      check(which.empty(),
            tag + ": on " + std::to_string(t) + " threads," + which + " differ from 1 thread");
    }
  }

  // Batch norm, the element-wise kernels, pooling, concat and SGD on 1 and 3 threads.
  sn::cpu::BatchNormGeom bn;
  bn.n = 8;
  bn.c = 16;
  bn.hw = 1024 + 3;  // a remainder after the lanes
  const size_t count = sz(bn.n * bn.c * bn.hw);
  const std::vector<float> x = rng.uniform(count);
  const std::vector<float> dy = rng.uniform(count);
  const std::vector<float> gamma = rng.uniform(sz(bn.c)), beta = rng.uniform(sz(bn.c));
  auto run_all = [&]() {
    std::vector<std::vector<float>> out;
    std::vector<float> y(count), stats(sz(2 * bn.c)), run_mean(sz(bn.c), 0.0f),
        run_var(sz(bn.c), 1.0f);
    sn::cpu::batchnorm_forward_train(bn, x.data(), gamma.data(), beta.data(), y.data(),
                                     stats.data(), stats.data() + bn.c, run_mean.data(),
                                     run_var.data());
    std::vector<float> dx(count, kPrefill), dgamma(sz(bn.c)), dbeta(sz(bn.c));
    sn::cpu::batchnorm_backward(bn, x.data(), gamma.data(), stats.data(), stats.data() + bn.c,
                                dy.data(), dx.data(), dgamma.data(), dbeta.data());
    out.insert(out.end(), {y, stats, run_mean, run_var, dx, dgamma, dbeta});
    std::vector<float> e(count), de(count, kPrefill);
    sn::cpu::relu_forward(static_cast<int64_t>(count), x.data(), e.data());
    sn::cpu::relu_backward(static_cast<int64_t>(count), x.data(), dy.data(), de.data());
    sn::cpu::dropout_forward(static_cast<int64_t>(count), 0.3f, 5, x.data(), e.data());
    sn::cpu::dropout_backward(static_cast<int64_t>(count), 0.3f, 5, dy.data(), de.data());
    out.insert(out.end(), {e, de});
    sn::cpu::PoolGeom pg;
    pg.n = bn.n;
    pg.c = bn.c;
    pg.h_in = 1027;
    pg.w_in = 1;
    pg.kernel_h = 3;
    pg.stride_h = 2;
    pg.h_out = 513;
    std::vector<float> py(sz(pg.n * pg.c * pg.h_out)), pdx(count, 0.0f);
    sn::cpu::maxpool_forward(pg, x.data(), py.data());
    sn::cpu::maxpool_backward(pg, x.data(), dy.data(), pdx.data());
    out.insert(out.end(), {py, pdx});
    std::vector<float> w = x, v(count, 0.1f);
    sn::cpu::sgd_update(static_cast<int64_t>(count), 0.1f, 0.9f, 1e-4f, w.data(), dy.data(),
                        v.data());
    out.insert(out.end(), {w, v});
    return out;
  };
  sn::cpu::set_num_threads(1);
  const auto one = run_all();
  sn::cpu::set_num_threads(3);
  check(run_all() == one, "threads: BN, ReLU, dropout, max pool and SGD differ on 3 threads");

  bool threw = false;
  try {
    sn::cpu::set_num_threads(0);
  } catch (const sn::ArgumentError&) {
    threw = true;
  }
  check(threw, "set_num_threads(0) throws ArgumentError");
  sn::cpu::set_num_threads(saved);
  check(sn::cpu::num_threads() == saved, "num_threads() returns what was set");
  check(sn::cpu::default_num_threads() >= 1, "default_num_threads() >= 1");
}

// ------------------------------------------------------------ conv2d slots
// Note [Conv slots]: every slot count gives the same bits as every other, on any number of
// threads, and the workspace grows with the slots; the geometries cover blocks of output
// rows (several per image, a short last one), blocks of whole images (a short last
// block), a pointwise conv either way, groups and dilation. A bad slot count is a typed
// error.
void test_conv_slots() {
  Rng rng(11);
  const int saved = sn::cpu::num_threads();
  std::vector<ConvGeom> geoms = {
      conv_geom(3, 3, 36, 4, 3, 1, 1),   conv_geom(5, 16, 8, 16, 3, 2, 1),
      conv_geom(7, 8, 4, 32, 1, 1, 0),   conv_geom(2, 8, 20, 8, 1, 1, 0),
      conv_geom(9, 64, 2, 64, 3, 1, 1),  conv_geom(2, 4, 7, 6, 5, 3, 2),
      conv_geom(3, 512, 2, 16, 3, 1, 1),  // K = 4608: the narrowest blocks
  };
  ConvGeom grouped = conv_geom(3, 4, 6, 6, 3, 1, 1);
  grouped.groups = 2;
  ConvGeom dilated = conv_geom(3, 3, 8, 4, 3, 1, 2);
  dilated.dilation_h = dilated.dilation_w = 2;
  dilated.h_out = dilated.w_out = conv_out(8, 3, 1, 2, 2);
  geoms.push_back(grouped);
  geoms.push_back(dilated);
  for (const ConvGeom& g : geoms) {
    const std::string tag = "conv2d slots[" + std::to_string(g.n) + "x" + std::to_string(g.c_in) +
                            "->" + std::to_string(g.c_out) + " k" + std::to_string(g.kernel_h) +
                            " s" + std::to_string(g.stride_h) + " " + std::to_string(g.h_in) + "x" +
                            std::to_string(g.w_in) + " g" + std::to_string(g.groups) + "]";
    const std::vector<float> x = rng.uniform(sz(g.n * g.c_in * g.h_in * g.w_in));
    const std::vector<float> w =
        rng.uniform(sz(g.c_out * (g.c_in / g.groups) * g.kernel_h * g.kernel_w));
    const std::vector<float> bias = rng.uniform(sz(g.c_out));
    const std::vector<float> dy = rng.uniform(sz(g.n * g.c_out * g.h_out * g.w_out));
    sn::cpu::set_num_threads(1);
    const ConvRun base = run_conv(g, x, w, bias, dy, 1);
    check_conv_run(tag, g, x, w, bias, dy, base);
    const int64_t per_slot = sn::cpu::conv2d_workspace_floats(g, 1);
    for (int slots : {1, 2, 3, 8}) {
      check(sn::cpu::conv2d_workspace_floats(g, slots) == slots * per_slot,
            tag + " workspace = slots * one slot");
      for (int t : {1, 2, 3}) {
        sn::cpu::set_num_threads(t);
        const ConvRun r = run_conv(g, x, w, bias, dy, slots);
        const std::string which = std::string(r.y == base.y ? "" : " y") +
                                  (r.dx == base.dx ? "" : " dx") + (r.dw == base.dw ? "" : " dw") +
                                  (r.dbias == base.dbias ? "" : " dbias");
        check(which.empty(), tag + ": " + std::to_string(slots) + " slots on " + std::to_string(t) +
                                 " threads:" + which + " differ from 1 slot");
      }
    }
    sn::cpu::set_num_threads(1);
  }
  for (int bad : {0, -1}) {
    bool threw = false;
    try {
      sn::cpu::conv2d_workspace_floats(geoms[0], bad);
    } catch (const sn::ArgumentError& e) {
      threw = std::string(e.what()).find("slots") != std::string::npos;
    }
    check(threw, "conv2d: slots " + std::to_string(bad) + " is an ArgumentError");
  }
  sn::cpu::set_num_threads(saved);
}

// ------------------------------------------------------------ batchnorm + relu
// The fused kernels give exactly the bits of batch norm then ReLU, on several threads.
void test_batchnorm_relu() {
  Rng rng(13);
  const int saved = sn::cpu::num_threads();
  for (int64_t hw : {int64_t{1}, int64_t{7}, int64_t{64 + 5}}) {
    sn::cpu::BatchNormGeom g;
    g.n = 6;
    g.c = 5;
    g.hw = hw;
    const size_t count = sz(g.n * g.c * g.hw);
    const std::string tag = "batchnorm_relu[hw " + std::to_string(hw) + "]";
    const std::vector<float> x = rng.uniform(count), dy = rng.uniform(count);
    const std::vector<float> gamma = rng.uniform(sz(g.c)), beta = rng.uniform(sz(g.c));
    for (int threads : {1, 3}) {
      sn::cpu::set_num_threads(threads);
      const std::string ttag = tag + " on " + std::to_string(threads) + " threads";
      // Unfused: BN, ReLU; backward ReLU into a zeroed buffer, then BN.
      std::vector<float> bn_y(count), want_y(count), stats(sz(2 * g.c));
      std::vector<float> rm(sz(g.c), 0.1f), rv(sz(g.c), 0.9f);
      sn::cpu::batchnorm_forward_train(g, x.data(), gamma.data(), beta.data(), bn_y.data(),
                                       stats.data(), stats.data() + g.c, rm.data(), rv.data());
      sn::cpu::relu_forward(static_cast<int64_t>(count), bn_y.data(), want_y.data());
      std::vector<float> d_bn(count, 0.0f), want_dx(count, kPrefill), want_dg(sz(g.c)),
          want_db(sz(g.c));
      sn::cpu::relu_backward(static_cast<int64_t>(count), bn_y.data(), dy.data(), d_bn.data());
      sn::cpu::batchnorm_backward(g, x.data(), gamma.data(), stats.data(), stats.data() + g.c,
                                  d_bn.data(), want_dx.data(), want_dg.data(), want_db.data());
      // Fused.
      std::vector<float> y(count, kNaN), fstats(sz(2 * g.c), kNaN);
      std::vector<float> frm(sz(g.c), 0.1f), frv(sz(g.c), 0.9f);
      sn::cpu::batchnorm_relu_forward_train(g, x.data(), gamma.data(), beta.data(), y.data(),
                                            fstats.data(), fstats.data() + g.c, frm.data(),
                                            frv.data());
      check(y == want_y, ttag + " forward identical to batchnorm then relu");
      check(fstats == stats && frm == rm && frv == rv, ttag + " statistics identical");
      std::vector<float> dx(count, kPrefill), dg(sz(g.c), kNaN), db(sz(g.c), kNaN);
      sn::cpu::batchnorm_relu_backward(g, x.data(), y.data(), gamma.data(), fstats.data(),
                                       fstats.data() + g.c, dy.data(), dx.data(), dg.data(),
                                       db.data());
      check(dx == want_dx && dg == want_dg && db == want_db,
            ttag + " backward identical to relu_backward then batchnorm_backward");
      std::vector<float> no_dg(sz(g.c)), no_db(sz(g.c));
      sn::cpu::batchnorm_relu_backward(g, x.data(), y.data(), gamma.data(), fstats.data(),
                                       fstats.data() + g.c, dy.data(), nullptr, no_dg.data(),
                                       no_db.data());
      check(no_dg == want_dg && no_db == want_db, ttag + " backward without dx");
      // Inference.
      std::vector<float> inf_bn(count), inf_want(count), inf(count, kNaN);
      sn::cpu::batchnorm_forward_infer(g, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(),
                                       inf_bn.data());
      sn::cpu::relu_forward(static_cast<int64_t>(count), inf_bn.data(), inf_want.data());
      sn::cpu::batchnorm_relu_forward_infer(g, x.data(), gamma.data(), beta.data(), rm.data(),
                                            rv.data(), inf.data());
      check(inf == inf_want, ttag + " inference identical to batchnorm then relu");
    }
  }
  sn::cpu::set_num_threads(saved);
}

struct Group {
  const char* name;
  void (*run)();
};

}  // namespace

int main(int argc, char** argv) {
  const Group groups[] = {
      {"conv", test_conv},
      {"fc", test_fc},
      {"relu", test_relu},
      {"add_accumulate", test_add_accumulate},
      {"softmax_xent", test_softmax_xent},
      {"sgd", test_sgd},
      {"all_finite", test_all_finite},
      {"denormals", test_denormals},
      {"pool", test_pool},
      {"global_avgpool", test_global_avgpool},
      {"batchnorm", test_batchnorm},
      {"dropout", test_dropout},
      {"lrn", test_lrn},
      {"concat", test_concat},
      {"threads", test_threads},
      {"conv_slots", test_conv_slots},
      {"batchnorm_relu", test_batchnorm_relu},
  };
  const char* filter = argc > 1 ? argv[1] : "";
  for (const Group& group : groups) {
    if (std::strstr(group.name, filter) == nullptr) continue;
    const int64_t failures_before = g_failures;
    group.run();
    std::printf("%-16s %s\n", group.name, g_failures == failures_before ? "ok" : "FAILED");
  }
  std::printf("%lld checks, %lld failed\n", static_cast<long long>(g_checks),
              static_cast<long long>(g_failures));
  return g_failures == 0 ? 0 : 1;
}
