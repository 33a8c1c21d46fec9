// CUDA-only entry points; absent from CPU-only builds (the Python side checks
// build_info()["cuda"] before using them).
#include <pybind11/pybind11.h>

#include "python/register.h"
#ifdef SN_WITH_CUDA
#include "backend/cuda/alloc_bench.h"
#endif

namespace py = pybind11;

namespace sn::python {

void register_cuda(py::module_& m) {
#ifdef SN_WITH_CUDA
  m.def(
      "_bench_alloc_cuda",
      [](int64_t iterations, int64_t max_live, int64_t max_bytes, uint64_t seed) {
        cuda::AllocBenchResult r;
        {
          py::gil_scoped_release release;
          r = cuda::bench_alloc(iterations, max_live, max_bytes, seed);
        }
        py::dict d;
        d["pool_ns_per_op"] = r.pool_ns_per_op;
        d["cuda_ns_per_op"] = r.cuda_ns_per_op;
        d["ops"] = r.ops;
        return d;
      },
      py::arg("iterations"), py::arg("max_live"), py::arg("max_bytes"), py::arg("seed"));
#else
  (void)m;
#endif
}

}  // namespace sn::python
