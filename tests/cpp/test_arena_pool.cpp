// Checks sn::ArenaPool (memory/arena_pool.h): unit cases for splitting, coalescing, the
// best-fit rule, alignment, out-of-space, deferred frees and the error contract, then a
// randomized differential test against a deliberately simple reference model (a sorted
// vector of blocks with a linear best-fit scan): identical offsets, blocks and statistics
// after every operation, plus the structural invariants of the pool itself.
//
// Standalone: no test framework. Prints each failed check and exits non-zero on failure.
//   ./test_arena_pool            run everything
//   ./test_arena_pool random     run only the groups whose name contains "random"
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/errors.h"
#include "memory/arena_pool.h"

namespace {

using sn::ArenaPool;
using Blocks = std::vector<std::pair<int64_t, int64_t>>;  // (offset, size) in bytes

constexpr int64_t kUnitBytes = ArenaPool::kAlignmentBytes;  // bytes

// ------------------------------------------------------------------ harness
int64_t g_checks = 0;
int64_t g_failures = 0;

bool check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  }
  return ok;
}

void check_eq(int64_t got, int64_t want, const std::string& what) {
  check(got == want, what + ": got " + std::to_string(got) + " want " + std::to_string(want));
}

std::string describe(const Blocks& blocks) {
  std::string s = "[";
  for (const auto& [offset, size] : blocks)
    s += "(" + std::to_string(offset) + "," + std::to_string(size) + ")";
  return s + "]";
}

void check_blocks(const Blocks& got, const Blocks& want, const std::string& what) {
  check(got == want, what + ": got " + describe(got) + " want " + describe(want));
}

// Runs fn and checks that it throws exactly E.
template <typename E, typename Fn>
void check_throws(Fn fn, const std::string& what) {
  try {
    fn();
  } catch (const E&) {
    check(true, what);
    return;
  } catch (const std::exception& e) {
    check(false, what + ": threw the wrong type: " + e.what());
    return;
  }
  check(false, what + ": did not throw");
}

// A 256-byte aligned host buffer to stand in for device memory.
struct AlignedArena {
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  explicit AlignedArena(int64_t size_bytes)
      : data(std::aligned_alloc(kUnitBytes, static_cast<size_t>(size_bytes))) {}
  char* get() const { return static_cast<char*>(data.get()); }
  std::unique_ptr<void, Free> data;
};

// The structural invariants, checked on the pool alone: blocks sorted, aligned and
// disjoint, used + free tile [0, capacity) exactly, no two free blocks touch, and the
// statistics agree with the blocks.
void check_invariants(const ArenaPool& pool, const std::string& where) {
  const Blocks used = pool.used_blocks();
  const Blocks free_list = pool.free_blocks();
  std::vector<std::pair<std::pair<int64_t, int64_t>, bool>> all;  // ((offset, size), is_free)
  for (const auto& b : used) all.push_back({b, false});
  for (const auto& b : free_list) all.push_back({b, true});
  std::sort(all.begin(), all.end());
  int64_t cursor = 0;
  bool prev_free = false;
  int64_t used_bytes = 0;
  int64_t free_bytes = 0;
  int64_t largest_bytes = 0;
  for (const auto& [block, is_free] : all) {
    const auto [offset, size] = block;
    if (!check(offset == cursor, where + ": gap or overlap at offset " + std::to_string(offset) +
                                     " (expected " + std::to_string(cursor) + ")"))
      return;
    check(
        size > 0 && size % kUnitBytes == 0 && offset % kUnitBytes == 0,
        where + ": unaligned block (" + std::to_string(offset) + "," + std::to_string(size) + ")");
    check(!(is_free && prev_free), where + ": adjacent free blocks at " + std::to_string(offset));
    (is_free ? free_bytes : used_bytes) += size;
    if (is_free) largest_bytes = std::max(largest_bytes, size);
    prev_free = is_free;
    cursor = offset + size;
  }
  check_eq(cursor, pool.capacity_bytes(), where + ": blocks end");
  check_eq(used_bytes + free_bytes, pool.capacity_bytes(), where + ": used + free");
  check_eq(pool.stats().in_use_bytes, used_bytes, where + ": in_use_bytes vs used blocks");
  check_eq(pool.free_bytes(), free_bytes, where + ": free_bytes vs free blocks");
  check_eq(pool.largest_free_bytes(), largest_bytes, where + ": largest_free_bytes");
  check_eq(pool.num_free_blocks(), static_cast<int64_t>(free_list.size()),
           where + ": num_free_blocks");
  check_eq(pool.stats().num_allocs, static_cast<int64_t>(used.size()), where + ": num_allocs");
}

