// Liveness as def-use intervals over a schedule, emitted as typed operations.
//
// Note [Intervals]
// A step that writes an activation or saved state starts a new interval of that tensor
// (a recomputed forward defines it again); the interval ends after its last reader
// before the next definition, where a free is emitted. A gradient is different: every
// backward step that writes it accumulates into one interval, zero-filled before the
// first writer. Parameter gradients live only inside their layer's backward step: the
// fused SGD update right after the kernel consumes them. Within a step the order is
// allocations, zero fills, the workspace (allocated last and freed first, so choosing a
// larger one never moves another block), the kernel, the updates, then the frees.
#include <algorithm>
#include <unordered_map>

#include "core/errors.h"
#include "plan/passes.h"

namespace sn {
namespace {

Op tensor_op(OpKind kind, int32_t slot) {
  Op op;
  op.kind = kind;
  op.tensor = slot;
  return op;
}

Op compute_op(ComputeKind kind, int layer, int index) {
  Op op;
  op.kind = OpKind::kCompute;
  op.compute = kind;
  op.layer = layer;
  op.index = index;
  return op;
}

ComputeKind compute_kind(StepKind k) {
  return k == StepKind::kBackward    ? ComputeKind::kBackward
         : k == StepKind::kRecompute ? ComputeKind::kRecompute
                                     : ComputeKind::kForward;
}

class Emitter {
 public:
  Emitter(MemoryPlan& plan, const Graph& g, const Backend& be, const Sizes& sizes, bool keep_all)
      : plan_(plan), g_(g), be_(be), sizes_(sizes), keep_all_(keep_all) {}

  int32_t slot(const TensorId& t) {
    auto it = index_.find(t);
    if (it != index_.end()) return it->second;
    const auto s = static_cast<int32_t>(plan_.tensors.size());
    plan_.tensors.push_back({t, sizes_.of(t)});
    at_setup_.push_back(false);
    index_.emplace(t, s);
    return s;
  }

  // Note [In place]
  // A forward (or recomputed) step whose kernel may overwrite an input with its output
  // (Backend::in_place_inputs) takes over that input's block when the input dies at this
  // very step: its interval ends here, so nobody reads it later. The output is
  // "allocated" by an alias operation; the input's free at the end of the step then only
  // drops its name (MemoryInterpreter::alias).
  int32_t in_place_source(const StepSpec& spec, const std::vector<int32_t>& allocs,
                          const std::vector<int32_t>& frees) {
    if (keep_all_ || spec.kind == StepKind::kBackward) return kNoTensor;
    const Layer& l = g_.layer(spec.layer);
    const int64_t out_bytes = sizes_.act[static_cast<size_t>(spec.layer)];
    const TensorId out{spec.layer, TensorRole::kActivation, 0};
    if (out_bytes == 0 || std::find(allocs.begin(), allocs.end(), slot(out)) == allocs.end())
      return kNoTensor;
    for (int k : be_.in_place_inputs(g_, spec.layer)) {
      const int in = l.inputs[static_cast<size_t>(k)];
      if (sizes_.act[static_cast<size_t>(in)] != out_bytes) continue;
      const int32_t s = slot({in, TensorRole::kActivation, 0});
      if (std::find(frees.begin(), frees.end(), s) == frees.end()) continue;
      return s;
    }
    return kNoTensor;
  }

  // A backward step whose kernel passes its output gradient through to an input (add,
  // flatten) lets that input's gradient take over dy's block when the gradient is first
  // written here (no other consumer has accumulated into it) and dy dies here; the zero
  // fill is dropped, and the kernel sees dx == dy. An input read twice (add(x, x)) is
  // never passed through: its gradient is 2 dy.
  int32_t pass_through_source(const StepSpec& spec, const std::vector<int32_t>& allocs,
                              const std::vector<int32_t>& zeros, const std::vector<int32_t>& frees,
                              int32_t* through) {
    if (keep_all_ || spec.kind != StepKind::kBackward) return kNoTensor;
    const Layer& l = g_.layer(spec.layer);
    const int64_t bytes = sizes_.act[static_cast<size_t>(spec.layer)];
    const int32_t dy = slot({spec.layer, TensorRole::kGradient, 0});
    if (bytes == 0 || std::find(frees.begin(), frees.end(), dy) == frees.end()) return kNoTensor;
    for (int k : be_.pass_through_inputs(g_, spec.layer)) {
      const int in = l.inputs[static_cast<size_t>(k)];
      if (in == g_.input_layer() || sizes_.act[static_cast<size_t>(in)] != bytes) continue;
      if (std::count(l.inputs.begin(), l.inputs.end(), in) != 1) continue;
      const int32_t s = slot({in, TensorRole::kGradient, 0});
      if (std::find(zeros.begin(), zeros.end(), s) == zeros.end() ||
          std::find(allocs.begin(), allocs.end(), s) == allocs.end())
        continue;
      *through = s;
      return dy;
    }
    return kNoTensor;
  }

  bool needs_workspace(int layer) const {
    const auto& algos = sizes_.algorithms[static_cast<size_t>(layer)];
    for (size_t a = 0; a < algos.size(); ++a)
      if (sizes_.workspace_bytes(layer, static_cast<int>(a)) > 0) return true;
    return false;
  }

  void setup_alloc(int32_t s) {
    if (at_setup_[static_cast<size_t>(s)]) return;
    at_setup_[static_cast<size_t>(s)] = true;
    plan_.setup.ops.push_back(alloc_op(s, plan_.tensors[static_cast<size_t>(s)].size_bytes));
  }

  // Allocates at setup (keep_all) or in the step.
  void alloc(PlanStep& step, int32_t s, int64_t size_bytes) {
    if (keep_all_)
      setup_alloc(s);
    else
      step.ops.push_back(alloc_op(s, size_bytes));
  }
  void release(PlanStep& step, int32_t s) {
    if (!keep_all_) step.ops.push_back(tensor_op(OpKind::kFree, s));
  }

