// Checks every CPU kernel in backend/cpu/kernels.h: forward against naive references
// written independently here (double precision, direct loops), backward against central
// finite differences of L = sum(y * r) for a random r, and the buffer contracts
// (input gradients accumulate, parameter gradients and outputs are overwritten).
//
// Standalone: no test framework. Prints each failed check and exits non-zero on failure.
//   ./test_kernels          run everything
//   ./test_kernels conv     run only the groups whose name contains "conv"
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
    check(false, what + ": size " + std::to_string(got.size()) + " vs " +
                     std::to_string(want.size()));
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

void check_close(const std::string& what, const std::vector<float>& got,
                 const std::vector<float>& want, double rtol, double atol) {
  check_close(what, got, std::vector<double>(want.begin(), want.end()), rtol, atol);
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
  std::vector<float> ws(sz(sn::cpu::conv2d_workspace_floats(g)));

  std::vector<float> y(y_count, kNaN);  // NaN: forward must overwrite every output
  sn::cpu::conv2d_forward(g, x.data(), w.data(), bias_ptr, y.data(), ws.data());
  check_close(tag + " forward", y, conv_reference(g, x, w, bias_ptr), 1e-4, 1e-4);

  const std::vector<float> r = rng.uniform(y_count);
  std::vector<float> dx(x.size(), kPrefill);
  std::vector<float> dw(w.size(), kNaN);  // NaN: parameter gradients are overwritten
  std::vector<float> dbias(bias.size(), kNaN);
  sn::cpu::conv2d_backward(g, x.data(), w.data(), r.data(), cc.dx ? dx.data() : nullptr,
                           dw.data(), cc.bias ? dbias.data() : nullptr, ws.data());

  std::vector<float> y_tmp(y_count);
  auto loss = [&] {
    sn::cpu::conv2d_forward(g, x.data(), w.data(), bias_ptr, y_tmp.data(), ws.data());
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
  std::vector<float> ws(sz(sn::cpu::conv2d_workspace_floats(g)));
  sn::cpu::conv2d_forward(g, x.data(), w.data(), nullptr, y.data(), ws.data());
  check_close("conv2d[large] forward", y, conv_reference(g, x, w, nullptr), 1e-4, 1e-4);

  ConvGeom pw;
  pw.c_in = 8;
  pw.groups = 2;
  pw.kernel_h = pw.kernel_w = 1;
  check(sn::cpu::conv2d_workspace_floats(pw) == 0, "conv2d 1x1 s1 p0 needs no workspace");
  pw.stride_h = 2;
  check(sn::cpu::conv2d_workspace_floats(pw) == 4, "conv2d 1x1 s2 workspace = c_in/groups*hw");
}

// ---------------------------------------------------------------------- fc
void test_fc_case(int64_t n, int64_t in, int64_t out, bool with_bias, bool with_dx,
                  Rng& rng) {
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
      want_probs[sz(i * classes + j)] = std::exp(static_cast<double>(logits[sz(i * classes + j)])) / z;
    want_loss -= std::log(want_probs[sz(i * classes + labels[sz(i)])]);
    if (argmax == labels[sz(i)]) ++want_correct;
  }
  want_loss /= static_cast<double>(n);

  std::vector<float> probs(logits.size(), kNaN);
  int64_t correct = -1;
  const float loss_value = sn::cpu::softmax_xent_forward(n, classes, logits.data(),
                                                         labels.data(), probs.data(), &correct);
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
    return static_cast<double>(sn::cpu::softmax_xent_forward(n, classes, logits.data(),
                                                             labels.data(), p.data(), nullptr));
  };
  check_grad("softmax_xent dlogits (accumulated)", minus_constant(dlogits, kPrefill),
             numeric_grad(logits, loss, 1e-2f));

  // Stability: huge logits neither overflow nor produce NaN; an underflowed label
  // probability still gives a finite loss.
  const std::vector<float> big = {1000.0f, 0.0f, -1000.0f, 1000.0f, 999.0f, 998.0f};
  const std::vector<int32_t> big_labels = {2, 0};
  std::vector<float> big_probs(big.size());
  const float big_loss = sn::cpu::softmax_xent_forward(2, 3, big.data(), big_labels.data(),
                                                       big_probs.data(), nullptr);
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
