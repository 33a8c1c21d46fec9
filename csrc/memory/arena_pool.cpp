#include "memory/arena_pool.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <limits>
#include <string>

#include "core/errors.h"

namespace sn {

// Note [Best-fit index]
// Free blocks live in two indexes that always hold the same blocks: by offset (to find the
// neighbours to coalesce with) and by (size, offset) (to find the best fit). lower_bound on
// (size, smallest offset) gives the smallest block that fits and, among blocks of that size,
// the lowest offset, so the choice depends only on the current free blocks. Because a free
// merges with both neighbours at once, the free blocks are always exactly the maximal gaps
// between used blocks; the same sequence of calls therefore gives the same offsets in a
// virtual pool and in a real one, and the order in which collect() releases blocks does not
// change the result.
//
// Note [Node reuse]
// allocate and free move map/set nodes between indexes with extract()/insert() instead of
// erasing and re-inserting, so a coalescing free and an exact-fit allocate touch the system
// allocator not at all, and the other cases once. Every step that may throw (a node
// allocation) runs before the first change to the indexes, so a bad_alloc leaves the pool
// as it was.

ArenaPool::ArenaPool(int64_t capacity_bytes, void* base)
    : capacity_bytes_(0), base_(static_cast<char*>(base)) {
  if (capacity_bytes < 0)
    throw ArgumentError("ArenaPool: capacity_bytes must be >= 0, got " +
                        std::to_string(capacity_bytes));
  if (reinterpret_cast<std::uintptr_t>(base) % kAlignmentBytes != 0)
    throw ArgumentError("ArenaPool: the arena base must be " + std::to_string(kAlignmentBytes) +
                        "-byte aligned (use cudaMalloc or std::aligned_alloc)");
  // Rounded down: a partial unit at the end could only hold a block that ends unaligned.
  capacity_bytes_ = capacity_bytes / kAlignmentBytes * kAlignmentBytes;
  if (capacity_bytes_ > 0) {
    free_by_offset_.emplace(0, capacity_bytes_);
    free_by_size_.emplace(capacity_bytes_, 0);
  }
}

int64_t ArenaPool::rounded(int64_t size_bytes) {
  if (size_bytes < 0)
    throw ArgumentError("ArenaPool: size_bytes must be >= 0, got " + std::to_string(size_bytes));
  constexpr int64_t kMaxRoundable = std::numeric_limits<int64_t>::max() / kAlignmentBytes;
  const int64_t units = size_bytes / kAlignmentBytes + (size_bytes % kAlignmentBytes != 0);
  if (units >= kMaxRoundable)
    throw ArgumentError("ArenaPool: size_bytes too large to round, got " +
                        std::to_string(size_bytes));
  return std::max<int64_t>(units, 1) * kAlignmentBytes;
}

int64_t ArenaPool::allocate_offset(int64_t size_bytes) {
  if (size_bytes < 0)
    throw ArgumentError("ArenaPool: size_bytes must be >= 0, got " + std::to_string(size_bytes));
  if (size_bytes > capacity_bytes_) {
    collect();  // the contract: allocate collects before giving up
    return kNoSpace;
  }
  const int64_t want_bytes = rounded(size_bytes);
  auto fit = free_by_size_.lower_bound({want_bytes, std::numeric_limits<int64_t>::min()});
  if (fit == free_by_size_.end() && collect() > 0)
    fit = free_by_size_.lower_bound({want_bytes, std::numeric_limits<int64_t>::min()});
  if (fit == free_by_size_.end()) return kNoSpace;

  const int64_t block_bytes = fit->first;
  const int64_t offset = fit->second;
  auto by_offset = free_by_offset_.find(offset);
  SN_ASSERT(by_offset != free_by_offset_.end() && by_offset->second == block_bytes,
            "free-block indexes disagree at offset " + std::to_string(offset));

  if (block_bytes == want_bytes) {
    // Exact fit: the free node becomes the used node.
    used_.insert(free_by_offset_.extract(by_offset));
    free_by_size_.erase(fit);
  } else {
    // Split: the front goes to the caller, the tail stays free (keeps the low offsets
    // packed, which keeps high_water_bytes low).
    used_.emplace(offset, want_bytes);
    const int64_t tail_offset = offset + want_bytes;
    const int64_t tail_bytes = block_bytes - want_bytes;
    auto offset_node = free_by_offset_.extract(by_offset);
    offset_node.key() = tail_offset;
    offset_node.mapped() = tail_bytes;
    free_by_offset_.insert(std::move(offset_node));
    auto size_node = free_by_size_.extract(fit);
    size_node.value() = {tail_bytes, tail_offset};
    free_by_size_.insert(std::move(size_node));
  }

  in_use_bytes_ += want_bytes;
  peak_bytes_ = std::max(peak_bytes_, in_use_bytes_);
  high_water_bytes_ = std::max(high_water_bytes_, offset + want_bytes);
  ++total_allocs_;
  return offset;
}

int64_t ArenaPool::allocate_offset_high(int64_t size_bytes) {
  if (size_bytes < 0)
    throw ArgumentError("ArenaPool: size_bytes must be >= 0, got " + std::to_string(size_bytes));
  if (size_bytes > capacity_bytes_) {
    collect();
    return kNoSpace;
  }
  const int64_t want_bytes = rounded(size_bytes);
  auto highest_fit = [&] {
    for (auto it = free_by_offset_.rbegin(); it != free_by_offset_.rend(); ++it)
      if (it->second >= want_bytes) return std::prev(it.base());
    return free_by_offset_.end();
  };
  auto by_offset = highest_fit();
  if (by_offset == free_by_offset_.end() && collect() > 0) by_offset = highest_fit();
  if (by_offset == free_by_offset_.end()) return kNoSpace;

  const int64_t block_offset = by_offset->first, block_bytes = by_offset->second;
  const int64_t offset = block_offset + block_bytes - want_bytes;
  auto by_size = free_by_size_.find({block_bytes, block_offset});
  SN_ASSERT(by_size != free_by_size_.end(),
            "free-block indexes disagree at offset " + std::to_string(block_offset));
  used_.emplace(offset, want_bytes);  // the only node allocation: before any change
  if (block_bytes == want_bytes) {
    free_by_size_.erase(by_size);
    free_by_offset_.erase(by_offset);
  } else {  // the front stays free
    by_offset->second = block_bytes - want_bytes;
    auto node = free_by_size_.extract(by_size);
    node.value() = {block_bytes - want_bytes, block_offset};
    free_by_size_.insert(std::move(node));
  }
  in_use_bytes_ += want_bytes;
  peak_bytes_ = std::max(peak_bytes_, in_use_bytes_);
  high_water_bytes_ = std::max(high_water_bytes_, offset + want_bytes);
  ++total_allocs_;
  return offset;
}

void ArenaPool::free_offset(int64_t offset) {
  auto used = used_.find(offset);
  SN_ASSERT(used != used_.end(),
            "free of offset " + std::to_string(offset) + " that is not allocated (double free?)");
  SN_ASSERT(parked_.count(offset) == 0,
            "free of offset " + std::to_string(offset) + " that already waits in free_after");
  const int64_t size_bytes = used->second;

  auto next = free_by_offset_.lower_bound(offset);
  const bool merge_next = next != free_by_offset_.end() && next->first == offset + size_bytes;
  auto prev = next == free_by_offset_.begin() ? free_by_offset_.end() : std::prev(next);
  const bool merge_prev = prev != free_by_offset_.end() && prev->first + prev->second == offset;

  if (!merge_prev && !merge_next) {
    free_by_size_.emplace(size_bytes, offset);  // the only allocation; before any change
    free_by_offset_.insert(used_.extract(used));
  } else if (merge_prev && merge_next) {
    const int64_t merged_bytes = prev->second + size_bytes + next->second;
    free_by_size_.erase({next->second, next->first});
    auto size_node = free_by_size_.extract({prev->second, prev->first});
    size_node.value().first = merged_bytes;
    free_by_size_.insert(std::move(size_node));
    prev->second = merged_bytes;
    free_by_offset_.erase(next);
    used_.erase(used);
  } else if (merge_prev) {
    const int64_t merged_bytes = prev->second + size_bytes;
    auto size_node = free_by_size_.extract({prev->second, prev->first});
    size_node.value().first = merged_bytes;
    free_by_size_.insert(std::move(size_node));
    prev->second = merged_bytes;
    used_.erase(used);
  } else {
    // Merge with the next block only: that block now starts at `offset`.
    const int64_t merged_bytes = size_bytes + next->second;
    auto size_node = free_by_size_.extract({next->second, next->first});
    size_node.value() = {merged_bytes, offset};
    free_by_size_.insert(std::move(size_node));
    auto offset_node = free_by_offset_.extract(next);
    offset_node.key() = offset;
    offset_node.mapped() = merged_bytes;
    free_by_offset_.insert(std::move(offset_node));
    used_.erase(used);
  }
  in_use_bytes_ -= size_bytes;
}

void ArenaPool::free_offset_after(int64_t offset, std::function<bool()> done) {
  SN_ASSERT(static_cast<bool>(done), "free_offset_after needs a completion predicate");
  SN_ASSERT(used_.count(offset) == 1, "free_after of offset " + std::to_string(offset) +
                                          " that is not allocated (double free?)");
  const bool parked = parked_.emplace(offset, std::move(done)).second;
  SN_ASSERT(parked,
            "free_after of offset " + std::to_string(offset) + " that already waits in free_after");
}

int ArenaPool::collect() {
  // Offset order; the result does not depend on it (Note [Best-fit index]).
  int released = 0;
  for (auto it = parked_.begin(); it != parked_.end();) {
    if (it->second()) {
      const int64_t offset = it->first;
      it = parked_.erase(it);
      free_offset(offset);
      ++released;
    } else {
      ++it;
    }
  }
  return released;
}

void* ArenaPool::allocate(int64_t size_bytes) {
  SN_ASSERT(base_ != nullptr, "allocate() on a virtual pool; use allocate_offset()");
  const int64_t offset = allocate_offset(size_bytes);
  return offset == kNoSpace ? nullptr : base_ + offset;
}

void ArenaPool::free(void* ptr) {
  if (ptr == nullptr) return;
  free_offset(offset_of(ptr));
}

void ArenaPool::free_after(void* ptr, std::function<bool()> done) {
  SN_ASSERT(ptr != nullptr, "free_after(nullptr)");
  free_offset_after(offset_of(ptr), std::move(done));
}

int64_t ArenaPool::offset_of(void* ptr) const {
  SN_ASSERT(base_ != nullptr, "pointer free on a virtual pool; use free_offset()");
  // Compared as integers: ordering pointers into different objects is unspecified.
  const auto address = reinterpret_cast<std::uintptr_t>(ptr);
  const auto begin = reinterpret_cast<std::uintptr_t>(base_);
  SN_ASSERT(address >= begin && address - begin < static_cast<std::uintptr_t>(capacity_bytes_),
            "free of a pointer outside this arena");
  return static_cast<int64_t>(address - begin);
}

AllocatorStats ArenaPool::stats() const {
  AllocatorStats s;
  s.capacity_bytes = capacity_bytes_;
  s.in_use_bytes = in_use_bytes_;
  s.peak_bytes = peak_bytes_;
  s.num_allocs = static_cast<int64_t>(used_.size());
  s.total_allocs = total_allocs_;
  return s;
}

int64_t ArenaPool::largest_free_bytes() const {
  return free_by_size_.empty() ? 0 : free_by_size_.rbegin()->first;
}

double ArenaPool::fragmentation() const {
  const int64_t free_total_bytes = free_bytes();
  if (free_total_bytes == 0) return 0.0;
  return 1.0 - static_cast<double>(largest_free_bytes()) / static_cast<double>(free_total_bytes);
}

std::vector<std::pair<int64_t, int64_t>> ArenaPool::used_blocks() const {
  return {used_.begin(), used_.end()};
}

std::vector<std::pair<int64_t, int64_t>> ArenaPool::free_blocks() const {
  return {free_by_offset_.begin(), free_by_offset_.end()};
}

}  // namespace sn
