#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <mutex>

#include "core/errors.h"
#include "exec/session.h"
#include "plan/memory_plan.h"
#include "python/register.h"
#ifdef SN_WITH_CUDA
#include "backend/cuda/device.h"
#endif

namespace py = pybind11;

namespace sn::python {
namespace {

py::array_t<int64_t> to_array(const std::vector<int64_t>& v) {
  py::array_t<int64_t> a(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

// Steps as columns (layer, kind, algorithm, bytes, live, ops): cheap to hand over for
// 50,000 steps. kind: StepKind (1 forward, 2 backward, 3 recompute).
py::dict steps_dict(const std::vector<PlanStep>& steps) {
  std::vector<int64_t> layer, kind, algorithm, bytes, host, live, ops;
  for (const PlanStep& s : steps) {
    layer.push_back(s.layer);
    kind.push_back(static_cast<int64_t>(s.kind));
    algorithm.push_back(s.algorithm);
    bytes.push_back(s.bytes_in_use);
    host.push_back(s.host_bytes_in_use);
    live.push_back(s.live_tensors);
    ops.push_back(static_cast<int64_t>(s.ops.size()));
  }
  py::dict d;
  d["layer"] = to_array(layer);
  d["kind"] = to_array(kind);
  d["algorithm"] = to_array(algorithm);
  d["bytes_in_use"] = to_array(bytes);
  d["host_bytes_in_use"] = to_array(host);
  d["live_tensors"] = to_array(live);
  d["num_ops"] = to_array(ops);
  return d;
}

// One step's operations as (kind, compute, tensor layer, tensor role, tensor index,
// size_bytes, offset_bytes) tuples, for inspection and tests.
py::list step_ops(const MemoryPlan& p, const PlanStep& s) {
  py::list out;
  for (const Op& op : s.ops) {
    TensorId t;
    if (op.tensor != kNoTensor) t = p.tensors[static_cast<size_t>(op.tensor)].id;
    out.append(py::make_tuple(
        op_kind_name(op.kind), static_cast<int>(op.compute),
        op.kind == OpKind::kCompute ? op.layer : t.layer, static_cast<int>(t.role),
        op.kind == OpKind::kCompute ? op.index : t.index, op.size_bytes, op.offset_bytes));
  }
  return out;
}

}  // namespace

py::dict plan_dict(const Graph& g, std::shared_ptr<const MemoryPlan> shared) {
  const MemoryPlan& p = *shared;
  py::dict d;
  d["policy"] = p.policy;
  d["passes"] = p.passes;
  d["recompute_count"] = p.recompute_count;
  d["offload_bytes"] = p.offload_bytes;
  d["prefetch_bytes"] = p.prefetch_bytes;
  d["host_peak_bytes"] = p.host_peak_bytes;
  d["host_capacity_bytes"] = p.host_capacity_bytes;
  d["param_host_bytes"] = p.param_host_bytes;
  d["host_budget_bytes"] = p.host_budget_bytes;
  d["param_copy_bytes"] = p.param_copy_bytes;
  d["param_on_host"] = p.param_on_host;
  d["num_events"] = p.num_events;
  d["recompute_flops"] = p.recompute_flops;
  d["iteration_flops"] = p.iteration_flops;
  d["compute_ms"] = p.compute_ms;
  d["copy_ms"] = p.copy_ms;
  d["stall_ms"] = p.stall_ms;
  d["estimated_ms"] = p.estimated_ms;
  d["checkpoint"] = p.checkpoint;
  py::list choices;
  for (const OffloadChoice& c : p.offload_choices) {
    py::dict cd;
    cd["selection"] = c.selection;
    cd["fits"] = c.fits;
    cd["moved_bytes"] = c.moved_bytes;
    cd["estimated_ms"] = c.estimated_ms;
    cd["chosen"] = c.chosen;
    choices.append(cd);
  }
  d["offload_choices"] = choices;
  const PeakBreakdown& pb = p.peak_breakdown;
  py::dict peak;
  peak["step"] = pb.step;
  peak["layer"] = pb.layer;
  peak["phase"] = step_kind_name(pb.kind);
  peak["step_bytes"] = pb.step_bytes;
  peak["resident_bytes"] = pb.resident_bytes;
  peak["prefetched_bytes"] = pb.prefetched_bytes;
  peak["offloading_bytes"] = pb.offloading_bytes;
  peak["kept_activation_bytes"] = pb.kept_activation_bytes;
  peak["gradient_bytes"] = pb.gradient_bytes;
  peak["other_bytes"] = pb.other_bytes;
  d["peak_breakdown"] = peak;
  py::list segments;
  for (const SegmentRecord& seg : p.segments) {
    py::dict sd;
    sd["layers"] = seg.layers;
    sd["bytes"] = seg.bytes;
    sd["speed_centric"] = seg.speed_centric;
    sd["recomputed"] = seg.recomputed;
    segments.append(sd);
  }
  d["segments"] = segments;
  py::list algorithms;  // per layer: the names the backend offered, fastest first
  for (const auto& algos : p.algorithms) {
    py::list names;
    for (const Algorithm& a : algos) names.append(a.name);
    algorithms.append(names);
  }
  d["algorithms"] = algorithms;
  d["train_ops"] = py::cpp_function([shared](size_t i) {
    if (i >= shared->train_steps.size()) throw ArgumentError("step index out of range");
    return step_ops(*shared, shared->train_steps[i]);
  });
  d["batch_size"] = p.batch_size;
  d["budget_bytes"] = p.budget_bytes;
  d["capacity_bytes"] = p.capacity_bytes;
  d["high_water_bytes"] = p.high_water_bytes;
  d["resident_bytes"] = p.resident_bytes;
  d["setup_bytes"] = p.setup.bytes_in_use;
  d["peak_bytes"] = p.peak_bytes;
  d["eval_peak_bytes"] = p.eval_peak_bytes;
  d["layer_bound_bytes"] = p.layer_bound_bytes;
  d["baseline_bytes"] = p.baseline_bytes;
  d["fits"] = p.fits;
  d["oom_message"] = p.oom_message;
  d["train_steps"] = steps_dict(p.train_steps);
  d["eval_steps"] = steps_dict(p.eval_steps);
  d["activation_bytes"] = to_array(p.activation_bytes);
  d["gradient_bytes"] = to_array(p.gradient_bytes);
  d["aux_bytes"] = to_array(p.aux_bytes);
  d["workspace_bytes"] = to_array(p.workspace_bytes);
  d["param_bytes"] = to_array(p.param_bytes);
  std::vector<int64_t> layer, role, index, offset, size, first, last, alias;
  for (const BlockRecord& b : p.blocks) {
    layer.push_back(b.tensor.layer);
    role.push_back(static_cast<int64_t>(b.tensor.role));
    index.push_back(b.tensor.index);
    offset.push_back(b.offset_bytes);
    size.push_back(b.size_bytes);
    first.push_back(b.first_step);
    last.push_back(b.last_step);
    alias.push_back(b.alias_of);
  }
  py::dict blocks;
  blocks["layer"] = to_array(layer);
  blocks["role"] = to_array(role);
  blocks["index"] = to_array(index);
  blocks["offset_bytes"] = to_array(offset);
  blocks["size_bytes"] = to_array(size);
  blocks["first_step"] = to_array(first);
  blocks["last_step"] = to_array(last);
  blocks["alias_of"] = to_array(alias);
  d["blocks"] = blocks;
  py::list param_roles;  // per layer: "weight", "bias", "gamma", ...
  for (int i = 0; i < g.size(); ++i) {
    py::list roles;
    for (const ParamShape& ps : param_shapes(g, i)) roles.append(ps.role);
    param_roles.append(roles);
  }
  d["param_roles"] = param_roles;
  return d;
}

namespace {

// The CPU backend is made per call: it reads its cost-model rates from the environment.
std::shared_ptr<const Backend> planning_backend(const std::string& device) {
  if (device == "cpu") return make_cpu_backend();
#ifdef SN_WITH_CUDA
  // Never destroyed, on purpose: a static's destructor would run after the CUDA runtime
  // has begun to unload at exit, and free handles and memory through it.
  static std::mutex mutex;
  static std::shared_ptr<const Backend>* gpu = nullptr;
  static bool tried = false;
  std::lock_guard<std::mutex> lock(mutex);
  if (!tried) {
    tried = true;
    if (cuda::device_count(nullptr) > 0)
      gpu = new std::shared_ptr<const Backend>(make_backend("cuda:0"));
  }
  if (gpu) return *gpu;
#endif
  return make_cpu_backend();
}

}  // namespace

void register_plan(py::module_& m) {
  m.def(
      "plan_memory",
      [](const Graph& g, int64_t batch, const std::string& policy, const std::string& device,
         int64_t budget_bytes, int64_t host_budget_bytes) {
        if (device != "cpu" && device != "cuda")
          throw ArgumentError("unknown device '" + device + "'; use 'cpu' or 'cuda'");
        // Note [Planning for CUDA]: with a GPU visible a CUDA plan asks the CUDA backend
        // (cuDNN's measured algorithms and their workspaces; one backend per process,
        // made on first use); without one it uses the CPU backend's sizes, which are the
        // same for every tensor but not for convolution workspaces.
        const std::shared_ptr<const Backend> backend = planning_backend(device);
        MemoryPlan p;
        {
          py::gil_scoped_release release;
          p = plan_memory(g, *backend, batch, policy, budget_bytes, host_budget_bytes);
        }
        return plan_dict(g, std::make_shared<const MemoryPlan>(std::move(p)));
      },
      py::arg("graph"), py::arg("batch_size"), py::arg("policy"), py::arg("device"),
      py::arg("budget_bytes"), py::arg("host_budget_bytes") = 0);
}

}  // namespace sn::python
