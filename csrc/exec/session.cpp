#include "exec/session.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/errors.h"
#include "core/hash.h"

// Note [Sanitizers and the arena]
// The arena is one host allocation, so AddressSanitizer alone cannot see a kernel writing
// past its tensor into a neighbour. In sanitized builds every block the plan does not hold
// is poisoned: touching it is reported like a heap overflow. Blocks are unpoisoned at
// their pool size (rounded up to 256 bytes), so an overrun inside that slack goes unseen.
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SN_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), static_cast<size_t>(n))
#define SN_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), static_cast<size_t>(n))
#else
#define SN_POISON(p, n) ((void)(p), (void)(n))
#define SN_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace sn {

void Session::ArenaDeleter::operator()(void* p) const { std::free(p); }

Session::Session(Graph graph, SessionOptions options)
    : graph_(std::move(graph)), options_(std::move(options)) {
  if (options_.device != "cpu")
    throw ArgumentError("device '" + options_.device +
                        "' is not available in this build; available: cpu");
  backend_ = make_cpu_backend();
  plan_ =
      plan_memory(graph_, *backend_, options_.batch_size, options_.policy, options_.budget_bytes);
  if (!plan_.fits) throw OutOfMemoryError(plan_.oom_message);
  route_ = forward_route(graph_);

  // Note [The arena on the CPU]
  // The pool's capacity is the budget (or the plan's need), exactly as on a device. The
  // host only backs the part the plan reaches (high_water_bytes): the executor replays the
  // planned sequence through a pool of the same capacity, so no offset lies beyond it.
  const int64_t reserve_bytes =
      std::max<int64_t>(plan_.high_water_bytes, ArenaPool::kAlignmentBytes);
  arena_.reset(std::aligned_alloc(static_cast<size_t>(ArenaPool::kAlignmentBytes),
                                  static_cast<size_t>(reserve_bytes)));
  if (!arena_)
    throw OutOfMemoryError("cannot reserve the " + std::to_string(reserve_bytes) +
                           "-byte arena in host memory; use a smaller batch or budget");
  pool_ = std::make_unique<ArenaPool>(plan_.capacity_bytes, arena_.get());
  reserved_bytes_ = reserve_bytes;
  SN_POISON(arena_.get(), reserved_bytes_);

  const auto n = static_cast<size_t>(graph_.size());
  act_.assign(n, nullptr);
  grad_.assign(n, nullptr);
  aux_.assign(n, nullptr);
  ws_.assign(n, nullptr);
  params_.resize(n);
  param_numel_.resize(n);
  param_grads_.resize(n);
  momentum_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    param_numel_[i].clear();
    for (const ParamShape& p : param_shapes(graph_, static_cast<int>(i)))
      param_numel_[i].push_back(p.numel());
    size_t count = param_numel_[i].size();
    params_[i].assign(count, nullptr);
    param_grads_[i].assign(count, nullptr);
    momentum_[i].assign(count, nullptr);
  }
  for (const TensorRef& t : plan_.setup.allocate) allocate(t);
  setup_bytes_ = pool_->stats().in_use_bytes;
  for (const TensorRef& t : plan_.setup.allocate) {
    if (t.role != TensorRole::kParam && t.role != TensorRole::kParamGrad &&
        t.role != TensorRole::kMomentum)
      continue;
    const ParamShape p = param_shapes(graph_, t.layer)[static_cast<size_t>(t.index)];
    const std::string base = graph_.layer(t.layer).name + "." + p.role;
    float* data = slot(t);
    if (t.role == TensorRole::kParam)
      state_.push_back({base, p.trainable ? "param" : "buffer", p.shape, data, t.layer});
    else if (t.role == TensorRole::kParamGrad)
      state_.push_back({base + ".grad", "grad", p.shape, data, t.layer});
    else {
      backend_->fill_zero(data, p.numel());
      state_.push_back({base + ".momentum", "momentum", p.shape, data, t.layer});
    }
  }
}

Session::~Session() { SN_UNPOISON(arena_.get(), reserved_bytes_); }

float*& Session::slot(const TensorRef& t) {
  const auto u = static_cast<size_t>(t.layer);
  const auto p = static_cast<size_t>(t.index);
  switch (t.role) {
    case TensorRole::kParam:
      return params_[u][p];
    case TensorRole::kParamGrad:
      return param_grads_[u][p];
    case TensorRole::kMomentum:
      return momentum_[u][p];
    case TensorRole::kLabels:
      return labels_;
    case TensorRole::kActivation:
      return act_[u];
    case TensorRole::kGradient:
      return grad_[u];
    case TensorRole::kAux:
      return aux_[u];
    case TensorRole::kWorkspace:
      return ws_[u];
  }
  SN_ASSERT(false, "unknown tensor role");
  return act_[u];
}

void Session::allocate(const TensorRef& t) {
  float*& s = slot(t);
  SN_ASSERT(s == nullptr, "plan allocates a tensor that is already live");
  void* p = pool_->allocate(t.size_bytes);
  SN_ASSERT(p != nullptr, "the arena refused an allocation the plan had placed");
  SN_UNPOISON(p, t.size_bytes);
  s = static_cast<float*>(p);
}

void Session::release(const TensorRef& t) {
  float*& s = slot(t);
  SN_ASSERT(s != nullptr, "plan releases a tensor that is not live");
  if (options_.poison_freed) {
    const int64_t count = t.size_bytes / 4;
    std::fill(s, s + count, std::numeric_limits<float>::quiet_NaN());
  }
  SN_POISON(s, t.size_bytes);
  pool_->free(s);
  s = nullptr;
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
      throw ArgumentError("label " + std::to_string(labels[i]) + " at index " + std::to_string(i) +
                          " is outside [0, " + std::to_string(classes) + ")");
}