// ------------------------------------------------------------------ unit cases
void test_construction() {
  ArenaPool pool(1000, nullptr);
  check_eq(pool.capacity_bytes(), 768, "capacity rounds down to 256");
  check_blocks(pool.free_blocks(), {{0, 768}}, "one free block at start");
  check_eq(ArenaPool(0, nullptr).largest_free_bytes(), 0, "empty pool: no free block");
  check_eq(ArenaPool(255, nullptr).allocate_offset(1), ArenaPool::kNoSpace,
           "pool under one unit holds nothing");
  check_throws<sn::ArgumentError>([] { ArenaPool(-1, nullptr); }, "negative capacity");
  AlignedArena arena(4 * kUnitBytes);
  check_throws<sn::ArgumentError>([&] { ArenaPool(kUnitBytes, arena.get() + 16); },
                                  "misaligned base");
  check_eq(ArenaPool::rounded(0), 256, "rounded(0)");
  check_eq(ArenaPool::rounded(1), 256, "rounded(1)");
  check_eq(ArenaPool::rounded(256), 256, "rounded(256)");
  check_eq(ArenaPool::rounded(257), 512, "rounded(257)");
  check_throws<sn::ArgumentError>([] { ArenaPool::rounded(-1); }, "rounded(-1)");
  check_throws<sn::ArgumentError>([] { ArenaPool::rounded(std::numeric_limits<int64_t>::max()); },
                                  "rounded(max) overflows");
}

void test_split_and_alignment() {
  ArenaPool pool(16 * kUnitBytes, nullptr);
  check_eq(pool.allocate_offset(1000), 0, "first block at 0");
  check_blocks(pool.used_blocks(), {{0, 1024}}, "split: used front");
  check_blocks(pool.free_blocks(), {{1024, 3072}}, "split: free tail");
  for (int64_t size = 0; size <= 700; size += 7) {
    const int64_t offset = pool.allocate_offset(size);
    if (offset == ArenaPool::kNoSpace) break;
    check(offset % kUnitBytes == 0, "offset aligned for size " + std::to_string(size));
  }
  check_invariants(pool, "split_and_alignment");
}

// Three adjacent blocks a, b, c followed by the free tail.
struct Abc {
  ArenaPool pool{8 * kUnitBytes, nullptr};
  int64_t a = pool.allocate_offset(kUnitBytes);
  int64_t b = pool.allocate_offset(2 * kUnitBytes);
  int64_t c = pool.allocate_offset(kUnitBytes);
};

void test_coalesce() {
  {
    Abc t;
    t.pool.free_offset(t.a);
    t.pool.free_offset(t.b);
    check_blocks(t.pool.free_blocks(), {{0, 768}, {1024, 1024}}, "coalesce left (b onto a)");
  }
  {
    Abc t;
    t.pool.free_offset(t.b);
    t.pool.free_offset(t.a);
    check_blocks(t.pool.free_blocks(), {{0, 768}, {1024, 1024}}, "coalesce right (a onto b)");
  }
  {
    Abc t;
    t.pool.free_offset(t.c);
    check_blocks(t.pool.free_blocks(), {{768, 1280}}, "coalesce right into the tail");
  }
  {
    Abc t;
    t.pool.free_offset(t.a);
    t.pool.free_offset(t.c);
    check_eq(t.pool.num_free_blocks(), 2, "two holes before the middle free");
    t.pool.free_offset(t.b);
    check_blocks(t.pool.free_blocks(), {{0, 2048}}, "coalesce both sides");
    check_eq(t.pool.stats().in_use_bytes, 0, "all free: in_use 0");
    check(t.pool.fragmentation() == 0.0, "all free: fragmentation 0");
    check_invariants(t.pool, "coalesce both");
  }
}

