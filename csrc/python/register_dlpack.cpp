// A float32 buffer of a session's state as a DLPack capsule (Note [DLPack export]).
#include <Python.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <vector>

#include "core/errors.h"
#include "python/register.h"

namespace py = pybind11;

// Note [DLPack export]
// Session.parameters() on a GPU hands out CuPy arrays that alias the session's arena,
// made by cupy.from_dlpack, and the same exporter makes zero-copy NumPy views of host
// state (numpy.from_dlpack), which is how the CPU tests check it. The structs below are
// the DLPack ABI, written from the specification (dmlc/dlpack, include/dlpack/dlpack.h;
// Apache-2.0) rather than taken from its header, which is not on PyPI. Two capsules:
// the versioned one (DLPack 1.0, "dltensor_versioned") for consumers that ask for it
// through max_version, which also carries the flags (writable: NumPy makes unversioned
// imports read-only), and the unversioned "dltensor" every older consumer accepts. The
// protocol: a consumer that takes the tensor renames the capsule "used_..." and calls
// the deleter when its array dies; a capsule nobody took is freed by its destructor. The managed
// tensor holds a strong reference to the owner (the session's core), so the arena outlives every
// view; the deleter takes the GIL to drop it, since a consumer may call it from any thread.
namespace {

struct DLDevice {
  int32_t device_type;  // kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3
  int32_t device_id;
};

struct DLDataType {
  uint8_t code;  // kDLFloat = 2
  uint8_t bits;
  uint16_t lanes;
};

struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements
  uint64_t byte_offset;
};

struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

struct DLPackVersion {
  uint32_t major;
  uint32_t minor;
};

struct DLManagedTensorVersioned {
  DLPackVersion version;
  void* manager_ctx;
  void (*deleter)(DLManagedTensorVersioned* self);
  uint64_t flags;  // bit 0: read only, bit 1: is a copy
  DLTensor dl_tensor;
};

// What one exported tensor owns: both headers (one is used), its shape and strides, and
// a reference to the owner.
struct Exported {
  DLManagedTensor legacy{};
  DLManagedTensorVersioned versioned{};
  std::vector<int64_t> shape, strides;
  PyObject* owner = nullptr;
};

void release(Exported* e) {
  if (Py_IsInitialized()) {
    const PyGILState_STATE gil = PyGILState_Ensure();
    Py_XDECREF(e->owner);
    PyGILState_Release(gil);
  }
  delete e;
}

void delete_legacy(DLManagedTensor* self) { release(static_cast<Exported*>(self->manager_ctx)); }

void delete_versioned(DLManagedTensorVersioned* self) {
  release(static_cast<Exported*>(self->manager_ctx));
}

template <typename Managed>
void capsule_destructor(PyObject* capsule, const char* name, const char* used_name) {
  if (PyCapsule_IsValid(capsule, used_name)) return;  // a consumer owns it now
  auto* managed = static_cast<Managed*>(PyCapsule_GetPointer(capsule, name));
  if (managed == nullptr) {
    PyErr_Clear();  // not ours to free
    return;
  }
  managed->deleter(managed);
}

void legacy_destructor(PyObject* capsule) {
  capsule_destructor<DLManagedTensor>(capsule, "dltensor", "used_dltensor");
}

void versioned_destructor(PyObject* capsule) {
  capsule_destructor<DLManagedTensorVersioned>(capsule, "dltensor_versioned",
                                               "used_dltensor_versioned");
}

}  // namespace

namespace sn::python {

void register_dlpack(py::module_& m) {
  m.def(
      "_dlpack_capsule",
      [](uintptr_t address, const std::vector<int64_t>& shape, int device_type, int device_id,
         py::object owner, bool versioned) {
        if (device_type != 1 && device_type != 2 && device_type != 3)
          throw ArgumentError("DLPack device type must be 1 (CPU), 2 (CUDA) or 3 (pinned), got " +
                              std::to_string(device_type));
        if (device_id < 0)
          throw ArgumentError("DLPack device id must be >= 0, got " + std::to_string(device_id));
        for (int64_t d : shape)
          if (d < 0) throw ArgumentError("DLPack shape has a negative dimension");
        auto* e = new Exported();
        e->shape = shape;
        e->strides.assign(shape.size(), 1);
        for (size_t i = shape.size(); i-- > 1;) e->strides[i - 1] = e->strides[i] * shape[i];
        e->owner = owner.release().ptr();  // a strong reference, dropped by the deleter
        DLTensor t{};
        t.data = reinterpret_cast<void*>(address);
        t.device = DLDevice{device_type, device_id};
        t.ndim = static_cast<int32_t>(shape.size());
        t.dtype = DLDataType{2, 32, 1};
        t.shape = e->shape.data();
        t.strides = e->strides.data();
        t.byte_offset = 0;
        PyObject* capsule = nullptr;
        if (versioned) {
          e->versioned = DLManagedTensorVersioned{DLPackVersion{1, 0}, e, delete_versioned, 0, t};
          capsule = PyCapsule_New(&e->versioned, "dltensor_versioned", versioned_destructor);
        } else {
          e->legacy = DLManagedTensor{t, e, delete_legacy};
          capsule = PyCapsule_New(&e->legacy, "dltensor", legacy_destructor);
        }
        if (capsule == nullptr) {
          release(e);
          throw py::error_already_set();
        }
        return py::reinterpret_steal<py::object>(capsule);
      },
      py::arg("address"), py::arg("shape"), py::arg("device_type"), py::arg("device_id"),
      py::arg("owner"), py::arg("versioned"),
      "A DLPack capsule (DLPack 1.0 when `versioned`) over float32 memory at `address` that keeps "
      "`owner` alive "
      "(Note [DLPack export]).");
}

}  // namespace sn::python
