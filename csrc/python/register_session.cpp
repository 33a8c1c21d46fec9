#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "core/errors.h"
#include "exec/session.h"
#include "python/register.h"

namespace py = pybind11;

namespace sn::python {
namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using LabelArray = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;

// Checks a batch handed over from Python against the compiled input shape.
int64_t batch_rows(const Session& s, const FloatArray& x, const LabelArray& y) {
  const Dims& d = s.graph().layer(s.graph().input_layer()).out;
  if (x.ndim() != 4 || x.shape(1) != d.c || x.shape(2) != d.h || x.shape(3) != d.w)
    throw ArgumentError("x must have shape (n, " + std::to_string(d.c) + ", " +
                        std::to_string(d.h) + ", " + std::to_string(d.w) + "), got ndim " +
                        std::to_string(x.ndim()));
  if (y.ndim() != 1 || y.shape(0) != x.shape(0))
    throw ArgumentError("labels must have shape (n,) with n = " + std::to_string(x.shape(0)));
  return static_cast<int64_t>(x.shape(0));
}

}  // namespace

void register_session(py::module_& m) {
  py::class_<Session>(m, "Session")
      .def(py::init([](const Graph& g, int64_t batch, const std::string& policy,
                       const std::string& device, int64_t budget_bytes, uint64_t seed, bool poison,
                       int copy_delay_us, int64_t host_budget_bytes) {
             SessionOptions o;
             o.batch_size = batch;
             o.policy = policy;
             o.device = device;
             o.budget_bytes = budget_bytes;
             o.seed = seed;
             o.poison = poison;
             o.copy_delay_us = copy_delay_us;
             o.host_budget_bytes = host_budget_bytes;
             return std::make_unique<Session>(g, o);
           }),
           py::arg("graph"), py::arg("batch_size"), py::arg("policy"), py::arg("device"),
           py::arg("budget_bytes"), py::arg("seed"), py::arg("poison") = false,
           py::arg("copy_delay_us") = 0, py::arg("host_budget_bytes") = 0)
      .def(
          "train_step",
          [](Session& s, const FloatArray& x, const LabelArray& y, float lr, float momentum,
             float weight_decay) {
            int64_t n = batch_rows(s, x, y);
            StepResult r;
            {
              py::gil_scoped_release release;  // the loader's thread keeps preparing batches
              r = s.train_step(x.data(), y.data(), n, SgdConfig{lr, momentum, weight_decay});
            }
            return py::make_tuple(r.loss, r.correct);
          },
          py::arg("x"), py::arg("labels"), py::arg("lr"), py::arg("momentum"),
          py::arg("weight_decay"))
      .def(
          "evaluate",
          [](Session& s, const FloatArray& x, const LabelArray& y) {
            int64_t n = batch_rows(s, x, y);
            py::array_t<float> logits({n, s.num_classes()});
            StepResult r;
            {
              py::gil_scoped_release release;
              r = s.evaluate(x.data(), y.data(), n, logits.mutable_data());
            }
            return py::make_tuple(r.loss, r.correct, logits);
          },
          py::arg("x"), py::arg("labels"))
      .def(
          "compute_gradients",
          [](Session& s, const FloatArray& x, const LabelArray& y) {
            int64_t n = batch_rows(s, x, y);
            py::array_t<float> dx(std::vector<py::ssize_t>(x.shape(), x.shape() + 4));
            double loss;
            {
              py::gil_scoped_release release;
              loss = s.compute_gradients(x.data(), y.data(), n, dx.mutable_data());
            }
            return py::make_tuple(loss, dx);
          },
          py::arg("x"), py::arg("labels"))
      .def("state",
           [](py::object self) {
             // (name, kind, shape, device address, view): the view is a zero-copy NumPy
             // array that keeps the session alive, or None where the host cannot address
             // the device's memory (read_state / write_state copy there).
             const Session& s = self.cast<const Session&>();
             py::list out;
             for (const StateBuffer& b : s.state()) {
               py::object view = py::none();
               if (s.host_addressable()) view = py::array_t<float>(b.shape, b.data, self);
               out.append(py::make_tuple(b.name, b.kind, b.shape,
                                         reinterpret_cast<uintptr_t>(b.data), view));
             }
             return out;
           })
      .def_property_readonly("host_addressable", &Session::host_addressable)
      .def(
          "read_state",
          [](const Session& s, size_t index) {
            std::vector<float> v;
            {
              py::gil_scoped_release release;
              v = s.read_state(index);
            }
            py::array_t<float> a(s.state().at(index).shape);
            std::copy(v.begin(), v.end(), a.mutable_data());
            return a;
          },
          py::arg("index"))
      .def(
          "write_state",
          [](Session& s, size_t index, const FloatArray& values) {
            py::gil_scoped_release release;
            s.write_state(index, values.data(), static_cast<int64_t>(values.size()));
          },
          py::arg("index"), py::arg("values"))
      .def("gradients",
           [](const Session& s) {
             py::list out;  // copies: parameter gradients live only inside a step
             for (const GradientBuffer& b : s.gradients()) {
               py::array_t<float> a(b.shape);
               std::copy(b.data.begin(), b.data.end(), a.mutable_data());
               out.append(py::make_tuple(b.name, a));
             }
             return out;
           })
      .def("plan",
           [](const Session& s) {
             return plan_dict(s.graph(), std::make_shared<const MemoryPlan>(s.plan()));
           })
      .def("memory_trace",
           [](const Session& s) {
             py::dict d;
             d["setup_bytes"] = s.setup_trace();
             d["train"] = s.memory_trace();
             d["eval"] = s.eval_trace();
             return d;
           })
      .def_property("iteration", &Session::iteration, &Session::set_iteration)
      .def_property_readonly("num_classes", &Session::num_classes)
      .def_property_readonly("route", &Session::route)
      .def("memory_stats", [](const Session& s) { return pool_stats(s.pool()); })
      .def("host_memory_stats",
           [](const Session& s) {
             py::dict d;
             const AllocatorStats st = s.host_memory_stats();
             d["capacity_bytes"] = st.capacity_bytes;
             d["in_use_bytes"] = st.in_use_bytes;
             d["peak_bytes"] = st.peak_bytes;
             return d;
           })
      .def("set_profiling", &Session::set_profiling, py::arg("on"))
      .def("profile",
           [](const Session& s) {
             py::list rows;
             for (const KernelTime& t : s.profile()) {
               py::dict d;
               d["kind"] = std::string(kind_name(t.kind));
               d["phase"] = t.phase;
               d["calls"] = t.calls;
               d["ms"] = t.ms;
               rows.append(d);
             }
             return rows;
           })
      .def("copy_stats", [](const Session& s) {
        py::dict d;
        const CopyStats st = s.copy_stats();
        d["bytes"] = st.bytes;
        d["copy_ms"] = st.copy_ms;
        d["stall_ms"] = st.stall_ms;
        return d;
      });
}

}  // namespace sn::python