// Holes (offset, size): (0, 512) (768, 256) (1280, 512) (2048, 1024) and the tail.
ArenaPool holes_pool() {
  ArenaPool pool(16 * kUnitBytes, nullptr);
  std::vector<int64_t> offsets;
  for (int64_t units : {2, 1, 1, 1, 2, 1, 4, 1})
    offsets.push_back(pool.allocate_offset(units * kUnitBytes));
  for (size_t i : {0, 2, 4, 6}) pool.free_offset(offsets[i]);
  return pool;
}

void test_best_fit() {
  {
    ArenaPool pool = holes_pool();
    check_blocks(pool.free_blocks(), {{0, 512}, {768, 256}, {1280, 512}, {2048, 1024}, {3328, 768}},
                 "holes layout");
    check_eq(pool.allocate_offset(100), 768, "best fit: the smallest hole, not the first");
    check_eq(pool.allocate_offset(300), 0, "tie: the lowest offset among equal sizes");
    check_eq(pool.allocate_offset(512), 1280, "exact fit takes the whole hole");
    check_blocks(pool.free_blocks(), {{2048, 1024}, {3328, 768}}, "exact fits leave no sliver");
    check_eq(pool.allocate_offset(700), 3328, "768 beats 1024 for 700 bytes");
    check_invariants(pool, "best_fit");
  }
  {
    ArenaPool pool = holes_pool();
    check(pool.fragmentation() == 1.0 - 1024.0 / 3072.0, "fragmentation = 1 - largest / free");
  }
}

void test_two_ended() {
  {
    ArenaPool pool = holes_pool();
    check_eq(pool.allocate_offset_high(100), 3840, "from the top: the top end of the highest hole");
    check_eq(pool.allocate_offset_high(1024), 2048, "the highest hole that fits, exactly");
    check_eq(pool.allocate_offset_high(5000), ArenaPool::kNoSpace, "nothing that large");
    check_blocks(pool.free_blocks(), {{0, 512}, {768, 256}, {1280, 512}, {3328, 512}},
                 "fronts stay free");
    check_invariants(pool, "two_ended");
  }
  // Large blocks from the top, small from the bottom: after the large ones die their
  // space is one block; best fit alone leaves it split by a small one.
  for (bool two_ended : {false, true}) {
    ArenaPool pool(8 * kUnitBytes, nullptr);
    auto large = [&] {
      return two_ended ? pool.allocate_offset_high(3 * kUnitBytes)
                       : pool.allocate_offset(3 * kUnitBytes);
    };
    const int64_t l1 = large(), s1 = pool.allocate_offset(kUnitBytes);
    const int64_t l2 = large(), s2 = pool.allocate_offset(kUnitBytes);
    check(s1 >= 0 && s2 >= 0, "the small ones fit");
    pool.free_offset(l1);
    pool.free_offset(l2);
    check_eq(pool.largest_free_bytes(), (two_ended ? 6 : 3) * kUnitBytes,
             two_ended ? "two-ended: the large blocks' space is one block"
                       : "best fit: a small block splits it");
    check_invariants(pool, "two_ended pattern");
  }
}

void test_no_space() {
  ArenaPool pool(4 * kUnitBytes, nullptr);
  const int64_t a = pool.allocate_offset(kUnitBytes);
  pool.allocate_offset(kUnitBytes);
  pool.allocate_offset(kUnitBytes);
  pool.free_offset(a);
  const sn::AllocatorStats before = pool.stats();
  check_eq(pool.allocate_offset(2 * kUnitBytes), ArenaPool::kNoSpace,
           "512 bytes free in two pieces: no 512-byte block");
  check_eq(pool.allocate_offset(std::numeric_limits<int64_t>::max()), ArenaPool::kNoSpace,
           "huge request: kNoSpace, no overflow");
  check_eq(pool.stats().total_allocs, before.total_allocs, "failed allocate not counted");
  check_eq(pool.stats().in_use_bytes, before.in_use_bytes, "failed allocate changes nothing");
  check_throws<sn::ArgumentError>([&] { pool.allocate_offset(-1); }, "negative size");

  AlignedArena arena(4 * kUnitBytes);
  ArenaPool real(4 * kUnitBytes, arena.get());
  check(real.allocate(5 * kUnitBytes) == nullptr, "pointer API: nullptr when nothing fits");
  void* p = real.allocate(4 * kUnitBytes);
  check(p == arena.get(), "pointer API: base + offset");
  check(real.allocate(1) == nullptr, "pointer API: full pool");
  real.free(p);
  real.free(nullptr);
  check_eq(real.stats().in_use_bytes, 0, "pointer free, free(nullptr) is a no-op");
}

