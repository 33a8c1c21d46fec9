// The tensor cache (memory/tensor_cache.h) against a reference model: random add,
// remove, touch, lock, unlock and evict operations, where the model finds the least
// recently used unlocked tensor by scanning every entry's last-use tick.
#include <cstdio>
#include <map>
#include <random>
#include <string>

#include "check.h"
#include "memory/tensor_cache.h"

using sn_test::check;

namespace {

struct ModelEntry {
  int64_t bytes = 0;
  int locks = 0;
  int64_t tick = 0;  // the last add, touch or final unlock
};

void directed() {
  sn::TensorCache c;
  c.add(1, 100);
  c.add(2, 200);
  c.add(3, 300);
  c.touch(1);  // order, most recent first: 1 3 2
  c.lock(2);   // 2 is off the list: 1 3
  auto e = c.evict();
  check(e && e->tensor == 3 && e->bytes == 300, "evict skips the locked LRU tensor");
  c.unlock(2);  // 2 1
  e = c.evict();
  check(e && e->tensor == 1, "an unlocked tensor is the most recently used");
  c.lock(2);
  c.lock(2);
  c.unlock(2);
  check(!c.evict(), "a tensor stays locked until its last unlock");
  check(c.size() == 1 && c.bytes() == 200 && c.evictable() == 0, "counts with a locked tensor");
  c.unlock(2);
  c.remove(2);
  check(c.size() == 0 && c.bytes() == 0 && !c.evict(), "empty after remove");
  bool threw = false;
  try {
    c.unlock(9);
  } catch (const std::exception&) {
    threw = true;
  }
  check(threw, "unlock of an unknown tensor is an error");
}

void random_against_model(uint64_t seed) {
  std::mt19937_64 rng(seed);
  sn::TensorCache c;
  std::map<int32_t, ModelEntry> model;
  int64_t tick = 0;
  int evictions = 0, evictions_past_locked = 0;
  auto pick = [&]() {
    auto it = model.begin();
    std::advance(it, static_cast<long>(rng() % model.size()));
    return it;
  };
  for (int step = 0; step < 20000; ++step) {
    const int op = static_cast<int>(rng() % 6);
    const std::string where = "seed " + std::to_string(seed) + " step " + std::to_string(step);
    if (op == 0 || model.empty()) {
      const auto t = static_cast<int32_t>(rng() % 64);
      if (model.count(t)) continue;
      const auto bytes = static_cast<int64_t>(1 + rng() % 1000);
      c.add(t, bytes);
      model[t] = {bytes, 0, ++tick};
    } else if (op == 1) {
      auto it = pick();
      c.remove(it->first);
      model.erase(it);
    } else if (op == 2) {
      auto it = pick();
      c.touch(it->first);
      if (it->second.locks == 0) it->second.tick = ++tick;
    } else if (op == 3) {
      auto it = pick();
      c.lock(it->first);
      ++it->second.locks;
    } else if (op == 4) {
      auto it = pick();
      if (it->second.locks == 0) continue;
      c.unlock(it->first);
      if (--it->second.locks == 0) it->second.tick = ++tick;
    } else {
      // The model's victim: the unlocked entry with the oldest tick.
      auto victim = model.end();
      bool passed_locked = false;
      for (auto it = model.begin(); it != model.end(); ++it) {
        if (it->second.locks > 0) continue;
        if (victim == model.end() || it->second.tick < victim->second.tick) victim = it;
      }
      for (const auto& [t, m] : model)
        if (m.locks > 0 && victim != model.end() && m.tick < victim->second.tick)
          passed_locked = true;
      const auto e = c.evict();
      if (victim == model.end()) {
        check(!e, "evict with every tensor locked returns none (" + where + ")");
        continue;
      }
      const bool right = e && e->tensor == victim->first && e->bytes == victim->second.bytes;
      check(right, "evict returns the least recently used unlocked tensor (" + where + ")");
      if (!right) return;  // the cache and the model no longer hold the same tensors
      ++evictions;
      evictions_past_locked += passed_locked;
      model.erase(victim);
    }
    int64_t bytes = 0;
    size_t unlocked = 0;
    for (const auto& [t, m] : model) {
      bytes += m.bytes;
      unlocked += m.locks == 0;
    }
    if (c.size() != model.size() || c.bytes() != bytes || c.evictable() != unlocked) {
      check(false, "counts agree with the model (" + where + ")");
      return;
    }
  }
  // The cases that matter were exercised: evictions, some past an older locked tensor.
  check(evictions > 500 && evictions_past_locked > 50,
        "random ops evicted " + std::to_string(evictions) + " times, " +
            std::to_string(evictions_past_locked) + " past a locked tensor");
}

}  // namespace

int main() {
  try {
    directed();
    for (uint64_t seed = 1; seed <= 5; ++seed) random_against_model(seed);
  } catch (const std::exception& e) {
    check(false, std::string("unexpected error: ") + e.what());
  }
  return sn_test::report("test_tensor_cache");
}
