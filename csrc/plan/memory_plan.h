// Memory planning: which tensor is allocated, zero-filled and released at which step of
// one training iteration (and of one inference pass), and what that costs in bytes.
//
// Usage:
//   auto be = sn::make_cpu_backend();
//   sn::MemoryPlan plan = sn::plan_memory(graph, *be, /*batch=*/16, "liveness",
//                                         /*budget_bytes=*/12LL << 30);
//   if (!plan.fits) throw sn::OutOfMemoryError(plan.oom_message);
//   for (const sn::PlanStep& s : plan.train_steps) ... s.allocate, s.release, s.bytes_in_use
//
// A pure function of (graph, backend sizes, batch, policy, budget): nothing is allocated,
// so `superneurons plan` answers for networks that could never run on this machine.
// The executor replays exactly these events through a pool of the same capacity; its
// measured per-step trace therefore equals bytes_in_use here, byte for byte.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "exec/backend.h"
#include "graph/graph.h"

namespace sn {

enum class TensorRole : uint8_t {
  kParam,       // index: the layer's parameter number (param_shapes order); resident
  kParamGrad,   // resident
  kMomentum,    // resident
  kLabels,      // resident, one per session (layer = the loss layer)
  kActivation,  // a layer's output
  kGradient,    // the gradient of a layer's output
  kAux,         // state a layer saves in forward for its backward
  kWorkspace,   // scratch for one step
};

struct TensorRef {
  int layer = -1;
  TensorRole role = TensorRole::kActivation;
  int index = 0;
  int64_t size_bytes = 0;  // filled in by plan_memory (rounded to the pool's alignment)
};

enum class Phase : uint8_t { kSetup, kForward, kBackward };

struct PlanStep {
  int layer = -1;
  Phase phase = Phase::kForward;
  std::vector<TensorRef> allocate;   // before the step, in this order
  std::vector<TensorRef> zero_fill;  // gradients this step writes first (they accumulate)
  std::vector<TensorRef> release;    // after the step, in this order
  int64_t bytes_in_use = 0;          // pool bytes in use during the step (after allocate)
  int64_t live_tensors = 0;          // per-iteration tensors live during the step
};

// Where one tensor lived in the arena during setup and the training iteration:
// allocated before step first_step (-1: setup), released after step last_step
// (train_steps.size(): never within the iteration).
struct BlockRecord {
  TensorRef tensor;
  int64_t offset_bytes = 0;
  int64_t size_bytes = 0;
  int first_step = -1;
  int last_step = -1;
};

struct MemoryPlan {
  std::string policy;
  int64_t batch_size = 0;
  PlanStep setup;                     // resident tensors (and, for `none`, everything)
  std::vector<PlanStep> train_steps;  // forward steps, then backward steps
  std::vector<PlanStep> eval_steps;   // one inference pass
  int64_t budget_bytes = 0;           // 0: none given
  int64_t capacity_bytes = 0;         // the arena's capacity (the budget when given)
  int64_t high_water_bytes = 0;       // largest end offset the arena hands out
  int64_t resident_bytes = 0;
  int64_t peak_bytes = 0;  // max bytes in use over setup and every step
  int64_t eval_peak_bytes = 0;
  int64_t layer_bound_bytes = 0;  // resident + the largest single-step working set
  int64_t baseline_bytes = 0;     // policy `none`: every tensor at once
  bool fits = true;
  std::string oom_message;          // why not, when !fits
  std::vector<BlockRecord> blocks;  // placements under capacity_bytes (when fits)
  // Per layer, bytes of each per-iteration tensor (rounded to the pool's alignment).
  std::vector<int64_t> activation_bytes, gradient_bytes, aux_bytes, workspace_bytes, param_bytes;
};

// Which activations a layer's backward step reads: its inputs', its own output's.
struct BackwardReads {
  bool inputs = false;
  bool output = false;
};
BackwardReads backward_reads(LayerKind kind);

const char* policy_names();  // "none, liveness" (what this build plans)

// Throws ArgumentError for an unknown policy or batch < 1, GraphError for a bad graph.
MemoryPlan plan_memory(const Graph& g, const Backend& backend, int64_t batch_size,
                       const std::string& policy, int64_t budget_bytes);

}  // namespace sn
