// The execution plan: per step, an ordered list of typed operations that one interpreter
// both simulates (planning) and executes (csrc/exec). Byte figures of every step come
// from these operations, so the report, the plot and the executor read one source.
//
// Usage:
//   const sn::MemoryPlan& p = ...;                 // from sn::plan_memory (memory_plan.h)
//   for (const sn::PlanStep& s : p.train_steps)
//     for (const sn::Op& op : s.ops)
//       if (op.kind == sn::OpKind::kAlloc) ... p.tensors[op.tensor].id, op.offset_bytes
//
// Note [Operations]
// alloc / free place and release a tensor in the device arena; alias lets a layer's
// output take over the block of an input that dies at that step (in place); zero clears a gradient
// before its first (accumulating) writer; compute runs a layer's forward, backward,
// recomputed forward, or the fused parameter update. copy_out / copy_in move a tensor to
// or from the host slab on a copy stream and record an event; wait makes the compute
// stream wait for an event; free_after frees a block once its event completes. The copy
// operations are part of the format now; the Unified Tensor Pool emits them.
// host_alloc (setup only) gives a tensor a permanent home in the host slab: parameters
// and momentum that live on the host (Note [Parameters in the pool] in offload.cpp). A
// home tensor is copied in before each use and, once updated, copied back to its home.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/tensor_id.h"

