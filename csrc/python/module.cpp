// The one gateway to the extension: `superneurons._C`. Each area registers itself from
// its own file; only superneurons/_ext.py imports this module.
#include <pybind11/pybind11.h>

#include "python/register.h"

PYBIND11_MODULE(_C, m) {
  m.doc() = "superneurons C++ core (private; use the superneurons package)";
  sn::python::register_errors(m);
  sn::python::register_build_info(m);
  sn::python::register_graph(m);
  sn::python::register_memory(m);
  sn::python::register_plan(m);
  sn::python::register_session(m);
  sn::python::register_cuda(m);
  sn::python::register_dlpack(m);
  sn::python::register_compress(m);
  sn::python::register_threads(m);
}
