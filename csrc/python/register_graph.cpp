#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "graph/graph.h"
#include "python/register.h"

namespace py = pybind11;

namespace sn::python {

void register_graph(py::module_& m) {
  py::class_<Graph>(m, "Graph")
      .def(py::init<>())
      .def("add", &Graph::add, py::arg("name"), py::arg("kind"), py::arg("inputs"),
           py::arg("attrs"))
      .def_static(
          "from_specs",
          [](const std::vector<
              std::tuple<std::string, std::string, std::vector<std::string>, AttrMap>>& specs) {
            std::vector<LayerSpec> v;
            for (const auto& [name, kind, inputs, attrs] : specs)
              v.push_back({name, kind, inputs, attrs});
            return Graph::from_specs(v);
          },
          py::arg("specs"))
      .def("check_complete", &Graph::check_complete)
      .def("__len__", &Graph::size)
      .def("shape",
           [](const Graph& g, int i) {
             const Dims& d = g.layer(i).out;
             return py::make_tuple(d.c, d.h, d.w);
           })
      .def("kind", [](const Graph& g, int i) { return std::string(kind_name(g.layer(i).kind)); })
      .def("name", [](const Graph& g, int i) { return g.layer(i).name; })
      .def("param_shapes",
           [](const Graph& g, int i) {
             py::list out;
             for (const auto& p : param_shapes(g, i))
               out.append(py::make_tuple(p.role, p.shape, p.trainable));
             return out;
           })
      .def("route", [](const Graph& g) { return forward_route(g); });
}

}  // namespace sn::python
