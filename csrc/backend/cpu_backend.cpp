// The CPU backend: maps each layer kind to the kernels in backend/cpu/kernels.h.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "core/errors.h"
#include "graph/cost.h"

namespace sn {
namespace {

cpu::PoolGeom pool_geom(const Graph& g, const Layer& l, int64_t n) {
  const Dims& in = g.layer(l.inputs[0]).out;
  const LayerAttrs& a = l.attrs;
  cpu::PoolGeom p;
  p.n = n;
  p.c = in.c;
  p.h_in = in.h;
  p.w_in = in.w;
  p.h_out = l.out.h;
  p.w_out = l.out.w;
  p.kernel_h = a.kernel_h;
  p.kernel_w = a.kernel_w;
  p.stride_h = a.stride_h;
  p.stride_w = a.stride_w;
  p.pad_h = a.pad_h;
  p.pad_w = a.pad_w;
  return p;
}

cpu::BatchNormGeom bn_geom(const Layer& l, int64_t n) {
  cpu::BatchNormGeom b;
  b.n = n;
  b.c = l.out.c;
  b.hw = l.out.h * l.out.w;
  b.eps = l.attrs.eps;
  b.momentum = l.attrs.momentum;
  return b;
}

cpu::LrnGeom lrn_geom(const Layer& l, int64_t n) {
  cpu::LrnGeom r;
  r.n = n;
  r.c = l.out.c;
  r.hw = l.out.h * l.out.w;
  r.size = l.attrs.size;
  r.alpha = l.attrs.alpha;
  r.beta = l.attrs.beta;
  r.k = l.attrs.k;
  return r;
}

// Note [Cost model rates]
// The cost model's kernel and copy rates: 50 GFLOP/s and 5 GB/s by default (the
// development machine, roughly), so that plans are the same on every machine. A machine
// can be calibrated explicitly (`superneurons calibrate` prints the two settings):
// SUPERNEURONS_CPU_GFLOPS and SUPERNEURONS_COPY_GBPS, read when a backend is made, then
// change prefetch distances and the superneurons search's choice for that process.
constexpr double kDefaultFlopsPerMs = 5.0e7;  // FLOP per ms
constexpr double kDefaultCopyBytesPerMs = 5.0e6;

// A positive finite rate from the environment, times `scale`, or `fallback` when unset.
double rate_from_env(const char* name, double scale, double fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || !std::isfinite(v) || v <= 0.0)
    throw ArgumentError(std::string(name) + " must be a positive number, got '" + text + "'");
  return v * scale;
}

float* param_or_null(const std::vector<float*>& v, size_t i) {
  return i < v.size() ? v[i] : nullptr;
}

class CpuBackend final : public Backend {
 public:
  CpuBackend()
      : flops_per_ms_(rate_from_env("SUPERNEURONS_CPU_GFLOPS", 1.0e6, kDefaultFlopsPerMs)),
        copy_bytes_per_ms_(rate_from_env("SUPERNEURONS_COPY_GBPS", 1.0e6, kDefaultCopyBytesPerMs)),
        plan_threads_(cpu::num_threads()) {}
  std::string name() const override { return "cpu"; }

  // Note [Conv slots]: the slot counts offered, most first: the threads when the backend
  // was made (the plan's workspaces are sized then; a later, larger thread count uses no
  // more slots than planned), then a quarter of that, and so on down to 1.
  std::vector<int> conv_slot_options() const {
    std::vector<int> slots{plan_threads_};
    while (slots.back() > 1) slots.push_back(std::max(1, slots.back() / 4));
    return slots;
  }
  int conv_slots(int algorithm) const {
    const std::vector<int> slots = conv_slot_options();
    SN_ASSERT(algorithm >= 0 && static_cast<size_t>(algorithm) < slots.size(),
              "conv2d: algorithm " + std::to_string(algorithm) + " is not offered");
    return slots[static_cast<size_t>(algorithm)];
  }
  double copy_bytes_per_ms() const override { return copy_bytes_per_ms_; }

  int64_t aux_floats(const Graph& g, int id, int64_t batch) const override {
    const Layer& l = g.layer(id);
    switch (l.kind) {
      case LayerKind::kBatchNorm:
        return 2 * l.out.c;  // saved mean and inverse std
      case LayerKind::kSoftmaxXent:
        return batch * g.layer(l.inputs[0]).out.numel();  // probabilities
      default:
        return 0;
    }
  }

