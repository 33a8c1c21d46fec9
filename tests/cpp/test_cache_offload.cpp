// The tensor cache as a planning pass (Note [Tensor cache] in offload.cpp): nothing
// leaves when the plan stays under the target; under pressure the least recently used
// candidates leave first; and the placed plan with the cache's copies never holds more
// than the target.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "check.h"
#include "plan/passes.h"

namespace {

using sn_test::check;

constexpr int64_t kUnlimited = int64_t{1} << 50;

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

struct Fixture {
  sn::Graph g = chain(10);
  std::unique_ptr<sn::Backend> cpu = sn::make_cpu_backend();
  const sn::Backend& be = *cpu;
  sn::Sizes sizes{g, be, 8};
  sn::Schedule train = sn::training_schedule(g), eval = sn::inference_schedule(g);
  sn::MemoryPlan live;
  std::vector<sn::OffloadCandidate> all;

  Fixture() {
    live.batch_size = sizes.batch;
    live.algorithms = sizes.algorithms;
    live.passes = {"liveness", "placement"};
    sn::plan_liveness(live, g, be, sizes, train, eval, false);
    std::vector<bool> eligible(static_cast<size_t>(g.size()), false);
    for (int i = 0; i < g.size(); ++i)
      eligible[static_cast<size_t>(i)] = g.layer(i).kind == sn::LayerKind::kConv2d;
    all = sn::offload_candidates(live, g, be, sizes, train, eligible);
  }

  // The plan with these copies, placed without a limit.
  sn::MemoryPlan placed(const std::vector<sn::OffloadCandidate>& chosen) const {
    sn::MemoryPlan p = live;
    sn::plan_offload(p, chosen, be.copy_bytes_per_ms());
    check(sn::place(p, kUnlimited, sn::AlgorithmChoice::kFastest, nullptr), "placed");
    return p;
  }
};

int64_t bytes_of(const std::vector<sn::OffloadCandidate>& c) {
  int64_t b = 0;
  for (const auto& k : c) b += k.bytes;
  return b;
}

}  // namespace

int main() {
  const Fixture f;
  const double rate = f.be.copy_bytes_per_ms();
  check(f.all.size() >= 8, "the chain has offload candidates");
  const int64_t peak = f.placed({}).peak_bytes;
  const int64_t floor = f.placed(f.all).peak_bytes;  // every candidate offloaded
  check(floor < peak, "offloading every candidate lowers the peak");

  check(sn::cache_offload(f.live, f.all, peak, rate).empty(),
        "nothing leaves when the plan stays under the target");

  int64_t previous = 0;
  for (int k = 1; k <= 8; ++k) {
    const int64_t target = peak - (peak - floor) * k / 8;
    const std::string at = "target " + std::to_string(target);
    const std::vector<sn::OffloadCandidate> chosen = sn::cache_offload(f.live, f.all, target, rate);
    check(!chosen.empty(), "under pressure something leaves (" + at + ")");
    for (const auto& c : chosen)
      check(std::any_of(f.all.begin(), f.all.end(),
                        [&](const sn::OffloadCandidate& a) {
                          return a.tensor == c.tensor && a.after_step == c.after_step;
                        }),
            "every eviction is a candidate (" + at + ")");
    // The pressure of a chain is at the end of forward, where the least recently used
    // tensors are the earliest outputs: the evicted set is a prefix in that order.
    std::vector<int> after;
    for (const auto& c : f.all) after.push_back(c.after_step);
    std::sort(after.begin(), after.end());
    std::vector<int> got;
    for (const auto& c : chosen) got.push_back(c.after_step);
    std::sort(got.begin(), got.end());
    check(std::equal(got.begin(), got.end(), after.begin()),
          "the least recently used candidates leave first (" + at + ")");
    // Placed with those copies, no step holds more than the target.
    check(f.placed(chosen).peak_bytes <= target, "the cache's copies meet the target (" + at + ")");
    check(bytes_of(chosen) >= previous, "a lower target moves at least as much (" + at + ")");
    previous = bytes_of(chosen);
  }
  return sn_test::report("test_cache_offload");
}
