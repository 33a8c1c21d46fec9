// The CPU copy engine: one worker thread that runs device <-> host copies in submission
// order and marks an event per copy, so copies overlap the compute thread. The CUDA
// backend fills the same interface with its device-to-host and host-to-device streams.
//
// Usage:
//   sn::CopyEngine engine(/*num_events=*/plan.num_events);
//   engine.begin_iteration();
//   engine.submit(event, dst, src, bytes);   // returns at once
//   engine.wait(event);                      // blocks until that copy is done
//
// Note [Copy events]
// Event ids come from the plan and are reused every iteration; begin_iteration() starts a
// new generation, and wait() waits for the copy submitted in the current one. A test mode
// sleeps a random time before each copy (up to max_delay_us) to shake out races.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace sn {

class CopyEngine {
 public:
  explicit CopyEngine(int num_events, int max_delay_us = 0, uint64_t seed = 0);
  ~CopyEngine();
  CopyEngine(const CopyEngine&) = delete;
  CopyEngine& operator=(const CopyEngine&) = delete;

  void begin_iteration();
  void submit(int event, void* dst, const void* src, int64_t bytes);
  void wait(int event);
  void drain();  // waits for every submitted copy
  int64_t bytes_copied() const;
  double busy_ms() const;  // time the worker spent copying (not sleeping in test mode)

 private:
  struct Job {
    int event;
    void* dst;
    const void* src;
    int64_t bytes;
  };
  void run();

  std::mutex mutex_;
  std::condition_variable work_, done_;
  std::deque<Job> queue_;
  std::vector<uint64_t> done_generation_;
  std::vector<uint64_t> submitted_generation_;
  uint64_t generation_ = 1;
  int64_t pending_ = 0;
  int64_t bytes_copied_ = 0;
  double busy_ms_ = 0.0;
  bool stop_ = false;
  int max_delay_us_;
  std::mt19937_64 rng_;
  std::thread worker_;
};

}  // namespace sn