  std::vector<Algorithm> algorithms(const Graph& g, int id, int64_t batch) const override {
    const Layer& l = g.layer(id);
    const double flops = layer_forward_flops(g, id, batch);
    switch (l.kind) {
      case LayerKind::kConv2d: {
        // Backward costs about twice the forward (dW and dX GEMMs); fewer slots run on
        // fewer threads (Note [Conv slots] in cpu/conv.cpp).
        const cpu::ConvGeom geom = conv_geom(g, l, batch);
        const double all_threads_ms = 3.0 * flops / flops_per_ms_;
        if (cpu::conv2d_workspace_floats(geom, 1) == 0) return {{"gemm-1x1", 0, all_threads_ms}};
        std::vector<Algorithm> algos;
        for (int slots : conv_slot_options())
          algos.push_back({"im2col-x" + std::to_string(slots),
                           cpu::conv2d_workspace_floats(geom, slots),
                           all_threads_ms * plan_threads_ / slots});
        return algos;
      }
      case LayerKind::kLrn:
        return {
            {"lrn", cpu::lrn_workspace_floats(lrn_geom(l, batch)), 3.0 * flops / flops_per_ms_}};
      default:
        return {{"default", 0, 3.0 * flops / flops_per_ms_}};
    }
  }

  std::vector<int> in_place_inputs(const Graph& g, int id) const override {
    switch (g.layer(id).kind) {
      case LayerKind::kRelu:     // elementwise: y[i] depends on x[i] only
      case LayerKind::kDropout:  // y[i] = x[i] * mask(i) / (1 - p)
      case LayerKind::kFlatten:  // a view: no copy at all when aliased
        return {0};
      case LayerKind::kAdd:
        return {0, 1};
      default:
        return {};
    }
  }

  std::vector<int> pass_through_inputs(const Graph& g, int id) const override {
    switch (g.layer(id).kind) {
      case LayerKind::kAdd:
        return {0, 1};
      case LayerKind::kFlatten:
        return {0};
      default:
        return {};
    }
  }

  KernelReads backward_reads(const Graph& g, int id) const override {
    switch (g.layer(id).kind) {
      case LayerKind::kConv2d:     // dW = dy * x
      case LayerKind::kFc:         // dW = dy^T x
      case LayerKind::kBatchNorm:  // x - mean
      case LayerKind::kMaxPool:    // the argmax is recomputed from x
        return {true, false};
      case LayerKind::kRelu:  // y > 0 exactly where x > 0, so x may die at the ReLU
        return {false, true};
      case LayerKind::kLrn:
        return {true, true};
      default:  // avg/global pool, dropout (mask from seed), add, concat, flatten, loss (aux)
        return {false, false};
    }
  }

  void forward(const Graph& g, int id, LayerIO& io, bool training) const override {
    const Layer& l = g.layer(id);
    const int64_t n = io.n;
    const int64_t count = n * l.out.numel();
    switch (l.kind) {
      case LayerKind::kInput:
        break;  // the executor copies the batch into the output buffer
      case LayerKind::kConv2d:
        cpu::conv2d_forward(conv_geom(g, l, n), io.x[0], io.params[0], param_or_null(io.params, 1),
                            io.y, io.workspace, conv_slots(io.algorithm));
        break;
      case LayerKind::kFc:
        cpu::fc_forward(n, g.layer(l.inputs[0]).out.numel(), l.out.c, io.x[0], io.params[0],
                        param_or_null(io.params, 1), io.y);
        break;
      case LayerKind::kBatchNorm:
        if (training)
          cpu::batchnorm_forward_train(bn_geom(l, n), io.x[0], io.params[0], io.params[1], io.y,
                                       io.aux, io.aux + l.out.c,
                                       io.update_running_stats ? io.params[2] : nullptr,
                                       io.update_running_stats ? io.params[3] : nullptr);
        else
          cpu::batchnorm_forward_infer(bn_geom(l, n), io.x[0], io.params[0], io.params[1],
                                       io.params[2], io.params[3], io.y);
        break;
      case LayerKind::kRelu:
        cpu::relu_forward(count, io.x[0], io.y);
        break;
      case LayerKind::kMaxPool:
        cpu::maxpool_forward(pool_geom(g, l, n), io.x[0], io.y);
        break;
      case LayerKind::kAvgPool:
        cpu::avgpool_forward(pool_geom(g, l, n), io.x[0], io.y);
        break;
      case LayerKind::kGlobalAvgPool: {
        const Dims& in = g.layer(l.inputs[0]).out;
        cpu::global_avgpool_forward(n, in.c, in.h * in.w, io.x[0], io.y);
        break;
      }
      case LayerKind::kDropout:
        if (training)
          cpu::dropout_forward(count, l.attrs.p, io.dropout_seed, io.x[0], io.y);
        else if (io.y != io.x[0])
          copy(io.y, io.x[0], count);
        break;
      case LayerKind::kLrn:
        cpu::lrn_forward(lrn_geom(l, n), io.x[0], io.y, io.workspace);
        break;
      case LayerKind::kAdd:
        cpu::add_forward(count, io.x[0], io.x[1], io.y);
        break;
      case LayerKind::kConcat: {
        std::vector<int64_t> channels;
        for (int in : l.inputs) channels.push_back(g.layer(in).out.c);
        cpu::concat_forward(n, l.out.h * l.out.w, static_cast<int64_t>(io.x.size()), io.x.data(),
                            channels.data(), io.y);
        break;
      }
      case LayerKind::kFlatten:
        if (io.y != io.x[0]) copy(io.y, io.x[0], count);  // in place it is a view
        break;
      case LayerKind::kSoftmaxXent: {
        int64_t classes = g.layer(l.inputs[0]).out.numel();
        io.loss = cpu::softmax_xent_forward(n, classes, io.x[0], io.labels, io.aux, &io.correct);
        break;
      }
    }
  }

