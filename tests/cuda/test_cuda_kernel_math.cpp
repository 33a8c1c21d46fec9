// Checks the CUDA backend's kernel arithmetic (backend/cuda/kernel_math.h) on the host,
// against the CPU kernels (backend/cpu/kernels.h): the device kernels are grid-stride
// loops over exactly these functions, so this covers their math on machines without a
// GPU (the launches themselves are covered by test_cuda_backend, which needs one).
// On the host every function but batch norm's sums must give the CPU's bits exactly;
// the dropout mask in particular must be the CPU's, element for element. The fully
// connected layer's cuBLAS arguments are checked through a reference GEMM, and the order
// in which measured convolution algorithms are offered (backend/cuda/conv_order.h) by
// cases and by a property over random inputs.
//
// Standalone: no test framework, no GPU, no CUDA toolkit. Exits non-zero on failure.
//   ./test_cuda_kernel_math
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cuda/conv_order.h"
#include "backend/cuda/kernel_math.h"
#include "core/hash.h"

namespace {

namespace math = sn::cuda::math;

int64_t g_checks = 0;
int64_t g_failures = 0;

bool check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  }
  return ok;
}

// Bit-identical float arrays.
void check_bits(const std::vector<float>& got, const std::vector<float>& want,
                const std::string& what) {
  if (!check(got.size() == want.size(), what + ": size")) return;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
      check(false, what + ": element " + std::to_string(i) + " got " + std::to_string(got[i]) +
                       " want " + std::to_string(want[i]));
      return;
    }
  }
  check(true, what);
}

void check_close(const std::vector<float>& got, const std::vector<float>& want, double rel,
                 const std::string& what) {
  if (!check(got.size() == want.size(), what + ": size")) return;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = rel * (1.0 + std::fabs(want[i]));
    if (!(std::fabs(static_cast<double>(got[i]) - want[i]) <= tol)) {
      check(false, what + ": element " + std::to_string(i) + " got " + std::to_string(got[i]) +
                       " want " + std::to_string(want[i]));
      return;
    }
  }
  check(true, what);
}

std::vector<float> random_vec(int64_t count, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = u(rng);
  return v;
}

// Small integers: many ties, for the max-pool tie rule.
std::vector<float> tie_vec(int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> u(0, 2);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = static_cast<float>(u(rng));
  return v;
}

// ------------------------------------------------------------------ indexing
// channel_element enumerates each element of [n, c, hw] once, inside its channel.
void test_indexing() {
  const int64_t n = 3, c = 4, hw = 5;
  std::vector<int> seen(static_cast<size_t>(n * c * hw), 0);
  bool inside = true;
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t e = 0; e < n * hw; ++e) {
      const int64_t o = math::channel_element(c, hw, ch, e);
      if (o < 0 || o >= n * c * hw) {
        inside = false;
        continue;
      }
      ++seen[static_cast<size_t>(o)];
      inside = inside && math::channel_of(o, c, hw) == ch;
    }
  bool once = true;
  for (int v : seen) once = once && v == 1;
  check(inside, "channel_element stays in its channel");
  check(once, "channel_element covers every element once");
}

// ------------------------------------------------------------------ dropout, elementwise
void test_dropout() {
  const int64_t count = 10007;
  const std::vector<float> x = random_vec(count, 1);
  for (uint64_t seed : {0ull, 1ull, 2ull, 0x123456789abcdefull}) {
    for (float p : {0.0f, 0.1f, 0.5f, 0.9f, 1.0f}) {
      const std::string tag = " seed " + std::to_string(seed) + " p " + std::to_string(p);
      std::vector<float> want(x.size()), got(x.size());
      sn::cpu::dropout_forward(count, p, seed, x.data(), want.data());
      const uint64_t mixed = math::splitmix64(seed);
      const float scale = math::keep_scale(p);
      for (int64_t i = 0; i < count; ++i) got[i] = math::dropout(mixed, p, scale, i, x[i]);
      check_bits(got, want, "dropout forward" + tag);
      std::vector<float> dx_want = random_vec(count, 2), dx_got = dx_want;
      sn::cpu::dropout_backward(count, p, seed, x.data(), dx_want.data());
      for (int64_t i = 0; i < count; ++i) dx_got[i] += math::dropout(mixed, p, scale, i, x[i]);
      check_bits(dx_got, dx_want, "dropout backward" + tag);
    }
  }
  for (uint64_t z : {0ull, 1ull, 42ull, ~0ull})
    check(math::splitmix64(z) == sn::splitmix64(z), "splitmix64 of " + std::to_string(z));
}

