// Memory planning for a policy: chains the passes of passes.h into one plan.
//
// Usage:
//   auto be = sn::make_cpu_backend();
//   sn::MemoryPlan plan = sn::plan_memory(graph, *be, /*batch=*/16, "liveness+recompute",
//                                         /*budget_bytes=*/12LL << 30);
//   if (!plan.fits) throw sn::OutOfMemoryError(plan.oom_message);
//   for (const sn::PlanStep& s : plan.train_steps) ... s.ops, s.bytes_in_use
//
// A pure function of (graph, backend sizes, batch, policy, budget): nothing is allocated,
// so `superneurons plan` answers for networks that could never run on this machine.
//
// Policies:
//   none                 every tensor allocated once at setup (the baseline)
//   liveness             route -> liveness -> placement
//   liveness+recompute   route -> recompute -> liveness -> placement. With a budget, only
//                        as much recomputation as the budget needs (Note [Budget-driven
//                        recompute]); without one, the source's: every non-checkpoint
//                        output recomputed.
#pragma once

#include <cstdint>
#include <string>

#include "backend/backend.h"
#include "graph/graph.h"
#include "plan/plan.h"

namespace sn {

const char* policy_names();  // what this build plans, comma-separated

// Throws ArgumentError for an unknown policy or batch < 1, GraphError for a bad graph.
// host_budget_bytes (0: none) caps the host slab that offload and parameters on the host
// may use (Note [Host budget] in memory_plan.cpp); it applies with a device budget.
MemoryPlan plan_memory(const Graph& g, const Backend& backend, int64_t batch_size,
                       const std::string& policy, int64_t budget_bytes,
                       int64_t host_budget_bytes = 0);

}  // namespace sn
