// One checked-call macro family for the CUDA runtime (cuDNN, cuBLAS and cuFFT join it when
// their kernels land): a failed call throws sn::CudaError naming the statement, file and line.
//
// Usage:
//   SN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream));
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace sn {

class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace sn

#define SN_CUDA_CHECK(stmt)                                                                     \
  do {                                                                                          \
    cudaError_t sn_status_ = (stmt);                                                            \
    if (sn_status_ != cudaSuccess)                                                              \
      throw ::sn::CudaError(std::string(#stmt) + " failed: " + cudaGetErrorString(sn_status_) + \
                            " at " + __FILE__ + ":" + std::to_string(__LINE__));                \
  } while (0)
