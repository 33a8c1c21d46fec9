// Cost-aware recomputation on any DAG (source Sec. 8.3.4, Table 8.1).
//
// Note [Checkpoints by cost]
// A layer's output is worth keeping when recomputing it would be expensive per byte it
// holds: convolutions and fully connected layers compute tens to thousands of FLOPs per
// output byte, while BN, ReLU, pooling, LRN, dropout, add and concat compute a few. The
// FLOP model is graph/cost.h; the default threshold (10 FLOP per byte) keeps every conv
// with more than 20 input taps per output (all but the thinnest 1x1 convolutions) and
// every fc. The data layer is always kept: it cannot be recomputed.
// On a DAG, cheap layers can chain without end: the identity path of a ResNet stage is
// add, relu, add, relu, ... with no convolution on it, so recomputing a block's output
// would rerun every block before it (quadratic work when memory-centric). A second rule
// bounds that: an output whose recomputation would take more than max_chain layer
// forwards (counted through its dropped ancestors) is kept as well.
//
// Note [Segments on a DAG]
// Layers whose outputs are not kept form segments: connected components of the graph
// restricted to those layers. Every input of a segment layer is either a checkpoint or
// in the same segment, so recomputing a tensor means recomputing its ancestors inside
// its segment, in route order, down to the checkpoints around it. Residual joins,
// concat fans and tensors with several readers need no special case.
// - Speed-centric segment: a tensor is recomputed once, right before the first backward
//   step that needs it, and liveness keeps it until its last backward reader.
// - Memory-centric segment: each backward step recomputes what it needs, and liveness
//   frees it right after that step.
// Recomputed forwards replay dropout masks (a function of seed, layer and iteration) and
// do not move BN running statistics, so results are bit-identical to no recomputation.
//
// Note [Checkpoint search]
// Under a budget, policy liveness+recompute wants the checkpoint set with the fewest
// extra FLOPs whose plan fits; only the placement simulation says what fits. With
// speed-centric segments each dropped layer that backward needs is recomputed once, so
// the extra FLOPs are about the sum of the dropped layers' forward FLOPs: a knapsack
// whose weights (what keeping an output costs at the peak) depend on where it sits and
// on what else is kept. The search is a local search over the cost checkpoints whose
// every trial is a real plan (built and placed), from a start set (the first ladder
// rung that fits, Note [Budget-driven recompute], or the one with the lowest peak):
// - descent, only while the set does not fit: single drops (most bytes per FLOP first),
//   then single re-adds, kept when the peak falls, until a set fits;
// - re-add: dropped candidates, most FLOPs per byte first, are kept again in chunks that
//   double after a success and fall back to one after a miss (a single miss skips it);
// - keep and repair: a dropped candidate d (most FLOPs first) is kept, and kept ones are
//   dropped one at a time while their FLOPs together stay below d's, each the one of a
//   few (most bytes per FLOP first) whose drop lowers the peak most, until the set fits.
// A move is kept only when the plan fits with strictly fewer FLOPs, so the result is
// never worse than the start. Rounds repeat until none improves or max_trials plans have
// been tried; the caller scales the bound down for large graphs so that planning time
// stays linear in the layers. A local optimum, not a proof of optimality (Checkmate
// solves a MILP): tests/cpp/test_checkpoint_search.cpp compares it with exhaustive search.
#include <algorithm>
#include <functional>
#include <limits>
#include <numeric>

#include "core/errors.h"
#include "graph/cost.h"
#include "plan/passes.h"

