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
#include <algorithm>
#include <functional>
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
