// A compiled graph: a plan for one batch size and policy, the arena reserved for it,
// the executor that runs it, and the API around them (state buffers, traces).
//
// Usage:
//   sn::SessionOptions opt;  opt.batch_size = 64;  opt.policy = "liveness";
//   sn::Session s(graph, opt);              // throws OutOfMemoryError if the plan does not fit
//   sn::StepResult r = s.train_step(x, labels, /*n=*/64, sn::SgdConfig{0.1f, 0.9f, 5e-4f});
//   for (auto& b : s.state()) ...          // parameters, running statistics, momentum
//   s.memory_trace();                      // bytes in use at every step, as measured
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "exec/executor.h"
#include "graph/graph.h"
#include "memory/arena_pool.h"
#include "plan/memory_plan.h"

namespace sn {

struct SessionOptions {
  int64_t batch_size = 1;
  std::string policy = "none";
  std::string device = "cpu";     // "cpu", "cuda" or "cuda:N"
  int64_t budget_bytes = 0;       // 0: none, the arena is sized by the plan
  int64_t host_budget_bytes = 0;  // 0: none, the host slab is sized by the plan
  uint64_t seed = 0;              // dropout masks; parameters are initialised by the caller
  // Debugging: fill released buffers with NaN, and hand backward kernels NaN in place of
  // the tensors they do not declare (Note [Declared reads]); a wrong plan or declaration
  // then shows up in the loss.
  bool poison = false;
  // Testing: the copy engine sleeps up to this long before each copy (races show up).
  int copy_delay_us = 0;
};

struct StepResult {
  double loss = 0.0;
  int64_t correct = 0;
};

// A persistent buffer the caller may view and overwrite (parameters, BN running
// statistics, momentum): what a checkpoint holds.
struct StateBuffer {
  std::string name;  // "<layer>.<role>", momentum: "<layer>.<role>.momentum"
  std::string kind;  // "param", "buffer" (not trained) or "momentum"
  std::vector<int64_t> shape;
  float* data = nullptr;
  int layer = -1;
};

// A parameter gradient as compute_gradients() left it (a copy: in the plan, parameter
// gradients live only between their layer's backward step and its update).
struct GradientBuffer {
  std::string name;  // "<layer>.<role>"
  std::vector<int64_t> shape;
  std::vector<float> data;
};

class Session {
 public:
  Session(Graph graph, SessionOptions options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // One iteration on n <= batch_size samples; x is [n, C, H, W], labels [n].
  StepResult train_step(const float* x, const int32_t* labels, int64_t n, const SgdConfig& sgd);
  // Forward and backward in training mode without the update: copies the parameter
  // gradients into gradients() and, when input_grad_out is not null, writes the gradient
  // of the loss with respect to x there. BN running statistics do not move.
  double compute_gradients(const float* x, const int32_t* labels, int64_t n, float* input_grad_out);
  // Inference mode (BN running statistics, no dropout). logits_out: [n, classes] or null.
  StepResult evaluate(const float* x, const int32_t* labels, int64_t n, float* logits_out);

  const Graph& graph() const { return graph_; }
  const SessionOptions& options() const { return options_; }
  const MemoryPlan& plan() const { return plan_; }
  const std::vector<int>& route() const { return route_; }
  // data points into device memory: view it in place only where host_addressable();
  // read_state / write_state copy on every backend.
  const std::vector<StateBuffer>& state() const { return state_; }
  bool host_addressable() const { return backend_->host_addressable(); }
  std::vector<float> read_state(size_t index) const;
  void write_state(size_t index, const float* values, int64_t count);
  const std::vector<GradientBuffer>& gradients() const { return gradients_; }
  int64_t num_classes() const;
  int64_t iteration() const { return iteration_; }
  void set_iteration(int64_t it);
  AllocatorStats memory_stats() const { return pool_->stats(); }
  AllocatorStats host_memory_stats() const { return host_pool_->stats(); }
  CopyStats copy_stats() const { return executor_->copy_stats(); }
  // Note [Kernel profile] in executor.cpp; on clears the totals.
  void set_profiling(bool on);
  std::vector<KernelTime> profile() const { return executor_->profile(); }
  const ArenaPool& pool() const { return *pool_; }
  // Bytes in use measured at setup and at every step of the last training iteration
  // (when each step's layer runs), and of the last inference pass.
  int64_t setup_trace() const { return setup_bytes_; }
  const std::vector<int64_t>& memory_trace() const { return train_trace_; }
  const std::vector<int64_t>& eval_trace() const { return eval_trace_; }

 private:
  struct ArenaDeleter {
    ArenaDeleter() noexcept : backend(nullptr), host(false) {}
    ArenaDeleter(const Backend* b, bool h) noexcept : backend(b), host(h) {}
    void operator()(void* p) const;
    const Backend* backend;
    bool host;  // the host slab, else the arena
  };
  const StateBuffer& state_at(size_t index) const;
  static int64_t numel_of(const std::vector<int64_t>& shape);
  void check_batch(const float* x, const int32_t* labels, int64_t n) const;
  RunContext context(const float* x, const int32_t* labels, int64_t n);

  Graph graph_;
  SessionOptions options_;
  std::unique_ptr<Backend> backend_;
  std::vector<int> route_;
  MemoryPlan plan_;
  std::unique_ptr<void, ArenaDeleter> arena_;
  std::unique_ptr<ArenaPool> pool_;
  std::unique_ptr<void, ArenaDeleter> host_slab_;  // one host allocation for every copy
  std::unique_ptr<ArenaPool> host_pool_;
  std::unique_ptr<Executor> executor_;
  std::vector<StateBuffer> state_;
  std::vector<GradientBuffer> gradients_;
  int32_t* labels_ = nullptr;
  int64_t iteration_ = 0;
  int64_t setup_bytes_ = 0;
  int64_t reserved_bytes_ = 0;
  mutable std::mutex mutex_;  // one step at a time: Python releases the GIL while a step runs
  std::vector<int64_t> train_trace_, eval_trace_;
};

}  // namespace sn