void test_elementwise() {
  const int64_t count = 4099;
  const std::vector<float> x = random_vec(count, 3), dy = random_vec(count, 4);
  std::vector<float> want(x.size()), got(x.size());
  sn::cpu::relu_forward(count, x.data(), want.data());
  for (int64_t i = 0; i < count; ++i) got[i] = math::relu(x[i]);
  check_bits(got, want, "relu forward");
  std::vector<float> dx_want = random_vec(count, 5), dx_got = dx_want;
  sn::cpu::relu_backward(count, want.data(), dy.data(), dx_want.data());
  for (int64_t i = 0; i < count; ++i) dx_got[i] += math::relu_grad(want[i], dy[i]);
  check_bits(dx_got, dx_want, "relu backward (reads the output)");

  std::vector<float> w_want = random_vec(count, 6), w_got = w_want;
  std::vector<float> v_want = random_vec(count, 7), v_got = v_want;
  sn::cpu::sgd_update(count, 0.05f, 0.9f, 5e-4f, w_want.data(), dy.data(), v_want.data());
  for (int64_t i = 0; i < count; ++i) math::sgd(0.05f, 0.9f, 5e-4f, w_got[i], dy[i], v_got[i]);
  check_bits(w_got, w_want, "sgd weights");
  check_bits(v_got, v_want, "sgd velocity");
}

// ------------------------------------------------------------------ pooling
void test_covering() {
  for (int64_t kernel = 1; kernel <= 4; ++kernel)
    for (int64_t stride = 1; stride <= 3; ++stride)
      for (int64_t pad = 0; pad <= kernel / 2; ++pad) {
        const int64_t in = 9;
        const int64_t out = (in + 2 * pad - kernel) / stride + 1;
        for (int64_t i = 0; i < in; ++i) {
          int64_t lo = 0, hi = 0;
          math::covering(i, kernel, stride, pad, out, lo, hi);
          for (int64_t o = 0; o < out; ++o) {
            const int64_t start = o * stride - pad;
            const bool covers = start <= i && i < start + kernel;
            if (!check(covers == (lo <= o && o < hi),
                       "covering k" + std::to_string(kernel) + " s" + std::to_string(stride) +
                           " p" + std::to_string(pad) + " i" + std::to_string(i) + " o" +
                           std::to_string(o)))
              return;
          }
        }
      }
}

