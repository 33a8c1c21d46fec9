// The CPU kernels' thread count (backend/cpu/kernels.h): superneurons.set_num_threads.
#include <pybind11/pybind11.h>

#include "backend/cpu/kernels.h"
#include "python/register.h"

namespace py = pybind11;

namespace sn::python {

void register_threads(py::module_& m) {
  m.def("set_num_threads", &cpu::set_num_threads, py::arg("threads"),
        "Threads for the CPU kernels (an integer >= 1); ValueError otherwise.");
  m.def("get_num_threads", &cpu::num_threads,
        "Threads the CPU kernels use: set_num_threads, else SUPERNEURONS_NUM_THREADS, else the "
        "machine's cores; ValueError when SUPERNEURONS_NUM_THREADS is not an integer >= 1.");
  m.def("default_num_threads", &cpu::default_num_threads,
        "The machine's cores available to this process.");
}

}  // namespace sn::python
