// Note [Peak breakdown]
// What the plan holds when its peak training step's kernel runs, so the gap between the
// peak and the layer bound (Note [Layer bound] in memory_plan.cpp) is explained, not just
// shown. The plan's memory operations are replayed up to that kernel and every live block
// is put in one class, the first that applies:
//   - step: a tensor the step reads or writes (step_uses), its workspace, its layer's
//     parameters, parameter gradients and momentum: what the layer bound counts for it;
//   - resident: allocated at setup (parameters, momentum, labels of other layers);
//   - prefetched: copied in for a later step, not yet waited for;
//   - offloading: copied out, its device block not yet released;
//   - kept activations: other layers' outputs held for later readers (checkpoints kept for
//     backward or recomputation, recomputed outputs kept for their segment);
//   - gradients: other layers' activation or parameter gradients still to be read;
//   - other: anything else (saved state of other layers, their parameter copies).
// The classes sum to the peak. High water minus peak is what placement adds on top
// (fragmentation): the arena must be that large for the plan's offsets.
#include <algorithm>
#include <unordered_set>

#include "memory/arena_pool.h"
#include "plan/passes.h"

namespace sn {

PeakBreakdown explain_peak(const MemoryPlan& plan, const Graph& g, const Backend& be,
                           const Sizes& sizes) {
  PeakBreakdown b;
  const std::vector<PlanStep>& steps = plan.train_steps;
  const auto peak = std::max_element(steps.begin(), steps.end(), [](const auto& x, const auto& y) {
    return x.bytes_in_use < y.bytes_in_use;
  });
  if (peak == steps.end()) return b;
  b.step = static_cast<int>(peak - steps.begin());
  b.layer = peak->layer;
  b.kind = peak->kind;
  const size_t n = plan.tensors.size();
  std::vector<int64_t> bytes(n, 0);
  std::vector<bool> resident(n, false), prefetched(n, false), offloading(n, false);
  auto apply = [&](const Op& op, bool setup) {
    if (op.tensor == kNoTensor) return;
    const auto t = static_cast<size_t>(op.tensor);
    switch (op.kind) {
      case OpKind::kAlloc:  // as the arena rounds it (a workspace's size is not rounded)
        bytes[t] = ArenaPool::rounded(op.size_bytes);
        resident[t] = setup;
        break;
      case OpKind::kAlias:  // the block changes hands
        bytes[t] = bytes[static_cast<size_t>(op.source)];
        bytes[static_cast<size_t>(op.source)] = 0;
        break;
      case OpKind::kFree:
      case OpKind::kFreeAfter:
        bytes[t] = 0;
        resident[t] = prefetched[t] = offloading[t] = false;
        break;
      case OpKind::kCopyIn:
        prefetched[t] = true;
        break;
      case OpKind::kWait:
        prefetched[t] = false;
        break;
      case OpKind::kCopyOut:
        offloading[t] = true;
        break;
      default:
        break;
    }
  };
  for (const Op& op : plan.setup.ops) apply(op, true);
  for (auto s = steps.begin(); s != peak; ++s)
    for (const Op& op : s->ops) apply(op, false);
  for (const Op& op : peak->ops) {
    if (op.kind == OpKind::kCompute && op.compute != ComputeKind::kUpdate) break;
    apply(op, false);
  }
  const StepUses uses = step_uses(g, be, sizes, {peak->layer, peak->kind});
  std::unordered_set<TensorId, TensorIdHash> mine(uses.reads.begin(), uses.reads.end());
  mine.insert(uses.writes.begin(), uses.writes.end());
  for (size_t t = 0; t < n; ++t) {
    if (bytes[t] == 0) continue;
    const TensorId& id = plan.tensors[t].id;
    const bool own = id.layer == peak->layer &&
                     (id.role == TensorRole::kWorkspace || id.role == TensorRole::kParam ||
                      id.role == TensorRole::kParamGrad || id.role == TensorRole::kMomentum);
    int64_t* to = &b.other_bytes;
    if (own || mine.count(id))
      to = &b.step_bytes;
    else if (resident[t])
      to = &b.resident_bytes;
    else if (prefetched[t])
      to = &b.prefetched_bytes;
    else if (offloading[t])
      to = &b.offloading_bytes;
    else if (id.role == TensorRole::kActivation)
      to = &b.kept_activation_bytes;
    else if (id.role == TensorRole::kGradient || id.role == TensorRole::kParamGrad)
      to = &b.gradient_bytes;
    *to += bytes[t];
  }
  return b;
}

}  // namespace sn
