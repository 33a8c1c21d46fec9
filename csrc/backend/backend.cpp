// What every backend shares: host memory as "device" memory (the CPU backend), and the
// one place a device name becomes a backend.
//
// Note [Device memory]
// The backend owns the memory its kernels run on. Session asks it for the arena (one
// block: on the CPU only as much as the plan reaches, Note [The arena on the CPU]; on a
// GPU one cudaMalloc at the budget) and for the host slab offloaded tensors live in
// (pinned on a GPU, so the copy streams run without staging). Everything the host hands
// in or reads back goes through upload/download: the batch and labels, the BN statistics
// a failed step restores, the logits, gradients for analysis, and the state a user reads
// or writes (NumPy views only where host_addressable()). A loss or check the host needs
// in the middle of a pass would stall a device's queue, hence Note [Deferred results].
#include "backend/backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "core/errors.h"
#include "memory/arena_pool.h"
#ifdef SN_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace sn {

namespace {

void* aligned_host(int64_t bytes, const char* what) {
  const auto align = static_cast<size_t>(ArenaPool::kAlignmentBytes);
  const auto size =
      static_cast<size_t>((std::max<int64_t>(bytes, 1) + ArenaPool::kAlignmentBytes - 1) /
                          ArenaPool::kAlignmentBytes * ArenaPool::kAlignmentBytes);
  void* p = std::aligned_alloc(align, size);
  if (p == nullptr)
    throw OutOfMemoryError("cannot reserve " + std::to_string(bytes) +
                           " bytes of host memory for " + what + "; use a smaller batch or budget");
  return p;
}

}  // namespace

void* Backend::allocate_device(int64_t bytes) const { return aligned_host(bytes, "the arena"); }
void Backend::free_device(void* p) const { std::free(p); }
void* Backend::allocate_host(int64_t bytes) const {
  return aligned_host(bytes, "the host slab of offloaded tensors");
}
void Backend::free_host(void* p) const { std::free(p); }

void Backend::upload(void* dst, const void* src, int64_t bytes) const {
  if (bytes > 0 && dst != src) std::memcpy(dst, src, static_cast<size_t>(bytes));
}

void Backend::download(void* dst, const void* src, int64_t bytes) const {
  if (bytes > 0 && dst != src) std::memcpy(dst, src, static_cast<size_t>(bytes));
}

void Backend::fill_nan(float* data, int64_t count) const {
  std::fill(data, data + count, std::numeric_limits<float>::quiet_NaN());
}

std::unique_ptr<Backend> make_backend(const std::string& device) {
  if (device == "cpu") return make_cpu_backend();
  int index = -1;
  if (device == "cuda") {
    index = 0;
  } else if (device.rfind("cuda:", 0) == 0 && device.size() > 5 && device.size() < 9 &&
             device.find_first_not_of("0123456789", 5) == std::string::npos) {
    index = std::stoi(device.substr(5));
  } else {
    throw ArgumentError("unknown device '" + device + "'; use 'cpu', 'cuda' or 'cuda:N'");
  }
#ifdef SN_WITH_CUDA
  return make_cuda_backend(index);
#else
  (void)index;
  throw ArgumentError("device '" + device +
                      "' is not available: this build has no CUDA backend; available: cpu");
#endif
}

}  // namespace sn
