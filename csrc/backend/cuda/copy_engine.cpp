#include "backend/cuda/copy_engine.h"

#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "core/errors.h"

// Note [CUDA copy streams]
// Three streams per device: compute (the backend's), device-to-host and host-to-device
// (made here, non-blocking). submit() records a marker on the compute stream and makes
// the copy's stream wait for it, so a copy starts after the kernels queued before it (the
// producer of a tensor copied out; the last reader of a block that a copy-in overwrites).
// The copy is then queued with cudaMemcpyAsync between the arena and the pinned host slab,
// between two timing events: start and done (the plan's event). wait() makes the compute
// stream wait for done, so the host never blocks and frees stay stream-ordered: a block
// released after a wait is reused only by work queued on the compute stream after it.
// drain() synchronizes both copy streams and sums the copy times (busy_ms). The stall
// (how long compute waited for copies) is measured from events too: wait() records a
// `ready` event on the compute stream just before the compute stream's wait, and the
// stall of that wait is done - ready when positive (the copy finished after compute got
// there), else zero. Consecutive waits do not double count: the next ready is queued
// behind the previous wait. The random delays of the CPU engine's test mode have no
// equivalent here.
namespace sn {
namespace {

class CudaCopyEngine final : public CopyEngine {
 public:
  CudaCopyEngine(int device, cudaStream_t compute, int num_events)
      : device_(device),
        compute_(compute),
        start_(static_cast<size_t>(num_events), nullptr),
        done_(static_cast<size_t>(num_events), nullptr),
        submitted_(static_cast<size_t>(num_events), 0),
        timed_(static_cast<size_t>(num_events), 0) {
    try {
      SN_CUDA_CHECK(cudaSetDevice(device_));
      for (cudaStream_t* s : {&to_host_, &to_device_})
        SN_CUDA_CHECK(cudaStreamCreateWithFlags(s, cudaStreamNonBlocking));
      SN_CUDA_CHECK(cudaEventCreateWithFlags(&marker_, cudaEventDisableTiming));
      for (size_t e = 0; e < done_.size(); ++e) {
        SN_CUDA_CHECK(cudaEventCreate(&start_[e]));
        SN_CUDA_CHECK(cudaEventCreate(&done_[e]));
      }
    } catch (...) {
      release();
      throw;
    }
  }
  ~CudaCopyEngine() override {
    try {
      drain();
    } catch (...) {  // a destructor must not throw; the streams go regardless
    }
    release();
  }
  CudaCopyEngine(const CudaCopyEngine&) = delete;
  CudaCopyEngine& operator=(const CudaCopyEngine&) = delete;

  void begin_iteration() override {
    drain();
    ++generation_;
  }

  void submit(int event, CopyDirection direction, void* dst, const void* src,
              int64_t bytes) override {
    const size_t e = checked(event);
    const bool out = direction == CopyDirection::kDeviceToHost;
    cudaStream_t stream = out ? to_host_ : to_device_;
    SN_CUDA_CHECK(cudaEventRecord(marker_, compute_));
    SN_CUDA_CHECK(cudaStreamWaitEvent(stream, marker_, 0));
    SN_CUDA_CHECK(cudaEventRecord(start_[e], stream));
    SN_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes),
                                  out ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice, stream));
    SN_CUDA_CHECK(cudaEventRecord(done_[e], stream));
    submitted_[e] = generation_;
    bytes_copied_ += bytes;
  }

  void wait(int event) override {
    const size_t e = checked(event);
    SN_ASSERT(submitted_[e] == generation_,
              "the plan waits for a copy event that no copy recorded in this iteration");
    if (waits_ == ready_.size()) {
      cudaEvent_t ev = nullptr;
      SN_CUDA_CHECK(cudaEventCreate(&ev));
      ready_.push_back(ev);
      waited_.push_back(0);
    }
    SN_CUDA_CHECK(cudaEventRecord(ready_[waits_], compute_));
    waited_[waits_] = e;
    ++waits_;
    SN_CUDA_CHECK(cudaStreamWaitEvent(compute_, done_[e], 0));
  }

  void drain() override {
    SN_CUDA_CHECK(cudaStreamSynchronize(to_host_));
    SN_CUDA_CHECK(cudaStreamSynchronize(to_device_));
    for (size_t e = 0; e < done_.size(); ++e) {
      if (submitted_[e] != generation_ || timed_[e] == generation_) continue;
      float ms = 0.0f;
      SN_CUDA_CHECK(cudaEventElapsedTime(&ms, start_[e], done_[e]));
      busy_ms_ += ms;
      timed_[e] = generation_;
    }
    for (size_t k = 0; k < waits_; ++k) {
      SN_CUDA_CHECK(cudaEventSynchronize(ready_[k]));  // compute reached the wait
      float ms = 0.0f;
      SN_CUDA_CHECK(cudaEventElapsedTime(&ms, ready_[k], done_[waited_[k]]));
      if (ms > 0.0f) stall_ms_ += ms;
    }
    waits_ = 0;
  }

  int64_t bytes_copied() const override { return bytes_copied_; }
  double busy_ms() const override { return busy_ms_; }
  bool times_stalls() const override { return true; }
  double stall_ms() const override { return stall_ms_; }

 private:
  size_t checked(int event) const {
    SN_ASSERT(event >= 0 && static_cast<size_t>(event) < done_.size(), "copy event out of range");
    return static_cast<size_t>(event);
  }
  void release() noexcept {
    for (cudaEvent_t ev : start_)
      if (ev) cudaEventDestroy(ev);
    for (cudaEvent_t ev : done_)
      if (ev) cudaEventDestroy(ev);
    for (cudaEvent_t ev : ready_)
      if (ev) cudaEventDestroy(ev);
    if (marker_) cudaEventDestroy(marker_);
    if (to_host_) cudaStreamDestroy(to_host_);
    if (to_device_) cudaStreamDestroy(to_device_);
  }

  int device_;
  cudaStream_t compute_;
  cudaStream_t to_host_ = nullptr, to_device_ = nullptr;
  cudaEvent_t marker_ = nullptr;
  std::vector<cudaEvent_t> start_, done_;
  std::vector<uint64_t> submitted_, timed_;  // the generation of each event's last copy
  std::vector<cudaEvent_t> ready_;           // one per wait() since the last drain (reused)
  std::vector<size_t> waited_;               // the copy event each of those waits is for
  size_t waits_ = 0;
  double stall_ms_ = 0.0;
  uint64_t generation_ = 1;
  int64_t bytes_copied_ = 0;
  double busy_ms_ = 0.0;
};

}  // namespace

std::unique_ptr<CopyEngine> make_cuda_copy_engine(int device, cudaStream_t compute,
                                                  int num_events) {
  return std::make_unique<CudaCopyEngine>(device, compute, num_events);
}

}  // namespace sn
