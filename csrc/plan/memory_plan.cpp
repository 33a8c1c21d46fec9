#include "plan/memory_plan.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <set>
#include <sstream>

#include "core/errors.h"
#include "graph/cost.h"
#include "memory/arena_pool.h"
#include "plan/passes.h"

namespace sn {
namespace {

constexpr int64_t kUnlimitedBytes = int64_t{1} << 60;  // bytes: a virtual arena only
constexpr double kCheckpointFlopsPerByte = 10.0;       // Note [Checkpoints by cost]
constexpr int kMaxRecomputeChain = 8;                  // layer forwards, same note
constexpr int kCacheBisections = 8;        // tensor-cache targets tried below the budget
constexpr size_t kMemoryCentricRungs = 3;  // Note [Memory-centric rungs]

std::string bytes_str(int64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return std::to_string(b) + " B" + (u == 0 ? std::string() : std::string(" (") + buf + ")");
}

const char* step_phrase(const PlacementFailure& f) {
  if (f.step == kSetupStep) return "setup";
  if (f.eval) return "inference step";
  switch (f.kind) {
    case StepKind::kBackward:
      return "backward step";
    case StepKind::kRecompute:
      return "recompute step";
    default:
      return "forward step";
  }
}

std::string oom_message(const Graph& g, const MemoryPlan& p, const PlacementFailure& f,
                        int64_t needed_bytes) {
  std::ostringstream m;
  if (f.host) {
    m << "out of host memory at " << step_phrase(f);
    if (f.step != kSetupStep) m << " " << f.step;
    m << " (layer '" << g.layer(f.layer).name << "'): requested " << bytes_str(f.requested_bytes)
      << " for the host copy of " << role_name(f.role) << "; host budget "
      << bytes_str(p.host_capacity_bytes) << ", in use " << bytes_str(f.in_use_bytes)
      << ", largest free block " << bytes_str(f.largest_free_bytes) << " (policy '" << p.policy
      << "', batch " << p.batch_size << ", device budget " << bytes_str(p.capacity_bytes)
      << "). Hint: a larger host budget, or none; a larger device budget; or a smaller batch.";
    return m.str();
  }
  m << "out of memory at " << step_phrase(f);
  if (f.step != kSetupStep) m << " " << f.step;
  m << " (layer '" << g.layer(f.layer).name << "', " << kind_name(g.layer(f.layer).kind)
    << "): requested " << bytes_str(f.requested_bytes) << " for " << role_name(f.role)
    << "; budget " << bytes_str(p.capacity_bytes) << ", in use " << bytes_str(f.in_use_bytes)
    << ", free " << bytes_str(f.free_bytes) << ", largest free block "
    << bytes_str(f.largest_free_bytes) << ". This plan (policy '" << p.policy << "', batch "
    << p.batch_size << ") needs " << bytes_str(needed_bytes) << " at its peak. ";
  if (p.resident_bytes > p.capacity_bytes && p.policy != "superneurons") {
    m << "Parameters, their momentum and the labels alone need " << bytes_str(p.resident_bytes)
      << ", more than the budget, so a smaller batch cannot help: use a larger budget, or "
         "policy 'superneurons', which keeps parameters and momentum on the host.";
  } else {
    m << "Hint: use a smaller batch size, a larger budget";
    if (p.policy == "none") m << ", or policy 'liveness', which frees tensors after last use";
    if (p.policy == "liveness")
      m << ", or policy 'liveness+recompute', which recomputes cheap layers in backward";
    if (p.policy == "liveness+recompute" || p.policy == "liveness+offload")
      m << ", or policy 'superneurons', which recomputes, offloads and keeps parameters on "
           "the host as the budget needs";
    m << ".";
  }
  return m.str();
}

// Note [Layer bound]
// layer_bound_bytes = resident bytes (parameters, momentum, labels) + the largest working
// set of a single training step: every tensor the step reads or writes (its inputs and
// output as its kernel declares them, dy, dx, saved state), its smallest workspace and,
// in backward, its parameter gradients; a tensor read twice counts once. No policy that
// keeps parameters resident can go below it: it is max(l_i) of the source (Sec. 8.3.4).
// When the plan homes a layer's parameters on the host (superneurons), they leave the
// resident bytes and count in that layer's steps instead: the parameters in each of its
// steps, the momentum too in backward.
int64_t layer_bound(const Graph& g, const Backend& be, const Sizes& sizes, const Schedule& train,
                    int64_t resident_bytes, int64_t* working_set_bytes,
                    const std::vector<bool>& on_host = {}) {
  int64_t largest = 0;
  for (const StepSpec& s : train) {
    const StepUses u = step_uses(g, be, sizes, s);
    std::set<std::pair<int, int>> seen;  // (layer, role)
    int64_t bytes = sizes.min_workspace_bytes(s.layer);
    for (const auto* list : {&u.reads, &u.writes})
      for (const TensorId& t : *list)
        if (seen.insert({t.layer, static_cast<int>(t.role)}).second) bytes += sizes.of(t);
    const bool homed = !on_host.empty() && on_host[static_cast<size_t>(s.layer)];
    const bool backward = s.kind == StepKind::kBackward;
    const auto& ps = sizes.params[static_cast<size_t>(s.layer)];
    for (size_t p = 0; p < ps.size(); ++p) {
      if (!ps[p].trainable) continue;
      const int64_t b = sizes.param_bytes(s.layer, static_cast<int>(p));
      // the gradient in backward; a homed parameter's device copy (and momentum in backward)
      bytes += (backward ? b : 0) + (homed ? b : 0) + (homed && backward ? b : 0);
    }
    largest = std::max(largest, bytes);
  }
  *working_set_bytes = largest;
  return resident_bytes + largest;
}

}  // namespace

// The rungs of Note [Budget-driven recompute] after "no recomputation": the source's
// rule (speed-centric segments within the largest step's working set), then, when
// `sparse`, every 2nd, 3rd, 4th, 6th, ... checkpoint of `base` with speed-centric segments.
std::vector<RecomputeOptions> recompute_ladder(const Graph& g, const Backend& be,
                                               const Sizes& sizes, const Schedule& train,
                                               const std::vector<bool>& base, bool sparse) {
  int64_t working_set = 0;
  layer_bound(g, be, sizes, train, 0, &working_set);
  std::vector<RecomputeOptions> ladder{{base, working_set}};
  if (!sparse) return ladder;
  const auto candidates = static_cast<int>(std::count(base.begin(), base.end(), true));
  for (int stride = 2; stride <= candidates; stride = std::max(stride + 1, stride * 3 / 2))
    ladder.push_back({sparse_checkpoints(g, base, stride), std::numeric_limits<int64_t>::max()});
  return ladder;
}

namespace {

// Note [Checkpoint search] in recompute.cpp: plans tried per search, fewer for large
// graphs (a trial builds and places a plan: time linear in the layers).
constexpr int kMinSearchTrials = 4;
int search_trials(const Graph& g) {
  constexpr int kTrialLayers = 100000, kMaxTrials = 256;
  return std::clamp(kTrialLayers / std::max(g.size(), 1), kMinSearchTrials, kMaxTrials);
}

struct Planner {
  const Graph& g;
  const Backend& be;
  const Sizes& sizes;
  const Schedule& train;
  const Schedule& eval;
  const std::string& policy;
  int64_t batch, budget;
  int64_t host_budget = 0;  // Note [Host budget]

