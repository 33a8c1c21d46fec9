// The narrow table of kernels the executor runs a plan with. One implementation per
// device (backend/cpu, backend/cuda); the executor never looks inside a layer.
//
// Usage:
//   std::unique_ptr<sn::Backend> be = sn::make_cpu_backend();
//   int64_t ws = be->workspace_floats(graph, layer_id, batch);
//   be->forward(graph, layer_id, io, /*training=*/true);
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace sn {

// Pointers one layer step reads and writes. Unused pointers stay null.
struct LayerIO {
  int64_t n = 0;                     // samples in this batch (<= compiled batch size)
  std::vector<const float*> x;       // input activations, one per layer input
  std::vector<float*> dx;            // input gradients (accumulated); null: not needed
  float* y = nullptr;                // output activation
  const float* dy = nullptr;         // output gradient
  std::vector<float*> params;        // in param_shapes() order
  std::vector<float*> param_grads;   // same order; null for buffers that are not trained
  float* aux = nullptr;              // state saved from forward for backward (aux_floats)
  float* workspace = nullptr;        // scratch (workspace_floats)
  const int32_t* labels = nullptr;   // loss layer
  uint64_t dropout_seed = 0;         // dropout layer: mask = f(seed, element index)
  bool update_running_stats = true;  // batchnorm in training mode
  double loss = 0.0;                 // out: loss layer
  int64_t correct = 0;               // out: loss layer, rows whose argmax is the label
};

struct SgdConfig {
  float lr = 0.01f;
  float momentum = 0.9f;
  float weight_decay = 0.0f;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Floats of forward-saved state a layer keeps until its backward step.
  virtual int64_t aux_floats(const Graph& g, int layer, int64_t batch) const = 0;
  // Floats of scratch a layer needs during one step.
  virtual int64_t workspace_floats(const Graph& g, int layer, int64_t batch) const = 0;
  virtual void forward(const Graph& g, int layer, LayerIO& io, bool training) const = 0;
  virtual void backward(const Graph& g, int layer, LayerIO& io) const = 0;
  virtual void sgd_update(int64_t count, const SgdConfig& cfg, float* w, const float* dw,
                          float* velocity) const = 0;
  virtual void fill_zero(float* data, int64_t count) const = 0;
  virtual void copy(float* dst, const float* src, int64_t count) const = 0;
};

std::unique_ptr<Backend> make_cpu_backend();

}  // namespace sn
