// The executor: runs plan steps on a backend. Memory operations go through the same
// MemoryInterpreter the planner simulated them with (plan/interpreter.h), over the real
// arena, and every allocation must land at its planned offset; compute operations call
// the backend's kernels with pointers looked up in the tensor table.
//
// Usage:
//   sn::Executor ex(graph, *backend, plan, pool, host_pool);
//   ex.run_setup();                                   // resident tensors
//   sn::RunContext ctx;  ctx.n = 64;  ctx.x = batch;  ctx.sgd = &sgd;  ...
//   ex.run(plan.train_steps, ctx, trace);             // one iteration
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "exec/copy_engine.h"
#include "graph/graph.h"
#include "memory/arena_pool.h"
#include "plan/interpreter.h"
#include "plan/plan.h"

namespace sn {

struct CopyStats {
  int64_t bytes = 0;
  double copy_ms = 0.0;
  double stall_ms = 0.0;
};

// Wall time the compute thread spent in one kind of kernel call (Note [Kernel profile]).
struct KernelTime {
  LayerKind kind = LayerKind::kInput;
  std::string phase;  // "forward", "backward", "recompute", "update" or "zero"
  int64_t calls = 0;
  double ms = 0.0;
};

// What one pass over the steps needs besides the plan, and what it returns.
struct RunContext {
  int64_t n = 0;                     // samples in the batch
  const float* x = nullptr;          // [n, C, H, W]
  bool training = true;              // false: inference kernels (BN running stats, no dropout)
  bool update_running_stats = true;  // BN in training mode (never during recomputation)
  uint64_t seed = 0;                 // dropout masks: f(seed, layer, iteration)
  int64_t iteration = 0;
  const SgdConfig* sgd = nullptr;  // update operations apply it; null: they hand the
  // parameter gradient to on_gradient instead (analysis)
  std::function<void(int layer, int index, const float* grad)> on_gradient;
  float* input_grad = nullptr;     // analysis: the data layer's gradient (zeroed by the caller)
  float* logits_out = nullptr;     // [n, classes] or null
  bool poison_freed = false;       // fill freed buffers with NaN
  bool poison_undeclared = false;  // backward kernels get NaN for tensors they did not declare
  bool check_finite = true;        // Note [Non-finite values] in executor.cpp
  size_t step_index = 0;           // set by the run loop (for messages)
  int64_t updates_done = 0;        // parameters updated so far in this pass
  double loss = 0.0;               // out
  int64_t correct = 0;             // out
};

class Executor {
 public:
  // host: the host slab's pool (capacity plan.host_capacity_bytes) over real memory.
  Executor(const Graph& g, const Backend& be, const MemoryPlan& plan, ArenaPool& pool,
           ArenaPool& host, int copy_delay_us = 0);
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  void run_setup();
  // Runs the steps; trace[i] = arena bytes in use when step i's layer runs. On an
  // exception every per-iteration tensor is released, so the next run starts clean.
  void run(const std::vector<PlanStep>& steps, RunContext& ctx, std::vector<int64_t>& trace);
  float* data(const TensorId& id) const;  // on the device; null when the tensor is not live
  // Measured since construction: bytes copied, the copy engine's busy time, and the time
  // the compute thread waited for copies (Note [Measured overlap] in executor.cpp).
  CopyStats copy_stats() const;
  // Note [Kernel profile]: on clears the totals and starts timing; off stops it.
  void set_profiling(bool on);
  std::vector<KernelTime> profile() const;  // nonzero totals, by layer kind and phase
  // A persistent tensor between iterations: on the device, or in its host home.
  float* state_data(const TensorId& id) const;

 private:
  void apply(const PlanStep& step, const Op& op, RunContext& ctx);
  void compute(const PlanStep& step, const Op& op, RunContext& ctx);
  void release_transient();
  void finish(RunContext& ctx);
  void wait(int event);
  std::chrono::steady_clock::time_point profile_start() const;
  void record(LayerKind kind, int phase, std::chrono::steady_clock::time_point start);
  float* at(int32_t slot) const;

  const Graph& g_;
  const Backend& be_;
  const MemoryPlan& plan_;
  ArenaPool& pool_;
  ArenaPool& host_;
  MemoryInterpreter mem_;
  std::unique_ptr<CopyEngine> engine_;  // when the plan has copies
  std::unordered_map<TensorId, int32_t, TensorIdHash> slot_;
  std::vector<bool> resident_;
  std::vector<int64_t> block_bytes_;  // per tensor slot: the size of its block as allocated
  std::vector<std::vector<int64_t>> param_numel_;  // per layer, in param_shapes() order
  std::vector<TensorId> buffers_;                  // non-trained parameters (BN running statistics)
  DeviceBuffer buffer_backup_;                     // their values before the pass (check_finite)
  DeviceBuffer nan_;                               // poison_undeclared: what undeclared reads see
  double stall_ms_ = 0.0;                          // compute waiting for copies
  bool host_memory_ = true;  // the arena is host memory (sanitizer poisoning applies)
  bool profiling_ = false;
  std::vector<KernelTime> profile_;  // [kind * kProfilePhases + phase]
};

}  // namespace sn