  MemoryPlan build(const RecomputeOptions* recompute, bool keep_all,
                   Schedule* schedule_out = nullptr,
                   const std::vector<bool>* on_host = nullptr) const {
    MemoryPlan p;
    p.policy = policy;
    p.batch_size = batch;
    p.budget_bytes = budget;
    p.algorithms = sizes.algorithms;
    p.passes.push_back("route");
    RecomputeResult r;
    if (recompute) {
      r = plan_recompute(g, be, sizes, train, *recompute);
      p.passes.push_back("recompute");
      p.checkpoint = recompute->checkpoint;
    } else {
      r.schedule = train;
    }
    p.segments = std::move(r.segments);
    p.recompute_count = r.recompute_count;
    p.recompute_flops = r.recompute_flops;
    p.passes.push_back("liveness");
    plan_liveness(p, g, be, sizes, r.schedule, eval, keep_all);
    p.passes.push_back("placement");
    if (on_host) plan_param_offload(p, *on_host, be.copy_bytes_per_ms());
    if (schedule_out) *schedule_out = std::move(r.schedule);
    return p;
  }

  // Offload only what the budget needs: the plan without copies first; when the network
  // fits, zero bytes move. Otherwise two selections compete (better_offload judges):
  //   - the tensor cache (Note [Tensor cache] in offload.cpp): least recently used
  //     first, at the moments memory runs out, its target lowered while placement
  //     needs slack;
  //   - the ranked candidates (most idle byte-steps first, which knows every future
  //     use) offloaded in order, the fewest that fit found by bisection; under
  //     superneurons, also every candidate, whose free memory can let steps take faster
  //     algorithms.
  // LRU is the source's rule and wins where pressure comes from forward activations; in
  // backward, with recomputation, the least recently used tensor is often needed soon,
  // and the ranked selection moves fewer bytes (benchmarks/tensor_cache.py).
  bool finish_with_offload(MemoryPlan& p, const Schedule& schedule,
                           const std::vector<bool>& eligible, bool fewest = true) const {
    if (!fewest) {  // every candidate
      plan_offload(p, offload_candidates(p, g, be, sizes, schedule, eligible),
                   be.copy_bytes_per_ms());
      return finish(p);
    }
    MemoryPlan plain = p;
    if (budget == 0 || finish(plain)) {
      if (budget == 0) finish(plain);
      p = std::move(plain);
      return true;
    }
    const std::vector<OffloadCandidate> all =
        offload_candidates(p, g, be, sizes, schedule, eligible);
    double rate = be.copy_bytes_per_ms();  // bytes per ms the prefetch distance assumes
    auto trial = [&](size_t k) {
      MemoryPlan t = p;
      plan_offload(
          t, std::vector<OffloadCandidate>(all.begin(), all.begin() + static_cast<long>(k)), rate);
      const bool ok = finish(t);
      return std::make_pair(ok, std::move(t));
    };
    MemoryPlan cached;
    const bool cache_fits = cache_plan(p, all, &cached);
    auto [fits_all, best] = trial(all.size());
    if (!fits_all && !best.host_full) {
      // Note [Just-in-time prefetch]
      // A prefetch issued early enough to hide its copy holds the block for the steps
      // in between; when that is what breaks the budget, copies start at the step that
      // reads them (compute waits for them: the timeline shows the stall) instead.
      rate = std::numeric_limits<double>::infinity();
      auto [ok, t] = trial(all.size());
      if (ok) {
        fits_all = true;
        best = std::move(t);
      } else {
        rate = be.copy_bytes_per_ms();
      }
    }
    size_t top = all.size();  // offloading this many candidates fits
    if (!fits_all && best.host_full && !plain.host_full) {
      // Note [Host budget]: more offload needs more host, so offloading everything can
      // overflow a host budget where fewer copies fit both; find such a count first.
      size_t lo = 0, hi = all.size();  // the host holds lo's copies, not hi's
      while (hi - lo > 1 && !fits_all) {
        const size_t mid = (lo + hi) / 2;
        auto [ok, t] = trial(mid);
        if (ok) {
          fits_all = true;
          top = mid;
          best = std::move(t);
        } else {
          (t.host_full ? hi : lo) = mid;
        }
      }
    }
    if (!fits_all) {
      if (cache_fits) {
        p = std::move(cached);
        p.offload_choices = {
            {"tensor cache", true, p.offload_bytes + p.prefetch_bytes, p.estimated_ms, true},
            {"ranked", false, 0, 0.0, false}};
        return true;
      }
      p = std::move(plain.peak_bytes <= best.peak_bytes ? plain : best);
      return false;
    }
    // More copies can leave room for faster algorithms (a conv's larger workspace), so
    // under superneurons (the shortest estimated iteration wins) the plan with the most
    // copies stays in the running against the fewest that fit.
    MemoryPlan most = best;
    size_t lo = 0, hi = top;  // lo does not fit, hi fits
    while (hi - lo > 1) {
      const size_t mid = (lo + hi) / 2;
      auto [ok, t] = trial(mid);
      if (ok) {
        hi = mid;
        best = std::move(t);
      } else {
        lo = mid;
      }
    }
    std::vector<OffloadChoice> choices;
    auto note = [&](const char* selection, bool fits, const MemoryPlan& t) {
      choices.push_back(
          {selection, fits, t.offload_bytes + t.prefetch_bytes, t.estimated_ms, false});
    };
    note("tensor cache", cache_fits, cached);
    note("ranked", true, best);
    note("every candidate", true, most);
    size_t won = 1;
    if (policy == "superneurons" && most.estimated_ms < best.estimated_ms) {
      best = std::move(most);
      won = 2;
    }
    if (cache_fits && better_offload(cached, best)) {
      best = std::move(cached);
      won = 0;
    }
    choices[won].chosen = true;
    p = std::move(best);
    p.offload_choices = std::move(choices);
    return true;
  }

