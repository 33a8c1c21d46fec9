// The allocator interface (allocate / free / stats) that pools implement.
//
// Usage (sn::ArenaPool in memory/arena_pool.h is the implementation):
//   void* p = allocator.allocate(4096);   // nullptr when it does not fit
//   allocator.free(p);
//   auto s = allocator.stats();           // in_use_bytes, peak_bytes, ...
//
// Allocators never throw on a request that does not fit: they return nullptr, and the
// executor, which knows the step and the layer, raises OutOfMemoryError with context.
#pragma once

#include <cstdint>

namespace sn {

struct AllocatorStats {
  int64_t capacity_bytes = 0;  // 0: unlimited
  int64_t in_use_bytes = 0;
  int64_t peak_bytes = 0;
  int64_t num_allocs = 0;    // live allocations
  int64_t total_allocs = 0;  // allocate() calls that succeeded, ever
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(int64_t size_bytes) = 0;  // nullptr when it does not fit
  virtual void free(void* ptr) = 0;
  virtual AllocatorStats stats() const = 0;
  virtual int64_t largest_free_bytes() const = 0;
};

}  // namespace sn
