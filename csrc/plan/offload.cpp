// The offload pass of the Unified Tensor Pool (source Sec. 8.3.3): checkpoint outputs
// leave the device while compute goes on and come back ahead of their backward reader.
//
// Note [Planned synchronisation]
// Every copy has an event, and the plan says where the compute thread waits for it: the
// device block of a copied-out tensor is freed at the start of the next step (after its
// event), and a copied-in tensor is waited for right before the kernel that reads it.
// The arena therefore sees the same sequence of allocations and frees whatever the copy
// timing, so the measured trace still equals the plan and every offset is known ahead.
// The prefetch distance comes from the cost model: the copy starts at the latest step
// whose estimated compute until the reader covers the copy time.
#include <algorithm>
#include <optional>
#include <unordered_map>

#include "core/errors.h"
#include "memory/arena_pool.h"
#include "memory/tensor_cache.h"
#include "plan/passes.h"

namespace sn {
namespace {

// The fused update of parameter `index` in a backward step's operations.
std::vector<Op>::iterator update_of(std::vector<Op>& ops, int32_t index) {
  auto update = std::find_if(ops.begin(), ops.end(), [&](const Op& op) {
    return op.kind == OpKind::kCompute && op.compute == ComputeKind::kUpdate && op.index == index;
  });
  SN_ASSERT(update != ops.end(), "a backward step without its update");
  return update;
}

Op copy_op(OpKind kind, int32_t tensor, int event, StreamId stream) {
  Op op;
  op.kind = kind;
  op.tensor = tensor;
  op.event = event;
  op.stream = stream;
  return op;
}

// The step whose start a prefetch for step `use` is issued at: the latest one in
// [lo, use] whose estimated compute until `use` covers the copy.
size_t prefetch_step(const MemoryPlan& plan, const std::vector<PlanStep>& steps, size_t lo,
                     size_t use, int64_t bytes, double copy_bytes_per_ms) {
  const double copy_ms = static_cast<double>(bytes) / copy_bytes_per_ms;
  size_t p = use;
  double covered = 0.0;
  while (p > lo && covered < copy_ms) {
    --p;
    covered += step_cost_ms(plan, steps[p]);
  }
  return p;
}

// Frees lead a step and allocations follow them, so a block released at a step's start
// can be reused by a prefetch issued there.
void insert_free(std::vector<Op>& ops, const Op& op) { ops.insert(ops.begin(), op); }
void insert_alloc(std::vector<Op>& ops, std::initializer_list<Op> new_ops) {
  auto at = std::find_if(ops.begin(), ops.end(), [](const Op& op) {
    return op.kind != OpKind::kFreeAfter && op.kind != OpKind::kFree;
  });
  ops.insert(at, new_ops);
}

std::vector<Op>::iterator kernel_of(std::vector<Op>& ops) {
  auto kernel = std::find_if(ops.begin(), ops.end(), [](const Op& op) {
    return op.kind == OpKind::kCompute && op.compute != ComputeKind::kUpdate;
  });
  SN_ASSERT(kernel != ops.end(), "a step without a kernel");
  return kernel;
}

}  // namespace

// Note [Gradients in the pool]
// An activation gradient can wait many steps between writers: the gradient of a residual
// block's input is written by the shortcut's backward step and again by the main path's
// first layer, and while a recompute segment runs in between, every gradient waiting for
// a later reader sits on the device beside the recomputed outputs (the largest share of
// the gap between peak and layer bound on DenseNet and the ResNets: Note [Peak
// breakdown]). So a gradient's idle gaps are candidates too, of any layer: its uses are
// every step that accumulates into it as well as its reader, so a copied-out gradient is
// back (and waited for) before the next accumulation reads it. Parameter gradients live
// from their backward step to the fused update that follows: never idle.
std::vector<OffloadCandidate> offload_candidates(const MemoryPlan& plan, const Graph& g,
                                                 const Backend& be, const Sizes& sizes,
                                                 const Schedule& schedule,
                                                 const std::vector<bool>& eligible) {
  std::unordered_map<TensorId, int32_t, TensorIdHash> slot;
  for (size_t t = 0; t < plan.tensors.size(); ++t)
    slot.emplace(plan.tensors[t].id, static_cast<int32_t>(t));
  // Per slot, its definitions and uses in step order: (step, is_definition). A gradient
  // is used by every step that accumulates into it as well as by its reader.
  auto movable = [](TensorRole r) {
    return r == TensorRole::kActivation || r == TensorRole::kGradient;
  };
  std::vector<std::vector<std::pair<int, bool>>> events(plan.tensors.size());
  for (size_t i = 0; i < plan.train_steps.size(); ++i) {
    for (const Op& op : plan.train_steps[i].ops)
      if ((op.kind == OpKind::kAlloc || op.kind == OpKind::kAlias) &&
          movable(plan.tensors[static_cast<size_t>(op.tensor)].id.role))
        events[static_cast<size_t>(op.tensor)].push_back({static_cast<int>(i), true});
    const StepUses u = step_uses(g, be, sizes, schedule[i]);
    auto use = [&](const TensorId& t) {
      auto it = slot.find(t);
      if (it != slot.end())
        events[static_cast<size_t>(it->second)].push_back({static_cast<int>(i), false});
    };
    for (const TensorId& t : u.reads)
      if (movable(t.role)) use(t);
    for (const TensorId& t : u.writes)
      if (t.role == TensorRole::kGradient) use(t);
  }
  std::vector<OffloadCandidate> out;
  for (size_t t = 0; t < events.size(); ++t) {
    const TensorId& id = plan.tensors[t].id;
    // Note [Gradients in the pool]
    if (!movable(id.role)) continue;
    if (id.role == TensorRole::kActivation && !eligible[static_cast<size_t>(id.layer)]) continue;
    const auto& ev = events[t];  // in step order, a step's definition first
    for (size_t k = 0; k + 1 < ev.size(); ++k) {
      // Every gap between consecutive uses of one interval (no definition after): a
      // checkpoint read by a recompute early in backward and by its own backward step
      // much later leaves the device twice.
      if (ev[k + 1].second) continue;
      const int a = ev[k].first, b = ev[k + 1].first;
      if (b - a < 3 || schedule[static_cast<size_t>(b)].kind == StepKind::kForward) continue;
      out.push_back({static_cast<int32_t>(t), a, b, plan.tensors[t].size_bytes});
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const OffloadCandidate& x, const OffloadCandidate& y) {
                     return static_cast<double>(x.bytes) * (x.use_step - x.after_step) >
                            static_cast<double>(y.bytes) * (y.use_step - y.after_step);
                   });
  return out;
}

void plan_offload(MemoryPlan& plan, const std::vector<OffloadCandidate>& chosen,
                  double copy_bytes_per_ms) {
  if (chosen.empty()) return;
  plan.passes.insert(plan.passes.end() - 1, "offload");  // before placement
  for (const OffloadCandidate& c : chosen) {
    const int out_event = plan.num_events++;
    const int in_event = plan.num_events++;
    const auto a = static_cast<size_t>(c.after_step), b = static_cast<size_t>(c.use_step);
    auto& steps = plan.train_steps;
    steps[a].ops.push_back(copy_op(OpKind::kCopyOut, c.tensor, out_event, StreamId::kDeviceToHost));
    insert_free(steps[a + 1].ops,
                copy_op(OpKind::kFreeAfter, c.tensor, out_event, StreamId::kCompute));
    const size_t p = prefetch_step(plan, steps, a + 2, b, c.bytes, copy_bytes_per_ms);
    insert_alloc(steps[p].ops,
                 {alloc_op(c.tensor, c.bytes),
                  copy_op(OpKind::kCopyIn, c.tensor, in_event, StreamId::kHostToDevice)});
    auto& use = steps[b].ops;
    use.insert(kernel_of(use), copy_op(OpKind::kWait, c.tensor, in_event, StreamId::kCompute));
    plan.offload_bytes += c.bytes;
    plan.prefetch_bytes += c.bytes;
  }
}

// Note [Tensor cache]
// The source's tensor cache (Alg. 9) keeps tensors on the device and evicts the least
// recently used unlocked ones only when an allocation does not fit; when the network
// fits, nothing moves. Here it runs at planning time, over the plan's own operations, so
// every eviction becomes a planned copy that overlaps compute instead of a synchronous
// copy at the moment memory runs out:
//   - the cache (memory/tensor_cache.h) holds a candidate's tensor from the step after
//     its last use before an idle gap until the step its prefetch would start at; outside
//     that window the tensor is in use or about to be (locked: never evicted);
//   - the simulation replays allocations and frees in step order, counting bytes in use
//     (fragmentation is left to placement); before an allocation (or a prefetch coming
//     back) that would take the bytes in use over target_bytes, the least recently used
//     tensors in the cache are evicted until it fits or the cache is empty;
//   - an evicted tensor is the candidate it came from: copied out after its last use,
//     back by its prefetch step.
// In forward-then-backward order the least recently used tensor is the earliest forward
// output, the one backward reads last (the source's argument for LRU). The chosen set
// only depends on the budget the cache is run under; memory_plan.cpp lowers that target
// when placement needs slack.
std::vector<OffloadCandidate> cache_offload(const MemoryPlan& plan,
                                            const std::vector<OffloadCandidate>& candidates,
                                            int64_t target_bytes, double copy_bytes_per_ms) {
  const std::vector<PlanStep>& steps = plan.train_steps;
  std::vector<std::vector<int32_t>> opens(steps.size() + 1), closes(steps.size() + 1);
  for (size_t c = 0; c < candidates.size(); ++c) {
    const OffloadCandidate& k = candidates[c];
    const auto a = static_cast<size_t>(k.after_step), b = static_cast<size_t>(k.use_step);
    const size_t p = prefetch_step(plan, steps, a + 2, b, k.bytes, copy_bytes_per_ms);
    opens[a + 1].push_back(static_cast<int32_t>(c));
    closes[p].push_back(static_cast<int32_t>(c));
  }
  int64_t in_use = 0;
  for (const Op& op : plan.setup.ops)
    if (op.kind == OpKind::kAlloc) in_use += op.size_bytes;
  std::vector<int64_t> size(plan.tensors.size(), 0);
  std::vector<bool> given_up(plan.tensors.size(), false), evicted(candidates.size(), false);
  TensorCache cache;
  std::vector<OffloadCandidate> chosen;
  auto make_room = [&](int64_t bytes) {
    while (in_use + bytes > target_bytes) {
      const std::optional<TensorCache::Entry> e = cache.evict();
      if (!e) return;
      evicted[static_cast<size_t>(e->tensor)] = true;
      chosen.push_back(candidates[static_cast<size_t>(e->tensor)]);
      in_use -= e->bytes;
    }
  };
  for (size_t i = 0; i < steps.size(); ++i) {
    for (int32_t c : closes[i]) {  // the window ends: back on the device, or never left
      if (!evicted[static_cast<size_t>(c)]) {
        cache.remove(c);
        continue;
      }
      make_room(candidates[static_cast<size_t>(c)].bytes);
      in_use += candidates[static_cast<size_t>(c)].bytes;
    }
    for (int32_t c : opens[i]) cache.add(c, candidates[static_cast<size_t>(c)].bytes);
    for (const Op& op : steps[i].ops) {
      const auto t = static_cast<size_t>(op.tensor);
      if (op.kind == OpKind::kAlloc) {
        const int64_t bytes = ArenaPool::rounded(op.size_bytes);  // as the arena counts it
        make_room(bytes);
        in_use += bytes;
        size[t] = bytes;
      } else if (op.kind == OpKind::kAlias) {  // the block changes hands
        given_up[static_cast<size_t>(op.source)] = true;
        size[t] = size[static_cast<size_t>(op.source)];
      } else if (op.kind == OpKind::kFree || op.kind == OpKind::kFreeAfter) {
        if (given_up[t])
          given_up[t] = false;
        else
          in_use -= size[t];
      }
    }
  }
  return chosen;
}

// Note [Parameters in the pool]
// A layer flagged in `layers` keeps its trainable parameters and their momentum in the
// host slab (host_alloc at setup), as ZeRO-Offload does; its BN running statistics (a
// few floats a channel) stay resident. Each use on the device is an interval:
//   - the uses of a parameter are its layer's forward, recomputed-forward and backward
//     steps; uses at most two steps apart share one device copy;
//   - an interval starts with alloc + copy_in at the prefetch step (the cost model's
//     lookahead, never before the previous interval ended) and a wait before the kernel;
//   - an interval that holds the backward step copies the parameter back to its home
//     right after its fused update, and frees the device block after that copy's event
//     (at the start of the next step); any other interval just frees it (unchanged);
//   - momentum is used by the update only: alloc + copy_in ahead of the backward step,
//     wait before the update, copy back after it.
// Gradients never leave the device. Copying each parameter back right after its own
// update keeps a failed step's semantics: what was updated reaches the home (the
// executor drains the copies before it releases anything).
void plan_param_offload(MemoryPlan& plan, const std::vector<bool>& layers,
                        double copy_bytes_per_ms) {
  if (std::find(layers.begin(), layers.end(), true) == layers.end()) return;
  plan.passes.insert(plan.passes.end() - 1, "param offload");  // before placement
  plan.param_on_host = layers;
  std::unordered_map<TensorId, int32_t, TensorIdHash> slot;
  for (size_t t = 0; t < plan.tensors.size(); ++t)
    slot.emplace(plan.tensors[t].id, static_cast<int32_t>(t));
  auto homed = [&](const TensorId& id) {
    if (!layers[static_cast<size_t>(id.layer)]) return false;
    if (id.role == TensorRole::kMomentum) return true;
    return id.role == TensorRole::kParam &&
           slot.count({id.layer, TensorRole::kMomentum, id.index}) > 0;  // trainable
  };
  std::vector<std::pair<int32_t, int32_t>> params;  // (parameter slot, momentum slot)
  for (Op& op : plan.setup.ops) {
    if (op.kind != OpKind::kAlloc) continue;
    const TensorId id = plan.tensors[static_cast<size_t>(op.tensor)].id;
    if (!homed(id)) continue;
    op.kind = OpKind::kHostAlloc;
    plan.resident_bytes -= op.size_bytes;
    plan.param_host_bytes += op.size_bytes;
    if (id.role == TensorRole::kParam)
      params.push_back({op.tensor, slot.at({id.layer, TensorRole::kMomentum, id.index})});
  }

  auto event = [&] { return plan.num_events++; };
  auto process = [&](std::vector<PlanStep>& steps, bool train) {
    std::vector<std::vector<size_t>> uses(layers.size());
    for (size_t i = 0; i < steps.size(); ++i)
      if (layers[static_cast<size_t>(steps[i].layer)])
        uses[static_cast<size_t>(steps[i].layer)].push_back(i);
    for (const auto& [w, m] : params) {
      const TensorId id = plan.tensors[static_cast<size_t>(w)].id;
      const int64_t bytes = plan.tensors[static_cast<size_t>(w)].size_bytes;
      const std::vector<size_t>& u = uses[static_cast<size_t>(id.layer)];
      size_t lo = 0;  // the earliest step a prefetch may start at
      for (size_t k = 0; k < u.size();) {
        size_t last = k;
        while (last + 1 < u.size() && u[last + 1] <= u[last] + 2) ++last;
        const size_t first_step = u[k], last_step = u[last];
        const int in = event();
        const size_t p = prefetch_step(plan, steps, lo, first_step, bytes, copy_bytes_per_ms);
        insert_alloc(steps[p].ops, {alloc_op(w, bytes),
                                    copy_op(OpKind::kCopyIn, w, in, StreamId::kHostToDevice)});
        auto& first = steps[first_step].ops;
        first.insert(kernel_of(first), copy_op(OpKind::kWait, w, in, StreamId::kCompute));
        if (train) {  // the figures count one training iteration
          plan.prefetch_bytes += bytes;
          plan.param_copy_bytes += bytes;
        }
        PlanStep& end = steps[last_step];
        if (train && end.kind == StepKind::kBackward) {
          auto update = update_of(end.ops, id.index);
          const int out = event();
          end.ops.insert(update + 1, copy_op(OpKind::kCopyOut, w, out, StreamId::kDeviceToHost));
          const Op release = copy_op(OpKind::kFreeAfter, w, out, StreamId::kCompute);
          if (last_step + 1 < steps.size())
            insert_free(steps[last_step + 1].ops, release);
          else
            end.ops.push_back(release);
          plan.offload_bytes += bytes;
          plan.param_copy_bytes += bytes;
          lo = last_step + 1;
        } else {
          end.ops.push_back(copy_op(OpKind::kFree, w, kNoEvent, StreamId::kCompute));
          lo = last_step + 1;
        }
        k = last + 1;
      }
      if (!train) continue;
      // Momentum: in for the update of the backward step (the parameter's last use).
      const size_t b = u.back();
      SN_ASSERT(steps[b].kind == StepKind::kBackward, "a trained layer's last use is not backward");
      const int64_t mbytes = plan.tensors[static_cast<size_t>(m)].size_bytes;
      const int in = event(), out = event();
      const size_t p = prefetch_step(plan, steps, 0, b, mbytes, copy_bytes_per_ms);
      insert_alloc(steps[p].ops,
                   {alloc_op(m, mbytes), copy_op(OpKind::kCopyIn, m, in, StreamId::kHostToDevice)});
      auto& ops = steps[b].ops;
      auto update =
          ops.insert(update_of(ops, id.index), copy_op(OpKind::kWait, m, in, StreamId::kCompute));
      ops.insert(update + 2, copy_op(OpKind::kCopyOut, m, out, StreamId::kDeviceToHost));
      const Op release = copy_op(OpKind::kFreeAfter, m, out, StreamId::kCompute);
      if (b + 1 < steps.size())
        insert_free(steps[b + 1].ops, release);
      else
        ops.push_back(release);
      plan.prefetch_bytes += mbytes;
      plan.offload_bytes += mbytes;
      plan.param_copy_bytes += 2 * mbytes;
    }
  };
  process(plan.train_steps, true);
  process(plan.eval_steps, false);
}

}  // namespace sn