void test_stats() {
  ArenaPool pool(16 * kUnitBytes, nullptr);
  const int64_t a = pool.allocate_offset(3 * kUnitBytes);
  const int64_t b = pool.allocate_offset(1);
  pool.free_offset(a);
  const int64_t c = pool.allocate_offset(kUnitBytes);
  sn::AllocatorStats s = pool.stats();
  check_eq(s.capacity_bytes, 4096, "stats.capacity_bytes");
  check_eq(s.in_use_bytes, 512, "stats.in_use_bytes");
  check_eq(s.peak_bytes, 1024, "stats.peak_bytes");
  check_eq(s.num_allocs, 2, "stats.num_allocs (live)");
  check_eq(s.total_allocs, 3, "stats.total_allocs");
  check_eq(pool.high_water_bytes(), 1024, "high_water_bytes");
  check_eq(c, 0, "reuse of the freed front");
  pool.free_offset(b);
  pool.free_offset(c);
  s = pool.stats();
  check_eq(s.in_use_bytes, 0, "all freed: in_use");
  check_eq(s.num_allocs, 0, "all freed: num_allocs");
  check_eq(s.peak_bytes, 1024, "peak survives frees");
  check_eq(pool.high_water_bytes(), 1024, "high water survives frees");
}

void test_deferred_frees() {
  ArenaPool pool(4 * kUnitBytes, nullptr);
  const int64_t a = pool.allocate_offset(kUnitBytes);
  const int64_t b = pool.allocate_offset(kUnitBytes);
  bool a_done = false;
  bool b_done = false;
  pool.free_offset_after(a, [&] { return a_done; });
  pool.free_offset_after(b, [&] { return b_done; });
  check_eq(pool.num_parked(), 2, "two parked");
  check_eq(pool.stats().in_use_bytes, 512, "parked bytes count as in use");
  check_eq(pool.stats().num_allocs, 2, "parked blocks count as live");
  check_eq(pool.collect(), 0, "nothing done yet");
  a_done = true;
  check_eq(pool.collect(), 1, "one done");
  check_eq(pool.stats().in_use_bytes, 256, "collected block released");
  check_eq(pool.num_parked(), 1, "one still parked");
  check_throws<sn::InternalError>([&] { pool.free_offset(b); }, "free of a parked block");
  check_throws<sn::InternalError>([&] { pool.free_offset_after(b, [] { return true; }); },
                                  "free_after twice");
  check_throws<sn::InternalError>([&] { pool.free_offset_after(a, [] { return true; }); },
                                  "free_after of a freed block");
  check_throws<sn::InternalError>([&] { pool.free_offset_after(pool.allocate_offset(1), {}); },
                                  "free_after without a predicate");

  // allocate() collects before giving up: the pool is full except for the parked block.
  ArenaPool full(2 * kUnitBytes, nullptr);
  const int64_t x = full.allocate_offset(kUnitBytes);
  full.allocate_offset(kUnitBytes);
  bool x_done = false;
  full.free_offset_after(x, [&] { return x_done; });
  check_eq(full.allocate_offset(1), ArenaPool::kNoSpace, "parked and not done: no space");
  x_done = true;
  check_eq(full.allocate_offset(1), x, "allocate collects the done block and reuses it");
  check_eq(full.num_parked(), 0, "collected by allocate");

  AlignedArena arena(2 * kUnitBytes);
  ArenaPool real(2 * kUnitBytes, arena.get());
  void* p = real.allocate(1);
  real.free_after(p, [] { return true; });
  check_eq(real.stats().in_use_bytes, 256, "pointer free_after parks");
  check_eq(real.collect(), 1, "pointer free_after collects");
  check_invariants(real, "deferred pointer");
}

