// The copy engine: device <-> host copies off the compute stream, each marking an event
// the plan names, so copies overlap compute. One interface for every backend
// (Backend::make_copy_engine): the CPU's is one worker thread (CpuCopyEngine, here); the
// CUDA backend's is its device-to-host and host-to-device streams with CUDA events
// (backend/cuda/copy_engine.h).
//
// Usage:
//   std::unique_ptr<sn::CopyEngine> engine = backend.make_copy_engine(plan.num_events, 0, 0);
//   engine->begin_iteration();
//   engine->submit(event, sn::CopyDirection::kDeviceToHost, dst, src, bytes);  // returns at once
//   engine->wait(event);  // compute goes on only after that copy is done
//
// Note [Copy events]
// Event ids come from the plan and are reused every iteration; begin_iteration() starts a
// new generation, and wait() waits for the copy submitted in the current one; a wait for
// an event no copy recorded in this generation is an internal error (it would hang). A
// copy starts after everything compute submitted before it (the producer of a tensor
// copied out, the last reader of a block a copy-in overwrites). wait() orders compute
// after the copy: on the CPU the compute thread blocks, on CUDA the compute stream waits
// for the event and the host goes on. A test mode sleeps a random time before each copy
// (up to max_delay_us; CPU only) to shake out races.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace sn {

enum class CopyDirection : uint8_t { kDeviceToHost, kHostToDevice };

class CopyEngine {
 public:
  virtual ~CopyEngine() = default;
  virtual void begin_iteration() = 0;
  virtual void submit(int event, CopyDirection direction, void* dst, const void* src,
                      int64_t bytes) = 0;
  virtual void wait(int event) = 0;
  virtual void drain() = 0;  // the host waits for every submitted copy
  virtual int64_t bytes_copied() const = 0;
  virtual double busy_ms() const = 0;  // time spent copying (not sleeping in test mode)
  // Whether the engine measures how long compute waited for copies itself (CUDA, where
  // wait() returns at once); otherwise the caller times wait().
  virtual bool times_stalls() const { return false; }
  virtual double stall_ms() const { return 0.0; }
};

class CpuCopyEngine final : public CopyEngine {
 public:
  explicit CpuCopyEngine(int num_events, int max_delay_us = 0, uint64_t seed = 0);
  ~CpuCopyEngine() override;
  CpuCopyEngine(const CpuCopyEngine&) = delete;
  CpuCopyEngine& operator=(const CpuCopyEngine&) = delete;

  void begin_iteration() override;
  void submit(int event, CopyDirection direction, void* dst, const void* src,
              int64_t bytes) override;
  void wait(int event) override;
  void drain() override;
  int64_t bytes_copied() const override;
  double busy_ms() const override;

 private:
  struct Job {
    int event;
    void* dst;
    const void* src;
    int64_t bytes;
  };
  void run();

  mutable std::mutex mutex_;
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
