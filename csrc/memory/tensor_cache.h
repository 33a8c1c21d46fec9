// The Unified Tensor Pool's tensor cache (source Sec. 8.3.3, Alg. 9): the device-resident
// tensors that could leave the device, in least-recently-used order, with locks. Every
// operation is O(1): a hash map from tensor to its node and a list of the unlocked
// tensors, most recently used at the front.
//
// Usage:
//   sn::TensorCache cache;
//   cache.add(7, 4096);          // tensor 7 is on the device, unlocked, most recent
//   cache.lock(7);               // a step reads or writes it: it cannot be evicted
//   cache.unlock(7);             // the step is over: most recently used again
//   auto victim = cache.evict(); // the least recently used unlocked tensor, if any
//
// Note [Locks in the cache]
// A locked tensor is taken off the list, so the back of the list is always the least
// recently used *unlocked* tensor and eviction never walks past locked ones (the
// source's getLastUnlockedTensor). Unlocking the last lock puts the tensor at the front:
// the end of a use is its most recent access. Locks nest (a step that reads a tensor
// twice locks it twice).
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>

#include "core/errors.h"

namespace sn {

class TensorCache {
 public:
  struct Entry {
    int32_t tensor = -1;
    int64_t bytes = 0;
  };

  // A tensor now on the device, unlocked and most recently used.
  void add(int32_t tensor, int64_t bytes) {
    SN_ASSERT(nodes_.count(tensor) == 0, "tensor cache: a tensor added twice");
    order_.push_front(tensor);
    nodes_.emplace(tensor, Node{bytes, 0, order_.begin()});
    bytes_ += bytes;
  }

  // The tensor left the cache for good (freed, or no longer worth evicting).
  void remove(int32_t tensor) {
    auto it = find(tensor);
    if (it->second.locks == 0) order_.erase(it->second.at);
    bytes_ -= it->second.bytes;
    nodes_.erase(it);
  }

  // A hit: an unlocked tensor becomes the most recently used.
  void touch(int32_t tensor) {
    Node& n = find(tensor)->second;
    if (n.locks == 0) order_.splice(order_.begin(), order_, n.at);
  }

  void lock(int32_t tensor) {
    Node& n = find(tensor)->second;
    if (n.locks++ == 0) order_.erase(n.at);
  }

  void unlock(int32_t tensor) {
    Node& n = find(tensor)->second;
    SN_ASSERT(n.locks > 0, "tensor cache: unlock of a tensor that is not locked");
    if (--n.locks > 0) return;
    order_.push_front(tensor);
    n.at = order_.begin();
  }

  // Removes and returns the least recently used unlocked tensor; none when every
  // tensor is locked or the cache is empty.
  std::optional<Entry> evict() {
    if (order_.empty()) return std::nullopt;
    const int32_t tensor = order_.back();
    order_.pop_back();
    auto it = nodes_.find(tensor);
    const Entry e{tensor, it->second.bytes};
    bytes_ -= e.bytes;
    nodes_.erase(it);
    return e;
  }

  bool contains(int32_t tensor) const { return nodes_.count(tensor) > 0; }
  bool locked(int32_t tensor) const { return nodes_.at(tensor).locks > 0; }
  size_t size() const { return nodes_.size(); }
  size_t evictable() const { return order_.size(); }
  int64_t bytes() const { return bytes_; }  // locked and unlocked

 private:
  struct Node {
    int64_t bytes = 0;
    int locks = 0;
    std::list<int32_t>::iterator at;  // valid while unlocked
  };
  std::unordered_map<int32_t, Node>::iterator find(int32_t tensor) {
    auto it = nodes_.find(tensor);
    SN_ASSERT(it != nodes_.end(), "tensor cache: a tensor that is not in the cache");
    return it;
  }

  std::list<int32_t> order_;  // unlocked tensors, most recently used first
  std::unordered_map<int32_t, Node> nodes_;
  int64_t bytes_ = 0;
};

}  // namespace sn
