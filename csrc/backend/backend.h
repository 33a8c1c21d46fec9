// The narrow table of kernels the executor runs a plan with, and what the planner asks of
// them (sizes, declared reads, algorithm choices). One implementation per device
// (backend/cpu, backend/cuda); neither the planner nor the executor looks inside a layer.
//
// Usage:
//   std::unique_ptr<sn::Backend> be = sn::make_cpu_backend();
//   sn::KernelReads r = be->backward_reads(graph, layer_id);   // what liveness keeps
//   auto algos = be->algorithms(graph, layer_id, batch);       // workspace vs cost
//   be->forward(graph, layer_id, io, /*training=*/true);
//
// Note [Declared reads]
// Liveness, recomputation and offload keep a tensor alive for a backward step only when
// the backend declares that its kernel reads it. The declaration lives here, next to the
// kernels, so there is one table per backend and no second copy in the planner. Session's
// debug mode (poison_undeclared) hands every kernel NaN in place of the tensors it did not
// declare, so a wrong declaration shows up as a changed loss in the tests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace sn {

class CopyEngine;  // exec/copy_engine.h

// Pointers one layer step reads and writes. Unused pointers stay null.
struct LayerIO {
  int64_t n = 0;                     // samples in this batch (<= compiled batch size)
  std::vector<const float*> x;       // input activations, one per layer input
  std::vector<float*> dx;            // input gradients (accumulated); null: not needed
  float* y = nullptr;                // output activation
  const float* dy = nullptr;         // output gradient
  int algorithm = 0;                 // index into Backend::algorithms() for this layer
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

// Which activations a layer's backward kernel reads besides its output gradient (dy) and
// its saved state (aux, always read when the layer has any).
struct KernelReads {
  bool inputs = false;  // the activations of its inputs
  bool output = false;  // its own output activation
};

// One way to run a layer: the scratch it needs and its relative cost (units: estimated
// milliseconds for one forward plus one backward at the planned batch; only the order
// matters). A backend lists the fastest first; the planner takes the first that fits.
struct Algorithm {
  std::string name;
  int64_t workspace_floats = 0;
  double cost_ms = 0.0;
};

// What a pass left on the device, read once at its end (Note [Deferred results]).
struct PassResult {
  bool deferred = false;          // false: the backend reported everything in LayerIO already
  double loss = 0.0;              // the loss layer's mean loss
  int64_t correct = 0;            // rows whose argmax is the label
  bool loss_non_finite = false;   // the loss was NaN or infinite (no update ran after it)
  bool grad_non_finite = false;   // an update found its gradient non-finite (it and all
                                  // later updates were skipped)
  bool param_non_finite = false;  // an update made its parameter non-finite (later skipped)
};

struct SgdConfig {
  float lr = 0.01f;
  float momentum = 0.9f;
  float weight_decay = 0.0f;
  // A backend that defers results (CUDA) skips the update after a non-finite loss or
  // gradient (Note [Deferred results]); the executor clears this when the step runs
  // without finiteness checks, and the update is then applied as on the CPU.
  bool guarded = true;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Floats of forward-saved state a layer keeps until its backward step.
  virtual int64_t aux_floats(const Graph& g, int layer, int64_t batch) const = 0;
  // The ways this backend can run a layer, fastest first; never empty (a layer without
  // scratch has one algorithm with workspace 0).
  virtual std::vector<Algorithm> algorithms(const Graph& g, int layer, int64_t batch) const = 0;
  // See Note [Declared reads].
  virtual KernelReads backward_reads(const Graph& g, int layer) const = 0;
  // Inputs (positions in layer.inputs) whose buffer the forward kernel may overwrite with
  // its output (y == x[i]); the planner aliases them when that input dies at the step.
  virtual std::vector<int> in_place_inputs(const Graph& g, int layer) const = 0;
  // Inputs whose gradient the backward kernel may take as dy itself (dx == dy: the
  // gradient passes through unchanged, as in add and flatten); the planner aliases one
  // when dy dies at the step and that gradient is first written there.
  virtual std::vector<int> pass_through_inputs(const Graph& g, int layer) const = 0;
  virtual void forward(const Graph& g, int layer, LayerIO& io, bool training) const = 0;
  virtual void backward(const Graph& g, int layer, LayerIO& io) const = 0;
  virtual void sgd_update(int64_t count, const SgdConfig& cfg, float* w, const float* dw,
                          float* velocity) const = 0;
  virtual void fill_zero(float* data, int64_t count) const = 0;
  // True when no element is NaN or infinite (Note [Non-finite values] in executor.cpp).
  virtual bool all_finite(const float* data, int64_t count) const = 0;
  virtual void copy(float* dst, const float* src, int64_t count) const = 0;

  // ---- Memory the backend owns, and the host's way in (Note [Device memory]).
  // One block of device memory (the arena); OutOfMemoryError when the device refuses it.
  virtual void* allocate_device(int64_t bytes) const;
  virtual void free_device(void* p) const;
  // Host memory copies run from (the slab for offloaded tensors): pinned on CUDA.
  virtual void* allocate_host(int64_t bytes) const;
  virtual void free_host(void* p) const;
  // True when the host may read and write device memory in place (NumPy views of state).
  virtual bool host_addressable() const { return true; }
  // Host -> device, ordered before every kernel queued after it; `src` must stay valid
  // until synchronize().
  virtual void upload(void* dst, const void* src, int64_t bytes) const;
  // Device -> host, after everything queued before it; the bytes are there on return.
  virtual void download(void* dst, const void* src, int64_t bytes) const;
  virtual void fill_nan(float* data, int64_t count) const;
  // The host waits for everything queued.
  virtual void synchronize() const {}
  // Note [Deferred results]: a backend whose host reads stall its device keeps the loss,
  // the accuracy and the non-finite checks on the device during a pass; the executor then
  // skips its own checks (all_finite), and reads what the pass left once at its end.
  virtual bool defers_results() const { return false; }
  virtual void begin_pass() const {}
  virtual PassResult finish_pass() const { return {}; }
  // Device <-> host copy bandwidth for the cost model, bytes per ms (default 5 GB/s: a
  // memcpy on the development CPU, not calibrated per machine).
  virtual double copy_bytes_per_ms() const { return 5.0e6; }
  // The copy engine of this backend's device (exec/copy_engine.h); the default is the
  // CPU's worker thread. max_delay_us > 0: random delays before each copy (tests).
  virtual std::unique_ptr<CopyEngine> make_copy_engine(int num_events, int max_delay_us,
                                                       uint64_t seed) const;
};

std::unique_ptr<Backend> make_cpu_backend();

// "cpu", "cuda" (device 0) or "cuda:N". ArgumentError for a device this build lacks or an
// index that is not visible; CudaError when the device cannot start.
std::unique_ptr<Backend> make_backend(const std::string& device);

// Device memory owned through a backend (the arena, scratch handed to kernels).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const Backend& be, int64_t bytes) : be_(&be), p_(be.allocate_device(bytes)) {}
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : be_(o.be_), p_(o.p_) { o.p_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      be_ = o.be_;
      p_ = o.p_;
      o.p_ = nullptr;
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return p_; }
  float* floats() const { return static_cast<float*>(p_); }
  void reset() {
    if (p_) be_->free_device(p_);
    p_ = nullptr;
  }

 private:
  const Backend* be_ = nullptr;
  void* p_ = nullptr;
};

}  // namespace sn
