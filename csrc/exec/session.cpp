#include "exec/session.h"

#include <cstdlib>
#include <cstring>
#include <map>

#include "core/errors.h"
#include "memory/poison.h"

namespace sn {

void Session::ArenaDeleter::operator()(void* p) const {
  if (!p) return;
  if (host) {
    backend->free_host(p);
  } else {
    backend->free_device(p);
  }
}

Session::Session(Graph graph, SessionOptions options)
    : graph_(std::move(graph)), options_(std::move(options)) {
  backend_ = make_backend(options_.device);
  plan_ = plan_memory(graph_, *backend_, options_.batch_size, options_.policy,
                      options_.budget_bytes, options_.host_budget_bytes);
  if (!plan_.fits) throw OutOfMemoryError(plan_.oom_message);
  route_ = forward_route(graph_);

  // Note [The arena on the CPU]
  // The pool's capacity is the budget (or the plan's need), exactly as on a device. The
  // host only backs the part the plan reaches (high_water_bytes): the executor replays the
  // planned sequence through a pool of the same capacity, so no offset lies beyond it. A
  // device reserves the whole capacity up front, in one allocation (Note [Device memory]).
  reserved_bytes_ = std::max<int64_t>(
      backend_->host_addressable() ? plan_.high_water_bytes : plan_.capacity_bytes,
      ArenaPool::kAlignmentBytes);
  arena_ = std::unique_ptr<void, ArenaDeleter>(backend_->allocate_device(reserved_bytes_),
                                               ArenaDeleter{backend_.get(), false});
  if (backend_->host_addressable()) SN_POISON(arena_.get(), reserved_bytes_);
  pool_ = std::make_unique<ArenaPool>(plan_.capacity_bytes, arena_.get());
  // The host slab (pinned on CUDA): allocated once, carved by its own best-fit pool.
  const int64_t host_bytes =
      std::max<int64_t>(plan_.host_capacity_bytes, ArenaPool::kAlignmentBytes);
  host_slab_ = std::unique_ptr<void, ArenaDeleter>(backend_->allocate_host(host_bytes),
                                                   ArenaDeleter{backend_.get(), true});
  host_pool_ = std::make_unique<ArenaPool>(host_bytes, host_slab_.get());
  executor_ = std::make_unique<Executor>(graph_, *backend_, plan_, *pool_, *host_pool_,
                                         options_.copy_delay_us);
  executor_->run_setup();
  setup_bytes_ = pool_->stats().in_use_bytes;
  labels_ =
      reinterpret_cast<int32_t*>(executor_->data({graph_.loss_layer(), TensorRole::kLabels, 0}));

  for (int id : route_) {
    const std::vector<ParamShape> ps = param_shapes(graph_, id);
    for (size_t p = 0; p < ps.size(); ++p) {
      const std::string base = graph_.layer(id).name + "." + ps[p].role;
      const auto pi = static_cast<int32_t>(p);
      state_.push_back({base, ps[p].trainable ? "param" : "buffer", ps[p].shape,
                        executor_->state_data({id, TensorRole::kParam, pi}), id});
      if (!ps[p].trainable) continue;
      float* v = executor_->state_data({id, TensorRole::kMomentum, pi});
      backend_->fill_zero(v, ps[p].numel());
      state_.push_back({base + ".momentum", "momentum", ps[p].shape, v, id});
    }
  }
  // Nothing queued outlives a public call (steps end with one too): state viewed through
  // DLPack on any stream is complete.
  backend_->synchronize();
}

Session::~Session() {
  executor_.reset();  // its copy engine first: no copy may outlive the memory
  if (backend_->host_addressable()) SN_UNPOISON(arena_.get(), reserved_bytes_);
}

std::vector<float> Session::read_state(size_t index) const {
  const StateBuffer& b = state_at(index);
  std::vector<float> out(static_cast<size_t>(numel_of(b.shape)));
  std::lock_guard<std::mutex> lock(mutex_);
  backend_->download(out.data(), b.data, static_cast<int64_t>(out.size() * sizeof(float)));
  return out;
}

void Session::write_state(size_t index, const float* values, int64_t count) {
  const StateBuffer& b = state_at(index);
  if (count != numel_of(b.shape))
    throw ArgumentError("state '" + b.name + "' holds " + std::to_string(numel_of(b.shape)) +
                        " values, got " + std::to_string(count));
  std::lock_guard<std::mutex> lock(mutex_);
  backend_->upload(b.data, values, count * static_cast<int64_t>(sizeof(float)));
  backend_->synchronize();  // `values` may go away on return
}

const StateBuffer& Session::state_at(size_t index) const {
  if (index >= state_.size())
    throw ArgumentError("state index " + std::to_string(index) + " out of range (" +
                        std::to_string(state_.size()) + " buffers)");
  return state_[index];
}

int64_t Session::numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t Session::num_classes() const {
  return graph_.layer(graph_.layer(graph_.loss_layer()).inputs[0]).out.numel();
}

void Session::set_iteration(int64_t it) {
  if (it < 0) throw ArgumentError("iteration must be >= 0, got " + std::to_string(it));
  iteration_ = it;
}

void Session::set_profiling(bool on) {
  std::lock_guard<std::mutex> lock(mutex_);  // not while a step runs
  executor_->set_profiling(on);
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

RunContext Session::context(const float* x, const int32_t* labels, int64_t n) {
  check_batch(x, labels, n);
  backend_->upload(labels_, labels, n * static_cast<int64_t>(sizeof(int32_t)));
  RunContext ctx;
  ctx.n = n;
  ctx.x = x;
  ctx.seed = options_.seed;
  ctx.iteration = iteration_;
  ctx.poison_freed = options_.poison;
  ctx.poison_undeclared = options_.poison;
  return ctx;
}

StepResult Session::train_step(const float* x, const int32_t* labels, int64_t n,
                               const SgdConfig& sgd) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!(sgd.lr >= 0.0f) || !(sgd.momentum >= 0.0f) || !(sgd.weight_decay >= 0.0f))
    throw ArgumentError("lr, momentum and weight_decay must be >= 0");
  RunContext ctx = context(x, labels, n);
  ctx.sgd = &sgd;
  executor_->run(plan_.train_steps, ctx, train_trace_);
  ++iteration_;
  return {ctx.loss, ctx.correct};
}