  // Between two fitting plans that differ in their copies: under superneurons the shorter
  // estimated iteration (as its search judges rungs), otherwise fewer bytes moved.
  bool better_offload(const MemoryPlan& a, const MemoryPlan& b) const {
    const int64_t moved_a = a.offload_bytes + a.prefetch_bytes;
    const int64_t moved_b = b.offload_bytes + b.prefetch_bytes;
    if (policy == "superneurons")
      return a.estimated_ms < b.estimated_ms ||
             (a.estimated_ms == b.estimated_ms && moved_a < moved_b);
    return moved_a < moved_b || (moved_a == moved_b && a.estimated_ms < b.estimated_ms);
  }

  // The tensor cache's plan (Note [Tensor cache] in offload.cpp) under the budget; when
  // placement fails there (fragmentation, prefetches held early), the cache runs under a
  // lower target, found by bisection between the budget and zero (evict whatever it
  // can). False when even that does not fit, or the host slab is what is full.
  bool cache_plan(const MemoryPlan& p, const std::vector<OffloadCandidate>& all,
                  MemoryPlan* out) const {
    const double rate = be.copy_bytes_per_ms();
    auto trial = [&](int64_t target) {
      MemoryPlan t = p;
      plan_offload(t, cache_offload(p, all, target, rate), rate);
      std::replace(t.passes.begin(), t.passes.end(), std::string("offload"),
                   std::string("offload (tensor cache)"));
      const bool ok = finish(t);
      return std::make_pair(ok, std::move(t));
    };
    int64_t hi = budget;  // the cache under hi does not fit, under lo it does
    auto [fits_budget, first] = trial(hi);
    if (fits_budget || first.host_full) {
      *out = std::move(first);
      return fits_budget;
    }
    int64_t lo = 0;
    auto [fits_zero, last] = trial(lo);
    if (!fits_zero) return false;
    *out = std::move(last);
    for (int k = 0; k < kCacheBisections && hi - lo > budget / 512; ++k) {
      const int64_t mid = lo + (hi - lo) / 2;
      auto [ok, t] = trial(mid);
      if (ok) {
        lo = mid;
        *out = std::move(t);
      } else if (t.host_full) {
        break;  // fewer copies do not fit the device, more do not fit the host
      } else {
        hi = mid;
      }
    }
    return true;
  }