void test_pool() {
  struct Case {
    int64_t h, w, kh, kw, sh, sw, ph, pw;
  };
  const Case cases[] = {{8, 8, 2, 2, 2, 2, 0, 0},
                        {7, 9, 3, 3, 2, 2, 1, 1},
                        {6, 5, 3, 2, 1, 1, 1, 0},
                        {9, 9, 2, 3, 3, 2, 1, 1},
                        {5, 5, 5, 5, 1, 1, 2, 2}};
  int which = 0;
  for (const Case& k : cases) {
    sn::cpu::PoolGeom g;
    g.n = 2;
    g.c = 3;
    g.h_in = k.h;
    g.w_in = k.w;
    g.kernel_h = k.kh;
    g.kernel_w = k.kw;
    g.stride_h = k.sh;
    g.stride_w = k.sw;
    g.pad_h = k.ph;
    g.pad_w = k.pw;
    g.h_out = (k.h + 2 * k.ph - k.kh) / k.sh + 1;
    g.w_out = (k.w + 2 * k.pw - k.kw) / k.sw + 1;
    const math::Pool m{g.n,        g.c,        g.h_in,     g.w_in,     g.h_out, g.w_out,
                       g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.pad_h, g.pad_w};
    const int64_t in_count = g.n * g.c * g.h_in * g.w_in;
    const int64_t out_count = g.n * g.c * g.h_out * g.w_out;
    const std::string tag = " case " + std::to_string(which++);
    for (int ties = 0; ties < 2; ++ties) {
      const std::vector<float> x = ties ? tie_vec(in_count, 10) : random_vec(in_count, 11);
      const std::vector<float> dy = random_vec(out_count, 12);
      const std::string t = tag + (ties ? " ties" : "");
      std::vector<float> want(static_cast<size_t>(out_count)), got(want.size());
      sn::cpu::maxpool_forward(g, x.data(), want.data());
      for (int64_t o = 0; o < out_count; ++o) got[o] = math::maxpool_forward(m, x.data(), o);
      check_bits(got, want, "maxpool forward" + t);
      std::vector<float> dx_want = random_vec(in_count, 13), dx_got = dx_want;
      sn::cpu::maxpool_backward(g, x.data(), dy.data(), dx_want.data());
      for (int64_t e = 0; e < in_count; ++e)
        dx_got[e] = math::maxpool_backward(m, x.data(), dy.data(), dx_got[e], e);
      check_bits(dx_got, dx_want, "maxpool backward" + t);

      sn::cpu::avgpool_forward(g, x.data(), want.data());
      for (int64_t o = 0; o < out_count; ++o) got[o] = math::avgpool_forward(m, x.data(), o);
      check_bits(got, want, "avgpool forward" + t);
      dx_want = random_vec(in_count, 14);
      dx_got = dx_want;
      sn::cpu::avgpool_backward(g, dy.data(), dx_want.data());
      for (int64_t e = 0; e < in_count; ++e)
        dx_got[e] = math::avgpool_backward(m, dy.data(), dx_got[e], e);
      check_bits(dx_got, dx_want, "avgpool backward" + t);
    }
  }
  const int64_t planes = 6, hw = 49;
  const std::vector<float> x = random_vec(planes * hw, 15);
  std::vector<float> want(planes), got(planes);
  sn::cpu::global_avgpool_forward(2, 3, hw, x.data(), want.data());
  for (int64_t p = 0; p < planes; ++p) got[p] = math::global_avgpool_forward(x.data(), hw, p);
  check_bits(got, want, "global avgpool forward");
}

// ------------------------------------------------------------------ LRN
void test_lrn() {
  for (int64_t size : {1, 2, 3, 4, 5, 7}) {
    sn::cpu::LrnGeom g;
    g.n = 2;
    g.c = 6;
    g.hw = 10;
    g.size = size;
    g.alpha = 0.3f;  // large, so the window matters
    g.beta = 0.75f;
    g.k = 1.5f;
    const math::Lrn m{g.n, g.c, g.hw, g.size, g.alpha, g.beta, g.k};
    const int64_t count = g.n * g.c * g.hw;
    const std::vector<float> x = random_vec(count, 20), dy = random_vec(count, 21);
    std::vector<float> ws(static_cast<size_t>(sn::cpu::lrn_workspace_floats(g)));
    std::vector<float> want(static_cast<size_t>(count)), got(want.size());
    sn::cpu::lrn_forward(g, x.data(), want.data(), ws.data());
    for (int64_t e = 0; e < count; ++e) got[e] = math::lrn_forward(m, x.data(), e);
    const std::string tag = " size " + std::to_string(size);
    check_bits(got, want, "lrn forward" + tag);
    std::vector<float> dx_want = random_vec(count, 22), dx_got = dx_want;
    sn::cpu::lrn_backward(g, x.data(), want.data(), dy.data(), dx_want.data(), ws.data());
    for (int64_t e = 0; e < count; ++e)
      dx_got[e] = math::lrn_backward(m, x.data(), want.data(), dy.data(), dx_got[e], e);
    check_bits(dx_got, dx_want, "lrn backward" + tag);
  }
}