void test_errors() {
  ArenaPool pool(4 * kUnitBytes, nullptr);
  const int64_t a = pool.allocate_offset(kUnitBytes);
  pool.free_offset(a);
  check_throws<sn::InternalError>([&] { pool.free_offset(a); }, "double free");
  check_throws<sn::InternalError>([&] { pool.free_offset(kUnitBytes * 100); }, "unknown offset");
  const int64_t b = pool.allocate_offset(2 * kUnitBytes);
  check_throws<sn::InternalError>([&] { pool.free_offset(b + kUnitBytes); },
                                  "offset inside a block");
  check_throws<sn::InternalError>([&] { pool.allocate(1); }, "pointer allocate on a virtual pool");
  check_invariants(pool, "after errors");

  AlignedArena arena(4 * kUnitBytes);
  ArenaPool real(2 * kUnitBytes, arena.get());
  check_throws<sn::InternalError>([&] { real.free(arena.get() + 3 * kUnitBytes); },
                                  "pointer outside the arena");
  check_throws<sn::InternalError>([&] { real.free(arena.get()); }, "pointer never allocated");
}

// ------------------------------------------------------------------ reference model
// The pool as a sorted vector of blocks; best fit by a linear scan; frees merge by looking
// at the vector neighbours. Deliberately naive, so it can be trusted by reading it.
class ReferencePool {
 public:
  explicit ReferencePool(int64_t capacity_bytes)
      : capacity_bytes_(capacity_bytes / kUnitBytes * kUnitBytes) {
    if (capacity_bytes_ > 0) blocks_.push_back({0, capacity_bytes_, false});
  }

  int64_t allocate(int64_t size_bytes) {
    int64_t offset = try_allocate(size_bytes);
    if (offset == ArenaPool::kNoSpace && collect() > 0) offset = try_allocate(size_bytes);
    return offset;
  }

