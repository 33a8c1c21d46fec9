#include "plan/memory_plan.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <set>
#include <sstream>
#include <unordered_map>

#include "core/errors.h"
#include "memory/arena_pool.h"

namespace sn {
namespace {

// Note [What backward reads]
// Liveness is only as good as this table: a layer's backward step keeps its inputs'
// activations (and its own output) alive only when its kernel reads them. It must match
// the kernels of every backend (backend/cpu_backend.cpp); the gradient checks in
// tests/cpu fail when it does not, because a released buffer is then null.
}  // namespace

BackwardReads backward_reads(LayerKind kind) {
  switch (kind) {
    case LayerKind::kConv2d:     // dW = dy * x
    case LayerKind::kFc:         // dW = dy^T x
    case LayerKind::kBatchNorm:  // x - mean
    case LayerKind::kRelu:       // x > 0
    case LayerKind::kMaxPool:    // argmax recomputed from x
      return {true, false};
    case LayerKind::kLrn:
      return {true, true};
    default:  // avg/global pool, dropout (mask from seed), add, concat, flatten, loss (aux)
      return {false, false};
  }
}

namespace {

bool is_resident(TensorRole r) {
  return r == TensorRole::kParam || r == TensorRole::kParamGrad || r == TensorRole::kMomentum ||
         r == TensorRole::kLabels;
}

const char* role_name(TensorRole r) {
  switch (r) {
    case TensorRole::kParam:
      return "a parameter";
    case TensorRole::kParamGrad:
      return "a parameter gradient";
    case TensorRole::kMomentum:
      return "momentum";
    case TensorRole::kLabels:
      return "the labels";
    case TensorRole::kActivation:
      return "the output activation";
    case TensorRole::kGradient:
      return "an output gradient";
    case TensorRole::kAux:
      return "state saved for backward";
    case TensorRole::kWorkspace:
      return "workspace";
  }
  return "?";
}

int64_t key_of(const TensorRef& t) {
  return (static_cast<int64_t>(t.layer) * 8 + static_cast<int64_t>(t.role)) * 4096 + t.index;
}

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

// a * b, or ArgumentError when the product does not fit in int64.
int64_t checked_mul(int64_t a, int64_t b, const std::string& what) {
  int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out))
    throw ArgumentError(what + " overflows 64-bit byte counts (" + std::to_string(a) + " x " +
                        std::to_string(b) + "); use a smaller batch or input");
  return out;
}

// Sizes of every tensor, computed once per layer.
struct Sizes {
  std::vector<std::vector<ParamShape>> params;
  std::vector<int64_t> act, aux, ws;
  int64_t labels = 0;

  Sizes(const Graph& g, const Backend& be, int64_t batch) {
    const auto n = static_cast<size_t>(g.size());
    params.resize(n);
    act.resize(n);
    aux.resize(n);
    ws.resize(n);
    for (int i = 0; i < g.size(); ++i) {
      const auto u = static_cast<size_t>(i);
      params[u] = param_shapes(g, i);
      const Layer& l = g.layer(i);
      const std::string what = "the output of layer '" + l.name + "'";
      const int64_t act_bytes = checked_mul(checked_mul(batch, l.out.numel(), what), 4, what);
      act[u] = l.kind == LayerKind::kSoftmaxXent ? 0 : ArenaPool::rounded(act_bytes);
      int64_t a = be.aux_floats(g, i, batch), w = be.workspace_floats(g, i, batch);
      aux[u] = a > 0 ? ArenaPool::rounded(a * 4) : 0;
      ws[u] = w > 0 ? ArenaPool::rounded(w * 4) : 0;
    }
    labels = ArenaPool::rounded(checked_mul(batch, 4, "the labels"));
  }

