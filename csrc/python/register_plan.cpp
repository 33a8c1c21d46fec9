#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "core/errors.h"
#include "exec/session.h"
#include "plan/memory_plan.h"
#include "python/register.h"

namespace py = pybind11;

namespace sn::python {
namespace {

py::array_t<int64_t> to_array(const std::vector<int64_t>& v) {
  py::array_t<int64_t> a(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

// Steps as columns (layer, phase, bytes, live): cheap to hand over for 50,000 steps.
py::dict steps_dict(const std::vector<PlanStep>& steps) {
  std::vector<int64_t> layer, phase, bytes, live;
  for (const PlanStep& s : steps) {
    layer.push_back(s.layer);
    phase.push_back(s.phase == Phase::kForward ? 0 : 1);
    bytes.push_back(s.bytes_in_use);
    live.push_back(s.live_tensors);
  }
  py::dict d;
  d["layer"] = to_array(layer);
  d["phase"] = to_array(phase);
  d["bytes_in_use"] = to_array(bytes);
  d["live_tensors"] = to_array(live);
  return d;
}

}  // namespace

py::dict plan_dict(const Graph& g, const MemoryPlan& p) {
  py::dict d;
  d["policy"] = p.policy;
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
  std::vector<int64_t> layer, role, index, offset, size, first, last;
  for (const BlockRecord& b : p.blocks) {
    layer.push_back(b.tensor.layer);
    role.push_back(static_cast<int64_t>(b.tensor.role));
    index.push_back(b.tensor.index);
    offset.push_back(b.offset_bytes);
    size.push_back(b.size_bytes);
    first.push_back(b.first_step);
    last.push_back(b.last_step);
  }
  py::dict blocks;
  blocks["layer"] = to_array(layer);
  blocks["role"] = to_array(role);
  blocks["index"] = to_array(index);
  blocks["offset_bytes"] = to_array(offset);
  blocks["size_bytes"] = to_array(size);
  blocks["first_step"] = to_array(first);
  blocks["last_step"] = to_array(last);
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

void register_plan(py::module_& m) {
  m.def(
      "plan_memory",
      [](const Graph& g, int64_t batch, const std::string& policy, const std::string& device,
         int64_t budget_bytes) {
        if (device != "cpu" && device != "cuda")
          throw ArgumentError("unknown device '" + device + "'; use 'cpu' or 'cuda'");
        // Note [Planning for CUDA]: until the CUDA kernels land, a CUDA plan uses the CPU
        // backend's workspace and saved-state sizes; tensor sizes are identical.
        auto backend = make_cpu_backend();
        MemoryPlan p;
        {
          py::gil_scoped_release release;
          p = plan_memory(g, *backend, batch, policy, budget_bytes);
        }
        return plan_dict(g, p);
      },
      py::arg("graph"), py::arg("batch_size"), py::arg("policy"), py::arg("device"),
      py::arg("budget_bytes"));
}

}  // namespace sn::python