  void free(int64_t offset) {
    size_t i = 0;
    while (blocks_[i].offset != offset) ++i;
    blocks_[i].used = false;
    in_use_bytes_ -= blocks_[i].size;
    if (i + 1 < blocks_.size() && !blocks_[i + 1].used) {
      blocks_[i].size += blocks_[i + 1].size;
      blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    }
    if (i > 0 && !blocks_[i - 1].used) {
      blocks_[i - 1].size += blocks_[i].size;
      blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }

  void free_after(int64_t offset, std::function<bool()> done) {
    parked_.push_back({offset, std::move(done)});
  }

  int collect() {
    int released = 0;
    for (size_t i = 0; i < parked_.size();) {
      if (parked_[i].second()) {
        free(parked_[i].first);
        parked_.erase(parked_.begin() + static_cast<std::ptrdiff_t>(i));
        ++released;
      } else {
        ++i;
      }
    }
    return released;
  }

  Blocks used_blocks() const { return select(true); }
  Blocks free_blocks() const { return select(false); }
  int64_t in_use_bytes() const { return in_use_bytes_; }
  int64_t peak_bytes() const { return peak_bytes_; }
  int64_t high_water_bytes() const { return high_water_bytes_; }
  int64_t total_allocs() const { return total_allocs_; }
  int64_t num_parked() const { return static_cast<int64_t>(parked_.size()); }
  int64_t largest_free_bytes() const {
    int64_t largest = 0;
    for (const Block& b : blocks_)
      if (!b.used) largest = std::max(largest, b.size);
    return largest;
  }

 private:
  struct Block {
    int64_t offset;
    int64_t size;
    bool used;
  };

  int64_t try_allocate(int64_t size_bytes) {
    if (size_bytes > capacity_bytes_) return ArenaPool::kNoSpace;
    const int64_t want =
        std::max<int64_t>(1, (size_bytes + kUnitBytes - 1) / kUnitBytes) * kUnitBytes;
    size_t best = blocks_.size();
    for (size_t i = 0; i < blocks_.size(); ++i) {
      if (blocks_[i].used || blocks_[i].size < want) continue;
      if (best == blocks_.size() || blocks_[i].size < blocks_[best].size) best = i;
    }
    if (best == blocks_.size()) return ArenaPool::kNoSpace;
    Block& b = blocks_[best];
    const int64_t offset = b.offset;
    if (b.size > want) {
      blocks_.insert(blocks_.begin() + static_cast<std::ptrdiff_t>(best) + 1,
                     {offset + want, b.size - want, false});
    }
    blocks_[best] = {offset, want, true};
    in_use_bytes_ += want;
    peak_bytes_ = std::max(peak_bytes_, in_use_bytes_);
    high_water_bytes_ = std::max(high_water_bytes_, offset + want);
    ++total_allocs_;
    return offset;
  }

  Blocks select(bool used) const {
    Blocks out;
    for (const Block& b : blocks_)
      if (b.used == used) out.push_back({b.offset, b.size});
    return out;
  }

  int64_t capacity_bytes_;
  std::vector<Block> blocks_;
  std::vector<std::pair<int64_t, std::function<bool()>>> parked_;
  int64_t in_use_bytes_ = 0;
  int64_t peak_bytes_ = 0;
  int64_t high_water_bytes_ = 0;
  int64_t total_allocs_ = 0;
};

void compare(const ArenaPool& pool, const ReferencePool& ref, const std::string& where) {
  check_blocks(pool.used_blocks(), ref.used_blocks(), where + ": used blocks");
  check_blocks(pool.free_blocks(), ref.free_blocks(), where + ": free blocks");
  const sn::AllocatorStats s = pool.stats();
  check_eq(s.in_use_bytes, ref.in_use_bytes(), where + ": in_use_bytes");
  check_eq(s.peak_bytes, ref.peak_bytes(), where + ": peak_bytes");
  check_eq(s.num_allocs, static_cast<int64_t>(ref.used_blocks().size()), where + ": num_allocs");
  check_eq(s.total_allocs, ref.total_allocs(), where + ": total_allocs");
  check_eq(pool.high_water_bytes(), ref.high_water_bytes(), where + ": high_water_bytes");
  check_eq(pool.largest_free_bytes(), ref.largest_free_bytes(), where + ": largest_free_bytes");
  check_eq(pool.num_parked(), ref.num_parked(), where + ": num_parked");
  const int64_t free_total = pool.capacity_bytes() - ref.in_use_bytes();
  const double want_fragmentation =
      free_total == 0
          ? 0.0
          : 1.0 - static_cast<double>(ref.largest_free_bytes()) / static_cast<double>(free_total);
  check(pool.fragmentation() == want_fragmentation, where + ": fragmentation");
  check_invariants(pool, where);
}

// One random run: allocations of mixed sizes (tiny, exact multiples, large, oversize),
// frees, deferred frees whose completion the test flips at random, and explicit collects.
// Stops at the first failing operation so the report stays readable.
void random_run(uint64_t seed, int64_t capacity_bytes, int num_ops) {
  std::mt19937_64 rng(seed);
  ArenaPool pool(capacity_bytes, nullptr);
  ReferencePool ref(capacity_bytes);
  AlignedArena arena(ArenaPool::rounded(capacity_bytes));
  ArenaPool real(capacity_bytes, arena.get());
  std::vector<int64_t> live;                      // offsets allocated, not yet freed or parked
  std::vector<std::shared_ptr<bool>> done_flags;  // of parked blocks, flipped at random
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  auto random_size = [&]() -> int64_t {
    switch (rng() % 6) {
      case 0:
        return static_cast<int64_t>(rng() % 64);  // tiny
      case 1:
        return static_cast<int64_t>(1 + rng() % 8) * kUnitBytes;  // exact
      case 2:
        return static_cast<int64_t>(rng() % static_cast<uint64_t>(capacity_bytes / 4 + 1));
      case 3:
        return static_cast<int64_t>(rng() % static_cast<uint64_t>(capacity_bytes + 1));
      case 4:
        return capacity_bytes + 1 + static_cast<int64_t>(rng() % 1000);  // oversize
      default:
        return static_cast<int64_t>(rng() % (4 * kUnitBytes));
    }
  };
  const int64_t failures_before = g_failures;
  for (int op = 0; op < num_ops && g_failures == failures_before; ++op) {
    const std::string where = "seed " + std::to_string(seed) + " op " + std::to_string(op);
    const uint64_t kind = rng() % 100;
    if (kind < 45 || live.empty()) {
      const int64_t size = random_size();
      const int64_t got = pool.allocate_offset(size);
      const int64_t want = ref.allocate(size);
      check_eq(got, want, where + ": allocate(" + std::to_string(size) + ") offset");
      char* p = static_cast<char*>(real.allocate(size));
      check_eq(p == nullptr ? ArenaPool::kNoSpace : p - arena.get(), got,
               where + ": real pool offset");
      if (got != ArenaPool::kNoSpace) live.push_back(got);
      if (p != nullptr) p[0] = 1;  // the real block is usable memory (ASan checks the bounds)
    } else if (kind < 80) {
      const size_t i = pick(live.size());
      pool.free_offset(live[i]);
      ref.free(live[i]);
      real.free(arena.get() + live[i]);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
    } else if (kind < 90) {
      const size_t i = pick(live.size());
      auto done = std::make_shared<bool>(false);
      done_flags.push_back(done);
      pool.free_offset_after(live[i], [done] { return *done; });
      ref.free_after(live[i], [done] { return *done; });
      real.free_after(arena.get() + live[i], [done] { return *done; });
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
    } else if (kind < 97) {
      if (!done_flags.empty()) *done_flags[pick(done_flags.size())] = true;
    } else {
      const int got = pool.collect();
      check_eq(got, ref.collect(), where + ": collect count");
      check_eq(real.collect(), got, where + ": real collect count");
    }
    compare(pool, ref, where);
    check_blocks(real.used_blocks(), pool.used_blocks(), where + ": real vs virtual");
  }
  // Drain: everything freed and collected leaves one free block of the whole capacity.
  for (int64_t offset : live) pool.free_offset(offset);
  for (auto& done : done_flags) *done = true;
  pool.collect();
  const std::string where = "seed " + std::to_string(seed) + " drained";
  check_eq(pool.stats().in_use_bytes, 0, where + ": in_use_bytes");
  check_eq(pool.num_free_blocks(), pool.capacity_bytes() > 0 ? 1 : 0, where + ": free blocks");
  check(pool.fragmentation() == 0.0, where + ": fragmentation");
}

void test_random_differential() {
  const int64_t capacities[] = {0, 1000, 4 * 1024, 64 * 1024 + 100, 1 << 20};
  int run = 0;
  for (int64_t capacity : capacities)
    for (uint64_t seed = 1; seed <= 6; ++seed) random_run(seed * 7919 + run++, capacity, 2000);
}

// The planner and the executor replay one sequence through two pools: offsets must match.
void test_virtual_equals_real() {
  constexpr int64_t kCapacityBytes = 1 << 16;  // bytes
  AlignedArena arena(kCapacityBytes);
  ArenaPool virt(kCapacityBytes, nullptr);
  ArenaPool real(kCapacityBytes, arena.get());
  std::mt19937_64 rng(42);
  std::vector<int64_t> live;
  for (int op = 0; op < 5000; ++op) {
    if (rng() % 2 == 0 || live.empty()) {
      const auto size = static_cast<int64_t>(rng() % 5000);
      const int64_t offset = virt.allocate_offset(size);
      char* p = static_cast<char*>(real.allocate(size));
      const int64_t real_offset = p == nullptr ? ArenaPool::kNoSpace : p - arena.get();
      if (!check(offset == real_offset, "virtual vs real at op " + std::to_string(op))) return;
      if (offset != ArenaPool::kNoSpace) live.push_back(offset);
    } else {
      const size_t i = static_cast<size_t>(rng() % live.size());
      virt.free_offset(live[i]);
      real.free(arena.get() + live[i]);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  check_blocks(real.free_blocks(), virt.free_blocks(), "virtual vs real: final free blocks");
  check_eq(real.stats().peak_bytes, virt.stats().peak_bytes, "virtual vs real: peak");
}

}  // namespace

int main(int argc, char** argv) {
  const std::string filter = argc > 1 ? argv[1] : "";
  const std::vector<std::pair<std::string, std::function<void()>>> groups = {
      {"construction", test_construction},
      {"split_and_alignment", test_split_and_alignment},
      {"coalesce", test_coalesce},
      {"best_fit", test_best_fit},
      {"two_ended", test_two_ended},
      {"no_space", test_no_space},
      {"stats", test_stats},
      {"deferred_frees", test_deferred_frees},
      {"errors", test_errors},
      {"random_differential", test_random_differential},
      {"virtual_equals_real", test_virtual_equals_real},
  };
  for (const auto& [name, fn] : groups) {
    if (name.find(filter) == std::string::npos) continue;
    const int64_t failures_before = g_failures;
    try {
      fn();
    } catch (const std::exception& e) {
      check(false, name + ": unexpected exception: " + e.what());
    }
    std::printf("%-22s %s\n", name.c_str(), g_failures == failures_before ? "ok" : "FAILED");
  }
  std::printf("%lld checks, %lld failures\n", static_cast<long long>(g_checks),
              static_cast<long long>(g_failures));
  return g_failures == 0 ? 0 : 1;
}
