// The checkpoint search (Note [Checkpoint search] in csrc/plan/recompute.cpp) against an
// exhaustive search. On small random chains and DAGs (residual joins, concat fans) with
// at most 10 cost checkpoints, and budgets from the smallest that some set fits to just
// under what liveness alone needs, policy liveness+recompute's extra FLOPs are compared
// with the fewest over every plan the planner could choose: no recomputation, the
// source's rule, and every subset of the cost checkpoints with speed-centric segments,
// each judged by the planner's own fit test (placement under the budget).
//
// Checked: where some set fits, the plan nearly always fits too (kFitShare); its choice
// is in that space (so the optimum is at most its FLOPs) and never worse than the ladder
// alone (Note [Budget-driven recompute]); it is within kFactor of the optimum on every
// case, exactly optimal on most (kOptimalShare), and within kTotalFactor in total. The
// summary line prints the figures, the ladder alone's too. The bounds are what the search
// achieves here, a heuristic: they hold on these cases, not in general.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "check.h"
#include "plan/memory_plan.h"
#include "plan/passes.h"

namespace {

using sn_test::check;

constexpr int kNets = 40;
// Measured on these cases (the summary line); the ladder alone misses every bound.
constexpr double kFitShare = 0.95;      // of the cases where some set fits: the plan fits
constexpr double kOptimalShare = 0.9;   // of the cases, at least: exactly optimal
constexpr double kFactor = 3.0;         // the plan's FLOPs over the optimum, at most, each case
constexpr double kTotalFactor = 1.05;   // summed over the cases
constexpr int kMaxCandidates = 10;      // cost checkpoints: 2^10 subsets per budget
constexpr double kRelTolerance = 1e-9;  // FLOP sums are exact up to rounding

struct Builder {
  sn::Graph g;
  std::string h = "x";
  int64_t c = 3, hw = 8;
  int layers = 0;

  std::string name(const char* kind) { return std::string(kind) + std::to_string(layers++); }
  std::string conv(const std::string& in, int64_t out, int64_t k) {
    const std::string n = name("conv");
    g.add(n, "conv2d", {in},
          {{"out_channels", out},
           {"kernel_h", k},
           {"kernel_w", k},
           {"pad_h", k / 2},
           {"pad_w", k / 2}});
    return n;
  }
  std::string unary(const std::string& in, const char* kind) {
    const std::string n = name(kind);
    g.add(n, kind, {in}, {});
    return n;
  }
};

// A random network with `convs` 3x3 convolutions (each a cost checkpoint, as is the fc) and, when
// `dag`, residual joins and concat fans between them.
sn::Graph random_net(std::mt19937& rng, bool dag, int convs) {
  Builder b;
  b.g.add("x", "input", {}, {{"c", b.c}, {"h", b.hw}, {"w", b.hw}});
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const int64_t widths[] = {4, 8, 12, 16};
  int made = 0;
  while (made < convs) {
    const int kind = dag ? pick(4) : pick(2);
    if (kind == 2 && made + 2 <= convs) {  // residual block: conv bn relu conv bn, add, relu
      std::string a = b.unary(b.conv(b.h, b.c, 3), "batchnorm");
      a = b.unary(b.conv(b.unary(a, "relu"), b.c, 3), "batchnorm");
      const std::string join = b.name("add");
      b.g.add(join, "add", {a, b.h}, {});
      b.h = b.unary(join, "relu");
      made += 2;
    } else if (kind == 3 && made + 2 <= convs) {  // fan: two 3x3 branches, concatenated
      const int64_t c1 = widths[pick(4)], c2 = widths[pick(4)];
      const std::string l = b.unary(b.conv(b.h, c1, 3), "relu");
      const std::string r = b.unary(b.unary(b.conv(b.h, c2, 3), "batchnorm"), "relu");
      const std::string cat = b.name("cat");
      b.g.add(cat, "concat", {l, r}, {});
      b.h = cat;
      b.c = c1 + c2;
      made += 2;
    } else {  // plain: conv, maybe bn, relu, maybe a 2x2 pool
      b.c = widths[pick(4)];
      b.h = b.conv(b.h, b.c, 3);
      if (pick(2) == 0) b.h = b.unary(b.h, "batchnorm");
      b.h = b.unary(b.h, "relu");
      if (b.hw >= 4 && pick(4) == 0) {
        const std::string p = b.name("pool");
        b.g.add(p, "maxpool", {b.h},
                {{"kernel_h", 2}, {"kernel_w", 2}, {"stride_h", 2}, {"stride_w", 2}});
        b.h = p;
        b.hw /= 2;
      }
      made += 1;
    }
  }
  b.g.add("fc", "fc", {b.h}, {{"out_features", 5}});
  b.g.add("loss", "softmax_cross_entropy", {"fc"}, {});
  return b.g;
}

constexpr double kNone = std::numeric_limits<double>::infinity();  // nothing fits

struct Space {
  std::vector<sn::RecomputeOptions> plans;   // ladder[0] (source's rule) and every subset
  std::vector<sn::RecomputeOptions> ladder;  // Note [Budget-driven recompute]
};

// Fewest extra FLOPs over the planner's space that fit the budget (kNone: none fits).
double exhaustive(const sn::Graph& g, const sn::Backend& be, int64_t batch, const Space& s,
                  int64_t budget) {
  if (sn::recompute_plan(g, be, batch, nullptr, budget).fits) return 0.0;
  double best = kNone;
  for (const sn::RecomputeOptions& o : s.plans) {
    const sn::MemoryPlan p = sn::recompute_plan(g, be, batch, &o, budget);
    if (p.fits) best = std::min(best, p.recompute_flops);
  }
  return best;
}

// The greedy ladder alone: the first rung that fits.
double ladder_only(const sn::Graph& g, const sn::Backend& be, int64_t batch, const Space& s,
                   int64_t budget) {
  if (sn::recompute_plan(g, be, batch, nullptr, budget).fits) return 0.0;
  for (const sn::RecomputeOptions& o : s.ladder) {
    const sn::MemoryPlan p = sn::recompute_plan(g, be, batch, &o, budget);
    if (p.fits) return p.recompute_flops;
  }
  return kNone;
}

bool close(double a, double b) { return a <= b * (1.0 + kRelTolerance) + 1e-6; }

}  // namespace

