#include <algorithm>
#include <cstdlib>
#include <limits>

#include "core/errors.h"
#include "memory/allocator.h"

namespace sn {
namespace {
constexpr int64_t kAlignmentBytes = 64;  // bytes: one cache line
}

HostAllocator::HostAllocator(int64_t budget_bytes) {
  if (budget_bytes < 0)
    throw ArgumentError("budget_bytes must be >= 0 (0 = unlimited), got " +
                        std::to_string(budget_bytes));
  stats_.capacity_bytes = budget_bytes;
}

HostAllocator::~HostAllocator() {
  for (auto& kv : sizes_bytes_) std::free(kv.first);
}

int64_t HostAllocator::largest_free_bytes() const {
  if (stats_.capacity_bytes == 0) return std::numeric_limits<int64_t>::max();
  return stats_.capacity_bytes - stats_.in_use_bytes;
}

void* HostAllocator::allocate(int64_t size_bytes) {
  SN_ASSERT(size_bytes >= 0, "negative allocation");
  int64_t rounded = std::max<int64_t>(
      kAlignmentBytes, (size_bytes + kAlignmentBytes - 1) / kAlignmentBytes * kAlignmentBytes);
  if (stats_.capacity_bytes > 0 && stats_.in_use_bytes + rounded > stats_.capacity_bytes)
    return nullptr;
  void* p = std::aligned_alloc(static_cast<size_t>(kAlignmentBytes), static_cast<size_t>(rounded));
  if (p == nullptr) return nullptr;
  sizes_bytes_[p] = rounded;
  stats_.in_use_bytes += rounded;
  stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.in_use_bytes);
  ++stats_.num_allocs;
  ++stats_.total_allocs;
  return p;
}

void HostAllocator::free(void* ptr) {
  if (ptr == nullptr) return;
  auto it = sizes_bytes_.find(ptr);
  SN_ASSERT(it != sizes_bytes_.end(), "free of a pointer this allocator does not own");
  stats_.in_use_bytes -= it->second;
  --stats_.num_allocs;
  sizes_bytes_.erase(it);
  std::free(ptr);
}

}  // namespace sn
