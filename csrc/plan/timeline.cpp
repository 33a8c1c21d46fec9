// The cost model's clock over a plan: how long one training iteration takes when copies
// overlap compute, used to choose between recomputation and offload.
//
// Note [Planned timeline]
// One compute stream and one copy queue (the CPU engine's single worker; a conservative
// model of CUDA's two copy streams). A kernel starts when the previous one ends and every
// event it waits for has completed; a copy starts when it is issued (at its place in the
// step's operations) and the queue is free, and takes bytes / copy_bytes_per_ms. Kernel
// times come from the backend's algorithm costs (forward one third, backward two thirds
// of the forward + backward figure). The iteration ends when compute ends and the queue
// is empty (the next iteration drains it).
#include <algorithm>

#include "plan/passes.h"

namespace sn {

double step_cost_ms(const MemoryPlan& plan, const PlanStep& s) {
  const auto& algos = plan.algorithms[static_cast<size_t>(s.layer)];
  const double both = algos[static_cast<size_t>(s.algorithm)].cost_ms;  // forward + backward
  return s.kind == StepKind::kBackward ? both * 2.0 / 3.0 : both / 3.0;
}

Timeline plan_timeline(const MemoryPlan& plan, double copy_bytes_per_ms) {
  Timeline out;
  std::vector<double> done_ms(static_cast<size_t>(plan.num_events), 0.0);
  double now = 0.0, queue_free = 0.0;
  for (const PlanStep& s : plan.train_steps) {
    for (const Op& op : s.ops) {
      switch (op.kind) {
        case OpKind::kCopyOut:
        case OpKind::kCopyIn: {
          const double ms =
              static_cast<double>(plan.tensors[static_cast<size_t>(op.tensor)].size_bytes) /
              copy_bytes_per_ms;
          queue_free = std::max(queue_free, now) + ms;
          done_ms[static_cast<size_t>(op.event)] = queue_free;
          out.copy_ms += ms;
          break;
        }
        case OpKind::kWait:
        case OpKind::kFreeAfter: {
          const double ready = done_ms[static_cast<size_t>(op.event)];
          if (ready > now) {
            out.stall_ms += ready - now;
            now = ready;
          }
          break;
        }
        case OpKind::kCompute:
          if (op.compute != ComputeKind::kUpdate) {
            const double ms = step_cost_ms(plan, s);
            out.compute_ms += ms;
            now += ms;
          }
          break;
        default:
          break;
      }
    }
  }
  out.stall_ms += std::max(0.0, queue_free - now);
  out.iteration_ms = std::max(now, queue_free);
  return out;
}

}  // namespace sn