LayerIO Session::io_for(int id, int64_t n) const {
  const auto u = static_cast<size_t>(id);
  LayerIO io;
  io.n = n;
  for (int in : graph_.layer(id).inputs) {
    io.x.push_back(act_[static_cast<size_t>(in)]);
    io.dx.push_back(grad_[static_cast<size_t>(in)]);  // null for the data layer
  }
  io.y = act_[u];
  io.dy = grad_[u];
  io.params = params_[u];
  io.param_grads = param_grads_[u];
  io.aux = aux_[u];
  io.workspace = ws_[u];
  io.labels = reinterpret_cast<const int32_t*>(labels_);
  io.update_running_stats = update_running_stats_;
  io.dropout_seed =
      splitmix64(splitmix64(options_.seed ^ static_cast<uint64_t>(id) * 0x2545f4914f6cdd1dULL) ^
                 static_cast<uint64_t>(iteration_));
  return io;
}

void Session::run_step(const PlanStep& step, int64_t n, bool training, const float* x,
                       std::vector<int64_t>& trace, size_t index, StepResult& result,
                       float* logits_out) {
  for (const TensorRef& t : step.allocate) allocate(t);
  trace[index] = pool_->stats().in_use_bytes;
  for (const TensorRef& t : step.zero_fill)
    backend_->fill_zero(grad_[static_cast<size_t>(t.layer)], n * graph_.layer(t.layer).out.numel());
  const Layer& l = graph_.layer(step.layer);
  LayerIO io = io_for(step.layer, n);
  if (step.phase == Phase::kForward) {
    if (l.kind == LayerKind::kInput) backend_->copy(io.y, x, n * l.out.numel());
    backend_->forward(graph_, step.layer, io, training);
    if (l.kind == LayerKind::kSoftmaxXent) {
      result.loss = io.loss;
      result.correct = io.correct;
      if (logits_out) backend_->copy(logits_out, io.x[0], n * num_classes());
    }
  } else {
    const BackwardReads reads = backward_reads(l.kind);
    for (const float* x_in : io.x)
      SN_ASSERT(!reads.inputs || x_in != nullptr, "backward needs an input the plan released");
    SN_ASSERT(!reads.output || io.y != nullptr, "backward needs an output the plan released");
    backend_->backward(graph_, step.layer, io);
  }
  for (const TensorRef& t : step.release) release(t);
}

void Session::run_steps(const std::vector<PlanStep>& steps, int64_t n, bool training,
                        const float* x, std::vector<int64_t>& trace, StepResult& result,
                        float* logits_out) {
  trace.assign(steps.size(), 0);
  try {
    for (size_t i = 0; i < steps.size(); ++i)
      run_step(steps[i], n, training, x, trace, i, result, logits_out);
  } catch (...) {
    // Leave the arena as setup left it, so the session stays usable.
    const int input = graph_.input_layer();
    for (size_t u = 0; u < act_.size() && options_.policy != "none"; ++u) {
      for (float** p : {&act_[u], &grad_[u], &aux_[u], &ws_[u]}) {
        if (*p == nullptr || (p == &grad_[u] && static_cast<int>(u) == input)) continue;
        pool_->free(*p);
        *p = nullptr;
      }
    }
    throw;
  }
}

void Session::run_iteration(const float* x, const int32_t* labels, int64_t n, StepResult& result) {
  check_batch(x, labels, n);
  std::memcpy(labels_, labels, static_cast<size_t>(n) * sizeof(int32_t));
  run_steps(plan_.train_steps, n, true, x, train_trace_, result, nullptr);
}

StepResult Session::train_step(const float* x, const int32_t* labels, int64_t n,
                               const SgdConfig& sgd) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!(sgd.lr >= 0.0f) || !(sgd.momentum >= 0.0f) || !(sgd.weight_decay >= 0.0f))
    throw ArgumentError("lr, momentum and weight_decay must be >= 0");
  StepResult result;
  run_iteration(x, labels, n, result);
  for (int id : route_) {
    const auto u = static_cast<size_t>(id);
    for (size_t p = 0; p < params_[u].size(); ++p)
      if (param_grads_[u][p])
        backend_->sgd_update(param_numel_[u][p], sgd, params_[u][p], param_grads_[u][p],
                             momentum_[u][p]);
  }
  ++iteration_;
  return result;
}

double Session::compute_gradients(const float* x, const int32_t* labels, int64_t n,
                                  float* input_grad_out) {
  std::lock_guard<std::mutex> lock(mutex_);
  // An analysis call: the BN running statistics must not move.
  update_running_stats_ = false;
  // The data layer normally gets no gradient buffer; borrow the caller's for this call.
  float*& in = grad_[static_cast<size_t>(graph_.input_layer())];
  if (input_grad_out) {
    in = input_grad_out;
    backend_->fill_zero(in, n * graph_.layer(graph_.input_layer()).out.numel());
  }
  StepResult result;
  try {
    run_iteration(x, labels, n, result);
  } catch (...) {
    in = nullptr;
    update_running_stats_ = true;
    throw;
  }
  in = nullptr;
  update_running_stats_ = true;
  return result.loss;
}

StepResult Session::evaluate(const float* x, const int32_t* labels, int64_t n, float* logits_out) {
  std::lock_guard<std::mutex> lock(mutex_);
  check_batch(x, labels, n);
  std::memcpy(labels_, labels, static_cast<size_t>(n) * sizeof(int32_t));
  StepResult result;
  run_steps(plan_.eval_steps, n, false, x, eval_trace_, result, logits_out);
  return result;
}

}  // namespace sn