// ------------------------------------------------------------------ concat
void test_concat() {
  const int64_t n = 3, hw = 5;
  const std::vector<int64_t> channels = {2, 1, 4};
  const int64_t total = 7;
  std::vector<std::vector<float>> xs;
  std::vector<const float*> ptrs;
  for (size_t i = 0; i < channels.size(); ++i) {
    xs.push_back(random_vec(n * channels[i] * hw, 30 + i));
    ptrs.push_back(xs.back().data());
  }
  std::vector<float> want(static_cast<size_t>(n * total * hw)), got(want.size());
  sn::cpu::concat_forward(n, hw, 3, ptrs.data(), channels.data(), want.data());
  int64_t first = 0;
  for (size_t i = 0; i < channels.size(); ++i) {
    for (int64_t e = 0; e < n * channels[i] * hw; ++e)
      got[math::concat_offset(hw, channels[i], first, total, e)] = xs[i][e];
    first += channels[i];
  }
  check_bits(got, want, "concat forward");
  const std::vector<float> dy = random_vec(n * total * hw, 40);
  std::vector<std::vector<float>> dx_want, dx_got;
  std::vector<float*> dptrs;
  for (size_t i = 0; i < channels.size(); ++i) {
    dx_want.push_back(random_vec(n * channels[i] * hw, 50 + i));
    dx_got.push_back(dx_want.back());
  }
  for (auto& d : dx_want) dptrs.push_back(d.data());
  sn::cpu::concat_backward(n, hw, 3, dy.data(), channels.data(), dptrs.data());
  first = 0;
  for (size_t i = 0; i < channels.size(); ++i) {
    for (int64_t e = 0; e < n * channels[i] * hw; ++e)
      dx_got[i][e] += dy[math::concat_offset(hw, channels[i], first, total, e)];
    first += channels[i];
    check_bits(dx_got[i], dx_want[i], "concat backward input " + std::to_string(i));
  }
}

// ------------------------------------------------------------------ softmax xent
void test_softmax_xent() {
  const int64_t n = 9, classes = 13;
  const std::vector<float> logits = random_vec(n * classes, 60, -8.0f, 8.0f);
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) labels[r] = static_cast<int32_t>((r * 5) % classes);
  std::vector<float> probs_want(logits.size()), probs_got(logits.size());
  int64_t correct_want = -1;
  const float loss_want = sn::cpu::softmax_xent_forward(n, classes, logits.data(), labels.data(),
                                                        probs_want.data(), &correct_want);
  double total = 0.0;
  int64_t correct_got = 0;
  for (int64_t r = 0; r < n; ++r) {
    bool right = false;
    total += math::softmax_xent_row(classes, logits.data(), labels[r], probs_got.data(), r, right);
    correct_got += right ? 1 : 0;
  }
  const float loss_got = static_cast<float>(total / static_cast<double>(n));
  check(loss_got == loss_want,
        "softmax xent loss " + std::to_string(loss_got) + " want " + std::to_string(loss_want));
  check(correct_got == correct_want, "softmax xent correct count");
  check_bits(probs_got, probs_want, "softmax xent probabilities");
  std::vector<float> d_want = random_vec(n * classes, 61), d_got = d_want;
  sn::cpu::softmax_xent_backward(n, classes, probs_want.data(), labels.data(), d_want.data());
  const float inv_n = 1.0f / static_cast<float>(n);
  for (int64_t e = 0; e < n * classes; ++e)
    d_got[e] =
        math::softmax_xent_grad(classes, probs_want.data(), labels.data(), inv_n, d_got[e], e);
  check_bits(d_got, d_want, "softmax xent backward");
}

// ------------------------------------------------------------------ fully connected
// cublasSgemm's definition (column-major, alpha 1; beta 0 never reads C), in double.
void reference_gemm(const math::Gemm& g, const float* a, const float* b, float* c) {
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      double acc = 0.0;
      for (int64_t l = 0; l < g.k; ++l) {
        const float av = g.trans_a ? a[l + i * g.lda] : a[i + l * g.lda];
        const float bv = g.trans_b ? b[j + l * g.ldb] : b[l + j * g.ldb];
        acc += static_cast<double>(av) * bv;
      }
      float& out = c[i + j * g.ldc];
      out = static_cast<float>(acc + (g.beta == 0.0f ? 0.0 : g.beta * out));
    }
}

void test_fc_gemms() {
  const int64_t n = 5, in = 7, out = 3;
  const std::vector<float> x = random_vec(n * in, 80), w = random_vec(out * in, 81);
  const std::vector<float> dy = random_vec(n * out, 82);
  const math::FcGemms g = math::fc_gemms(n, in, out);
  std::vector<float> y_want(static_cast<size_t>(n * out)), y_got(y_want.size());
  sn::cpu::fc_forward(n, in, out, x.data(), w.data(), nullptr, y_want.data());
  reference_gemm(g.forward, w.data(), x.data(), y_got.data());
  check_close(y_got, y_want, 1e-6, "fc forward GEMM arguments");
  std::vector<float> dx_want = random_vec(n * in, 83), dx_got = dx_want;
  std::vector<float> dw_want(static_cast<size_t>(out * in)), dw_got(dw_want.size(), NAN);
  sn::cpu::fc_backward(n, in, out, x.data(), w.data(), dy.data(), dx_want.data(), dw_want.data(),
                       nullptr);
  reference_gemm(g.backward_data, w.data(), dy.data(), dx_got.data());
  reference_gemm(g.backward_weight, x.data(), dy.data(), dw_got.data());
  check_close(dx_got, dx_want, 1e-6, "fc data gradient GEMM arguments (accumulated)");
  check_close(dw_got, dw_want, 1e-6, "fc weight gradient GEMM arguments (overwritten)");
}

