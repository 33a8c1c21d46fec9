#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device.h"

namespace sn::cuda {

int device_count(std::string* reason) {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    // No driver or no device is an answer here, not an error: the caller falls back to CPU.
    if (reason) *reason = cudaGetErrorString(status);
    cudaGetLastError();  // clear the sticky error state
    return 0;
  }
  if (reason) *reason = count > 0 ? "ok" : "no CUDA device";
  return count;
}

}  // namespace sn::cuda