  std::vector<PlanStep> steps(const Schedule& schedule) {
    const size_t n = schedule.size();
    std::vector<std::vector<int32_t>> allocs(n), zeros(n), frees(n);
    std::unordered_map<int32_t, size_t> last_use;  // open intervals
    for (size_t i = 0; i < n; ++i) {
      const StepUses uses = step_uses(g_, be_, sizes_, schedule[i]);
      for (const TensorId& t : uses.reads) {
        auto it = last_use.find(slot(t));
        SN_ASSERT(it != last_use.end(), "a step reads a tensor that no earlier step wrote");
        it->second = i;
      }
      for (const TensorId& t : uses.writes) {
        const int32_t s = slot(t);
        auto it = last_use.find(s);
        if (t.role == TensorRole::kGradient) {
          if (it != last_use.end()) {
            it->second = i;  // accumulates into the open interval
            continue;
          }
          zeros[i].push_back(s);
        } else if (it != last_use.end()) {
          frees[it->second].push_back(s);  // redefined: the old interval ends
          last_use.erase(it);
        }
        last_use[s] = i;
        allocs[i].push_back(s);
      }
    }
    std::vector<std::pair<int32_t, size_t>> rest(last_use.begin(), last_use.end());
    std::sort(rest.begin(), rest.end());
    for (const auto& [s, last] : rest) frees[last].push_back(s);

    std::vector<PlanStep> out(n);
    for (size_t i = 0; i < n; ++i) {
      const StepSpec& spec = schedule[i];
      PlanStep& step = out[i];
      step.layer = spec.layer;
      step.kind = spec.kind;
      const int32_t source = in_place_source(spec, allocs[i], frees[i]);
      int32_t through = kNoTensor;  // the input gradient that takes over dy's block
      const int32_t dy = pass_through_source(spec, allocs[i], zeros[i], frees[i], &through);
      for (int32_t s : allocs[i]) {
        if (s == through) {
          Op op = tensor_op(OpKind::kAlias, s);
          op.source = dy;
          op.size_bytes = plan_.tensors[static_cast<size_t>(s)].size_bytes;
          step.ops.push_back(op);
        } else if (source != kNoTensor &&
                   plan_.tensors[static_cast<size_t>(s)].id.role == TensorRole::kActivation) {
          Op op = tensor_op(OpKind::kAlias, s);
          op.source = source;
          op.size_bytes = plan_.tensors[static_cast<size_t>(s)].size_bytes;
          step.ops.push_back(op);
        } else {
          alloc(step, s, plan_.tensors[static_cast<size_t>(s)].size_bytes);
        }
      }
      for (int32_t s : zeros[i])
        if (s != through) step.ops.push_back(tensor_op(OpKind::kZero, s));
      std::vector<int32_t> grads;
      if (spec.kind == StepKind::kBackward) {
        const auto& ps = sizes_.params[static_cast<size_t>(spec.layer)];
        for (size_t p = 0; p < ps.size(); ++p) {
          if (!ps[p].trainable) continue;
          const int32_t s = slot({spec.layer, TensorRole::kParamGrad, static_cast<int32_t>(p)});
          alloc(step, s, plan_.tensors[static_cast<size_t>(s)].size_bytes);
          grads.push_back(s);
        }
      }
      int32_t ws = kNoTensor;
      if (needs_workspace(spec.layer)) {
        ws = slot({spec.layer, TensorRole::kWorkspace, 0});
        alloc(step, ws, sizes_.workspace_bytes(spec.layer, 0));
      }
      step.ops.push_back(compute_op(compute_kind(spec.kind), spec.layer, 0));
      if (ws != kNoTensor) release(step, ws);
      for (int32_t s : grads) {
        const TensorId& id = plan_.tensors[static_cast<size_t>(s)].id;
        step.ops.push_back(compute_op(ComputeKind::kUpdate, spec.layer, id.index));
        release(step, s);
      }
      for (int32_t s : frees[i]) release(step, s);
    }
    return out;
  }

 private:
  MemoryPlan& plan_;
  const Graph& g_;
  const Backend& be_;
  const Sizes& sizes_;
  bool keep_all_;
  std::unordered_map<TensorId, int32_t, TensorIdHash> index_;
  std::vector<bool> at_setup_;
};

}  // namespace

void plan_liveness(MemoryPlan& plan, const Graph& g, const Backend& be, const Sizes& sizes,
                   const Schedule& train, const Schedule& eval, bool keep_all) {
  Emitter e(plan, g, be, sizes, keep_all);
  plan.setup = PlanStep{};
  plan.setup.kind = StepKind::kSetup;
  plan.setup.layer = g.loss_layer();
  // Resident: the labels, every parameter and the momentum of the trainable ones.
  e.setup_alloc(e.slot({g.loss_layer(), TensorRole::kLabels, 0}));
  for (const StepSpec& s : train) {
    if (s.kind != StepKind::kForward) continue;
    const auto& ps = sizes.params[static_cast<size_t>(s.layer)];
    for (size_t p = 0; p < ps.size(); ++p) {
      const auto pi = static_cast<int32_t>(p);
      e.setup_alloc(e.slot({s.layer, TensorRole::kParam, pi}));
      if (ps[p].trainable) e.setup_alloc(e.slot({s.layer, TensorRole::kMomentum, pi}));
    }
  }
  plan.resident_bytes = 0;
  for (const Op& op : plan.setup.ops) plan.resident_bytes += op.size_bytes;
  plan.train_steps = e.steps(train);
  plan.eval_steps = e.steps(eval);
}

}  // namespace sn