  // A plan beyond 2^60 bytes is a request no machine can hold, not a bug.
  void place_unlimited(MemoryPlan& p, AlgorithmChoice choice) const {
    PlacementFailure f;
    if (place(p, kUnlimitedBytes, choice, &f)) return;
    throw ArgumentError("this plan (policy '" + policy + "', batch " + std::to_string(batch) +
                        ") needs more than 2^60 bytes at step " + std::to_string(f.step) +
                        " (layer '" + g.layer(f.layer).name + "'); use a smaller batch or input");
  }

  // Places the plan under the budget (or sizes the arena to it); false: does not fit.
  // Either way the plan's timeline is filled.
  bool finish(MemoryPlan& p) const {
    const bool fits = place_and_size(p);
    const Timeline t = plan_timeline(p, be.copy_bytes_per_ms());
    p.compute_ms = t.compute_ms;
    p.copy_ms = t.copy_ms;
    p.stall_ms = t.stall_ms;
    p.estimated_ms = t.iteration_ms;
    return fits;
  }

  bool place_and_size(MemoryPlan& p) const {
    if (budget > 0) {
      p.capacity_bytes = budget / ArenaPool::kAlignmentBytes * ArenaPool::kAlignmentBytes;
      if (host_budget > 0) {
        p.host_budget_bytes = host_budget;
        p.host_capacity_bytes =
            host_budget / ArenaPool::kAlignmentBytes * ArenaPool::kAlignmentBytes;
      }
      MemoryPlan need = p;
      need.host_capacity_bytes = 0;  // what the plan needs, without limits
      place_unlimited(need, AlgorithmChoice::kSmallest);
      PlacementFailure f;
      // Each step takes the fastest algorithm whose workspace fits the largest free block;
      // that greedy choice can leave a later step fragmented, so the smallest workspaces
      // everywhere are the last try before the plan is declared not to fit.
      if (place(p, p.capacity_bytes, AlgorithmChoice::kFitFree, &f) ||
          (place_large_from_top(p) && place(p, p.capacity_bytes, AlgorithmChoice::kFitFree, &f)) ||
          place(p, p.capacity_bytes, AlgorithmChoice::kSmallest, &f)) {
        fix_host(p);
        return true;
      }
      const std::string message = oom_message(g, p, f, need.peak_bytes);
      need.fits = false;
      need.host_full = f.host;
      need.oom_message = message;
      p = std::move(need);  // a plan that does not fit reports every step without limit
      return false;
    }
    place_unlimited(p, AlgorithmChoice::kFastest);
    // Best fit in a smaller arena can place blocks differently, so grow until the same
    // sequence fits (rarely more than once).
    p.capacity_bytes = ArenaPool::rounded(std::max<int64_t>(p.high_water_bytes, 1));
    while (!place(p, p.capacity_bytes, AlgorithmChoice::kKeep, nullptr))
      p.capacity_bytes = ArenaPool::rounded(p.capacity_bytes + p.capacity_bytes / 8);
    fix_host(p);
    return true;
  }

