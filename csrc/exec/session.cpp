#include "exec/session.h"

#include <cstdlib>
#include <cstring>
#include <map>

#include "core/errors.h"
#include "memory/poison.h"

namespace sn {

void Session::ArenaDeleter::operator()(void* p) const { std::free(p); }

Session::Session(Graph graph, SessionOptions options)
    : graph_(std::move(graph)), options_(std::move(options)) {
  if (options_.device != "cpu")
    throw ArgumentError("device '" + options_.device +
                        "' is not available in this build; available: cpu");
  backend_ = make_cpu_backend();
  plan_ = plan_memory(graph_, *backend_, options_.batch_size, options_.policy,
                      options_.budget_bytes, options_.host_budget_bytes);
  if (!plan_.fits) throw OutOfMemoryError(plan_.oom_message);
  route_ = forward_route(graph_);

  // Note [The arena on the CPU]
  // The pool's capacity is the budget (or the plan's need), exactly as on a device. The
  // host only backs the part the plan reaches (high_water_bytes): the executor replays the
  // planned sequence through a pool of the same capacity, so no offset lies beyond it.
  reserved_bytes_ = std::max<int64_t>(plan_.high_water_bytes, ArenaPool::kAlignmentBytes);
  arena_.reset(std::aligned_alloc(static_cast<size_t>(ArenaPool::kAlignmentBytes),
                                  static_cast<size_t>(reserved_bytes_)));
  if (!arena_)
    throw OutOfMemoryError("cannot reserve the " + std::to_string(reserved_bytes_) +
                           "-byte arena in host memory; use a smaller batch or budget");
  SN_POISON(arena_.get(), reserved_bytes_);
  pool_ = std::make_unique<ArenaPool>(plan_.capacity_bytes, arena_.get());
  // The host slab (pinned on CUDA): allocated once, carved by its own best-fit pool.
  const int64_t host_bytes =
      std::max<int64_t>(plan_.host_capacity_bytes, ArenaPool::kAlignmentBytes);
  host_slab_.reset(std::aligned_alloc(static_cast<size_t>(ArenaPool::kAlignmentBytes),
                                      static_cast<size_t>(host_bytes)));
  if (!host_slab_)
    throw OutOfMemoryError("cannot reserve the " + std::to_string(host_bytes) +
                           "-byte host slab for offloaded tensors");
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
}

Session::~Session() { SN_UNPOISON(arena_.get(), reserved_bytes_); }

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
  std::memcpy(labels_, labels, static_cast<size_t>(n) * sizeof(int32_t));
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
  ctx.input_grad = input_grad_out;
  if (input_grad_out) {
    const Layer& in = graph_.layer(graph_.input_layer());
    backend_->fill_zero(input_grad_out, n * in.out.numel());
  }
  std::map<std::pair<int, int>, GradientBuffer> grads;
  ctx.on_gradient = [&](int layer, int index, const float* g) {
    const ParamShape p = param_shapes(graph_, layer)[static_cast<size_t>(index)];
    GradientBuffer& b = grads[{layer, index}];
    b.name = graph_.layer(layer).name + "." + p.role;
    b.shape = p.shape;
    b.data.assign(g, g + p.numel());
  };
  executor_->run(plan_.train_steps, ctx, train_trace_);
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