// ------------------------------------------------------------------ batch norm
// The device sums in another order (a block tree), emulated here by a plain sequential
// double sum, so the comparisons allow a few float ulps.
void test_batchnorm() {
  sn::cpu::BatchNormGeom g;
  g.n = 4;
  g.c = 3;
  g.hw = 37;
  g.eps = 1e-5f;
  g.momentum = 0.1f;
  const int64_t count = g.n * g.c * g.hw, m = g.n * g.hw;
  const std::vector<float> x = random_vec(count, 70, -2.0f, 3.0f), dy = random_vec(count, 71);
  const std::vector<float> gamma = random_vec(g.c, 72, 0.5f, 1.5f), beta = random_vec(g.c, 73);
  auto at = [&](int64_t ch, int64_t e) { return math::channel_element(g.c, g.hw, ch, e); };

  std::vector<float> y_want(static_cast<size_t>(count)), y_got(y_want.size());
  std::vector<float> mean_want(g.c), invstd_want(g.c), mean_got(g.c), invstd_got(g.c);
  std::vector<float> rm_want = random_vec(g.c, 74), rv_want = random_vec(g.c, 75, 0.5f, 2.0f);
  std::vector<float> rm_got = rm_want, rv_got = rv_want;
  sn::cpu::batchnorm_forward_train(g, x.data(), gamma.data(), beta.data(), y_want.data(),
                                   mean_want.data(), invstd_want.data(), rm_want.data(),
                                   rv_want.data());
  for (int64_t ch = 0; ch < g.c; ++ch) {
    double sum = 0.0;
    for (int64_t e = 0; e < m; ++e) sum += x[at(ch, e)];
    const double mean = sum / static_cast<double>(m);
    double sq = 0.0;
    for (int64_t e = 0; e < m; ++e) {
      const double d = x[at(ch, e)] - mean;
      sq += d * d;
    }
    const math::BnChannel r = math::bn_train_channel(sum, sq, m, g.eps, gamma[ch], beta[ch]);
    for (int64_t e = 0; e < m; ++e) y_got[at(ch, e)] = x[at(ch, e)] * r.scale + r.shift;
    mean_got[ch] = r.save_mean;
    invstd_got[ch] = r.save_invstd;
    rm_got[ch] = math::running_update(rm_got[ch], g.momentum, r.batch_mean);
    rv_got[ch] = math::running_update(rv_got[ch], g.momentum, r.unbiased_var);
  }
  check_close(y_got, y_want, 1e-6, "batchnorm forward train");
  check_close(mean_got, mean_want, 1e-6, "batchnorm saved mean");
  check_close(invstd_got, invstd_want, 1e-6, "batchnorm saved invstd");
  check_close(rm_got, rm_want, 1e-6, "batchnorm running mean");
  check_close(rv_got, rv_want, 1e-6, "batchnorm running var (unbiased)");

  sn::cpu::batchnorm_forward_infer(g, x.data(), gamma.data(), beta.data(), rm_want.data(),
                                   rv_want.data(), y_want.data());
  for (int64_t i = 0; i < count; ++i) {
    const int64_t ch = (i / g.hw) % g.c;
    float scale = 0.0f, shift = 0.0f;
    math::bn_infer_channel(gamma[ch], beta[ch], rm_want[ch], rv_want[ch], g.eps, scale, shift);
    y_got[i] = x[i] * scale + shift;
  }
  check_bits(y_got, y_want, "batchnorm forward infer");

  std::vector<float> dx_want = random_vec(count, 76), dx_got = dx_want;
  std::vector<float> dg_want(g.c), db_want(g.c), dg_got(g.c), db_got(g.c);
  sn::cpu::batchnorm_backward(g, x.data(), gamma.data(), mean_want.data(), invstd_want.data(),
                              dy.data(), dx_want.data(), dg_want.data(), db_want.data());
  for (int64_t ch = 0; ch < g.c; ++ch) {
    const float mean = mean_want[ch], invstd = invstd_want[ch];
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int64_t e = 0; e < m; ++e) {
      const float d = dy[at(ch, e)];
      sum_dy += d;
      sum_dy_xhat += static_cast<double>(d) * ((x[at(ch, e)] - mean) * invstd);
    }
    db_got[ch] = static_cast<float>(sum_dy);
    dg_got[ch] = static_cast<float>(sum_dy_xhat);
    const float mean_dy = static_cast<float>(sum_dy / static_cast<double>(m));
    const float mean_dy_xhat = static_cast<float>(sum_dy_xhat / static_cast<double>(m));
    for (int64_t e = 0; e < m; ++e) {
      const int64_t o = at(ch, e);
      dx_got[o] =
          math::bn_dx(x[o], dy[o], dx_got[o], gamma[ch], mean, invstd, mean_dy, mean_dy_xhat);
    }
  }
  check_close(dx_got, dx_want, 1e-5, "batchnorm backward dx");
  check_close(dg_got, dg_want, 1e-5, "batchnorm backward dgamma");
  check_close(db_got, db_want, 1e-5, "batchnorm backward dbeta");
}

}  // namespace

