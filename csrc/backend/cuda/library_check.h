// The cuDNN and cuBLAS members of the checked-call family of cuda_check.h: a failed call
// throws sn::CudaError naming the statement, the library's status, file and line; a failed
// allocation inside the library throws sn::OutOfMemoryError instead, like any other
// request that does not fit.
//
// Usage:
//   SN_CUDNN_CHECK(cudnnSetStream(handle, stream));
//   SN_CUBLAS_CHECK(cublasSgemm(handle, ...));
#pragma once

#include <cublas_v2.h>
#include <cudnn.h>

#include <string>

#include "backend/cuda/cuda_check.h"
#include "core/errors.h"

namespace sn::cuda {

inline const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS:
      return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR:
      return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR:
      return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR:
      return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "unknown cuBLAS status";
}

// cuDNN 9 reports a failed allocation as one of two internal-error codes.
inline bool cudnn_out_of_memory(cudnnStatus_t s) {
  return s == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
         s == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
}

[[noreturn]] inline void throw_library_error(const char* library, const std::string& status,
                                             bool out_of_memory, const char* stmt, const char* file,
                                             int line) {
  const std::string what = std::string(stmt) + " failed: " + library + " " + status + " at " +
                           file + ":" + std::to_string(line);
  if (out_of_memory) throw OutOfMemoryError(what);
  throw CudaError(what);
}

}  // namespace sn::cuda

#define SN_CUDNN_CHECK(stmt)                                                              \
  do {                                                                                    \
    cudnnStatus_t sn_status_ = (stmt);                                                    \
    if (sn_status_ != CUDNN_STATUS_SUCCESS)                                               \
      ::sn::cuda::throw_library_error("cuDNN", cudnnGetErrorString(sn_status_),           \
                                      ::sn::cuda::cudnn_out_of_memory(sn_status_), #stmt, \
                                      __FILE__, __LINE__);                                \
  } while (0)

#define SN_CUBLAS_CHECK(stmt)                                                                    \
  do {                                                                                           \
    cublasStatus_t sn_status_ = (stmt);                                                          \
    if (sn_status_ != CUBLAS_STATUS_SUCCESS)                                                     \
      ::sn::cuda::throw_library_error("cuBLAS", ::sn::cuda::cublas_status_name(sn_status_),      \
                                      sn_status_ == CUBLAS_STATUS_ALLOC_FAILED, #stmt, __FILE__, \
                                      __LINE__);                                                 \
  } while (0)

// A kernel launch: checks the launch configuration (cudaGetLastError), not the kernel's
// completion, which surfaces at the next synchronizing call.
#define SN_CUDA_CHECK_LAUNCH() SN_CUDA_CHECK(cudaGetLastError())
