// The planned timeline and the superneurons search that uses it: with free copies the
// budget is met by offload, with slow copies by recomputation; a plan without copies
// takes exactly its kernels' time.
#include <cstdio>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "check.h"
#include "cpu_forwarding_backend.h"
#include "plan/memory_plan.h"
#include "plan/passes.h"

namespace {

using sn_test::check;

// The CPU backend with another copy bandwidth (bytes per ms) for the cost model.
class CopySpeedBackend final : public sn_test::CpuForwardingBackend {
 public:
  explicit CopySpeedBackend(double bytes_per_ms) : bytes_per_ms_(bytes_per_ms) {}
  std::string name() const override { return "cpu with another copy bandwidth"; }
  double copy_bytes_per_ms() const override { return bytes_per_ms_; }

 private:
  double bytes_per_ms_;
};

// A chain of conv + BN + ReLU blocks: activations worth offloading or recomputing.
sn::Graph chain(int blocks) {
  sn::Graph g;
  g.add("x", "input", {}, {{"c", 4}, {"h", 16}, {"w", 16}});
  std::string prev = "x";
  for (int i = 0; i < blocks; ++i) {
    const std::string k = std::to_string(i);
    g.add("c" + k, "conv2d", {prev},
          {{"out_channels", 8}, {"kernel_h", 3}, {"kernel_w", 3}, {"pad_h", 1}, {"pad_w", 1}});
    g.add("b" + k, "batchnorm", {"c" + k}, {});
    g.add("r" + k, "relu", {"b" + k}, {});
    prev = "r" + k;
  }
  g.add("fc", "fc", {prev}, {{"out_features", 3}});
  g.add("loss", "softmax_cross_entropy", {"fc"}, {});
  return g;
}

}  // namespace

int main() {
  const sn::Graph g = chain(8);
  const CopySpeedBackend fast(1.0e12), slow(1.0e6);  // bytes per ms
  const int64_t batch = 8;

  // Without copies the iteration is its kernels, step by step.
  const sn::MemoryPlan live = sn::plan_memory(g, fast, batch, "liveness", 0);
  double kernels_ms = 0.0;
  for (const sn::PlanStep& s : live.train_steps) kernels_ms += sn::step_cost_ms(live, s);
  check(live.copy_ms == 0.0 && live.stall_ms == 0.0, "no copies, no stall");
  check(live.compute_ms == kernels_ms && live.estimated_ms == kernels_ms,
        "the estimate of a plan without copies is the sum of its kernels");

  // A budget liveness cannot meet: superneurons must recompute or offload.
  const int64_t budget = live.peak_bytes * 3 / 4 / 256 * 256;
  check(!sn::plan_memory(g, fast, batch, "liveness", budget).fits, "liveness does not fit");
  const sn::MemoryPlan by_copy = sn::plan_memory(g, fast, batch, "superneurons", budget);
  const sn::MemoryPlan by_recompute = sn::plan_memory(g, slow, batch, "superneurons", budget);
  check(by_copy.fits && by_recompute.fits, "both fit the budget");
  check(by_copy.offload_bytes > 0, "free copies: the budget is met by offload");
  check(by_recompute.recompute_count > by_copy.recompute_count,
        "slow copies: more recomputation than with free copies");
  check(by_recompute.offload_bytes < by_copy.offload_bytes, "slow copies: fewer bytes moved");
  // At the slow rate offload alone fits too, but takes longer than recomputation: the
  // search takes the shorter estimate of the pure strategies (first fit would not).
  const sn::MemoryPlan offload_only = sn::plan_memory(g, slow, batch, "liveness+offload", budget);
  const sn::MemoryPlan recompute_only =
      sn::plan_memory(g, slow, batch, "liveness+recompute", budget);
  check(offload_only.fits && offload_only.stall_ms > 0.0, "slow copies: offload fits but stalls");
  check(by_recompute.estimated_ms <= offload_only.estimated_ms &&
            by_recompute.estimated_ms <= recompute_only.estimated_ms,
        "superneurons is at least as fast as either pure strategy under the cost model");
  // Replayed at a slow rate, the offloading plan stalls its kernels.
  const sn::Timeline t = sn::plan_timeline(by_copy, 1.0);
  check(t.stall_ms > 0.0 && t.iteration_ms >= t.compute_ms + t.stall_ms - 1e-9,
        "slow copies stall the kernels by the time they take");
  check(t.iteration_ms <= t.compute_ms + t.copy_ms + 1e-9,
        "the iteration never takes longer than kernels and copies one after the other");

  return sn_test::report("test_timeline");
}