  void backward(const Graph& g, int id, LayerIO& io) const override {
    const Layer& l = g.layer(id);
    const int64_t n = io.n;
    const int64_t count = n * l.out.numel();
    switch (l.kind) {
      case LayerKind::kInput:
        break;
      case LayerKind::kConv2d:
        cpu::conv2d_backward(conv_geom(g, l, n), io.x[0], io.params[0], io.dy, io.dx[0],
                             io.param_grads[0], param_or_null(io.param_grads, 1), io.workspace,
                             conv_slots(io.algorithm));
        break;
      case LayerKind::kFc:
        cpu::fc_backward(n, g.layer(l.inputs[0]).out.numel(), l.out.c, io.x[0], io.params[0], io.dy,
                         io.dx[0], io.param_grads[0], param_or_null(io.param_grads, 1));
        break;
      case LayerKind::kBatchNorm:
        cpu::batchnorm_backward(bn_geom(l, n), io.x[0], io.params[0], io.aux, io.aux + l.out.c,
                                io.dy, io.dx[0], io.param_grads[0], io.param_grads[1]);
        break;
      case LayerKind::kRelu:
        if (io.dx[0]) cpu::relu_backward(count, io.y, io.dy, io.dx[0]);  // see backward_reads
        break;
      case LayerKind::kMaxPool:
        if (io.dx[0]) cpu::maxpool_backward(pool_geom(g, l, n), io.x[0], io.dy, io.dx[0]);
        break;
      case LayerKind::kAvgPool:
        if (io.dx[0]) cpu::avgpool_backward(pool_geom(g, l, n), io.dy, io.dx[0]);
        break;
      case LayerKind::kGlobalAvgPool:
        if (io.dx[0]) {
          const Dims& in = g.layer(l.inputs[0]).out;
          cpu::global_avgpool_backward(n, in.c, in.h * in.w, io.dy, io.dx[0]);
        }
        break;
      case LayerKind::kDropout:
        if (io.dx[0]) cpu::dropout_backward(count, l.attrs.p, io.dropout_seed, io.dy, io.dx[0]);
        break;
      case LayerKind::kLrn:
        if (io.dx[0])
          cpu::lrn_backward(lrn_geom(l, n), io.x[0], io.y, io.dy, io.dx[0], io.workspace);
        break;
      case LayerKind::kAdd:
      case LayerKind::kFlatten:
        for (float* dx : io.dx)
          if (dx && dx != io.dy) cpu::accumulate(count, io.dy, dx);  // dx == dy: passed through
        break;
      case LayerKind::kConcat: {
        std::vector<int64_t> channels;
        for (int in : l.inputs) channels.push_back(g.layer(in).out.c);
        cpu::concat_backward(n, l.out.h * l.out.w, static_cast<int64_t>(io.dx.size()), io.dy,
                             channels.data(), io.dx.data());
        break;
      }
      case LayerKind::kSoftmaxXent:
        if (io.dx[0]) {
          int64_t classes = g.layer(l.inputs[0]).out.numel();
          cpu::softmax_xent_backward(n, classes, io.aux, io.labels, io.dx[0]);
        }
        break;
    }
  }

  void sgd_update(int64_t count, const SgdConfig& cfg, float* w, const float* dw,
                  float* velocity) const override {
    cpu::sgd_update(count, cfg.lr, cfg.momentum, cfg.weight_decay, w, dw, velocity);
  }

  void fill_zero(float* data, int64_t count) const override {
    std::memset(data, 0, static_cast<size_t>(count) * sizeof(float));
  }

  bool all_finite(const float* data, int64_t count) const override {
    return cpu::all_finite(count, data);
  }

  void copy(float* dst, const float* src, int64_t count) const override {
    std::memcpy(dst, src, static_cast<size_t>(count) * sizeof(float));
  }

 private:
  double flops_per_ms_;       // Note [Cost model rates]
  double copy_bytes_per_ms_;  // bytes per ms
  int plan_threads_;          // cpu::num_threads() when the backend was made
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace sn
