#include "exec/session.h"

#include <cmath>
#include <sstream>

#include "core/errors.h"

namespace sn {
namespace {

// splitmix64: decorrelates (seed, layer, iteration) into one dropout seed.
uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string human_bytes(int64_t bytes) {
  std::ostringstream s;
  s << bytes << " B (" << static_cast<double>(bytes) / (1024.0 * 1024.0) << " MiB)";
  return s.str();
}

}  // namespace

Session::Session(Graph graph, SessionOptions options)
    : graph_(std::move(graph)), options_(std::move(options)) {
  if (options_.batch_size < 1)
    throw ArgumentError("batch_size must be >= 1, got " + std::to_string(options_.batch_size));
  if (options_.policy != "none")
    throw ArgumentError("memory policy '" + options_.policy +
                        "' is not available in this build; available: none");
  if (options_.device != "cpu")
    throw ArgumentError("device '" + options_.device +
                        "' is not available in this build; available: cpu");
  backend_ = make_cpu_backend();
  allocator_ = std::make_unique<HostAllocator>(options_.budget_bytes);
  route_ = forward_route(graph_);  // validates the whole graph first

  // Note [Policy none]
  // The baseline: every tensor of every step gets its own allocation, made once here and
  // kept for the session's life, so nothing is ever reused. The memory policies of the
  // runtime replace exactly this part with a plan.
  const int64_t b = options_.batch_size;
  buffers_.resize(static_cast<size_t>(graph_.size()));
  labels_ = reinterpret_cast<int32_t*>(allocate_floats(b, "setup", graph_.loss_layer(), "labels"));
  for (size_t step = 0; step < route_.size(); ++step) {
    int id = route_[step];
    const Layer& l = graph_.layer(id);
    LayerBuffers& buf = buffers_[static_cast<size_t>(id)];
    std::string where = "forward step " + std::to_string(step);
    for (const ParamShape& p : param_shapes(graph_, id)) {
      std::string base = l.name + "." + p.role;
      float* data = allocate_floats(p.numel(), where, id, "a parameter");
      buf.params.push_back(data);
      buf.param_numel.push_back(p.numel());
      state_.push_back({base, p.trainable ? "param" : "buffer", p.shape, data, id});
      if (p.trainable) {
        float* grad = allocate_floats(p.numel(), where, id, "a parameter gradient");
        buf.param_grads.push_back(grad);
        state_.push_back({base + ".grad", "grad", p.shape, grad, id});
        float* v = allocate_floats(p.numel(), where, id, "momentum");
        backend_->fill_zero(v, p.numel());
        buf.momentum.push_back(v);
        state_.push_back({base + ".momentum", "momentum", p.shape, v, id});
      } else {
        buf.param_grads.push_back(nullptr);
        buf.momentum.push_back(nullptr);
      }
    }
    if (l.kind != LayerKind::kSoftmaxXent) {
      buf.act = allocate_floats(b * l.out.numel(), where, id, "the output activation");
      if (l.kind != LayerKind::kInput)
        buf.grad = allocate_floats(b * l.out.numel(), where, id, "the output gradient");
    }
    int64_t aux = backend_->aux_floats(graph_, id, b);
    if (aux > 0) buf.aux = allocate_floats(aux, where, id, "saved state");
    int64_t ws = backend_->workspace_floats(graph_, id, b);
    if (ws > 0) buf.workspace = allocate_floats(ws, where, id, "workspace");
  }
}

Session::~Session() = default;  // the allocator owns and frees every buffer

float* Session::allocate_floats(int64_t count, const std::string& step, int layer,
                                const char* what) {
  int64_t bytes = count * static_cast<int64_t>(sizeof(float));
  void* p = allocator_->allocate(bytes);
  if (p == nullptr) {
    AllocatorStats s = allocator_->stats();
    std::ostringstream msg;
    msg << "out of memory at " << step << " (layer '" << graph_.layer(layer).name << "', "
        << kind_name(graph_.layer(layer).kind) << "): requested " << human_bytes(bytes)
        << " for " << what << "; budget " << human_bytes(s.capacity_bytes) << ", in use "
        << human_bytes(s.in_use_bytes) << ", free " << human_bytes(s.capacity_bytes - s.in_use_bytes)
        << ", largest free block " << human_bytes(allocator_->largest_free_bytes())
        << ". Hint: use a smaller batch size, a larger budget, or a memory policy that reuses "
           "memory (policy '"
        << options_.policy << "' keeps every tensor).";
    throw OutOfMemoryError(msg.str());
  }
  return static_cast<float*>(p);
}

int64_t Session::num_classes() const {
  return graph_.layer(graph_.layer(graph_.loss_layer()).inputs[0]).out.numel();
}

void Session::set_iteration(int64_t it) {
  if (it < 0) throw ArgumentError("iteration must be >= 0, got " + std::to_string(it));
  iteration_ = it;
}

void Session::check_batch(const float* x, const int32_t* labels, int64_t n) const {
  if (n < 1 || n > options_.batch_size)
    throw ArgumentError("a batch must hold between 1 and " + std::to_string(options_.batch_size) +
                        " samples (the compiled batch size), got " + std::to_string(n));
  if (x == nullptr || labels == nullptr) throw ArgumentError("null batch pointer");
  const int64_t classes = num_classes();
  for (int64_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= classes)
      throw ArgumentError("label " + std::to_string(labels[i]) + " at index " +
                          std::to_string(i) + " is outside [0, " + std::to_string(classes) +
                          ")");
}

LayerIO Session::io_for(int id, int64_t n) const {
  const Layer& l = graph_.layer(id);
  const LayerBuffers& buf = buffers_[static_cast<size_t>(id)];
  LayerIO io;
  io.n = n;
  for (int in : l.inputs) {
    const LayerBuffers& src = buffers_[static_cast<size_t>(in)];
    io.x.push_back(src.act);
    io.dx.push_back(src.grad);  // null for the data layer: no gradient needed there
  }
  io.y = buf.act;
  io.dy = buf.grad;
  io.params = buf.params;
  io.param_grads = buf.param_grads;
  io.aux = buf.aux;
  io.workspace = buf.workspace;
  io.labels = labels_;
  io.dropout_seed = mix(mix(options_.seed ^ static_cast<uint64_t>(id) * 0x2545f4914f6cdd1dULL) ^
                        static_cast<uint64_t>(iteration_));
  return io;
}

void Session::run_forward(const float* x, const int32_t* labels, int64_t n, bool training,
                          StepResult& result) {
  check_batch(x, labels, n);
  const int in = graph_.input_layer();
  backend_->copy(buffers_[static_cast<size_t>(in)].act, x, n * graph_.layer(in).out.numel());
  for (int64_t i = 0; i < n; ++i) labels_[i] = labels[i];
  for (int id : route_) {
    LayerIO io = io_for(id, n);
    backend_->forward(graph_, id, io, training);
    if (graph_.layer(id).kind == LayerKind::kSoftmaxXent) {
      result.loss = io.loss;
      result.correct = io.correct;
    }
  }
}

StepResult Session::train_step(const float* x, const int32_t* labels, int64_t n,
                               const SgdConfig& sgd) {
  if (!(sgd.lr >= 0.0f) || !(sgd.momentum >= 0.0f) || !(sgd.weight_decay >= 0.0f))
    throw ArgumentError("lr, momentum and weight_decay must be >= 0");
  StepResult result;
  run_forward(x, labels, n, true, result);
  run_backward(n);
  for (int id : route_) {
    LayerBuffers& buf = buffers_[static_cast<size_t>(id)];
    for (size_t p = 0; p < buf.params.size(); ++p)
      if (buf.param_grads[p])
        backend_->sgd_update(buf.param_numel[p], sgd, buf.params[p], buf.param_grads[p],
                             buf.momentum[p]);
  }
  ++iteration_;
  return result;
}

void Session::run_backward(int64_t n) {
  // Gradients accumulate (fan-out), so each starts from zero.
  for (int id : route_) {
    LayerBuffers& buf = buffers_[static_cast<size_t>(id)];
    if (buf.grad) backend_->fill_zero(buf.grad, n * graph_.layer(id).out.numel());
  }
  for (auto it = route_.rbegin(); it != route_.rend(); ++it) {
    LayerIO io = io_for(*it, n);
    backend_->backward(graph_, *it, io);
  }
}

double Session::compute_gradients(const float* x, const int32_t* labels, int64_t n,
                                  float* input_grad_out) {
  StepResult result;
  run_forward(x, labels, n, true, result);
  LayerBuffers& in = buffers_[static_cast<size_t>(graph_.input_layer())];
  // The data layer normally gets no gradient buffer; borrow the caller's for this call.
  if (input_grad_out) in.grad = input_grad_out;
  try {
    run_backward(n);
  } catch (...) {
    in.grad = nullptr;
    throw;
  }
  in.grad = nullptr;
  return result.loss;
}

StepResult Session::evaluate(const float* x, const int32_t* labels, int64_t n, float* logits_out) {
  StepResult result;
  run_forward(x, labels, n, false, result);
  if (logits_out) {
    int logits_layer = graph_.layer(graph_.loss_layer()).inputs[0];
    backend_->copy(logits_out, buffers_[static_cast<size_t>(logits_layer)].act, n * num_classes());
  }
  return result;
}

}  // namespace sn
