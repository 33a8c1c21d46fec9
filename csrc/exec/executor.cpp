#include "exec/executor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>

#include "core/errors.h"
#include "core/hash.h"
#include "memory/poison.h"

// Note [Non-finite values]
// Caught cheaply inside the step, in two places. The loss is checked right after the
// forward pass, before any backward kernel or update runs: a non-finite input or an
// activation that overflowed raises FloatingPointError there, and the BN running
// statistics that forward moved are restored, so nothing changes.
// Each fused update checks its gradient (one pass over it) before applying it, and the
// updated parameter after: a failure names the backward step and the layer. Updates
// are fused into the backward pass, so the layers whose backward ran earlier in this
// step have been updated by then; the message says how many, and a checkpoint restores
// them. (A non-finite gradient with a finite loss needs an overflow inside backward.)
namespace sn {

Executor::Executor(const Graph& g, const Backend& be, const MemoryPlan& plan, ArenaPool& pool,
                   ArenaPool& host, int copy_delay_us)
    : g_(g),
      be_(be),
      plan_(plan),
      pool_(pool),
      host_(host),
      mem_(pool, host, plan.tensors.size(), static_cast<size_t>(plan.num_events)),
      resident_(plan.tensors.size(), false),
      host_memory_(be.host_addressable()) {
  if (plan.num_events > 0) engine_ = be.make_copy_engine(plan.num_events, copy_delay_us, 0x5eed);
  for (size_t s = 0; s < plan.tensors.size(); ++s) {
    slot_.emplace(plan.tensors[s].id, static_cast<int32_t>(s));
    block_bytes_.push_back(plan.tensors[s].size_bytes);
  }
  param_numel_.resize(static_cast<size_t>(g.size()));
  for (int i = 0; i < g.size(); ++i) {
    const std::vector<ParamShape> ps = param_shapes(g, i);
    for (size_t p = 0; p < ps.size(); ++p) {
      param_numel_[static_cast<size_t>(i)].push_back(ps[p].numel());
      if (!ps[p].trainable) buffers_.push_back({i, TensorRole::kParam, static_cast<int32_t>(p)});
    }
  }
}

float* Executor::at(int32_t slot) const {
  if (!mem_.live(slot)) return nullptr;
  return reinterpret_cast<float*>(static_cast<char*>(pool_.base()) + mem_.offset(slot));
}

float* Executor::data(const TensorId& id) const {
  auto it = slot_.find(id);
  return it == slot_.end() ? nullptr : at(it->second);
}

// Note [Measured overlap]
// The engine times each copy; the executor times each wait of the compute thread for a
// copy event. overlap = 1 - stall / copy time: the fraction of copying hidden behind
// compute (begin_iteration's drain counts as neither: every plan waits for its copies).
// On CUDA the host does not wait (the compute stream does), so the engine measures the
// stall itself from events (times_stalls, Note [CUDA copy streams]).
void Executor::wait(int event) {
  const auto t0 = std::chrono::steady_clock::now();
  engine_->wait(event);
  stall_ms_ +=
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

CopyStats Executor::copy_stats() const {
  if (!engine_) return {};
  return {engine_->bytes_copied(), engine_->busy_ms(),
          engine_->times_stalls() ? engine_->stall_ms() : stall_ms_};
}

// Note [Kernel profile]
// With profiling on, every compute operation and every gradient zero-fill is timed on
// the compute thread and summed by (layer kind, phase): where a training step's time
// goes (`superneurons bench --profile`). Copies are not in it (copy_stats has them);
// the rest of a step (allocation bookkeeping, waits, Python) is what the caller's step
// time has beyond the table's total.
namespace {
constexpr int kZeroPhase = 4;  // after the ComputeKind values
constexpr int kProfilePhases = 5;
constexpr int kLayerKinds = static_cast<int>(LayerKind::kSoftmaxXent) + 1;
const char* const kPhaseNames[kProfilePhases] = {"forward", "backward", "recompute", "update",
                                                 "zero"};
}  // namespace

void Executor::set_profiling(bool on) {
  profiling_ = on;
  if (!on) return;
  profile_.assign(static_cast<size_t>(kLayerKinds * kProfilePhases), KernelTime{});
  for (int k = 0; k < kLayerKinds; ++k)
    for (int p = 0; p < kProfilePhases; ++p) {
      KernelTime& t = profile_[static_cast<size_t>(k * kProfilePhases + p)];
      t.kind = static_cast<LayerKind>(k);
      t.phase = kPhaseNames[p];
    }
}

// On a backend that queues its work (CUDA), a profiled operation is bracketed by
// synchronizations, so the table holds kernel times, not launch times; profiling
// therefore serializes the step there (copies included).
std::chrono::steady_clock::time_point Executor::profile_start() const {
  if (!profiling_) return {};
  if (be_.defers_results()) be_.synchronize();
  return std::chrono::steady_clock::now();
}

void Executor::record(LayerKind kind, int phase, std::chrono::steady_clock::time_point start) {
  if (be_.defers_results()) be_.synchronize();
  KernelTime& t = profile_[static_cast<size_t>(static_cast<int>(kind) * kProfilePhases + phase)];
  ++t.calls;
  t.ms +=
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

std::vector<KernelTime> Executor::profile() const {
  std::vector<KernelTime> rows;
  for (const KernelTime& t : profile_)
    if (t.calls > 0) rows.push_back(t);
  return rows;
}

float* Executor::state_data(const TensorId& id) const {
  auto it = slot_.find(id);
  if (it == slot_.end()) return nullptr;
  if (mem_.has_home(it->second))
    return reinterpret_cast<float*>(static_cast<char*>(host_.base()) +
                                    mem_.host_offset(it->second));
  return at(it->second);
}

void Executor::run_setup() {
  RunContext ctx;
  for (const Op& op : plan_.setup.ops) apply(plan_.setup, op, ctx);
  for (size_t s = 0; s < resident_.size(); ++s) resident_[s] = mem_.live(static_cast<int32_t>(s));
  mem_.mark_resident();
}

void Executor::release_transient() {
  if (engine_) engine_->drain();  // no copy may touch a block after this
  mem_.drop_host_copies();
  for (size_t s = 0; s < resident_.size(); ++s) {
    const auto slot = static_cast<int32_t>(s);
    if (resident_[s] || !mem_.live(slot)) continue;
    Op op;
    op.kind = OpKind::kFree;
    op.tensor = slot;
    if (host_memory_ && !mem_.gave_up_block(slot)) SN_POISON(at(slot), plan_.tensors[s].size_bytes);
    mem_.free(op);
  }
}

void Executor::run(const std::vector<PlanStep>& steps, RunContext& ctx,
                   std::vector<int64_t>& trace) {
  trace.assign(steps.size(), 0);
  if (engine_) engine_->begin_iteration();
  // The running statistics move in forward, before the loss is known: keep them so a
  // non-finite loss leaves the session as it was (they are small: 2 floats a channel).
  const bool backup = ctx.check_finite && ctx.training;
  if (backup) {
    // On the backend's own memory (device-to-device on a GPU: no host wait per buffer).
    int64_t total = 0;
    for (const TensorId& b : buffers_)
      total += param_numel_[static_cast<size_t>(b.layer)][static_cast<size_t>(b.index)];
    if (total > 0 && buffer_backup_.get() == nullptr)
      buffer_backup_ = DeviceBuffer(be_, total * static_cast<int64_t>(sizeof(float)));
    int64_t at_float = 0;
    for (const TensorId& b : buffers_) {
      const int64_t n = param_numel_[static_cast<size_t>(b.layer)][static_cast<size_t>(b.index)];
      be_.copy(buffer_backup_.floats() + at_float, data(b), n);
      at_float += n;
    }
  }
  be_.begin_pass();
  try {
    for (size_t i = 0; i < steps.size(); ++i) {
      ctx.step_index = i;
      for (const Op& op : steps[i].ops) {
        if (op.kind == OpKind::kCompute && op.compute != ComputeKind::kUpdate)
          trace[i] = pool_.stats().in_use_bytes;
        apply(steps[i], op, ctx);
      }
    }
    finish(ctx);
  } catch (const NumericalError&) {
    if (backup && ctx.updates_done == 0) {  // nothing was updated: restore the statistics
      int64_t at_float = 0;
      for (const TensorId& b : buffers_) {
        const int64_t n = param_numel_[static_cast<size_t>(b.layer)][static_cast<size_t>(b.index)];
        be_.copy(data(b), buffer_backup_.floats() + at_float, n);
        at_float += n;
      }
    }
    release_transient();
    throw;
  } catch (...) {
    release_transient();  // the arena as setup left it: the session stays usable
    throw;
  }
}

// Note [Deferred results]
// On the CPU the loss is known when the loss layer returns, and each fused update checks
// its gradient before it runs. A GPU would stall at every such read (the host waits for
// the queue, and backward prefetching stops), so the CUDA backend keeps them on the
// device: the loss layer's kernel flags a non-finite loss, each update's kernels flag a
// non-finite gradient (skipping it) or result, and every update after a flag is skipped,
// all without the host. The executor reads the pass's results once, here, and raises the
// same errors the CPU raises at the step itself. What differs: the message cannot name
// the step, and how many updates ran before a bad gradient is not counted.
void Executor::finish(RunContext& ctx) {
  const PassResult r = be_.finish_pass();  // waits for the queue
  if (!r.deferred) return;
  ctx.loss = r.loss;
  ctx.correct = r.correct;
  if (!ctx.check_finite || !ctx.training) return;
  if (r.loss_non_finite) {
    ctx.updates_done = 0;  // the device skipped every update
    throw NumericalError("non-finite loss (" + std::to_string(ctx.loss) +
                         "): an input is not finite or an activation overflowed; no parameter "
                         "was changed by this step. Check the data and try a smaller learning "
                         "rate");
  }
  if (r.grad_non_finite || r.param_non_finite) {
    ctx.updates_done = 1;  // some may have run: the statistics are not restored
    throw NumericalError(
        std::string(r.grad_non_finite ? "a non-finite gradient with a finite loss (an overflow "
                                        "inside the backward pass)"
                                      : "an update made a parameter non-finite (the learning "
                                        "rate or momentum is too large)") +
        ": the updates fused into the backward pass before it were applied, the rest were "
        "skipped (reload a checkpoint). Try a smaller learning rate");
  }
}

void Executor::apply(const PlanStep& step, const Op& op, RunContext& ctx) {
  switch (op.kind) {
    case OpKind::kAlloc: {
      const int64_t off = mem_.alloc(op);
      SN_ASSERT(off != ArenaPool::kNoSpace, "the arena refused an allocation the plan had placed");
      SN_ASSERT(off == op.offset_bytes, "an allocation missed its planned offset");
      if (host_memory_) SN_UNPOISON(at(op.tensor), op.size_bytes);
      // A workspace's block is its step's algorithm's, not the tensor's largest size.
      block_bytes_[static_cast<size_t>(op.tensor)] = op.size_bytes;
      break;
    }
    case OpKind::kAlias: {
      const int64_t off = mem_.alias(op);
      SN_ASSERT(off == op.offset_bytes, "an in-place output missed its planned offset");
      break;
    }
    case OpKind::kCopyOut: {
      const int64_t bytes = plan_.tensors[static_cast<size_t>(op.tensor)].size_bytes;
      const int64_t off = mem_.copy_out(op, bytes);
      SN_ASSERT(off == op.offset_bytes, "a host copy missed its planned offset");
      engine_->submit(op.event, CopyDirection::kDeviceToHost,
                      static_cast<char*>(host_.base()) + off, at(op.tensor), bytes);
      break;
    }
    case OpKind::kHostAlloc: {
      const int64_t off = mem_.host_alloc(op);
      SN_ASSERT(off == op.offset_bytes, "a host home missed its planned offset");
      break;
    }
    case OpKind::kCopyIn: {
      mem_.copy_in(op);
      const int64_t bytes = plan_.tensors[static_cast<size_t>(op.tensor)].size_bytes;
      if (host_memory_) SN_UNPOISON(at(op.tensor), bytes);
      engine_->submit(op.event, CopyDirection::kHostToDevice, at(op.tensor),
                      static_cast<char*>(host_.base()) + mem_.host_offset(op.tensor), bytes);
      break;
    }
    case OpKind::kWait:
      wait(op.event);
      mem_.wait(op);
      break;
    case OpKind::kFreeAfter:
      wait(op.event);
      [[fallthrough]];
    case OpKind::kFree: {
      if (!mem_.gave_up_block(op.tensor)) {  // an in-place input's block lives on
        float* p = at(op.tensor);
        const int64_t bytes = block_bytes_[static_cast<size_t>(op.tensor)];
        if (ctx.poison_freed) be_.fill_nan(p, bytes / 4);
        if (host_memory_) SN_POISON(p, bytes);
      }
      mem_.free(op);
      break;
    }
    case OpKind::kZero: {
      const TensorId& id = plan_.tensors[static_cast<size_t>(op.tensor)].id;
      const auto start = profile_start();
      be_.fill_zero(at(op.tensor), ctx.n * g_.layer(id.layer).out.numel());
      if (profiling_) record(g_.layer(id.layer).kind, kZeroPhase, start);
      break;
    }
    case OpKind::kCompute: {
      const auto start = profile_start();
      compute(step, op, ctx);
      if (profiling_) record(g_.layer(op.layer).kind, static_cast<int>(op.compute), start);
      break;
    }
  }
}

void Executor::compute(const PlanStep& step, const Op& op, RunContext& ctx) {
  const int id = op.layer;
  const Layer& l = g_.layer(id);
  auto tensor = [&](TensorRole role, int index) { return data({id, role, index}); };
  const std::vector<int64_t>& params = param_numel_[static_cast<size_t>(id)];
  if (op.compute == ComputeKind::kUpdate) {
    float* w = tensor(TensorRole::kParam, op.index);
    const float* dw = tensor(TensorRole::kParamGrad, op.index);
    const int64_t count = params[static_cast<size_t>(op.index)];
    const std::string where =
        " at backward step " + std::to_string(ctx.step_index) + " (layer '" + l.name + "')";
    const bool host_checks = ctx.check_finite && !be_.defers_results();
    if (host_checks && !be_.all_finite(dw, count))
      throw NumericalError(
          "non-finite gradient of parameter " + std::to_string(op.index) + where +
          " with a finite loss: an overflow inside the backward pass; " +
          std::to_string(ctx.updates_done) +
          " parameters of later layers were already updated in this step (reload a "
          "checkpoint), this one and earlier ones were not. Try a smaller learning rate");
    if (ctx.sgd) {
      SgdConfig cfg = *ctx.sgd;
      cfg.guarded = ctx.check_finite;
      be_.sgd_update(count, cfg, w, dw, tensor(TensorRole::kMomentum, op.index));
      ++ctx.updates_done;
      if (host_checks && !be_.all_finite(w, count))
        throw NumericalError("the update made parameter " + std::to_string(op.index) + where +
                             " non-finite (the learning rate or momentum is too large); " +
                             std::to_string(ctx.updates_done) +
                             " parameters were updated in this step (reload a checkpoint)");
    } else if (ctx.on_gradient) {
      ctx.on_gradient(id, op.index, dw);
    }
    return;
  }
  const bool backward = op.compute == ComputeKind::kBackward;
  const KernelReads reads = backward ? be_.backward_reads(g_, id) : KernelReads{true, true};
  const bool poison = backward && ctx.poison_undeclared;
  if (poison && nan_.get() == nullptr) {
    int64_t largest = 0;
    for (int64_t b : plan_.activation_bytes) largest = std::max(largest, b);
    nan_ = DeviceBuffer(be_, largest + 4);
    be_.fill_nan(nan_.floats(), largest / 4 + 1);
  }
  LayerIO io;
  io.n = ctx.n;
  io.algorithm = step.algorithm;
  for (int in : l.inputs) {
    float* x = data({in, TensorRole::kActivation, 0});
    io.x.push_back(poison && !reads.inputs ? nan_.floats() : x);
    float* dx = in == g_.input_layer() ? ctx.input_grad : data({in, TensorRole::kGradient, 0});
    io.dx.push_back(backward ? dx : nullptr);
  }
  io.y = poison && !reads.output ? nan_.floats() : tensor(TensorRole::kActivation, 0);
  io.dy = tensor(TensorRole::kGradient, 0);
  for (size_t p = 0; p < params.size(); ++p) {
    io.params.push_back(tensor(TensorRole::kParam, static_cast<int>(p)));
    io.param_grads.push_back(tensor(TensorRole::kParamGrad, static_cast<int>(p)));
  }
  io.aux = tensor(TensorRole::kAux, 0);
  io.workspace = tensor(TensorRole::kWorkspace, 0);
  io.labels = reinterpret_cast<const int32_t*>(data({g_.loss_layer(), TensorRole::kLabels, 0}));
  io.update_running_stats = ctx.update_running_stats && op.compute == ComputeKind::kForward;
  io.dropout_seed =
      splitmix64(splitmix64(ctx.seed ^ static_cast<uint64_t>(id) * 0x2545f4914f6cdd1dULL) ^
                 static_cast<uint64_t>(ctx.iteration));
  if (backward) {
    be_.backward(g_, id, io);
    return;
  }
  if (l.kind == LayerKind::kInput)
    be_.upload(io.y, ctx.x, ctx.n * l.out.numel() * static_cast<int64_t>(sizeof(float)));
  be_.forward(g_, id, io, ctx.training);
  if (l.kind == LayerKind::kSoftmaxXent) {
    if (ctx.logits_out)
      be_.download(ctx.logits_out, io.x[0],
                   ctx.n * g_.layer(l.inputs[0]).out.numel() * static_cast<int64_t>(sizeof(float)));
    if (be_.defers_results()) return;  // Note [Deferred results]
    ctx.loss = io.loss;
    ctx.correct = io.correct;
    if (ctx.check_finite && ctx.training && !std::isfinite(ctx.loss))
      throw NumericalError("non-finite loss (" + std::to_string(ctx.loss) + ") at forward step " +
                           std::to_string(ctx.step_index) +
                           ": an input is not finite or an activation overflowed; no "
                           "parameter was changed by this step. Check the data and try a "
                           "smaller learning rate");
  }
}

}  // namespace sn
