// The planning passes, each a pure function from data to data:
//
//   route -> schedule -> recompute -> liveness -> [offload, param offload] -> placement
//
//   Sizes sizes(graph, backend, batch);                        // bytes of every tensor
//   Schedule s = training_schedule(graph);                     // forward, then backward
//   RecomputeResult r = plan_recompute(graph, backend, sizes, s, options);
//   MemoryPlan p = plan_liveness(graph, backend, sizes, r.schedule, keep_all);
//   place(p, graph, capacity_bytes, /*choose_algorithms=*/true);
//
// plan_memory() (memory_plan.h) chains them for a policy; tests call them one by one.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "backend/backend.h"
#include "graph/graph.h"
#include "plan/plan.h"

namespace sn {

// ---------------------------------------------------------------------------- sizes
// Bytes of every tensor at one batch size (rounded to the arena's alignment), computed
// once per layer. Throws ArgumentError when a size overflows 64 bits.
struct Sizes {
  std::vector<std::vector<ParamShape>> params;
  std::vector<int64_t> act, aux;
  std::vector<std::vector<Algorithm>> algorithms;  // per layer, fastest first
  int64_t labels = 0;
  int64_t batch = 0;

  Sizes(const Graph& g, const Backend& be, int64_t batch);
  int64_t of(const TensorId& t) const;  // workspace: of the layer's fastest algorithm
  int64_t param_bytes(int layer, int index) const;
  int64_t workspace_bytes(int layer, int algorithm) const;
  int64_t min_workspace_bytes(int layer) const;  // over its algorithms
};

// ------------------------------------------------------------------------- schedule
struct StepSpec {
  int layer = -1;
  StepKind kind = StepKind::kForward;
};
using Schedule = std::vector<StepSpec>;

// The route (Alg. 8) as forward steps, then its reverse as backward steps (none for the
// data layer).
Schedule training_schedule(const Graph& g);
Schedule inference_schedule(const Graph& g);

// What a step reads and writes: the single source of truth for liveness and recompute.
struct StepUses {
  std::vector<TensorId> reads;   // per-iteration tensors only (no parameters)
  std::vector<TensorId> writes;  // a gradient written twice accumulates
};
StepUses step_uses(const Graph& g, const Backend& be, const Sizes& sizes, const StepSpec& s);

// ------------------------------------------------------------------------ recompute
struct RecomputeOptions {
  // Per layer: its output is kept (a checkpoint). Empty: no recomputation at all.
  std::vector<bool> checkpoint;
  // Speed-centric when a segment's activations stay within this many bytes, else
  // memory-centric (source Table 8.1 uses the layer-wise bound).
  int64_t speed_centric_max_bytes = 0;
};

struct RecomputeResult {
  Schedule schedule;  // with recompute steps before the backward steps that need them
  std::vector<SegmentRecord> segments;
  int64_t recompute_count = 0;
  double recompute_flops = 0.0;
};

// Checkpoints by cost (Note [Checkpoints by cost] in recompute.cpp): layers whose forward
// computes at least min_flops_per_byte FLOPs per byte of output, the data layer, and any
// output whose recomputation would chain more than max_chain layer forwards.
std::vector<bool> cost_checkpoints(const Graph& g, int64_t batch, double min_flops_per_byte,
                                   int max_chain);
// Keeps every stride-th checkpoint of `base` (in route order) and the data layer.
std::vector<bool> sparse_checkpoints(const Graph& g, const std::vector<bool>& base, int stride);

// The checkpoint search (Note [Checkpoint search] in recompute.cpp) over base's
// checkpoints (the data layer stays kept), from `start`: first, while the set does not
// fit, moves that lower its peak; then moves that lower its extra FLOPs and still fit.
// `trial` plans a set: whether it fits, its extra FLOPs and its peak (without limit when
// it does not fit). At most max_trials calls; returns the best set, *fits whether it fits.
using CheckpointTrial =
    std::function<bool(const std::vector<bool>& checkpoint, double* flops, int64_t* peak_bytes)>;
std::vector<bool> search_checkpoints(const Graph& g, int64_t batch, const std::vector<bool>& base,
                                     const std::vector<bool>& start, const CheckpointTrial& trial,
                                     int max_trials, bool* fits);

RecomputeResult plan_recompute(const Graph& g, const Backend& be, const Sizes& sizes,
                               const Schedule& schedule, const RecomputeOptions& options);

// The rungs of Note [Budget-driven recompute] (memory_plan.cpp) after "no recomputation":
// `base` with the source's segments, then (when `sparse`) every 2nd, 3rd, 4th, 6th, ...
// checkpoint of `base` with speed-centric segments.
std::vector<RecomputeOptions> recompute_ladder(const Graph& g, const Backend& be,
                                               const Sizes& sizes, const Schedule& train,
                                               const std::vector<bool>& base, bool sparse);
// Policy liveness+recompute's plan with these options (nullptr: no recomputation) under
// budget_bytes and the planner's placement: fits, peak_bytes (when it does not fit, what
// it needs without limit), recompute_flops. The trial of the checkpoint search, for
// tests that search exhaustively.
MemoryPlan recompute_plan(const Graph& g, const Backend& be, int64_t batch,
                          const RecomputeOptions* options, int64_t budget_bytes);

// ------------------------------------------------------------------------- liveness
// Turns a schedule into typed operations: every tensor is allocated right before the
// step that first writes it and freed right after its last reader (all at setup when
// keep_all, policy `none`); parameter gradients live from their layer's backward step to
// the fused update that follows it. Fills tensors, setup, train_steps (or eval_steps when
// inference), resident_bytes. Offsets stay unplaced.
void plan_liveness(MemoryPlan& plan, const Graph& g, const Backend& be, const Sizes& sizes,
                   const Schedule& train, const Schedule& eval, bool keep_all);

// -------------------------------------------------------------------------- offload
// A tensor worth moving to the host: its device block is idle between two uses that are
// at least three steps apart (the last forward read and the first backward read, say).
struct OffloadCandidate {
  int32_t tensor = kNoTensor;  // slot in MemoryPlan::tensors
  int after_step = 0;          // the use before the gap: copy out after it
  int use_step = 0;            // the use after it: the copy must be back by then
  int64_t bytes = 0;
};

// Candidates among the activations of the layers flagged in `eligible` (checkpoints)
// and the activation gradients of every layer (Note [Gradients in the pool]), most idle
// byte-steps first. Reads the plan's operations and the schedule's uses.
std::vector<OffloadCandidate> offload_candidates(const MemoryPlan& plan, const Graph& g,
                                                 const Backend& be, const Sizes& sizes,
                                                 const Schedule& schedule,
                                                 const std::vector<bool>& eligible);

// The candidates the tensor cache evicts (Note [Tensor cache] in offload.cpp) when the
// plan's training steps run with at most target_bytes in use: least recently used
// first, only when an allocation would not fit. None when the plan stays under it.
std::vector<OffloadCandidate> cache_offload(const MemoryPlan& plan,
                                            const std::vector<OffloadCandidate>& candidates,
                                            int64_t target_bytes, double copy_bytes_per_ms);

// Emits, for each chosen candidate: copy_out after `after_step`, free_after at the start
// of the next step, alloc + copy_in at the prefetch step (the latest step whose compute
// estimate until `use_step` covers the copy at copy_bytes_per_ms), and wait before
// `use_step`'s kernel. Adds offload_bytes, prefetch_bytes, num_events.
void plan_offload(MemoryPlan& plan, const std::vector<OffloadCandidate>& chosen,
                  double copy_bytes_per_ms);

// Homes the trainable parameters and momentum of the layers flagged in `layers` in the
// host slab and copies them in around each use, back after each update (Note
// [Parameters in the pool] in offload.cpp). Adds param_host_bytes, param_copy_bytes and
// their share of offload_bytes / prefetch_bytes; lowers resident_bytes.
void plan_param_offload(MemoryPlan& plan, const std::vector<bool>& layers,
                        double copy_bytes_per_ms);

// ------------------------------------------------------------------------- timeline
// The cost model's clock over the training steps (Note [Planned timeline] in
// timeline.cpp): kernel time, copy time, the time compute waits for copies, and the
// iteration. planned overlap = 1 - stall_ms / copy_ms.
struct Timeline {
  double compute_ms = 0.0, copy_ms = 0.0, stall_ms = 0.0, iteration_ms = 0.0;
};
Timeline plan_timeline(const MemoryPlan& plan, double copy_bytes_per_ms);
// A step's kernel time under the cost model (its algorithm's cost).
double step_cost_ms(const MemoryPlan& plan, const PlanStep& s);

// --------------------------------------------------------------------------- peak
// What holds the bytes at the placed plan's peak training step (Note [Peak breakdown]);
// the classes sum to that step's bytes_in_use.
PeakBreakdown explain_peak(const MemoryPlan& plan, const Graph& g, const Backend& be,
                           const Sizes& sizes);

// ------------------------------------------------------------------------ placement
// Runs the plan's memory operations through a virtual arena of capacity_bytes (the same
// interpreter the executor runs), recording every allocation's offset, the bytes in use
// and live tensors at each step, and the blocks. With choose_algorithms, each step that
// has several algorithms takes the fastest whose workspace fits in the largest free
// block at that moment (kFitFree), the fastest (kFastest) or the smallest (kSmallest);
// kKeep keeps the choices already in the plan. Returns false when an allocation does
// not fit, describing it in *failure.
enum class AlgorithmChoice { kKeep, kFastest, kSmallest, kFitFree };

struct PlacementFailure {
  int step = 0;                      // index in train_steps / eval_steps; -1: setup
  StepKind kind = StepKind::kSetup;  // of that step
  bool eval = false;                 // in the inference pass
  int layer = -1;
  TensorRole role = TensorRole::kActivation;
  int64_t requested_bytes = 0, in_use_bytes = 0, free_bytes = 0, largest_free_bytes = 0;
  bool host = false;  // the host slab was full, not the arena
};

bool place(MemoryPlan& plan, int64_t capacity_bytes, AlgorithmChoice choice,
           PlacementFailure* failure);

}  // namespace sn