  // Note [Host budget]
  // With a host budget the host slab has that capacity and every plan is placed in it:
  // a copy out or a parameter home that does not fit fails the plan (host_full). Offload
  // is no longer monotone (more copies fit the device better and the host worse), so the
  // fewest-copies search first finds a count the host holds; superneurons then climbs to
  // more recomputation where copies do not fit. Parameters go to the host all at once
  // or not at all before their bisection: a host budget below every parameter plus the
  // copies of the cheapest rung fails with an out-of-host-memory error.
  // Note [Two-ended placement]
  // When best fit leaves the free bytes a budget needs split into pieces (fragmentation),
  // placement is retried with the largest tensors (at least a quarter of the largest
  // allocation) placed from the top of the arena and the rest best fit from the bottom,
  // so that small blocks do not settle between the large ones. The flag travels in the
  // operation, so the executor places them the same way. False: nothing to mark.
  static bool place_large_from_top(MemoryPlan& p) {
    int64_t largest = 0;
    for (const PlanStep& s : p.train_steps)
      for (const Op& op : s.ops)
        if (op.kind == OpKind::kAlloc) largest = std::max(largest, op.size_bytes);
    bool any = false;
    for (auto* steps : {&p.train_steps, &p.eval_steps})
      for (PlanStep& s : *steps)
        for (Op& op : s.ops)
          if (op.kind == OpKind::kAlloc && op.size_bytes * 4 >= largest &&
              p.tensors[static_cast<size_t>(op.tensor)].id.role != TensorRole::kWorkspace) {
            op.from_top = true;
            any = true;
          }
    return any;
  }

