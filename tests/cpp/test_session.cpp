// The executor end to end in C++ (run under ASan/UBSan in CI): a small residual DAG
// trains identically under policies none, liveness and liveness+recompute (the
// source's recomputation: no budget), the measured trace equals the
// plan, an over-budget plan raises OutOfMemoryError, and bad graphs raise GraphError.
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "core/errors.h"
#include "exec/session.h"

namespace {

using sn_test::check;

sn::Graph residual_net() {
  sn::Graph g;
  g.add("x", "input", {}, {{"c", 3}, {"h", 6}, {"w", 6}});
  g.add("c1", "conv2d", {"x"},
        {{"out_channels", 4}, {"kernel_h", 3}, {"kernel_w", 3}, {"pad_h", 1}, {"pad_w", 1}});
  g.add("bn1", "batchnorm", {"c1"}, {});
  g.add("r1", "relu", {"bn1"}, {});
  g.add("c2", "conv2d", {"r1"},
        {{"out_channels", 4}, {"kernel_h", 3}, {"kernel_w", 3}, {"pad_h", 1}, {"pad_w", 1}});
  g.add("j", "add", {"c2", "r1"}, {});
  g.add("p", "maxpool", {"j"},
        {{"kernel_h", 2}, {"kernel_w", 2}, {"stride_h", 2}, {"stride_w", 2}});
  g.add("cat", "concat", {"p", "p"}, {});
  g.add("d", "dropout", {"cat"}, {{"p", 0.25}});
  g.add("n", "lrn", {"d"}, {{"size", 3}});
  g.add("fc", "fc", {"n"}, {{"out_features", 5}});
  g.add("loss", "softmax_cross_entropy", {"fc"}, {});
  return g;
}

std::vector<double> train(const std::string& policy, std::vector<int64_t>* trace,
                          std::vector<int64_t>* planned) {
  sn::SessionOptions o;
  o.batch_size = 4;
  o.policy = policy;
  o.seed = 7;
  o.poison = true;
  sn::Session s(residual_net(), o);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  for (const sn::StateBuffer& b : s.state()) {
    int64_t n = 1;
    for (int64_t d : b.shape) n *= d;
    for (int64_t i = 0; i < n; ++i)
      b.data[i] = b.kind == "param"
                      ? normal(rng)
                      : (b.name.find("running_var") != std::string::npos ? 1.0f : 0.0f);
  }
  std::vector<float> x(4 * 3 * 6 * 6);
  for (float& v : x) v = normal(rng);
  std::vector<int32_t> y = {0, 1, 2, 4};
  std::vector<double> losses;
  for (int it = 0; it < 3; ++it)
    losses.push_back(s.train_step(x.data(), y.data(), 4, sn::SgdConfig{0.1f, 0.9f, 1e-4f}).loss);
  std::vector<float> logits(4 * 5);
  losses.push_back(s.evaluate(x.data(), y.data(), 4, logits.data()).loss);
  if (trace) *trace = s.memory_trace();
  if (planned) {
    planned->clear();
    for (const sn::PlanStep& step : s.plan().train_steps) planned->push_back(step.bytes_in_use);
  }
  check(s.memory_stats().in_use_bytes ==
            (policy == "none" ? s.plan().baseline_bytes : s.plan().resident_bytes),
        policy + ": pool balanced after the iteration");
  return losses;
}

}  // namespace

int main() {
  std::vector<int64_t> trace, planned;
  std::vector<double> none = train("none", nullptr, nullptr);
  std::vector<double> live = train("liveness", &trace, &planned);
  check(none == live, "liveness losses equal none's bit for bit");
  std::vector<int64_t> rtrace, rplanned;
  std::vector<double> recompute = train("liveness+recompute", &rtrace, &rplanned);
  check(none == recompute, "liveness+recompute losses equal none's bit for bit");
  check(rtrace == rplanned, "recompute: measured trace equals the plan");
  for (double l : none) check(std::isfinite(l), "finite loss");
  check(none[2] < none[0], "loss decreases");
  check(trace == planned, "measured trace equals the plan");

  auto backend = sn::make_cpu_backend();
  sn::MemoryPlan p = sn::plan_memory(residual_net(), *backend, 4, "liveness", 0);
  check(p.peak_bytes < p.baseline_bytes, "liveness saves memory");
  check(p.layer_bound_bytes <= p.peak_bytes, "bound below peak");

  bool threw = false;
  try {
    sn::SessionOptions o;
    o.batch_size = 4;
    o.policy = "liveness";
    o.budget_bytes = p.peak_bytes / 2;
    sn::Session s(residual_net(), o);
  } catch (const sn::OutOfMemoryError& e) {
    threw = std::string(e.what()).find("largest free block") != std::string::npos;
  }
  check(threw, "over-budget plan raises OutOfMemoryError with context");

  threw = false;
  try {
    sn::Graph g = residual_net();
    g.add("bad", "conv2d", {"fc"}, {{"out_channels", 2}, {"kernel_h", 3}, {"kernel_w", 3}});
  } catch (const sn::GraphError& e) {
    threw = e.layer() == "bad";
  }
  check(threw, "kernel larger than input raises GraphError naming the layer");

  return sn_test::report("test_session");
}
