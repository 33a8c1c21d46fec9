// The CUDA backend: the layer table of backend.h on one GPU.
//
// Usage:
//   if (sn::cuda::device_count(nullptr) > 0) {
//     std::unique_ptr<sn::Backend> be = sn::make_cuda_backend(/*device=*/0);
//     be->forward(graph, layer, io, /*training=*/true);  // io holds device pointers
//     sn::cuda_synchronize(*be);                          // before the host reads results
//   }
#pragma once

#include <cuda_runtime.h>

#include <memory>

#include "backend/backend.h"

namespace sn {

// Throws ArgumentError for a device index that is not visible, CudaError when the driver,
// cuDNN or cuBLAS cannot start on it.
std::unique_ptr<Backend> make_cuda_backend(int device);

// Waits for every kernel the backend (made by make_cuda_backend) has queued; ArgumentError
// for any other backend.
void cuda_synchronize(const Backend& backend);

// The one stream every kernel of that backend runs on (Note [Streams and host reads] in
// cuda_backend.cpp), for a copy engine that orders its copies against the kernels with
// events; ArgumentError for any other backend.
cudaStream_t cuda_stream(const Backend& backend);

}  // namespace sn