namespace sn {

enum class OpKind : uint8_t {
  kAlloc,
  kAlias,  // in place: op.tensor takes over the block of op.source (which dies here)
  kFree,
  kZero,
  kCompute,
  kCopyOut,
  kCopyIn,
  kWait,
  kFreeAfter,
  kHostAlloc,  // setup: op.tensor's permanent host block (its home)
};
enum class ComputeKind : uint8_t { kForward, kBackward, kRecompute, kUpdate };
enum class StreamId : uint8_t { kCompute, kDeviceToHost, kHostToDevice };
enum class StepKind : uint8_t { kSetup, kForward, kBackward, kRecompute };

constexpr int32_t kNoTensor = -1;  // Op::tensor of an operation on no tensor
constexpr int32_t kNoEvent = -1;   // Op::event when none is recorded or awaited
constexpr int64_t kUnplaced = -1;  // Op::offset_bytes before placement
constexpr int kSetupStep = -1;     // BlockRecord::first_step of tensors allocated at setup

struct Op {
  OpKind kind = OpKind::kCompute;
  ComputeKind compute = ComputeKind::kForward;  // kCompute only
  StreamId stream = StreamId::kCompute;
  int32_t tensor = kNoTensor;        // index into MemoryPlan::tensors
  int32_t source = kNoTensor;        // kAlias: the tensor whose block op.tensor takes
  int32_t layer = -1;                // kCompute: the layer
  int32_t index = 0;                 // kCompute kUpdate: the parameter number
  int32_t event = kNoEvent;          // copies record it; wait / free_after consume it
  int64_t size_bytes = 0;            // kAlloc: bytes (a workspace's depends on the algorithm)
  int64_t offset_bytes = kUnplaced;  // kAlloc: the arena offset placement chose
  bool from_top = false;             // kAlloc: placed from the top (Note [Two-ended placement])
};

struct PlanStep {
  int layer = -1;
  StepKind kind = StepKind::kForward;
  int algorithm = 0;              // index into Backend::algorithms() of this layer
  std::vector<Op> ops;            // in order
  int64_t bytes_in_use = 0;       // arena bytes in use when the step's layer runs
  int64_t host_bytes_in_use = 0;  // host slab bytes in use then
  int64_t live_tensors = 0;       // per-iteration tensors live then (setup tensors excluded)
};

struct TensorInfo {
  TensorId id;
  int64_t size_bytes = 0;  // rounded to the arena's alignment
};

// One allocation interval of a tensor during setup and the training iteration:
// allocated before step first_step (kSetupStep: at setup), released after step last_step
// (train_steps.size(): not within the iteration). A recomputed tensor has several.
struct BlockRecord {
  TensorId tensor;
  int32_t alias_of = -1;  // in place: the index of the block this one took over
  int64_t offset_bytes = 0;
  int64_t size_bytes = 0;
  int first_step = kSetupStep;
  int last_step = 0;
};

// A recompute segment: connected layers whose outputs are not kept, recomputed from the
// checkpoints around them. Speed-centric: each layer recomputed once and kept for the
// segment's backward steps; memory-centric: recomputed for each backward step that
// needs it and freed right after (source Sec. 8.3.4, Table 8.1).
struct SegmentRecord {
  std::vector<int> layers;  // route order
  int64_t bytes = 0;        // their activations at the planned batch
  bool speed_centric = true;
  int64_t recomputed = 0;  // layer forwards this segment adds to one iteration
};

// One selection of copies the planner compared for this plan (Note [Tensor cache] in
// offload.cpp; memory_plan.cpp's finish_with_offload).
struct OffloadChoice {
  std::string selection;  // "tensor cache", "ranked" or "every candidate"
  bool fits = false;
  int64_t moved_bytes = 0;  // offload + prefetch per iteration
  double estimated_ms = 0.0;
  bool chosen = false;
};

// The bytes live when the peak training step's kernel runs, by what holds them (Note
// [Peak breakdown] in peak.cpp); the classes sum to that step's bytes_in_use.
struct PeakBreakdown {
  int step = -1;  // index in train_steps; -1: no training steps
  int layer = -1;
  StepKind kind = StepKind::kForward;
  int64_t step_bytes = 0;      // what the step itself reads and writes (the bound counts it)
  int64_t resident_bytes = 0;  // setup tensors of other layers
  int64_t prefetched_bytes = 0, offloading_bytes = 0;
  int64_t kept_activation_bytes = 0, gradient_bytes = 0, other_bytes = 0;
};

struct MemoryPlan {
  std::string policy;
  std::vector<std::string> passes;  // the passes that produced this plan, in order
  int64_t batch_size = 0;
  std::vector<TensorInfo> tensors;    // every tensor an operation names
  PlanStep setup;                     // resident tensors (and, for `none`, everything)
  std::vector<PlanStep> train_steps;  // forward, recompute and backward steps
  std::vector<PlanStep> eval_steps;   // one inference pass
  int64_t budget_bytes = 0;           // 0: none given
  int64_t capacity_bytes = 0;         // the arena's capacity (the budget when given)
  int64_t high_water_bytes = 0;       // largest end offset the arena hands out
  int64_t resident_bytes = 0;         // parameters, momentum and labels
  int64_t peak_bytes = 0;             // max bytes in use over setup and every step
  int64_t eval_peak_bytes = 0;
  int64_t layer_bound_bytes = 0;  // see Note [Layer bound] in memory_plan.cpp
  int64_t baseline_bytes = 0;     // policy `none`: every tensor at once
  bool fits = true;
  bool host_full = false;           // !fits because the host slab (host budget) was full
  int64_t host_budget_bytes = 0;    // 0: none given (the slab is sized to the plan)
  std::string oom_message;          // why not, when !fits
  std::vector<BlockRecord> blocks;  // placements under capacity_bytes
  // Per layer, bytes of each per-iteration tensor (rounded to the arena's alignment).
  std::vector<int64_t> activation_bytes, gradient_bytes, aux_bytes, workspace_bytes, param_bytes;
  std::vector<bool> checkpoint;  // per layer: its output is kept for backward
  std::vector<SegmentRecord> segments;
  int num_events = 0;               // copy events one iteration records
  int64_t host_capacity_bytes = 0;  // the host slab (0 while planning: unlimited)
  int64_t host_peak_bytes = 0;      // most host slab bytes in use at once
  int64_t offload_bytes = 0;        // device -> host per iteration
  int64_t prefetch_bytes = 0;       // host -> device per iteration
  int64_t param_host_bytes = 0;     // parameters and momentum whose home is the host slab
  int64_t param_copy_bytes = 0;     // of offload + prefetch: their copies per iteration
  std::vector<bool> param_on_host;  // per layer: its trainable parameters live on the host
  std::vector<OffloadChoice> offload_choices;  // empty: no copies were needed
  PeakBreakdown peak_breakdown;
  // The cost model's clock over one training iteration (Note [Planned timeline]):
  // kernels, copies, and the time kernels wait for copies; estimated = the iteration.
  double compute_ms = 0.0, copy_ms = 0.0, stall_ms = 0.0, estimated_ms = 0.0;
  int64_t recompute_count = 0;   // extra layer forwards per iteration
  double recompute_flops = 0.0;  // their FLOPs
  double iteration_flops = 0.0;  // forward + backward (2x forward) of one iteration
  std::vector<std::vector<Algorithm>> algorithms;  // per layer, as the backend offered them
};

// An allocation of `size_bytes` for tensor slot `tensor` (not yet placed).
inline Op alloc_op(int32_t tensor, int64_t size_bytes) {
  Op op;
  op.kind = OpKind::kAlloc;
  op.tensor = tensor;
  op.size_bytes = size_bytes;
  return op;
}

const char* op_kind_name(OpKind k);
const char* step_kind_name(StepKind k);

}  // namespace sn