int main() {
  const std::unique_ptr<sn::Backend> cpu = sn::make_cpu_backend();
  const sn::Backend& be = *cpu;
  std::mt19937 rng(20261202);
  int nets = 0, cases = 0, fitted = 0, outside = 0, search_optimal = 0, ladder_optimal = 0;
  double worst = 1.0, got_total = 0.0, opt_total = 0.0;
  for (int net = 0; net < kNets; ++net) {
    const bool dag = net % 2 == 1;
    const int convs = 3 + static_cast<int>(rng() % 7u);  // 3..9, and the fc
    const sn::Graph g = random_net(rng, dag, convs);
    const int64_t batch = 2 + static_cast<int64_t>(rng() % 3u);
    const sn::Sizes sizes(g, be, batch);
    const sn::Schedule train = sn::training_schedule(g);
    const std::vector<bool> base = sn::cost_checkpoints(g, batch, 10.0, 8);
    std::vector<int> candidates;
    for (int id = 0; id < g.size(); ++id)
      if (base[static_cast<size_t>(id)] && g.layer(id).kind != sn::LayerKind::kInput)
        candidates.push_back(id);
    // (the chain rule of Note [Checkpoints by cost] can add one past 10: too many subsets)
    if (candidates.size() > static_cast<size_t>(kMaxCandidates)) continue;
    ++nets;

    Space s;
    s.ladder = sn::recompute_ladder(g, be, sizes, train, base, true);
    s.plans.push_back(s.ladder[0]);
    for (uint32_t mask = 0; mask < (1u << candidates.size()); ++mask) {
      std::vector<bool> keep(base.size(), false);
      keep[static_cast<size_t>(g.input_layer())] = true;
      for (size_t i = 0; i < candidates.size(); ++i)
        if (mask & (1u << i)) keep[static_cast<size_t>(candidates[i])] = true;
      s.plans.push_back({keep, std::numeric_limits<int64_t>::max()});
    }

    // Budgets between the smallest need in the space (a plan that does not fit reports
    // what it needs without limit) and liveness's.
    const int64_t live = sn::plan_memory(g, be, batch, "liveness", 0).peak_bytes;
    int64_t low = live;
    for (const sn::RecomputeOptions& o : s.plans)
      low = std::min(low, sn::recompute_plan(g, be, batch, &o, 256).peak_bytes);
    for (int k = 0; k < 6; ++k) {
      const int64_t budget = (low + (live - 256 - low) * k / 5) / 256 * 256;
      const std::string what = "net " + std::to_string(net) + (dag ? " (dag)" : " (chain)") +
                               ", budget " + std::to_string(budget);
      const double opt = exhaustive(g, be, batch, s, budget);
      const double ladder = ladder_only(g, be, batch, s, budget);
      const sn::MemoryPlan p = sn::plan_memory(g, be, batch, "liveness+recompute", budget);
      if (opt == kNone) {
        check(!p.fits, what + ": nothing in the space fits, nor does the plan");
        continue;
      }
      ++cases;
      if (ladder == kNone) ++outside;
      if (!p.fits) {
        std::printf("  %s: some set fits, the plan does not\n", what.c_str());
        continue;
      }
      ++fitted;
      const double got = p.recompute_flops;
      check(close(opt, got), what + ": the optimum is at most the plan's FLOPs (same space)");
      if (ladder != kNone)
        check(close(got, ladder), what + ": the search is never worse than the ladder");
      if (!close(got, opt))
        std::printf("  %s%s: %.0f FLOPs, optimum %.0f\n", what.c_str(),
                    ladder == kNone ? " (no rung fits)" : "", got, opt);
      check(close(got, kFactor * opt), what + ": within kFactor of the optimum");
      if (close(got, opt)) ++search_optimal;
      if (close(ladder, opt)) ++ladder_optimal;
      if (opt > 0) worst = std::max(worst, got / opt);
      got_total += got;
      opt_total += opt;
    }
  }
  std::printf(
      "checkpoint search: %d nets, %d cases where some set fits (%d where no ladder rung "
      "does); the plan fits on %d; exactly optimal: search %d, ladder alone %d; worst "
      "search/optimum %.3f; total FLOPs over the optimum's %.4f\n",
      nets, cases, outside, fitted, search_optimal, ladder_optimal, worst,
      opt_total > 0 ? got_total / opt_total : 1.0);
  check(nets >= kNets * 3 / 4 && cases >= 120, "enough nets and cases");
  check(fitted >= kFitShare * cases, "the plan fits where some set does, nearly always");
  check(search_optimal >= kOptimalShare * cases, "the search is exactly optimal on most cases");
  check(got_total <= kTotalFactor * opt_total, "in total, within kTotalFactor of the optimum");
  return sn_test::report("test_checkpoint_search");
}