double Session::compute_gradients(const float* x, const int32_t* labels, int64_t n,
                                  float* input_grad_out) {
  std::lock_guard<std::mutex> lock(mutex_);
  RunContext ctx = context(x, labels, n);
  ctx.update_running_stats = false;  // an analysis call: the running statistics stay
  // On a device the input gradient is written to device memory outside the arena (an
  // analysis call) and read back at the end.
  const int64_t input_floats = n * graph_.layer(graph_.input_layer()).out.numel();
  DeviceBuffer device_grad;
  if (input_grad_out) {
    if (!backend_->host_addressable())
      device_grad = DeviceBuffer(*backend_, input_floats * static_cast<int64_t>(sizeof(float)));
    ctx.input_grad = device_grad.get() ? device_grad.floats() : input_grad_out;
    backend_->fill_zero(ctx.input_grad, input_floats);
  }
  std::map<std::pair<int, int>, GradientBuffer> grads;
  ctx.on_gradient = [&](int layer, int index, const float* g) {
    const ParamShape p = param_shapes(graph_, layer)[static_cast<size_t>(index)];
    GradientBuffer& b = grads[{layer, index}];
    b.name = graph_.layer(layer).name + "." + p.role;
    b.shape = p.shape;
    b.data.resize(static_cast<size_t>(p.numel()));
    backend_->download(b.data.data(), g, p.numel() * static_cast<int64_t>(sizeof(float)));
  };
  executor_->run(plan_.train_steps, ctx, train_trace_);
  if (device_grad.get())
    backend_->download(input_grad_out, device_grad.get(),
                       input_floats * static_cast<int64_t>(sizeof(float)));
  gradients_.clear();
  for (int id : route_)  // in route order, like state()
    for (auto it = grads.lower_bound({id, 0}); it != grads.end() && it->first.first == id; ++it)
      gradients_.push_back(std::move(it->second));
  return ctx.loss;
}

StepResult Session::evaluate(const float* x, const int32_t* labels, int64_t n, float* logits_out) {
  std::lock_guard<std::mutex> lock(mutex_);
  RunContext ctx = context(x, labels, n);
  ctx.training = false;
  ctx.logits_out = logits_out;
  executor_->run(plan_.eval_steps, ctx, eval_trace_);
  return {ctx.loss, ctx.correct};
}

}  // namespace sn
