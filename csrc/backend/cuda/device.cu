#include <cublas_v2.h>
#include <cudnn.h>

#include <fstream>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device.h"

namespace sn::cuda {

int device_count(std::string* reason) {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    // No driver or no device is an answer here, not an error: the caller falls back to CPU.
    // Without a driver the runtime says "driver version is insufficient": say what it means.
    const bool no_driver = status == cudaErrorInsufficientDriver &&
                           !std::ifstream("/proc/driver/nvidia/version").good();
    if (reason)
      *reason = no_driver                     ? "no NVIDIA GPU or driver was found on this machine"
                : status == cudaErrorNoDevice ? "no CUDA-capable device is visible"
                                              : cudaGetErrorString(status);
    cudaGetLastError();  // clear the sticky error state
    return 0;
  }
  if (reason) *reason = count > 0 ? "ok" : "no CUDA device";
  return count;
}

LibraryVersions library_versions() {
  LibraryVersions v;
  int runtime = 0;
  v.cuda_runtime = cudaRuntimeGetVersion(&runtime) == cudaSuccess
                       ? std::to_string(runtime / 1000) + "." + std::to_string(runtime % 1000 / 10)
                       : "unknown";
  cudaGetLastError();
  // cudnnGetVersion: major * 10000 + minor * 100 + patch since cuDNN 9.
  const size_t cudnn = cudnnGetVersion();
  v.cudnn = std::to_string(cudnn / 10000) + "." + std::to_string(cudnn % 10000 / 100) + "." +
            std::to_string(cudnn % 100);
  int major = 0, minor = 0, patch = 0;
  if (cublasGetProperty(MAJOR_VERSION, &major) == CUBLAS_STATUS_SUCCESS &&
      cublasGetProperty(MINOR_VERSION, &minor) == CUBLAS_STATUS_SUCCESS &&
      cublasGetProperty(PATCH_LEVEL, &patch) == CUBLAS_STATUS_SUCCESS)
    v.cublas = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  else
    v.cublas = "unknown";
  return v;
}

}  // namespace sn::cuda
