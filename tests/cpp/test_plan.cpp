// Planner passes in C++: per-step algorithm choice under the memory left, executed at the
// planned offsets. A test backend offers every convolution a second, faster algorithm
// with a much larger workspace (running the same kernel), so the choice can be checked
// without depending on which algorithms the CPU backend has.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "check.h"
#include "core/errors.h"
#include "cpu_forwarding_backend.h"
#include "exec/executor.h"
#include "plan/memory_plan.h"

namespace {

using sn_test::check;

class TwoAlgorithmBackend final : public sn_test::CpuForwardingBackend {
 public:
  static constexpr int64_t kBigFloats = 1 << 16;  // floats: 256 KiB of scratch
  std::string name() const override { return "two-algorithm test backend"; }
  std::vector<sn::Algorithm> algorithms(const sn::Graph& g, int id, int64_t b) const override {
    std::vector<sn::Algorithm> a = cpu_->algorithms(g, id, b);
    if (g.layer(id).kind == sn::LayerKind::kConv2d)
      a.insert(a.begin(), {"big", std::max(kBigFloats, a[0].workspace_floats), 0.5 * a[0].cost_ms});
    return a;
  }
  // "big" runs the CPU's fastest algorithm; the others are the CPU's, one index later.
  void forward(const sn::Graph& g, int id, sn::LayerIO& io, bool training) const override {
    sn::LayerIO cpu_io = as_cpu(g, id, io);
    cpu_->forward(g, id, cpu_io, training);
    io.loss = cpu_io.loss;
    io.correct = cpu_io.correct;
  }
  void backward(const sn::Graph& g, int id, sn::LayerIO& io) const override {
    sn::LayerIO cpu_io = as_cpu(g, id, io);
    cpu_->backward(g, id, cpu_io);
  }

 private:
  static sn::LayerIO as_cpu(const sn::Graph& g, int id, const sn::LayerIO& io) {
    sn::LayerIO cpu_io = io;
    if (g.layer(id).kind == sn::LayerKind::kConv2d)
      cpu_io.algorithm = std::max(0, io.algorithm - 1);
    return cpu_io;
  }
};

sn::Graph net() {
  sn::Graph g;
  g.add("x", "input", {}, {{"c", 4}, {"h", 8}, {"w", 8}});
  g.add("c1", "conv2d", {"x"},
        {{"out_channels", 8}, {"kernel_h", 3}, {"kernel_w", 3}, {"pad_h", 1}, {"pad_w", 1}});
  g.add("r1", "relu", {"c1"}, {});
  g.add("c2", "conv2d", {"r1"},
        {{"out_channels", 8}, {"kernel_h", 3}, {"kernel_w", 3}, {"pad_h", 1}, {"pad_w", 1}});
  g.add("fc", "fc", {"c2"}, {{"out_features", 3}});
  g.add("loss", "softmax_cross_entropy", {"fc"}, {});
  return g;
}

// Counts conv steps that took the big-workspace algorithm (index 0).
int big_steps(const sn::Graph& g, const sn::MemoryPlan& p) {
  int n = 0;
  for (const sn::PlanStep& s : p.train_steps)
    if (g.layer(s.layer).kind == sn::LayerKind::kConv2d && s.algorithm == 0) ++n;
  return n;
}

// One training iteration through the executor; returns the loss.
double run(const sn::Graph& g, const sn::Backend& be, const sn::MemoryPlan& p) {
  void* base = std::aligned_alloc(256, static_cast<size_t>(p.high_water_bytes));
  sn::ArenaPool pool(p.capacity_bytes, base);
  sn::ArenaPool host(256, nullptr);  // no copies in these plans
  double loss = 0.0;
  {
    sn::Executor ex(g, be, p, pool, host);
    ex.run_setup();
    float* labels = ex.data({g.loss_layer(), sn::TensorRole::kLabels, 0});
    reinterpret_cast<int32_t*>(labels)[0] = 1;
    reinterpret_cast<int32_t*>(labels)[1] = 2;
    for (int id = 0; id < g.size(); ++id)
      for (int i = 0; i < static_cast<int>(sn::param_shapes(g, id).size()); ++i) {
        float* w = ex.data({id, sn::TensorRole::kParam, i});
        const int64_t n = sn::param_shapes(g, id)[static_cast<size_t>(i)].numel();
        for (int64_t k = 0; k < n; ++k) w[k] = 0.01f * static_cast<float>((k * 7 + i) % 13 - 6);
        float* v = ex.data({id, sn::TensorRole::kMomentum, i});
        if (v) be.fill_zero(v, n);
      }
    std::vector<float> x(2 * 4 * 8 * 8);
    for (size_t k = 0; k < x.size(); ++k) x[k] = 0.1f * static_cast<float>(k % 17) - 0.8f;
    sn::SgdConfig sgd{0.1f, 0.9f, 0.0f};
    sn::RunContext ctx;
    ctx.n = 2;
    ctx.x = x.data();
    ctx.sgd = &sgd;
    std::vector<int64_t> trace;
    ex.run(p.train_steps, ctx, trace);  // asserts every allocation's planned offset
    ctx.sgd = &sgd;
    ex.run(p.train_steps, ctx, trace);
    loss = ctx.loss;
    std::vector<int64_t> planned;
    for (const sn::PlanStep& s : p.train_steps) planned.push_back(s.bytes_in_use);
    check(trace == planned, "measured trace equals the plan");
  }
  std::free(base);
  return loss;
}

}  // namespace

int main() {
  const sn::Graph g = net();
  TwoAlgorithmBackend be;
  const sn::MemoryPlan free_plan = sn::plan_memory(g, be, 2, "liveness", 0);
  check(big_steps(g, free_plan) == 4, "no budget: every conv step takes the fastest algorithm");

  // A budget just above what the smallest workspaces need: the big one no longer fits.
  sn::MemoryPlan probe = sn::plan_memory(g, be, 2, "liveness", int64_t{1} << 40);
  const int64_t need = [&] {
    int64_t lo = 256, hi = probe.peak_bytes;
    while (hi - lo > 256) {
      const int64_t mid = (lo + hi) / 2 / 256 * 256;
      (sn::plan_memory(g, be, 2, "liveness", mid).fits ? hi : lo) = mid;
    }
    return hi;
  }();
  const sn::MemoryPlan tight = sn::plan_memory(g, be, 2, "liveness", need);
  check(tight.fits, "the smallest budget fits");
  check(big_steps(g, tight) == 0, "tight budget: every conv step takes the small workspace");
  check(tight.peak_bytes < free_plan.peak_bytes, "the smaller workspaces lower the peak");
  const int64_t between = need + TwoAlgorithmBackend::kBigFloats * 4;
  const sn::MemoryPlan some = sn::plan_memory(g, be, 2, "liveness", between);
  check(some.fits && some.peak_bytes <= between, "a middle budget fits under itself");
  check(big_steps(g, some) >= 1, "a middle budget lets some conv steps take the big workspace");

  const double a = run(g, be, free_plan), b = run(g, be, tight), c = run(g, be, some);
  check(a == b && b == c, "results do not depend on the choice (same kernel here)");
  return sn_test::report("test_plan");
}