  int64_t of(const TensorRef& t) const {
    const auto u = static_cast<size_t>(t.layer);
    switch (t.role) {
      case TensorRole::kParam:
      case TensorRole::kParamGrad:
      case TensorRole::kMomentum:
        return ArenaPool::rounded(params[u][static_cast<size_t>(t.index)].numel() * 4);
      case TensorRole::kLabels:
        return labels;
      case TensorRole::kActivation:
      case TensorRole::kGradient:
        return act[u];
      case TensorRole::kAux:
        return aux[u];
      case TensorRole::kWorkspace:
        return ws[u];
    }
    return 0;
  }
};

struct SimResult {
  bool fits = true;
  std::string message;
  int64_t high_water_bytes = 0;
};

// Replays the plan through a virtual pool of the given capacity. With record, stores the
// bytes in use and live tensor count of every step into the plan.
SimResult simulate(MemoryPlan& plan, const Graph& g, int64_t capacity, bool record,
                   std::vector<BlockRecord>* blocks) {
  ArenaPool pool(capacity, nullptr);
  std::unordered_map<int64_t, int64_t> offsets;
  std::unordered_map<int64_t, size_t> open_blocks;  // tensor key -> index in *blocks
  const int train_end = static_cast<int>(plan.train_steps.size());
  bool in_train = false;
  int64_t live = 0;
  SimResult result;
  auto fail = [&](const PlanStep& s, size_t index, const TensorRef& t, int64_t bytes) {
    std::ostringstream m;
    const char* phase = s.phase == Phase::kSetup     ? "setup"
                        : s.phase == Phase::kForward ? "forward step"
                                                     : "backward step";
    m << "out of memory at " << phase;
    if (s.phase != Phase::kSetup) m << " " << index;
    m << " (layer '" << g.layer(t.layer).name << "', " << kind_name(g.layer(t.layer).kind)
      << "): requested " << bytes_str(bytes) << " for " << role_name(t.role) << "; budget "
      << bytes_str(capacity) << ", in use " << bytes_str(pool.stats().in_use_bytes) << ", free "
      << bytes_str(pool.free_bytes()) << ", largest free block "
      << bytes_str(pool.largest_free_bytes()) << ". This plan (policy '" << plan.policy
      << "', batch " << plan.batch_size << ") needs " << bytes_str(plan.peak_bytes)
      << " at its peak. ";
    if (plan.resident_bytes > capacity) {
      m << "Parameters, their gradients and momentum alone need " << bytes_str(plan.resident_bytes)
        << ", more than the budget, so a smaller batch cannot help: use a larger budget.";
    } else {
      m << "Hint: use a smaller batch size, a larger budget";
      if (plan.policy == "none") m << ", or policy 'liveness', which frees tensors after last use";
      m << ".";
    }
    result.fits = false;
    result.message = m.str();
  };
  auto run = [&](PlanStep& s, size_t index) {
    const int step = s.phase == Phase::kSetup ? -1 : static_cast<int>(index);
    for (const TensorRef& t : s.allocate) {
      const int64_t bytes = t.size_bytes;
      int64_t off = pool.allocate_offset(bytes);
      if (off == ArenaPool::kNoSpace) {
        fail(s, index, t, bytes);
        return false;
      }
      offsets[key_of(t)] = off;
      if (!is_resident(t.role)) ++live;
      if (blocks && (in_train || step < 0)) {
        open_blocks[key_of(t)] = blocks->size();
        blocks->push_back({t, off, bytes, step, train_end});
      }
    }
    if (record) {
      s.bytes_in_use = pool.stats().in_use_bytes;
      s.live_tensors = live;
    }
    for (const TensorRef& t : s.release) {
      auto it = offsets.find(key_of(t));
      SN_ASSERT(it != offsets.end(), "plan releases a tensor it never allocated");
      pool.free_offset(it->second);
      offsets.erase(it);
      if (blocks && in_train) {
        auto b = open_blocks.find(key_of(t));
        if (b != open_blocks.end()) {
          (*blocks)[b->second].last_step = step;
          open_blocks.erase(b);
        }
      }
      if (!is_resident(t.role)) --live;
    }
    return true;
  };
  if (!run(plan.setup, 0)) return result;
  in_train = true;
  for (size_t i = 0; i < plan.train_steps.size(); ++i)
    if (!run(plan.train_steps[i], i)) return result;
  in_train = false;
  for (size_t i = 0; i < plan.eval_steps.size(); ++i)
    if (!run(plan.eval_steps[i], i)) return result;
  result.high_water_bytes = pool.high_water_bytes();
  return result;
}

}  // namespace