namespace sn {

std::vector<bool> cost_checkpoints(const Graph& g, int64_t batch, double min_flops_per_byte,
                                   int max_chain) {
  const auto n = static_cast<size_t>(g.size());
  std::vector<bool> keep(n, false);
  std::vector<int> chain(n, 0);  // layer forwards needed to recompute this output
  for (int id : forward_route(g)) {
    const auto u = static_cast<size_t>(id);
    const Layer& l = g.layer(id);
    const double bytes = 4.0 * static_cast<double>(batch) * static_cast<double>(l.out.numel());
    const double per_byte = bytes > 0 ? layer_forward_flops(g, id, batch) / bytes : 0.0;
    keep[u] = l.kind == LayerKind::kInput || per_byte >= min_flops_per_byte;
    if (keep[u]) continue;
    std::vector<int> inputs = l.inputs;
    std::sort(inputs.begin(), inputs.end());
    inputs.erase(std::unique(inputs.begin(), inputs.end()), inputs.end());
    chain[u] = 1;
    for (int in : inputs) chain[u] += chain[static_cast<size_t>(in)];
    if (chain[u] > max_chain) {
      keep[u] = true;
      chain[u] = 0;
    }
  }
  return keep;
}

std::vector<bool> sparse_checkpoints(const Graph& g, const std::vector<bool>& base, int stride) {
  SN_ASSERT(stride >= 1, "checkpoint stride must be >= 1");
  std::vector<bool> keep(base.size(), false);
  int seen = 0;
  for (int id : forward_route(g)) {
    const auto u = static_cast<size_t>(id);
    if (g.layer(id).kind == LayerKind::kInput) {
      keep[u] = true;
    } else if (base[u]) {
      keep[u] = seen % stride == stride - 1;
      ++seen;
    }
  }
  return keep;
}

std::vector<bool> search_checkpoints(const Graph& g, int64_t batch, const std::vector<bool>& base,
                                     const std::vector<bool>& start, const CheckpointTrial& trial,
                                     int max_trials, bool* fits) {
  const auto n = static_cast<size_t>(g.size());
  SN_ASSERT(base.size() == n && start.size() == n, "one checkpoint flag per layer");
  std::vector<double> flops(n, 0.0), bytes(n, 0.0);
  std::vector<int> candidates;  // of base, in route order
  for (int id : forward_route(g)) {
    const auto u = static_cast<size_t>(id);
    flops[u] = layer_forward_flops(g, id, batch);
    bytes[u] = 4.0 * static_cast<double>(batch) * static_cast<double>(g.layer(id).out.numel());
    if (base[u] && g.layer(id).kind != LayerKind::kInput && bytes[u] > 0) candidates.push_back(id);
  }
  auto by = [](const std::vector<double>& num, const std::vector<double>& den) {
    return [&num, &den](int a, int b) {
      const auto ua = static_cast<size_t>(a), ub = static_cast<size_t>(b);
      return num[ua] * std::max(den[ub], 1.0) > num[ub] * std::max(den[ua], 1.0);
    };
  };
  const auto most_flops_per_byte = by(flops, bytes);
  const auto most_bytes_per_flop = by(bytes, flops);
  auto with = [](const std::vector<bool>& k, int id, bool keep) {
    std::vector<bool> out = k;
    out[static_cast<size_t>(id)] = keep;
    return out;
  };

  std::vector<bool> best = start;
  double best_flops = 0.0;
  int64_t best_peak = 0;
  int trials = 1;
  *fits = trial(best, &best_flops, &best_peak);
  // Tries k: true when it fits with fewer FLOPs than best (while nothing fits: when it
  // fits or has a lower peak), and k becomes best. *peak: its peak.
  auto improves = [&](const std::vector<bool>& k, int64_t* peak = nullptr) {
    if (trials >= max_trials) return false;
    ++trials;
    double f = 0.0;
    int64_t pk = 0;
    const bool ok = trial(k, &f, &pk);
    if (peak) *peak = pk;
    if (*fits ? !ok || f >= best_flops : !ok && pk >= best_peak) return false;
    best = k;
    best_flops = f;
    best_peak = pk;
    *fits = ok;
    return true;
  };
  std::vector<int> kept, dropped;
  auto split = [&] {
    kept.clear();
    dropped.clear();
    for (int id : candidates) (best[static_cast<size_t>(id)] ? kept : dropped).push_back(id);
  };

  // Descent: until a set fits, single drops, then re-adds, that lower the peak.
  for (bool improved = true; improved && !*fits && trials < max_trials;) {
    improved = false;
    split();
    std::stable_sort(kept.begin(), kept.end(), most_bytes_per_flop);
    for (int id : kept)
      if (!*fits && improves(with(best, id, false))) improved = true;
    for (int id : dropped)
      if (!*fits && improves(with(best, id, true))) improved = true;
  }
  if (!*fits) return best;

  for (bool improved = true; improved && trials < max_trials;) {
    improved = false;
    // Re-add, in chunks: most FLOPs per byte first.
    split();
    std::stable_sort(dropped.begin(), dropped.end(), most_flops_per_byte);
    size_t chunk = 1;
    for (size_t i = 0; i < dropped.size() && trials < max_trials;) {
      const size_t end = std::min(dropped.size(), i + chunk);
      std::vector<bool> k = best;
      for (size_t j = i; j < end; ++j) k[static_cast<size_t>(dropped[j])] = true;
      if (improves(k)) {
        improved = true;
        i = end;
        chunk *= 2;
      } else if (chunk > 1) {
        chunk = 1;
      } else {
        ++i;
      }
    }
    // Keep d and repair: drop, one at a time, the kept candidate that lowers the peak
    // most among the first kRepairChoices (most bytes per FLOP first) whose FLOPs keep
    // the drops' total below d's, until the set fits.
    constexpr size_t kRepairChoices = 4;
    split();
    std::stable_sort(dropped.begin(), dropped.end(), [&](int a, int b) {
      return flops[static_cast<size_t>(a)] > flops[static_cast<size_t>(b)];
    });
    std::stable_sort(kept.begin(), kept.end(), most_bytes_per_flop);
    for (int d : dropped) {
      if (best[static_cast<size_t>(d)]) continue;
      std::vector<bool> k = with(best, d, true);
      double spent = 0.0;
      for (bool repaired = false; !repaired && trials < max_trials;) {
        int pick = -1;
        int64_t pick_peak = std::numeric_limits<int64_t>::max();
        size_t tried = 0;
        for (int c : kept) {
          const auto uc = static_cast<size_t>(c);
          if (tried == kRepairChoices || trials >= max_trials) break;
          if (!k[uc] || spent + flops[uc] >= flops[static_cast<size_t>(d)]) continue;
          ++tried;
          int64_t p = 0;
          if (improves(with(k, c, false), &p)) {
            improved = repaired = true;
            break;
          }
          if (p < pick_peak) {
            pick = c;
            pick_peak = p;
          }
        }
        if (repaired || pick < 0) break;
        k[static_cast<size_t>(pick)] = false;
        spent += flops[static_cast<size_t>(pick)];
      }
    }
  }
  return best;
}

RecomputeResult plan_recompute(const Graph& g, const Backend& be, const Sizes& sizes,
                               const Schedule& schedule, const RecomputeOptions& options) {
  RecomputeResult r;
  if (options.checkpoint.empty()) {
    r.schedule = schedule;
    return r;
  }
  const auto n = static_cast<size_t>(g.size());
  SN_ASSERT(options.checkpoint.size() == n, "one checkpoint flag per layer");
  auto dropped = [&](int id) {
    const auto u = static_cast<size_t>(id);
    return !options.checkpoint[u] && sizes.act[u] > 0 && g.layer(id).kind != LayerKind::kInput;
  };

  // Segments: union-find over dropped layers and their dropped inputs.
  std::vector<int> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  std::function<int(int)> find = [&](int x) {
    while (parent[static_cast<size_t>(x)] != x) {
      parent[static_cast<size_t>(x)] = parent[static_cast<size_t>(parent[static_cast<size_t>(x)])];
      x = parent[static_cast<size_t>(x)];
    }
    return x;
  };
  for (int id = 0; id < g.size(); ++id)
    if (dropped(id))
      for (int in : g.layer(id).inputs)
        if (dropped(in)) parent[static_cast<size_t>(find(id))] = find(in);

  std::vector<int> position(n, -1);  // forward position in the route
  for (size_t i = 0; i < schedule.size(); ++i)
    if (schedule[i].kind == StepKind::kForward)
      position[static_cast<size_t>(schedule[i].layer)] = static_cast<int>(i);

  std::vector<int> segment_of(n, -1);
  for (const StepSpec& s : schedule) {
    if (s.kind != StepKind::kForward || !dropped(s.layer)) continue;
    const auto root = static_cast<size_t>(find(s.layer));
    if (segment_of[root] < 0) {
      segment_of[root] = static_cast<int>(r.segments.size());
      r.segments.emplace_back();
    }
    SegmentRecord& seg = r.segments[static_cast<size_t>(segment_of[root])];
    seg.layers.push_back(s.layer);
    seg.bytes += sizes.act[static_cast<size_t>(s.layer)];
    segment_of[static_cast<size_t>(s.layer)] = segment_of[root];
  }
  for (SegmentRecord& seg : r.segments)
    seg.speed_centric = seg.bytes <= options.speed_centric_max_bytes;

  // Walk the schedule; before each backward step, recompute what it reads and lacks.
  std::vector<bool> available(n, false);  // speed-centric: recomputed and still kept
  std::vector<int> pending;
  std::vector<bool> queued(n, false);
  std::function<void(int)> need = [&](int id) {
    const auto u = static_cast<size_t>(id);
    if (!dropped(id) || available[u] || queued[u]) return;
    queued[u] = true;
    for (int in : g.layer(id).inputs) need(in);
    pending.push_back(id);
  };
  for (const StepSpec& s : schedule) {
    if (s.kind == StepKind::kBackward) {
      for (const TensorId& t : step_uses(g, be, sizes, s).reads)
        if (t.role == TensorRole::kActivation) need(t.layer);
      std::sort(pending.begin(), pending.end(), [&](int a, int b) {
        return position[static_cast<size_t>(a)] < position[static_cast<size_t>(b)];
      });
      for (int id : pending) {
        const auto u = static_cast<size_t>(id);
        queued[u] = false;
        SegmentRecord& seg = r.segments[static_cast<size_t>(segment_of[u])];
        if (seg.speed_centric) available[u] = true;
        ++seg.recomputed;
        ++r.recompute_count;
        r.recompute_flops += layer_forward_flops(g, id, sizes.batch);
        r.schedule.push_back({id, StepKind::kRecompute});
      }
      pending.clear();
    }
    r.schedule.push_back(s);
  }
  return r;
}

}  // namespace sn
