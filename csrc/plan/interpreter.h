// The memory half of the plan interpreter: applies alloc and free operations to an
// arena pool and tracks where every tensor lives. The placement pass runs it over a
// virtual pool (base nullptr); the executor runs the same code over the real arena, so
// the measured trace equals the planned one by construction, and the executor checks
// that every allocation lands at its planned offset.
//
// Usage:
//   sn::ArenaPool pool(capacity_bytes, base);
//   sn::ArenaPool host(host_capacity_bytes, host_base);     // the host slab
//   sn::MemoryInterpreter mem(pool, host, plan.tensors.size(), plan.num_events);
//   int64_t off = mem.alloc(op);         // ArenaPool::kNoSpace when it does not fit
//   mem.free(op);
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/errors.h"
#include "memory/arena_pool.h"
#include "plan/plan.h"

namespace sn {

class MemoryInterpreter {
 public:
  MemoryInterpreter(ArenaPool& pool, ArenaPool& host, size_t num_tensors, size_t num_events)
      : pool_(pool),
        host_(host),
        offset_(num_tensors, kUnplaced),
        host_offset_(num_tensors, kUnplaced),
        resident_(num_tensors, false),
        given_up_(num_tensors, false),
        home_(num_tensors, false),
        event_tensor_(num_events, kNoTensor),
        event_is_copy_in_(num_events, false) {}

  // host_alloc: op.tensor's permanent home in the host slab; returns the host offset, or
  // kNoSpace when the slab is full.
  int64_t host_alloc(const Op& op) {
    const auto t = static_cast<size_t>(op.tensor);
    SN_ASSERT(host_offset_[t] == kUnplaced, "plan gives a tensor two host homes");
    const int64_t off = host_.allocate_offset(op.size_bytes);
    if (off == ArenaPool::kNoSpace) return off;
    host_offset_[t] = off;
    home_[t] = true;
    return off;
  }
  bool has_home(int32_t tensor) const { return home_[static_cast<size_t>(tensor)]; }

  // copy_out: places the host copy of op.tensor (device block stays until free_after);
  // returns the host offset, or kNoSpace when the host slab is full. A tensor with a
  // home is copied back into it.
  int64_t copy_out(const Op& op, int64_t size_bytes) {
    const auto t = static_cast<size_t>(op.tensor);
    SN_ASSERT(offset_[t] != kUnplaced, "plan copies out a tensor that is not on the device");
    if (home_[t]) {
      track(op, false);
      return host_offset_[t];
    }
    SN_ASSERT(host_offset_[t] == kUnplaced, "plan copies out a tensor twice");
    const int64_t off = host_.allocate_offset(size_bytes);
    if (off == ArenaPool::kNoSpace) return off;
    host_offset_[t] = off;
    track(op, false);
    return off;
  }

  // copy_in: the device block must be allocated already; the host copy is released when
  // the copy's event is waited for.
  void copy_in(const Op& op) {
    const auto t = static_cast<size_t>(op.tensor);
    SN_ASSERT(offset_[t] != kUnplaced && host_offset_[t] != kUnplaced,
              "plan copies in a tensor without a device block or a host copy");
    track(op, true);
  }

  // wait: a finished copy-in gives its host block back (a home stays).
  void wait(const Op& op) {
    const auto e = static_cast<size_t>(op.event);
    if (!event_is_copy_in_[e]) return;
    const auto t = static_cast<size_t>(event_tensor_[e]);
    event_is_copy_in_[e] = false;
    if (home_[t]) return;
    host_.free_offset(host_offset_[t]);
    host_offset_[t] = kUnplaced;
  }

  int64_t host_offset(int32_t tensor) const { return host_offset_[static_cast<size_t>(tensor)]; }

  // After a failed iteration: gives every host copy back (homes stay).
  void drop_host_copies() {
    for (size_t t = 0; t < host_offset_.size(); ++t)
      if (host_offset_[t] != kUnplaced && !home_[t]) {
        host_.free_offset(host_offset_[t]);
        host_offset_[t] = kUnplaced;
      }
    std::fill(event_is_copy_in_.begin(), event_is_copy_in_.end(), false);
  }
  const ArenaPool& host() const { return host_; }

  // Places op.tensor (op.size_bytes); returns its offset, or kNoSpace leaving all as it was.
  int64_t alloc(const Op& op) {
    const auto t = static_cast<size_t>(op.tensor);
    SN_ASSERT(offset_[t] == kUnplaced, "plan allocates a tensor that is already live");
    const int64_t off = op.from_top ? pool_.allocate_offset_high(op.size_bytes)
                                    : pool_.allocate_offset(op.size_bytes);
    if (off == ArenaPool::kNoSpace) return off;
    offset_[t] = off;
    ++live_;
    return off;
  }

  // op.tensor takes over op.source's block (in place); returns the offset. The source
  // stays readable until its own free later in the step, which then gives up its name
  // only: the block belongs to op.tensor.
  int64_t alias(const Op& op) {
    const auto t = static_cast<size_t>(op.tensor), src = static_cast<size_t>(op.source);
    SN_ASSERT(offset_[t] == kUnplaced, "plan aliases onto a tensor that is already live");
    SN_ASSERT(offset_[src] != kUnplaced && !resident_[src] && !given_up_[src],
              "plan aliases a block that is not live");
    offset_[t] = offset_[src];
    given_up_[src] = true;
    ++live_;
    return offset_[t];
  }

  // True when the tensor's block now belongs to another tensor (see alias()).
  bool gave_up_block(int32_t tensor) const { return given_up_[static_cast<size_t>(tensor)]; }

  // Returns the offset the tensor had.
  int64_t free(const Op& op) {
    const auto t = static_cast<size_t>(op.tensor);
    const int64_t off = offset_[t];
    SN_ASSERT(off != kUnplaced, "plan frees a tensor that is not live");
    if (given_up_[t])
      given_up_[t] = false;
    else
      pool_.free_offset(off);
    offset_[t] = kUnplaced;
    --live_;
    if (resident_[t]) {
      resident_[t] = false;
      --resident_live_;
    }
    return off;
  }

  // Marks every live tensor as resident (after setup): live_transient() excludes them.
  void mark_resident() {
    for (size_t t = 0; t < offset_.size(); ++t)
      if (offset_[t] != kUnplaced && !resident_[t]) {
        resident_[t] = true;
        ++resident_live_;
      }
  }

  int64_t offset(int32_t tensor) const { return offset_[static_cast<size_t>(tensor)]; }
  bool live(int32_t tensor) const { return offset(tensor) != kUnplaced; }
  int64_t live_transient() const { return live_ - resident_live_; }
  const ArenaPool& pool() const { return pool_; }

 private:
  void track(const Op& op, bool copy_in) {
    SN_ASSERT(op.event >= 0 && static_cast<size_t>(op.event) < event_tensor_.size(),
              "copy event out of range");
    event_tensor_[static_cast<size_t>(op.event)] = op.tensor;
    event_is_copy_in_[static_cast<size_t>(op.event)] = copy_in;
  }

  ArenaPool& pool_;
  ArenaPool& host_;
  std::vector<int64_t> offset_;
  std::vector<int64_t> host_offset_;
  std::vector<bool> resident_;
  std::vector<bool> given_up_;  // aliased: the name is live, the block is another's
  std::vector<bool> home_;      // the host block is permanent (host_alloc)
  std::vector<int32_t> event_tensor_;
  std::vector<bool> event_is_copy_in_;
  int64_t live_ = 0;
  int64_t resident_live_ = 0;
};

}  // namespace sn