  // The host slab is sized to what the plan reaches; best fit in the smaller slab can
  // place blocks differently, so re-place (device choices kept) until it fits.
  static void fix_host(MemoryPlan& p) {
    if (p.num_events == 0 || p.host_budget_bytes > 0) return;  // a host budget stays as given
    p.host_capacity_bytes = ArenaPool::rounded(std::max<int64_t>(p.host_capacity_bytes, 1));
    while (!place(p, p.capacity_bytes, AlgorithmChoice::kKeep, nullptr))
      p.host_capacity_bytes = ArenaPool::rounded(p.host_capacity_bytes + p.host_capacity_bytes / 8);
  }
};

// Layers with trainable parameters, in the order their parameters go to the host: most
// forward FLOPs per parameter byte first (their copies hide best behind compute).
std::vector<int> param_offload_order(const Graph& g, const Sizes& sizes, int64_t batch) {
  std::vector<std::pair<double, int>> keyed;
  for (int l = 0; l < g.size(); ++l) {
    int64_t bytes = 0;
    const auto& ps = sizes.params[static_cast<size_t>(l)];
    for (size_t p = 0; p < ps.size(); ++p)
      if (ps[p].trainable) bytes += sizes.param_bytes(l, static_cast<int>(p));
    if (bytes > 0)
      keyed.push_back({layer_forward_flops(g, l, batch) / static_cast<double>(bytes), l});
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<int> out;
  for (const auto& k : keyed) out.push_back(k.second);
  return out;
}

int64_t all_resident_bytes(const Sizes& sizes) {
  int64_t bytes = sizes.labels;
  for (size_t l = 0; l < sizes.params.size(); ++l)
    for (size_t p = 0; p < sizes.params[l].size(); ++p)
      bytes += sizes.param_bytes(static_cast<int>(l), static_cast<int>(p)) *
               (sizes.params[l][p].trainable ? 2 : 1);
  return bytes;
}

// Note [The superneurons search]
// Cheapest first, with a budget: the recompute ladder of Note [Budget-driven recompute],
// each rung with as much activation offload as it needs (Note [Tensor cache]), and
// parameters resident; the first rung that fits wins. When none fits (or the resident
// parameters alone exceed the layer bound's reach), every trained layer's parameters and
// momentum go to the host (Note [Parameters in the pool] in offload.cpp) and the ladder
// is climbed again. At the rung that fits, a bisection finds the fewest layers to home
// (in param_offload_order) with every activation candidate offloaded, then the fewest
// activations are offloaded for that set. Among rungs that fit, the one with the
// shortest estimated iteration (Note [Planned timeline]) wins, so slow copies buy
// recomputation and fast ones buy offload. At a sparse winning rung, the checkpoint
// search (Note [Checkpoint search]) keeps again what it can without a longer estimated
// iteration. Greedy: a lower rung with more parameter traffic is not tried once one
// fits with resident parameters.
// Note [Memory-centric rungs]
// The source's rule makes a segment speed-centric (recomputed once, kept for all of its
// backward steps) when its activations fit the layer bound, but a kept segment shares the
// device with the gradients and checkpoints of the steps in between, and at the largest
// batches that sum is the peak (Note [Peak breakdown]). So after its speed-centric rungs
// the ladder offers the first kMemoryCentricRungs of them again with memory-centric
// segments (recomputed for each backward step that reads them): more FLOPs, a lower
// peak. Sparser rungs are not repeated: their long segments recomputed per step would
// cost quadratic time in planning and in training. Measured at 12 GiB: with gradients in
// the pool (Note [Gradients in the pool]) ResNet-50 fits batch 1052 with these rungs and
// not even 820 without them (its speed-centric rungs then fail placement).
MemoryPlan plan_superneurons(const Planner& planner, const Graph& g, const Backend& be,
                             const Sizes& sizes, const Schedule& train, int64_t batch,
                             int64_t budget) {
  const std::vector<bool> base =
      cost_checkpoints(g, batch, kCheckpointFlopsPerByte, kMaxRecomputeChain);
  std::vector<RecomputeOptions> ladder = recompute_ladder(g, be, sizes, train, base, true);
  ladder.insert(ladder.begin(), RecomputeOptions{{}, 0});  // no recomputation
  // Note [Memory-centric rungs]
  const size_t speed_rungs = std::min<size_t>(ladder.size(), 1 + kMemoryCentricRungs);
  for (size_t i = 1; i < speed_rungs; ++i) ladder.push_back({ladder[i].checkpoint, 0});
  auto rung = [&](size_t i, const std::vector<bool>& on_host, bool fewest, bool* fits) {
    Schedule schedule;
    const RecomputeOptions* ro = ladder[i].checkpoint.empty() ? nullptr : &ladder[i];
    MemoryPlan p = planner.build(ro, false, &schedule, &on_host);
    if (!ro) p.passes.insert(p.passes.begin() + 1, "recompute");  // ran, chose nothing
    *fits = planner.finish_with_offload(p, schedule, ro ? ladder[i].checkpoint : base, fewest);
    return p;
  };
  // Of the rungs that fit, the one with the shortest estimated iteration; the climb stops
  // once a rung's kernels alone take longer than the best (higher rungs recompute more).
  auto climb = [&](const std::vector<bool>& on_host, MemoryPlan& best, size_t* fit_rung) {
    bool fits = false;
    for (size_t i = 0; i < ladder.size(); ++i) {
      bool ok = false;
      MemoryPlan next = rung(i, on_host, true, &ok);
      const double kernels_ms = next.compute_ms;
      if (ok && (!fits || next.estimated_ms < best.estimated_ms)) {
        best = std::move(next);
        *fit_rung = i;
      } else if (!fits && !ok && (best.policy.empty() || next.peak_bytes <= best.peak_bytes)) {
        best = std::move(next);
      }
      fits = fits || ok;
      if (fits && kernels_ms >= best.estimated_ms) break;
    }
    return fits;
  };
  // Note [Checkpoint search] at the rung that won, when it is a sparse one: fewer FLOPs,
  // as long as the plan fits (with the offload it needs) and its estimated iteration is
  // no longer. The winning rung's checkpoints become the set found.
  auto search = [&](const std::vector<bool>& on_host, MemoryPlan& best, size_t r) {
    if (r < 2) return;  // no recomputation, or the source's rule: nothing to re-add
    auto trial = [&](const std::vector<bool>& checkpoint, double* flops, int64_t* peak) {
      Schedule schedule;
      const RecomputeOptions o{checkpoint, ladder[r].speed_centric_max_bytes};
      MemoryPlan p = planner.build(&o, false, &schedule, &on_host);
      const bool ok = planner.finish_with_offload(p, schedule, checkpoint, true) &&
                      p.estimated_ms <= best.estimated_ms;
      *flops = p.recompute_flops;
      *peak = p.peak_bytes;
      if (ok && p.recompute_flops < best.recompute_flops) best = std::move(p);
      return ok;
    };
    bool found = false;
    ladder[r].checkpoint = search_checkpoints(g, batch, base, ladder[r].checkpoint, trial,
                                              std::max(2, search_trials(g) / 4), &found);
  };
  const auto n = static_cast<size_t>(g.size());
  const std::vector<bool> resident(n, false);
  MemoryPlan plan;
  size_t r = 0;
  int64_t working_set = 0;
  const bool reachable =
      layer_bound(g, be, sizes, train, all_resident_bytes(sizes), &working_set) <= budget;
  if (reachable && climb(resident, plan, &r)) {
    search(resident, plan, r);
    return plan;
  }
  const std::vector<int> order = param_offload_order(g, sizes, batch);
  if (order.empty()) {  // nothing to home: the ladder's answer stands
    if (!plan.policy.empty()) return plan;
    bool fits = false;
    return rung(0, resident, true, &fits);
  }
  std::vector<bool> all(n, false);
  for (int l : order) all[static_cast<size_t>(l)] = true;
  MemoryPlan homed;
  if (!climb(all, homed, &r))
    return plan.policy.empty() || homed.peak_bytes <= plan.peak_bytes ? homed : plan;
  search(all, homed, r);
  auto first = [&](size_t k) {
    std::vector<bool> on_host(n, false);
    for (size_t i = 0; i < k; ++i) on_host[static_cast<size_t>(order[i])] = true;
    return on_host;
  };
  size_t lo = 0, hi = order.size();  // lo does not fit at rung r, hi does
  while (hi - lo > 1) {
    const size_t mid = (lo + hi) / 2;
    bool ok = false;
    rung(r, first(mid), planner.host_budget > 0, &ok);  // with a host budget, fewest copies
    (ok ? hi : lo) = mid;
  }
  bool ok = false;
  MemoryPlan fewest = rung(r, first(hi), true, &ok);
  return ok ? fewest : homed;
}

}  // namespace

MemoryPlan recompute_plan(const Graph& g, const Backend& be, int64_t batch,
                          const RecomputeOptions* options, int64_t budget_bytes) {
  if (budget_bytes <= 0) throw ArgumentError("recompute_plan needs a budget");
  const Schedule train = training_schedule(g);
  const Schedule eval = inference_schedule(g);
  const Sizes sizes(g, be, batch);
  const std::string policy = "liveness+recompute";
  const Planner planner{g, be, sizes, train, eval, policy, batch, budget_bytes, 0};
  MemoryPlan p = planner.build(options, false);
  p.fits = planner.finish(p);
  return p;
}

const char* policy_names() {
  return "none, liveness, liveness+recompute, liveness+offload, superneurons";
}

MemoryPlan plan_memory(const Graph& g, const Backend& backend, int64_t batch_size,
                       const std::string& policy, int64_t budget_bytes, int64_t host_budget_bytes) {
  if (batch_size < 1)
    throw ArgumentError("batch_size must be >= 1, got " + std::to_string(batch_size));
  if (policy != "none" && policy != "liveness" && policy != "liveness+recompute" &&
      policy != "liveness+offload" && policy != "superneurons")
    throw ArgumentError("memory policy '" + policy + "' is not available in this build; " +
                        "available: " + policy_names());
  if (budget_bytes < 0)
    throw ArgumentError("budget must be >= 0 bytes (0: none), got " + std::to_string(budget_bytes));
  const Schedule train = training_schedule(g);  // validates the graph
  const Schedule eval = inference_schedule(g);
  const Sizes sizes(g, backend, batch_size);
  if (host_budget_bytes < 0)
    throw ArgumentError("host budget must be >= 0 bytes (0: none), got " +
                        std::to_string(host_budget_bytes));
  const Planner planner{g,          backend,      sizes,
                        train,      eval,         policy,
                        batch_size, budget_bytes, budget_bytes > 0 ? host_budget_bytes : 0};

  MemoryPlan plan;
  if (policy == "none") {
    plan = planner.build(nullptr, true);
    planner.finish(plan);
  } else if (policy == "liveness") {
    plan = planner.build(nullptr, false);
    planner.finish(plan);
  } else if (policy == "liveness+offload") {
    Schedule schedule;
    plan = planner.build(nullptr, false, &schedule);
    planner.finish_with_offload(
        plan, schedule,
        cost_checkpoints(g, batch_size, kCheckpointFlopsPerByte, kMaxRecomputeChain));
  } else if (policy == "superneurons" && budget_bytes > 0) {
    plan = plan_superneurons(planner, g, backend, sizes, train, batch_size, budget_bytes);
  } else {
    // (policy superneurons without a budget lands here too: nothing needs to move.)
    // Note [Budget-driven recompute]
    // Without a budget: the source's cost-aware recomputation (checkpoints by cost,
    // speed- or memory-centric segments by the layer bound). With one: the first plan of
    // a ladder ordered by extra FLOPs that fits: no recomputation, then the source's,
    // then ever sparser checkpoints (every 2nd, 3rd, 4th, 6th, ... cost checkpoint kept)
    // with speed-centric segments, as checkpoint_sequential does on a chain but on any
    // DAG. From the sparse rung that fits, the checkpoint search (Note [Checkpoint
    // search] in recompute.cpp) keeps what it can again: a local optimum, not a proof of
    // optimality (Checkmate's MILP).
    const std::vector<bool> base =
        cost_checkpoints(g, batch_size, kCheckpointFlopsPerByte, kMaxRecomputeChain);
    const std::vector<RecomputeOptions> ladder =
        recompute_ladder(g, backend, sizes, train, base, budget_bytes > 0);
    if (budget_bytes > 0) {
      plan = planner.build(nullptr, false);
      plan.passes.insert(plan.passes.begin() + 1, "recompute");  // ran, chose nothing
      plan.checkpoint.assign(static_cast<size_t>(g.size()), true);
      bool fits = planner.finish(plan);
      struct Start {  // a sparse rung the checkpoint search may start from
        bool fits;
        double flops;
        int64_t peak;
        size_t rung;
      };
      std::vector<Start> starts;
      size_t rung = 0;
      for (size_t i = 0; i < ladder.size() && !fits; ++i) {
        MemoryPlan next = planner.build(&ladder[i], false);
        fits = planner.finish(next);
        rung = i;
        if (i > 0) starts.push_back({fits, next.recompute_flops, next.peak_bytes, i});
        if (fits || next.peak_bytes <= plan.peak_bytes) plan = std::move(next);
      }
      // Note [Checkpoint search], from each sparse rung in turn (those that fit, fewest
      // FLOPs first, then the others, lowest peak first): the first with three quarters
      // of the trials, each next one with half of those left. The rungs past the first
      // that fits are tried as starts too when the trials allow.
      if (ladder.size() > 1 && (rung > 0 || !fits)) {
        int left = search_trials(g);
        for (size_t i = rung + 1; fits && i < ladder.size() && left > 2 * kMinSearchTrials;
             ++i, --left) {
          MemoryPlan t = planner.build(&ladder[i], false);
          const bool ok = planner.finish(t);
          starts.push_back({ok, t.recompute_flops, t.peak_bytes, i});
        }
        std::stable_sort(starts.begin(), starts.end(), [](const Start& a, const Start& b) {
          if (a.fits != b.fits) return a.fits;
          return a.fits ? a.flops < b.flops : a.peak < b.peak;
        });
        bool first = true;
        for (const Start& start : starts) {
          if (left < kMinSearchTrials) break;
          const int64_t segment_bytes = ladder[start.rung].speed_centric_max_bytes;
          int used = 0;
          auto trial = [&](const std::vector<bool>& checkpoint, double* flops, int64_t* peak) {
            if (checkpoint == ladder[start.rung].checkpoint) {  // planned already
              *flops = start.flops;
              *peak = start.peak;
              return start.fits;
            }
            ++used;
            const RecomputeOptions o{checkpoint, segment_bytes};
            MemoryPlan t = planner.build(&o, false);
            const bool ok = planner.finish(t);
            *flops = t.recompute_flops;
            *peak = t.peak_bytes;
            if (ok ? !fits || t.recompute_flops < plan.recompute_flops
                   : !fits && t.peak_bytes < plan.peak_bytes) {
              plan = std::move(t);
              fits = ok;
            }
            return ok;
          };
          bool found = false;
          search_checkpoints(g, batch_size, base, ladder[start.rung].checkpoint, trial,
                             1 + std::max(kMinSearchTrials, first ? left * 3 / 4 : left / 2),
                             &found);
          left -= used;
          first = false;
        }
      }
    } else {
      // Recomputation that saves nothing is not worth its FLOPs (on small DAGs the
      // intermediates a recompute brings back can outweigh what it drops).
      plan = planner.build(&ladder[0], false);
      planner.finish(plan);
      MemoryPlan plain = planner.build(nullptr, false);
      planner.finish(plain);
      if (plain.peak_bytes <= plan.peak_bytes) {
        plain.passes.insert(plain.passes.begin() + 1, "recompute");  // ran, chose nothing
        plain.checkpoint.assign(static_cast<size_t>(g.size()), true);
        plan = std::move(plain);
      }
    }
  }

  // Byte accounting that needs no simulation.
  const auto n = static_cast<size_t>(g.size());
  const int input = g.input_layer(), loss = g.loss_layer();
  plan.activation_bytes = sizes.act;
  plan.aux_bytes = sizes.aux;
  plan.gradient_bytes.assign(n, 0);
  plan.workspace_bytes.assign(n, 0);
  plan.param_bytes.assign(n, 0);
  for (size_t u = 0; u < n; ++u) {
    const int id = static_cast<int>(u);
    if (id != loss && id != input) plan.gradient_bytes[u] = sizes.act[u];
    plan.workspace_bytes[u] = sizes.workspace_bytes(id, 0);
    for (size_t p = 0; p < sizes.params[u].size(); ++p)
      plan.param_bytes[u] +=
          sizes.param_bytes(id, static_cast<int>(p)) * (sizes.params[u][p].trainable ? 3 : 1);
    plan.iteration_flops += 3.0 * layer_forward_flops(g, id, batch_size);
  }
  plan.baseline_bytes = 0;
  for (const TensorInfo& t : plan.tensors) plan.baseline_bytes += t.size_bytes;
  int64_t working_set = 0;
  plan.layer_bound_bytes =
      layer_bound(g, backend, sizes, train, plan.resident_bytes, &working_set, plan.param_on_host);
  plan.peak_breakdown = explain_peak(plan, g, backend, sizes);
  return plan;
}

}  // namespace sn
