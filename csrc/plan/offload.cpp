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
#include <unordered_map>

#include "core/errors.h"
#include "plan/passes.h"

namespace sn {
namespace {

Op copy_op(OpKind kind, int32_t tensor, int event, StreamId stream) {
  Op op;
  op.kind = kind;
  op.tensor = tensor;
  op.event = event;
  op.stream = stream;
  return op;
}

double step_cost_ms(const MemoryPlan& plan, const PlanStep& s) {
  const auto& algos = plan.algorithms[static_cast<size_t>(s.layer)];
  const double both = algos[static_cast<size_t>(s.algorithm)].cost_ms;  // forward + backward
  return s.kind == StepKind::kBackward ? both * 2.0 / 3.0 : both / 3.0;
}

}  // namespace

std::vector<OffloadCandidate> offload_candidates(const MemoryPlan& plan, const Graph& g,
                                                 const Backend& be, const Sizes& sizes,
                                                 const Schedule& schedule,
                                                 const std::vector<bool>& eligible) {
  std::unordered_map<TensorId, int32_t, TensorIdHash> slot;
  for (size_t t = 0; t < plan.tensors.size(); ++t)
    slot.emplace(plan.tensors[t].id, static_cast<int32_t>(t));
  // Per slot, its definitions and uses in step order: (step, is_definition).
  std::vector<std::vector<std::pair<int, bool>>> events(plan.tensors.size());
  for (size_t i = 0; i < plan.train_steps.size(); ++i) {
    for (const Op& op : plan.train_steps[i].ops)
      if ((op.kind == OpKind::kAlloc || op.kind == OpKind::kAlias) &&
          plan.tensors[static_cast<size_t>(op.tensor)].id.role == TensorRole::kActivation)
        events[static_cast<size_t>(op.tensor)].push_back({static_cast<int>(i), true});
    for (const TensorId& t : step_uses(g, be, sizes, schedule[i]).reads)
      if (t.role == TensorRole::kActivation)
        events[static_cast<size_t>(slot.at(t))].push_back({static_cast<int>(i), false});
  }
  std::vector<OffloadCandidate> out;
  for (size_t t = 0; t < events.size(); ++t) {
    const TensorId& id = plan.tensors[t].id;
    if (id.role != TensorRole::kActivation || !eligible[static_cast<size_t>(id.layer)]) continue;
    const auto& ev = events[t];
    for (size_t k = 0; k + 1 < ev.size(); ++k) {
      // The widest gap of each interval: consecutive events with no definition after.
      if (ev[k + 1].second) continue;
      const int a = ev[k].first, b = ev[k + 1].first;
      if (b - a < 3 || schedule[static_cast<size_t>(b)].kind == StepKind::kForward) continue;
      if (!out.empty() && out.back().tensor == static_cast<int32_t>(t) &&
          out.back().use_step - out.back().after_step >= b - a)
        continue;
      if (!out.empty() && out.back().tensor == static_cast<int32_t>(t)) out.pop_back();
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
    auto& next = steps[a + 1].ops;
    next.insert(next.begin(), copy_op(OpKind::kFreeAfter, c.tensor, out_event, StreamId::kCompute));
    // Prefetch: the latest step p in [a + 2, b] whose compute until b covers the copy.
    const double copy_ms = static_cast<double>(c.bytes) / copy_bytes_per_ms;
    size_t p = b;
    double covered = 0.0;
    while (p > a + 2 && covered < copy_ms) {
      --p;
      covered += step_cost_ms(plan, steps[p]);
    }
    Op alloc;
    alloc.kind = OpKind::kAlloc;
    alloc.tensor = c.tensor;
    alloc.size_bytes = c.bytes;
    auto& pre = steps[p].ops;
    pre.insert(pre.begin(),
               {alloc, copy_op(OpKind::kCopyIn, c.tensor, in_event, StreamId::kHostToDevice)});
    auto& use = steps[b].ops;
    auto kernel = std::find_if(use.begin(), use.end(), [](const Op& op) {
      return op.kind == OpKind::kCompute && op.compute != ComputeKind::kUpdate;
    });
    SN_ASSERT(kernel != use.end(), "a step without a kernel");
    use.insert(kernel, copy_op(OpKind::kWait, c.tensor, in_event, StreamId::kCompute));
    plan.offload_bytes += c.bytes;
    plan.prefetch_bytes += c.bytes;
  }
}

}  // namespace sn
