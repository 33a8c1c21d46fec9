// The device memory pool: one arena per device, reserved once at the budget size, carved
// into blocks by best fit with splitting and coalescing.
//
// Usage:
//   sn::ArenaPool pool(/*capacity_bytes=*/1 << 30, /*base=*/device_ptr);  // or nullptr
//   int64_t off = pool.allocate_offset(4096);       // kNoSpace when nothing fits
//   void* p = pool.allocate(4096);                  // base + offset, or nullptr
//   pool.free(p);
//   pool.free_after(p2, [&] { return event_done(e); });   // stream-ordered free
//
// Note [Virtual arenas]
// With base == nullptr the pool only manages offsets: the planner runs the very same
// allocation sequence through a virtual pool that the executor later runs through the
// real one, so the planned memory trace equals the measured one byte for byte.
//
// Note [Deferred frees]
// A block still read or written by an in-flight copy or kernel cannot be reused yet.
// free_after() parks it with a completion predicate (an event query); the block counts as
// in use until collect() sees the predicate true. allocate() collects before giving up.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "memory/allocator.h"

namespace sn {

class ArenaPool final : public Allocator {
 public:
  static constexpr int64_t kAlignmentBytes = 256;  // bytes: every block starts and ends here
  static constexpr int64_t kNoSpace = -1;          // allocate_offset(): nothing fits

  ArenaPool(int64_t capacity_bytes, void* base);

  // Rounds size_bytes up to a multiple of kAlignmentBytes (0 becomes one unit).
  static int64_t rounded(int64_t size_bytes);

  int64_t allocate_offset(int64_t size_bytes);  // O(log n)
  // The top end of the highest free block that fits (first fit from the top), O(free
  // blocks): large blocks placed from the top and small ones best fit from the bottom
  // keep the small ones from splitting the space the large ones need.
  int64_t allocate_offset_high(int64_t size_bytes);
  void free_offset(int64_t offset);  // O(log n); coalesces with free neighbours
  void free_offset_after(int64_t offset, std::function<bool()> done);
  int collect();  // frees parked blocks that are done; count

  // Allocator interface over base + offset; allocate() returns nullptr when nothing fits.
  void* allocate(int64_t size_bytes) override;
  void free(void* ptr) override;
  void free_after(void* ptr, std::function<bool()> done);
  AllocatorStats stats() const override;
  int64_t largest_free_bytes() const override;

  int64_t capacity_bytes() const { return capacity_bytes_; }
  int64_t free_bytes() const { return capacity_bytes_ - in_use_bytes_; }
  // 1 - largest free block / all free bytes: 0 when the free space is one block.
  double fragmentation() const;
  int64_t high_water_bytes() const { return high_water_bytes_; }  // largest end offset used
  int64_t num_free_blocks() const { return static_cast<int64_t>(free_by_size_.size()); }
  int64_t num_parked() const { return static_cast<int64_t>(parked_.size()); }
  void* base() const { return base_; }

  // Inspection for tests and reports, O(n): (offset, size) pairs sorted by offset. Used
  // blocks include parked ones.
  std::vector<std::pair<int64_t, int64_t>> used_blocks() const;
  std::vector<std::pair<int64_t, int64_t>> free_blocks() const;

 private:
  int64_t offset_of(void* ptr) const;

  int64_t capacity_bytes_;
  char* base_;
  std::map<int64_t, int64_t> free_by_offset_;           // offset -> size
  std::set<std::pair<int64_t, int64_t>> free_by_size_;  // (size, offset)
  std::map<int64_t, int64_t> used_;                     // offset -> size
  std::map<int64_t, std::function<bool()>> parked_;     // offset -> done predicate
  int64_t in_use_bytes_ = 0;
  int64_t peak_bytes_ = 0;
  int64_t high_water_bytes_ = 0;
  int64_t total_allocs_ = 0;
};

}  // namespace sn
