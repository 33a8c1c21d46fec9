#include "exec/copy_engine.h"

#include <chrono>
#include <cstring>

#include "backend/backend.h"
#include "core/errors.h"

namespace sn {

std::unique_ptr<CopyEngine> Backend::make_copy_engine(int num_events, int max_delay_us,
                                                      uint64_t seed) const {
  return std::make_unique<CpuCopyEngine>(num_events, max_delay_us, seed);
}

CpuCopyEngine::CpuCopyEngine(int num_events, int max_delay_us, uint64_t seed)
    : done_generation_(static_cast<size_t>(num_events), 0),
      submitted_generation_(static_cast<size_t>(num_events), 0),
      max_delay_us_(max_delay_us),
      rng_(seed),
      worker_([this] { run(); }) {}

CpuCopyEngine::~CpuCopyEngine() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_.notify_all();
  worker_.join();
}

void CpuCopyEngine::begin_iteration() {
  drain();
  std::lock_guard<std::mutex> lock(mutex_);
  ++generation_;
}

void CpuCopyEngine::submit(int event, CopyDirection, void* dst, const void* src, int64_t bytes) {
  SN_ASSERT(event >= 0 && static_cast<size_t>(event) < done_generation_.size(),
            "copy event out of range");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back({event, dst, src, bytes});
    submitted_generation_[static_cast<size_t>(event)] = generation_;
    ++pending_;
  }
  work_.notify_one();
}

void CpuCopyEngine::wait(int event) {
  SN_ASSERT(event >= 0 && static_cast<size_t>(event) < done_generation_.size(),
            "copy event out of range");
  std::unique_lock<std::mutex> lock(mutex_);
  // A wait for a copy never submitted would block forever: a plan bug, not a race.
  SN_ASSERT(submitted_generation_[static_cast<size_t>(event)] == generation_,
            "the plan waits for a copy event that no copy recorded in this iteration");
  done_.wait(lock, [&] { return done_generation_[static_cast<size_t>(event)] == generation_; });
}

void CpuCopyEngine::drain() {
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return pending_ == 0; });
}

int64_t CpuCopyEngine::bytes_copied() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_copied_;
}

double CpuCopyEngine::busy_ms() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return busy_ms_;
}

void CpuCopyEngine::run() {
  for (;;) {
    Job job{};
    int delay_us = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ with nothing left
      job = queue_.front();
      queue_.pop_front();
      if (max_delay_us_ > 0)
        delay_us = static_cast<int>(rng_() % static_cast<uint64_t>(max_delay_us_ + 1));
    }
    if (delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    const auto t0 = std::chrono::steady_clock::now();
    std::memcpy(job.dst, job.src, static_cast<size_t>(job.bytes));
    const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - t0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      busy_ms_ += took.count();
      done_generation_[static_cast<size_t>(job.event)] = generation_;
      bytes_copied_ += job.bytes;
      --pending_;
    }
    done_.notify_all();
  }
}

}  // namespace sn
