#include <pybind11/pybind11.h>

#include "core/errors.h"
#ifdef SN_WITH_CUDA
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device.h"
#endif
#include "python/register.h"

namespace py = pybind11;

namespace sn::python {

void register_errors(py::module_& m) {
  // GraphError and ArgumentError become ValueError subclasses, OutOfMemoryError a
  // MemoryError subclass; the Python package re-exports them.
  static py::exception<GraphError> graph_error(m, "GraphError", PyExc_ValueError);
  static py::exception<OutOfMemoryError> oom_error(m, "OutOfMemoryError", PyExc_MemoryError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const GraphError& e) {
      py::set_error(graph_error, e.what());
    } catch (const OutOfMemoryError& e) {
      py::set_error(oom_error, e.what());
    } catch (const ArgumentError& e) {
      py::set_error(PyExc_ValueError, e.what());
    } catch (const NumericalError& e) {
      py::set_error(PyExc_FloatingPointError, e.what());
    } catch (const InternalError& e) {
      py::set_error(PyExc_RuntimeError, e.what());
    }
#ifdef SN_WITH_CUDA
    catch (const CudaError& e) {
      py::set_error(PyExc_RuntimeError, e.what());
    }
#endif
  });
}

void register_build_info(py::module_& m) {
  py::dict info;
  info["version"] = SN_VERSION;
  info["cpu"] = true;
  info["blas"] = "OpenBLAS (scipy-openblas32)";
#ifdef SN_WITH_CUDA
  info["cuda"] = true;
  info["cuda_reason"] = SN_CUDA_REASON;
  const cuda::LibraryVersions libs = cuda::library_versions();
  info["cuda_runtime"] = libs.cuda_runtime;
  info["cudnn"] = libs.cudnn;
  info["cublas"] = libs.cublas;
  m.def("cuda_device_count", [] {
    std::string reason;
    int n = cuda::device_count(&reason);
    return py::make_tuple(n, reason);
  });
#else
  info["cuda"] = false;
  info["cuda_reason"] = SN_CUDA_REASON;
  info["cuda_runtime"] = py::none();
  info["cudnn"] = py::none();
  info["cublas"] = py::none();
  m.def("cuda_device_count", [] { return py::make_tuple(0, std::string(SN_CUDA_REASON)); });
#endif
  info["compiler"] = SN_COMPILER;
  info["build_type"] = SN_BUILD_TYPE;
  m.attr("_build_info") = info;
}

}  // namespace sn::python
