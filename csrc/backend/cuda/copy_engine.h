// The CUDA copy engine (exec/copy_engine.h): copies on a device-to-host and a host-to-
// device stream, each marking a CUDA event the plan names; see Note [CUDA copy streams].
//
// Usage:
//   std::unique_ptr<sn::CopyEngine> e = backend.make_copy_engine(plan.num_events, 0, 0);
//   e->submit(event, sn::CopyDirection::kDeviceToHost, pinned_dst, device_src, bytes);
//   e->wait(event);  // the compute stream waits; the host goes on
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>

#include "exec/copy_engine.h"

namespace sn {

// Copies ordered against `compute` (the stream every kernel of the backend runs on), on
// device `device`. Throws CudaError when the streams or events cannot be made.
std::unique_ptr<CopyEngine> make_cuda_copy_engine(int device, cudaStream_t compute, int num_events);

}  // namespace sn
