// What the CUDA backend can see at run time.
#pragma once

#include <string>

namespace sn::cuda {

// Number of usable CUDA devices; 0 (with the driver's reason) when there are none.
int device_count(std::string* reason);

// Versions of the libraries this build links, as "major.minor.patch": the CUDA runtime,
// cuDNN and cuBLAS. None of them needs a device (build_info() reports them on a machine
// without a GPU too); a library that cannot say gives "unknown".
struct LibraryVersions {
  std::string cuda_runtime, cudnn, cublas;
};
LibraryVersions library_versions();

}  // namespace sn::cuda
