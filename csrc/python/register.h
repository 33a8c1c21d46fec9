#pragma once

#include <pybind11/pybind11.h>

namespace sn::python {
void register_errors(pybind11::module_& m);
void register_build_info(pybind11::module_& m);
void register_graph(pybind11::module_& m);
void register_session(pybind11::module_& m);
}  // namespace sn::python
