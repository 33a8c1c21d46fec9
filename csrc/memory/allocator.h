// The allocator interface every memory policy allocates through, and the baseline
// host allocator.
//
// Usage:
//   sn::HostAllocator pool(/*budget_bytes=*/256 << 20);
//   void* p = pool.allocate(4096);     // nullptr when the budget would be exceeded
//   pool.free(p);
//   auto s = pool.stats();             // in_use_bytes, peak_bytes, ...
//
// Allocators never throw on a request that does not fit: they return nullptr, and the
// executor, which knows the step and the layer, raises OutOfMemoryError with context.
#pragma once

#include <cstdint>
#include <unordered_map>

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

// Policy `none`: one system allocation per request, counted against an optional budget.
// Every block is 64-byte aligned (one cache line, enough for AVX-512 loads).
class HostAllocator final : public Allocator {
 public:
  explicit HostAllocator(int64_t budget_bytes);
  ~HostAllocator() override;
  HostAllocator(const HostAllocator&) = delete;
  HostAllocator& operator=(const HostAllocator&) = delete;

  void* allocate(int64_t size_bytes) override;
  void free(void* ptr) override;
  AllocatorStats stats() const override { return stats_; }
  int64_t largest_free_bytes() const override;

 private:
  AllocatorStats stats_;
  std::unordered_map<void*, int64_t> sizes_bytes_;
};

}  // namespace sn