const char* policy_names() { return "none, liveness"; }

MemoryPlan plan_memory(const Graph& g, const Backend& backend, int64_t batch_size,
                       const std::string& policy, int64_t budget_bytes) {
  if (batch_size < 1)
    throw ArgumentError("batch_size must be >= 1, got " + std::to_string(batch_size));
  if (policy != "none" && policy != "liveness")
    throw ArgumentError("memory policy '" + policy + "' is not available in this build; " +
                        "available: " + policy_names());
  if (budget_bytes < 0)
    throw ArgumentError("budget must be >= 0 bytes (0: none), got " + std::to_string(budget_bytes));
  const std::vector<int> route = forward_route(g);  // validates the graph
  const Sizes sizes(g, backend, batch_size);
  const bool keep_all = policy == "none";
  const auto n_layers = static_cast<size_t>(g.size());
  const int input = g.input_layer(), loss = g.loss_layer();

  MemoryPlan plan;
  plan.policy = policy;
  plan.batch_size = batch_size;
  plan.budget_bytes = budget_bytes;

  // Step numbering: forward steps follow the route, backward steps its reverse (no
  // backward step for the data layer).
  std::vector<int> fwd(n_layers), bwd(n_layers, -1);
  for (size_t i = 0; i < route.size(); ++i) {
    fwd[static_cast<size_t>(route[i])] = static_cast<int>(i);
    PlanStep s;
    s.layer = route[i];
    s.phase = Phase::kForward;
    plan.train_steps.push_back(std::move(s));
  }
  for (auto it = route.rbegin(); it != route.rend(); ++it) {
    if (*it == input) continue;
    bwd[static_cast<size_t>(*it)] = static_cast<int>(plan.train_steps.size());
    PlanStep s;
    s.layer = *it;
    s.phase = Phase::kBackward;
    plan.train_steps.push_back(std::move(s));
  }

  // Resident tensors, then (policy none) every per-iteration tensor, all at setup.
  plan.setup.phase = Phase::kSetup;
  plan.setup.layer = loss;
  plan.setup.allocate.push_back({loss, TensorRole::kLabels, 0});
  for (int id : route) {
    const auto& ps = sizes.params[static_cast<size_t>(id)];
    for (size_t p = 0; p < ps.size(); ++p) {
      const int pi = static_cast<int>(p);
      plan.setup.allocate.push_back({id, TensorRole::kParam, pi});
      if (ps[p].trainable) {
        plan.setup.allocate.push_back({id, TensorRole::kParamGrad, pi});
        plan.setup.allocate.push_back({id, TensorRole::kMomentum, pi});
      }
    }
  }
  for (const TensorRef& t : plan.setup.allocate) plan.resident_bytes += sizes.of(t);

  // First and last step of every per-iteration tensor of the training iteration.
  for (int id : route) {
    const auto u = static_cast<size_t>(id);
    const Layer& l = g.layer(id);
    if (id != loss) {
      int last = fwd[u];
      for (int c : g.consumers(id)) {
        last = std::max(last, fwd[static_cast<size_t>(c)]);
        if (backward_reads(g.layer(c).kind).inputs)
          last = std::max(last, bwd[static_cast<size_t>(c)]);
      }
      if (backward_reads(l.kind).output) last = std::max(last, bwd[u]);
      TensorRef act{id, TensorRole::kActivation, 0};
      if (keep_all) {
        plan.setup.allocate.push_back(act);
      } else {
        plan.train_steps[static_cast<size_t>(fwd[u])].allocate.push_back(act);
        plan.train_steps[static_cast<size_t>(last)].release.push_back(act);
      }
    }
    if (id != loss && id != input) {
      int first = std::numeric_limits<int>::max();
      for (int c : g.consumers(id)) first = std::min(first, bwd[static_cast<size_t>(c)]);
      TensorRef grad{id, TensorRole::kGradient, 0};
      PlanStep& writer = plan.train_steps[static_cast<size_t>(first)];
      writer.zero_fill.push_back(grad);
      if (keep_all) {
        plan.setup.allocate.push_back(grad);
      } else {
        writer.allocate.push_back(grad);
        plan.train_steps[static_cast<size_t>(bwd[u])].release.push_back(grad);
      }
    }
    if (sizes.aux[u] > 0) {
      TensorRef aux{id, TensorRole::kAux, 0};
      if (keep_all) {
        plan.setup.allocate.push_back(aux);
      } else {
        plan.train_steps[static_cast<size_t>(fwd[u])].allocate.push_back(aux);
        plan.train_steps[static_cast<size_t>(bwd[u])].release.push_back(aux);
      }
    }
    if (sizes.ws[u] > 0) {
      TensorRef ws{id, TensorRole::kWorkspace, 0};
      if (keep_all) {
        plan.setup.allocate.push_back(ws);
      } else {
        for (int step : {fwd[u], bwd[u]}) {
          if (step < 0) continue;
          auto& s = plan.train_steps[static_cast<size_t>(step)];
          s.allocate.push_back(ws);
          s.release.insert(s.release.begin(), ws);  // scratch goes first
        }
      }
    }
  }

  // One inference pass: activations live until their last forward reader.
  for (int id : route) {
    PlanStep s;
    s.layer = id;
    s.phase = Phase::kForward;
    plan.eval_steps.push_back(std::move(s));
  }
  if (!keep_all) {
    for (int id : route) {
      const auto u = static_cast<size_t>(id);
      PlanStep& own = plan.eval_steps[static_cast<size_t>(fwd[u])];
      if (id != loss) {
        int last = fwd[u];
        for (int c : g.consumers(id)) last = std::max(last, fwd[static_cast<size_t>(c)]);
        TensorRef act{id, TensorRole::kActivation, 0};
        own.allocate.push_back(act);
        plan.eval_steps[static_cast<size_t>(last)].release.push_back(act);
      }
      for (TensorRole role : {TensorRole::kAux, TensorRole::kWorkspace}) {
        if ((role == TensorRole::kAux ? sizes.aux[u] : sizes.ws[u]) == 0) continue;
        own.allocate.push_back({id, role, 0});
        own.release.insert(own.release.begin(), TensorRef{id, role, 0});
      }
    }
  }

  // Byte accounting that needs no simulation.
  plan.activation_bytes = sizes.act;
  plan.gradient_bytes.assign(n_layers, 0);
  plan.param_bytes.assign(n_layers, 0);
  plan.aux_bytes = sizes.aux;
  plan.workspace_bytes = sizes.ws;
  plan.baseline_bytes = plan.resident_bytes;
  for (size_t u = 0; u < n_layers; ++u) {
    const int id = static_cast<int>(u);
    if (id != loss && id != input) plan.gradient_bytes[u] = sizes.act[u];
    for (size_t p = 0; p < sizes.params[u].size(); ++p) {
      int64_t b = sizes.of({id, TensorRole::kParam, static_cast<int>(p)});
      plan.param_bytes[u] += b * (sizes.params[u][p].trainable ? 3 : 1);
    }
    plan.baseline_bytes += sizes.act[u] + plan.gradient_bytes[u] + sizes.aux[u] + sizes.ws[u];
  }
  int64_t largest_step = 0;
  for (const PlanStep& s : plan.train_steps) {
    const auto u = static_cast<size_t>(s.layer);
    const Layer& l = g.layer(s.layer);
    int64_t bytes = sizes.aux[u] + sizes.ws[u];
    const bool forward = s.phase == Phase::kForward;
    BackwardReads reads = backward_reads(l.kind);
    if (forward || reads.output) bytes += sizes.act[u];
    if (!forward && s.layer != loss) bytes += sizes.act[u];  // dy
    // add(x, x) and concat([a, a]) read one tensor twice: count it once.
    const std::set<int> distinct(l.inputs.begin(), l.inputs.end());
    for (int in : distinct) {
      const auto v = static_cast<size_t>(in);
      if (forward || reads.inputs) bytes += sizes.act[v];
      if (!forward && in != input) bytes += sizes.act[v];  // dx
    }
    largest_step = std::max(largest_step, bytes);
  }
  plan.layer_bound_bytes = plan.resident_bytes + largest_step;

  // Every reference carries its size, so the executor never recomputes one.
  auto stamp = [&](std::vector<TensorRef>& refs) {
    for (TensorRef& t : refs) t.size_bytes = sizes.of(t);
  };
  auto stamp_step = [&](PlanStep& s) {
    stamp(s.allocate);
    stamp(s.zero_fill);
    stamp(s.release);
  };
  stamp_step(plan.setup);
  for (PlanStep& s : plan.train_steps) stamp_step(s);
  for (PlanStep& s : plan.eval_steps) stamp_step(s);

  // Simulate: unlimited first (the trace and the peak), then under the arena's capacity.
  constexpr int64_t kUnlimitedBytes = int64_t{1} << 60;  // bytes: a virtual arena only
  std::vector<BlockRecord> unlimited_blocks;
  SimResult free_run = simulate(plan, g, kUnlimitedBytes, true, &unlimited_blocks);
  SN_ASSERT(free_run.fits, "an unlimited arena ran out of memory");
  plan.peak_bytes = plan.setup.bytes_in_use;
  for (const PlanStep& s : plan.train_steps)
    plan.peak_bytes = std::max(plan.peak_bytes, s.bytes_in_use);
  for (const PlanStep& s : plan.eval_steps)
    plan.eval_peak_bytes = std::max(plan.eval_peak_bytes, s.bytes_in_use);
  plan.eval_peak_bytes = std::max(plan.eval_peak_bytes, plan.setup.bytes_in_use);
  plan.peak_bytes = std::max(plan.peak_bytes, plan.eval_peak_bytes);
  if (budget_bytes > 0) {
    plan.capacity_bytes = budget_bytes / ArenaPool::kAlignmentBytes * ArenaPool::kAlignmentBytes;
    SimResult capped = simulate(plan, g, plan.capacity_bytes, false, &plan.blocks);
    plan.fits = capped.fits;
    plan.oom_message = capped.message;
    plan.high_water_bytes = capped.high_water_bytes;
    // A plan that does not fit still reports every tensor's lifetime (placed without limit).
    if (!plan.fits) plan.blocks = std::move(unlimited_blocks);
  } else {
    // No budget: reserve what the plan reaches; best fit in a smaller arena can place
    // blocks differently, so grow until the same sequence fits (rarely more than once).
    plan.capacity_bytes = ArenaPool::rounded(std::max<int64_t>(free_run.high_water_bytes, 1));
    for (;;) {
      plan.blocks.clear();
      SimResult capped = simulate(plan, g, plan.capacity_bytes, false, &plan.blocks);
      plan.high_water_bytes = capped.high_water_bytes;
      if (capped.fits) break;
      plan.capacity_bytes = ArenaPool::rounded(plan.capacity_bytes + plan.capacity_bytes / 8);
    }
  }
  return plan;
}

}  // namespace sn
