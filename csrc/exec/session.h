// A compiled graph: buffers for one batch size, a route, and the loop that runs one
// training iteration (forward, backward, SGD update) entirely in C++.
//
// Usage:
//   sn::SessionOptions opt;  opt.batch_size = 64;  opt.seed = 0;
//   sn::Session s(graph, opt);
//   sn::StepResult r = s.train_step(x, labels, /*n=*/64, sn::SgdConfig{0.1f, 0.9f, 5e-4f});
//   for (auto& b : s.state()) ...  // parameters, running statistics, momentum
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "exec/backend.h"
#include "graph/graph.h"
#include "memory/allocator.h"

namespace sn {

struct SessionOptions {
  int64_t batch_size = 1;
  std::string policy = "none";
  std::string device = "cpu";
  int64_t budget_bytes = 0;  // 0: unlimited
  uint64_t seed = 0;         // dropout masks; parameters are initialised by the caller
};

struct StepResult {
  double loss = 0.0;
  int64_t correct = 0;
};

// A persistent buffer the caller may view and overwrite (parameters, BN running
// statistics, momentum): what a checkpoint holds.
struct StateBuffer {
  std::string name;   // "<layer>.<role>", momentum: "<layer>.<role>.momentum"
  std::string kind;   // "param", "buffer" (not trained), "momentum" or "grad"
  std::vector<int64_t> shape;
  float* data = nullptr;
  int layer = -1;
};

class Session {
 public:
  Session(Graph graph, SessionOptions options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // One iteration on n <= batch_size samples; x is [n, C, H, W], labels [n].
  StepResult train_step(const float* x, const int32_t* labels, int64_t n, const SgdConfig& sgd);
  // Forward and backward in training mode without the update: leaves the parameter
  // gradients in the "grad" state buffers and, when input_grad_out is not null, writes the
  // gradient of the loss with respect to x there. For gradient checks and analysis.
  double compute_gradients(const float* x, const int32_t* labels, int64_t n,
                           float* input_grad_out);
  // Inference mode (BN running statistics, no dropout). logits_out: [n, classes] or null.
  StepResult evaluate(const float* x, const int32_t* labels, int64_t n, float* logits_out);

  const Graph& graph() const { return graph_; }
  const SessionOptions& options() const { return options_; }
  const std::vector<int>& route() const { return route_; }
  const std::vector<StateBuffer>& state() const { return state_; }
  int64_t num_classes() const;
  int64_t iteration() const { return iteration_; }
  void set_iteration(int64_t it);
  AllocatorStats memory_stats() const { return allocator_->stats(); }

 private:
  struct LayerBuffers {
    float* act = nullptr;
    float* grad = nullptr;
    float* aux = nullptr;
    float* workspace = nullptr;
    std::vector<float*> params, param_grads, momentum;
    std::vector<int64_t> param_numel;
  };

  float* allocate_floats(int64_t count, const std::string& step, int layer, const char* what);
  void check_batch(const float* x, const int32_t* labels, int64_t n) const;
  void run_forward(const float* x, const int32_t* labels, int64_t n, bool training,
                   StepResult& result);
  LayerIO io_for(int layer, int64_t n) const;
  void run_backward(int64_t n);

  Graph graph_;
  SessionOptions options_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Allocator> allocator_;
  std::vector<int> route_;
  std::vector<LayerBuffers> buffers_;
  std::vector<StateBuffer> state_;
  int32_t* labels_ = nullptr;
  int64_t iteration_ = 0;
};

}  // namespace sn