void test_measured_order() {
  using sn::cuda::measured_order;
  const double inf = std::numeric_limits<double>::infinity();
  auto same = [](const std::vector<size_t>& got, const std::vector<size_t>& want,
                 const char* what) { check(got == want, std::string("measured_order: ") + what); };
  same(measured_order({100, 0, 50}, {3.0, 5.0, 1.0}), {2, 0, 1}, "fastest first, least last");
  same(measured_order({0, 100}, {1.0, 2.0}), {0, 1, 0}, "the least repeated at the end");
  same(measured_order({100, 0, 50}, {3.0, inf, 1.0}), {2, 0, 2}, "unmeasured least dropped");
  same(measured_order({100, 0}, {inf, inf}), {}, "nothing measured: empty");
  same(measured_order({}, {}), {}, "no choices");
  same(measured_order({10, 10}, {2.0, 2.0}), {0, 1, 0}, "ties keep the heuristic order");
  // Property: every finite choice once in time order, no unmeasured one, and the last
  // entry the least workspace among the measured.
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 500; ++trial) {
    const size_t n = rng() % 7;
    std::vector<size_t> ws(n);
    std::vector<double> ms(n);
    for (size_t k = 0; k < n; ++k) {
      ws[k] = rng() % 5;
      ms[k] = rng() % 4 == 0 ? inf : static_cast<double>(rng() % 6);
    }
    const std::vector<size_t> order = measured_order(ws, ms);
    std::vector<size_t> finite;
    for (size_t k = 0; k < n; ++k)
      if (std::isfinite(ms[k])) finite.push_back(k);
    if (finite.empty()) {
      check(order.empty(), "measured_order property: nothing measured");
      continue;
    }
    bool ok = !order.empty();
    size_t least_ws = ws[finite.front()];
    for (size_t k : finite) least_ws = std::min(least_ws, ws[k]);
    ok = ok && ws[order.back()] == least_ws;
    const size_t body = order.size() - (order.size() > finite.size() ? 1 : 0);
    ok = ok && body == finite.size() && order.size() <= finite.size() + 1;
    std::vector<size_t> seen(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(body));
    for (size_t i = 1; i < seen.size(); ++i) ok = ok && ms[seen[i - 1]] <= ms[seen[i]];
    std::sort(seen.begin(), seen.end());
    ok = ok && seen == finite;
    check(ok, "measured_order property, trial " + std::to_string(trial));
  }
}

int main() {
  test_measured_order();
  test_indexing();
  test_dropout();
  test_elementwise();
  test_covering();
  test_pool();
  test_lrn();
  test_concat();
  test_softmax_xent();
  test_fc_gemms();
  test_batchnorm();
  std::printf("test_cuda_kernel_math: %lld checks, %lld failures\n",
              static_cast<long long>(g_checks), static_cast<long long>(g_failures));
  return g_failures == 0 ? 0 : 1;
}
