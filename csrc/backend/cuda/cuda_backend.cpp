// The CUDA backend (see cuda_backend.h). UNVERIFIED ON A GPU: written and compiled on a
// machine without one; the kernels' per-element arithmetic (kernel_math.h) is checked on
// the host against the CPU kernels (tests/cuda/test_cuda_kernel_math.cpp), but no kernel
// launch, cuDNN or cuBLAS call here has ever run. tests/cuda/test_cuda_backend.cpp
// compares every layer with the CPU backend where a GPU is visible.
//
// Note [Same plans on both backends]
// aux_floats, backward_reads, in_place_inputs and pass_through_inputs are the CPU
// backend's own answers (this class asks a CPU backend), so a plan made for one runs on
// the other; only algorithms() differs (cuDNN's convolution algorithms, no LRN scratch).
// That is why the layers cuDNN 9 offers only through its deprecated legacy ops (pooling,
// activation, batch norm, LRN, softmax) are small kernels of ours instead: cuDNN's max
// pooling backward reads its output and its batch norm backward cannot skip dx, which
// would change the declared reads; ours read what the CPU kernels read and replay the
// same tie rules. Convolution is cuDNN, the fully connected GEMMs are cuBLAS.
//
// Note [Streams and host reads]
// Every kernel runs asynchronously on one compute stream owned by the backend, in call
// order; the copy engine adds a device-to-host and a host-to-device stream (Note [CUDA
// copy streams]), and upload() its own host-to-device stream for the batch, ordered
// against the compute stream by events both ways. The loss, accuracy and non-finite
// checks stay on the device until finish_pass() (Note [Deferred results] in
// exec/executor.cpp); download(), all_finite and finish_pass wait for the compute stream,
// cuda_synchronize() waits for everything. LayerIO pointers, including labels, are device
// pointers (or host pointers the device can address).
#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "backend/cuda/conv.h"
#include "backend/cuda/conv_order.h"
#include "backend/cuda/copy_engine.h"
#include "backend/cuda/device.h"
#include "backend/cuda/fc.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/library_check.h"
#include "core/errors.h"
#include "graph/cost.h"

namespace sn {
namespace {

constexpr double kGpuFlopsPerMs = 1.0e10;  // 10 TFLOP/s for the cost model (not calibrated)
constexpr double kPcieBytesPerMs = 2.0e7;  // 20 GB/s host <-> device (not calibrated)

// The shape without the batch: the key of the planned convolution choices.
using ConvKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                           int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;

ConvKey conv_key(const cuda::ConvShape& s) {
  return {s.c_in,  s.h_in,     s.w_in,       s.c_out,      s.h_out,
          s.w_out, s.kernel_h, s.kernel_w,   s.stride_h,   s.stride_w,
          s.pad_h, s.pad_w,    s.dilation_h, s.dilation_w, s.groups};
}

cuda::math::Pool pool_shape(const Graph& g, const Layer& l, int64_t n) {
  const Dims& in = g.layer(l.inputs[0]).out;
  const LayerAttrs& a = l.attrs;
  return {n,          in.c,       in.h,       in.w,       l.out.h, l.out.w,
          a.kernel_h, a.kernel_w, a.stride_h, a.stride_w, a.pad_h, a.pad_w};
}

cuda::math::Lrn lrn_shape(const Layer& l, int64_t n) {
  return {n, l.out.c, l.out.h * l.out.w, l.attrs.size, l.attrs.alpha, l.attrs.beta, l.attrs.k};
}

float* param_or_null(const std::vector<float*>& v, size_t i) {
  return i < v.size() ? v[i] : nullptr;
}

int64_t floats_for(size_t bytes) {
  return static_cast<int64_t>((bytes + sizeof(float) - 1) / sizeof(float));
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device), cpu_(make_cpu_backend()) {
    std::string reason;
    const int count = cuda::device_count(&reason);
    if (device < 0 || device >= count)
      throw ArgumentError("CUDA device " + std::to_string(device) + " is not visible (" +
                          std::to_string(count) + " device(s): " + reason + ")");
    try {
      SN_CUDA_CHECK(cudaSetDevice(device_));
      SN_CUDA_CHECK(cudaStreamCreate(&stream_));  // blocking: ordered with the legacy stream
      SN_CUDNN_CHECK(cudnnCreate(&cudnn_));
      SN_CUDNN_CHECK(cudnnSetStream(cudnn_, stream_));
      SN_CUBLAS_CHECK(cublasCreate(&cublas_));
      SN_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
      SN_CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));  // FP32, no TF32
      SN_CUDA_CHECK(cudaStreamCreateWithFlags(&upload_stream_, cudaStreamNonBlocking));
      SN_CUDA_CHECK(cudaEventCreateWithFlags(&compute_ready_, cudaEventDisableTiming));
      SN_CUDA_CHECK(cudaEventCreateWithFlags(&upload_done_, cudaEventDisableTiming));
      SN_CUDA_CHECK(cudaMalloc(&pass_, sizeof(DevicePass)));
      SN_CUDA_CHECK(cudaMemset(pass_, 0, sizeof(DevicePass)));
      SN_CUDA_CHECK(cudaMallocHost(&pass_host_, sizeof(DevicePass)));
    } catch (...) {
      release();
      throw;
    }
  }
  ~CudaBackend() override { release(); }
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return "cuda"; }

  // See Note [Same plans on both backends].
  int64_t aux_floats(const Graph& g, int id, int64_t batch) const override {
    return cpu_->aux_floats(g, id, batch);
  }
  KernelReads backward_reads(const Graph& g, int id) const override {
    return cpu_->backward_reads(g, id);
  }
  std::vector<int> in_place_inputs(const Graph& g, int id) const override {
    return cpu_->in_place_inputs(g, id);
  }
  std::vector<int> pass_through_inputs(const Graph& g, int id) const override {
    return cpu_->pass_through_inputs(g, id);
  }

  std::vector<Algorithm> algorithms(const Graph& g, int id, int64_t batch) const override {
    const Layer& l = g.layer(id);
    const double cost = 3.0 * layer_forward_flops(g, id, batch) / kGpuFlopsPerMs;
    if (l.kind != LayerKind::kConv2d) return {{"default", 0, cost}};
    bind();
    const cuda::ConvShape s = conv_geom(g, l, batch);
    const Measured m = measured_choices(s);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      planned_[conv_key(s)][batch] = m.choices;
    }
    std::vector<Algorithm> out;
    for (size_t k = 0; k < m.choices.size(); ++k)
      out.push_back({m.choices[k].name, floats_for(m.choices[k].workspace_bytes),
                     m.ms.empty() ? cost * (1.0 + 0.1 * static_cast<double>(k)) : m.ms[k]});
    return out;
  }

  void forward(const Graph& g, int id, LayerIO& io, bool training) const override {
    bind();
    const Layer& l = g.layer(id);
    const int64_t n = io.n;
    const int64_t count = n * l.out.numel();
    const int64_t hw = l.out.h * l.out.w;
    switch (l.kind) {
      case LayerKind::kInput:
        break;  // the executor copies the batch into the output buffer
      case LayerKind::kConv2d: {
        const cuda::ConvShape s = conv_geom(g, l, n);
        const cuda::ConvChoice c = conv_choice(s, io.algorithm);
        cuda::conv_forward(cudnn_, stream_, s, c, io.x[0], io.params[0],
                           param_or_null(io.params, 1), io.y, io.workspace, c.workspace_bytes);
        break;
      }
      case LayerKind::kFc:
        cuda::fc_forward(cublas_, stream_, n, g.layer(l.inputs[0]).out.numel(), l.out.c, io.x[0],
                         io.params[0], param_or_null(io.params, 1), io.y);
        break;
      case LayerKind::kBatchNorm:
        if (training) {
          float* running_mean = io.update_running_stats ? io.params[2] : nullptr;
          float* running_var = io.update_running_stats ? io.params[3] : nullptr;
          if (cuda::cudnn_batchnorm_fits(n, l.out.c, hw, l.attrs.eps))
            cuda::cudnn_batchnorm_forward_train(
                cudnn_, n, l.out.c, hw, l.attrs.eps, l.attrs.momentum, io.x[0], io.params[0],
                io.params[1], io.y, io.aux, io.aux + l.out.c, running_mean, running_var);
          else
            cuda::batchnorm_forward_train(stream_, n, l.out.c, hw, l.attrs.eps, l.attrs.momentum,
                                          io.x[0], io.params[0], io.params[1], io.y, io.aux,
                                          io.aux + l.out.c, running_mean, running_var);
        } else
          cuda::batchnorm_forward_infer(stream_, n, l.out.c, hw, l.attrs.eps, io.x[0], io.params[0],
                                        io.params[1], io.params[2], io.params[3], io.y);
        break;
      case LayerKind::kRelu:
        cuda::relu_forward(stream_, count, io.x[0], io.y);
        break;
      case LayerKind::kMaxPool:
        cuda::maxpool_forward(stream_, pool_shape(g, l, n), io.x[0], io.y);
        break;
      case LayerKind::kAvgPool:
        cuda::avgpool_forward(stream_, pool_shape(g, l, n), io.x[0], io.y);
        break;
      case LayerKind::kGlobalAvgPool: {
        const Dims& in = g.layer(l.inputs[0]).out;
        cuda::global_avgpool_forward(stream_, n * in.c, in.h * in.w, io.x[0], io.y);
        break;
      }
      case LayerKind::kDropout:
        if (training)
          cuda::dropout_forward(stream_, count, l.attrs.p, io.dropout_seed, io.x[0], io.y);
        else if (io.y != io.x[0])
          copy(io.y, io.x[0], count);
        break;
      case LayerKind::kLrn:
        cuda::lrn_forward(stream_, lrn_shape(l, n), io.x[0], io.y);
        break;
      case LayerKind::kAdd:
        cuda::add_forward(stream_, count, io.x[0], io.x[1], io.y);
        break;
      case LayerKind::kConcat: {
        int64_t first = 0;
        for (size_t i = 0; i < io.x.size(); ++i) {
          const int64_t c = g.layer(l.inputs[i]).out.c;
          cuda::concat_forward_part(stream_, n, hw, c, first, l.out.c, io.x[i], io.y);
          first += c;
        }
        break;
      }
      case LayerKind::kFlatten:
        if (io.y != io.x[0]) copy(io.y, io.x[0], count);  // in place it is a view
        break;
      case LayerKind::kSoftmaxXent:
        softmax_xent(g.layer(l.inputs[0]).out.numel(), io);
        break;
    }
  }

  void backward(const Graph& g, int id, LayerIO& io) const override {
    bind();
    const Layer& l = g.layer(id);
    const int64_t n = io.n;
    const int64_t count = n * l.out.numel();
    const int64_t hw = l.out.h * l.out.w;
    switch (l.kind) {
      case LayerKind::kInput:
        break;
      case LayerKind::kConv2d: {
        const cuda::ConvShape s = conv_geom(g, l, n);
        const cuda::ConvChoice c = conv_choice(s, io.algorithm);
        cuda::conv_backward(cudnn_, stream_, s, c, io.x[0], io.params[0], io.dy, io.dx[0],
                            io.param_grads[0], param_or_null(io.param_grads, 1), io.workspace,
                            c.workspace_bytes);
        break;
      }
      case LayerKind::kFc:
        cuda::fc_backward(cublas_, stream_, n, g.layer(l.inputs[0]).out.numel(), l.out.c, io.x[0],
                          io.params[0], io.dy, io.dx[0], io.param_grads[0],
                          param_or_null(io.param_grads, 1));
        break;
      case LayerKind::kBatchNorm:
        if (io.dx[0] && cuda::cudnn_batchnorm_fits(n, l.out.c, hw, l.attrs.eps))
          cuda::cudnn_batchnorm_backward(cudnn_, n, l.out.c, hw, l.attrs.eps, io.x[0], io.params[0],
                                         io.aux, io.aux + l.out.c, io.dy, io.dx[0],
                                         io.param_grads[0], io.param_grads[1]);
        else
          cuda::batchnorm_backward(stream_, n, l.out.c, hw, io.x[0], io.params[0], io.aux,
                                   io.aux + l.out.c, io.dy, io.dx[0], io.param_grads[0],
                                   io.param_grads[1]);
        break;
      case LayerKind::kRelu:
        if (io.dx[0]) cuda::relu_backward(stream_, count, io.y, io.dy, io.dx[0]);
        break;
      case LayerKind::kMaxPool:
        if (io.dx[0])
          cuda::maxpool_backward(stream_, pool_shape(g, l, n), io.x[0], io.dy, io.dx[0]);
        break;
      case LayerKind::kAvgPool:
        if (io.dx[0]) cuda::avgpool_backward(stream_, pool_shape(g, l, n), io.dy, io.dx[0]);
        break;
      case LayerKind::kGlobalAvgPool:
        if (io.dx[0]) {
          const Dims& in = g.layer(l.inputs[0]).out;
          cuda::global_avgpool_backward(stream_, n * in.c, in.h * in.w, io.dy, io.dx[0]);
        }
        break;
      case LayerKind::kDropout:
        if (io.dx[0])
          cuda::dropout_backward(stream_, count, l.attrs.p, io.dropout_seed, io.dy, io.dx[0]);
        break;
      case LayerKind::kLrn:
        if (io.dx[0]) cuda::lrn_backward(stream_, lrn_shape(l, n), io.x[0], io.y, io.dy, io.dx[0]);
        break;
      case LayerKind::kAdd:
      case LayerKind::kFlatten:
        for (float* dx : io.dx)
          if (dx && dx != io.dy) cuda::accumulate(stream_, count, io.dy, dx);  // dx == dy: passed
        break;
      case LayerKind::kConcat: {
        int64_t first = 0;
        for (size_t i = 0; i < io.dx.size(); ++i) {
          const int64_t c = g.layer(l.inputs[i]).out.c;
          if (io.dx[i])
            cuda::concat_backward_part(stream_, n, hw, c, first, l.out.c, io.dy, io.dx[i]);
          first += c;
        }
        break;
      }
      case LayerKind::kSoftmaxXent:
        if (io.dx[0])
          cuda::softmax_xent_backward(stream_, n, g.layer(l.inputs[0]).out.numel(), io.aux,
                                      io.labels, io.dx[0]);
        break;
    }
  }

  void sgd_update(int64_t count, const SgdConfig& cfg, float* w, const float* dw,
                  float* velocity) const override {
    bind();
    cuda::sgd_update(stream_, count, cfg.lr, cfg.momentum, cfg.weight_decay, w, dw, velocity,
                     cfg.guarded ? &pass_->flags : nullptr);
  }

  void fill_zero(float* data, int64_t count) const override {
    if (count <= 0) return;
    bind();
    SN_CUDA_CHECK(cudaMemsetAsync(data, 0, static_cast<size_t>(count) * sizeof(float), stream_));
  }

  bool all_finite(const float* data, int64_t count) const override {
    if (count <= 0) return true;
    bind();
    std::lock_guard<std::mutex> lock(mutex_);
    int* flag = static_cast<int*>(scratch(sizeof(int)));
    SN_CUDA_CHECK(cudaMemsetAsync(flag, 0, sizeof(int), stream_));
    cuda::flag_non_finite(stream_, count, data, flag);
    int host = 0;
    SN_CUDA_CHECK(cudaMemcpyAsync(&host, flag, sizeof(int), cudaMemcpyDeviceToHost, stream_));
    SN_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return host == 0;
  }

  // cudaMemcpyDefault: either side may be host memory the device can address.
  void copy(float* dst, const float* src, int64_t count) const override {
    if (count <= 0 || dst == src) return;
    bind();
    SN_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(count) * sizeof(float),
                                  cudaMemcpyDefault, stream_));
  }

  // ---- Note [Device memory] in backend/backend.cpp.
  void* allocate_device(int64_t bytes) const override {
    bind();
    void* p = nullptr;
    const cudaError_t status = cudaMalloc(&p, static_cast<size_t>(std::max<int64_t>(bytes, 1)));
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // not sticky: the device stays usable
      size_t free_bytes = 0, total_bytes = 0;
      cudaMemGetInfo(&free_bytes, &total_bytes);
      throw OutOfMemoryError("cuda:" + std::to_string(device_) + " cannot allocate " +
                             std::to_string(bytes) + " bytes (" + std::to_string(free_bytes) +
                             " of " + std::to_string(total_bytes) +
                             " free); use a smaller budget or batch size");
    }
    SN_CUDA_CHECK(status);
    return p;
  }
  void free_device(void* p) const override {
    if (p) cudaFree(p);  // never throws: a destructor's call
  }
  void* allocate_host(int64_t bytes) const override {
    bind();
    void* p = nullptr;
    if (cudaMallocHost(&p, static_cast<size_t>(std::max<int64_t>(bytes, 1))) != cudaSuccess) {
      cudaGetLastError();
      throw OutOfMemoryError("cannot pin " + std::to_string(bytes) +
                             " bytes of host memory for offloaded tensors; lower host_budget "
                             "or the batch size");
    }
    return p;
  }
  void free_host(void* p) const override {
    if (p) cudaFreeHost(p);
  }
  bool host_addressable() const override { return false; }

  void upload(void* dst, const void* src, int64_t bytes) const override {
    if (bytes <= 0) return;
    bind();
    // On the upload stream, after the compute queue so far (dst may be a block a queued
    // kernel still reads), and before everything queued after it.
    SN_CUDA_CHECK(cudaEventRecord(compute_ready_, stream_));
    SN_CUDA_CHECK(cudaStreamWaitEvent(upload_stream_, compute_ready_, 0));
    // cudaMemcpyDefault: under the parameter-offload plans dst may be in the pinned slab.
    SN_CUDA_CHECK(
        cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), cudaMemcpyDefault, upload_stream_));
    SN_CUDA_CHECK(cudaEventRecord(upload_done_, upload_stream_));
    SN_CUDA_CHECK(cudaStreamWaitEvent(stream_, upload_done_, 0));
  }

  void download(void* dst, const void* src, int64_t bytes) const override {
    if (bytes <= 0) return;
    bind();
    // cudaMemcpyDefault: src may be in the pinned slab (parameter offload).
    SN_CUDA_CHECK(
        cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), cudaMemcpyDefault, stream_));
    SN_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void fill_nan(float* data, int64_t count) const override {
    bind();
    cuda::fill(stream_, count, std::numeric_limits<float>::quiet_NaN(), data);
  }

  void synchronize() const override {
    bind();
    SN_CUDA_CHECK(cudaStreamSynchronize(upload_stream_));
    SN_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  bool defers_results() const override { return true; }

  void begin_pass() const override {
    bind();
    SN_CUDA_CHECK(cudaMemsetAsync(pass_, 0, sizeof(DevicePass), stream_));
  }

  PassResult finish_pass() const override {
    bind();
    SN_CUDA_CHECK(
        cudaMemcpyAsync(pass_host_, pass_, sizeof(DevicePass), cudaMemcpyDeviceToHost, stream_));
    synchronize();
    PassResult r;
    r.deferred = true;
    r.loss = static_cast<double>(static_cast<float>(pass_host_->loss));  // the CPU's float
    r.correct = pass_host_->correct;
    r.loss_non_finite = (pass_host_->flags & cuda::kLossNonFinite) != 0;
    r.grad_non_finite = (pass_host_->flags & cuda::kGradNonFinite) != 0;
    r.param_non_finite = (pass_host_->flags & cuda::kParamNonFinite) != 0;
    return r;
  }

  double copy_bytes_per_ms() const override { return kPcieBytesPerMs; }
  // Note [CUDA copy streams] in copy_engine.cpp; no random delays on a GPU.
  std::unique_ptr<CopyEngine> make_copy_engine(int num_events, int /*max_delay_us*/,
                                               uint64_t /*seed*/) const override {
    return make_cuda_copy_engine(device_, stream_, num_events);
  }

  cudaStream_t stream() const { return stream_; }

 private:
  void bind() const { SN_CUDA_CHECK(cudaSetDevice(device_)); }

  void release() {
    if (cublas_) cublasDestroy(cublas_);
    if (cudnn_) cudnnDestroy(cudnn_);
    if (scratch_) cudaFree(scratch_);
    if (pass_) cudaFree(pass_);
    if (pass_host_) cudaFreeHost(pass_host_);
    if (upload_done_) cudaEventDestroy(upload_done_);
    if (compute_ready_) cudaEventDestroy(compute_ready_);
    if (upload_stream_) cudaStreamDestroy(upload_stream_);
    if (stream_) cudaStreamDestroy(stream_);
    pass_ = nullptr;
    pass_host_ = nullptr;
    upload_done_ = nullptr;
    compute_ready_ = nullptr;
    upload_stream_ = nullptr;
    cublas_ = nullptr;
    cudnn_ = nullptr;
    scratch_ = nullptr;
    stream_ = nullptr;
  }

  // Note [Measured convolution algorithms]
  // cuDNN's heuristic lists the candidate algorithms; each is then run once (forward and
  // both backward directions, after a warm-up) at this shape and batch, and the list is
  // ordered by measured time, which becomes its cost. The planner takes the fastest whose
  // workspace fits the bytes free at that step, so the choice is re-made with every plan.
  // Measurements are cached per device and shape for the process: every session (every
  // policy) of a process sees the same order, so policies stay bit-identical on one GPU.
  // Only deterministic FP32 algorithms are candidates, with the workspace asked for again
  // at FMA math; one that cuDNN refuses when it is run, or whose workspace does not fit
  // the memory free, is dropped.
  // The smallest-workspace choice stays last (the placement's last resort). Set
  // SUPERNEURONS_CUDNN_BENCHMARK=0 for the heuristic order without measuring.
  struct Measured {
    std::vector<cuda::ConvChoice> choices;
    std::vector<double> ms;  // empty: not measured
  };

  Measured measured_choices(const cuda::ConvShape& s) const {
    static std::mutex cache_mutex;
    const char* env = std::getenv("SUPERNEURONS_CUDNN_BENCHMARK");
    const bool measure = env == nullptr || std::string(env) != "0";
    static std::map<std::tuple<int, ConvKey, int64_t, bool>, Measured> cache;
    const auto key = std::make_tuple(device_, conv_key(s), s.n, measure);
    {
      std::lock_guard<std::mutex> lock(cache_mutex);
      auto it = cache.find(key);
      if (it != cache.end()) return it->second;
    }
    Measured m;
    m.choices = cuda::conv_algorithms(cudnn_, s);
    if (measure) m.ms = cuda::conv_benchmark_ms(cudnn_, stream_, s, m.choices);
    // Unmeasurable choices dropped, the fastest first, the least workspace last.
    std::vector<size_t> workspace;
    for (const cuda::ConvChoice& c : m.choices) workspace.push_back(c.workspace_bytes);
    const std::vector<size_t> order = cuda::measured_order(workspace, m.ms);
    Measured sorted;  // nothing measured: the heuristic's list, ms empty
    if (order.empty()) sorted.choices = m.choices;
    for (size_t k : order) {
      sorted.choices.push_back(m.choices[k]);
      sorted.ms.push_back(m.ms[k]);
    }
    m = std::move(sorted);
    std::lock_guard<std::mutex> lock(cache_mutex);
    return cache.emplace(key, std::move(m)).first->second;
  }

  // The choice planned for this shape by algorithms() at the smallest planned batch >= s.n
  // (the compiled batch; a last, smaller batch reuses it) or, for a shape never planned,
  // cuDNN's list at this batch. The workspace it needs at s.n must fit in what was planned.
  cuda::ConvChoice conv_choice(const cuda::ConvShape& s, int algorithm) const {
    std::vector<cuda::ConvChoice> choices;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = planned_.find(conv_key(s));
      if (it != planned_.end()) {
        auto at = it->second.lower_bound(s.n);
        if (at != it->second.end()) choices = at->second;
      }
    }
    const bool planned = !choices.empty();
    if (!planned) choices = cuda::conv_algorithms(cudnn_, s);
    if (algorithm < 0 || static_cast<size_t>(algorithm) >= choices.size())
      throw InternalError("internal error: convolution algorithm " + std::to_string(algorithm) +
                          " of " + std::to_string(choices.size()) + " cuDNN choices");
    cuda::ConvChoice c = choices[static_cast<size_t>(algorithm)];
    if (planned) {
      // At a smaller last batch an algorithm could need more workspace than at the
      // planned one: then the last resort (the least workspace) runs in what was planned.
      const size_t planned_bytes = c.workspace_bytes;
      size_t need = cuda::conv_workspace_bytes(cudnn_, s, c);
      if (need > planned_bytes) {
        c = choices.back();
        need = cuda::conv_workspace_bytes(cudnn_, s, c);
      }
      SN_ASSERT(need <= planned_bytes, "cuDNN needs " + std::to_string(need) +
                                           " workspace bytes at batch " + std::to_string(s.n) +
                                           ", more than the " + std::to_string(planned_bytes) +
                                           " planned");
      c.workspace_bytes = planned_bytes;
    }
    return c;
  }

  // Device scratch of at least `bytes`, kept between calls; the caller holds mutex_.
  void* scratch(size_t bytes) const {
    if (bytes > scratch_bytes_) {
      SN_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the old block may still be in use
      if (scratch_) SN_CUDA_CHECK(cudaFree(scratch_));
      scratch_ = nullptr;
      scratch_bytes_ = 0;
      SN_CUDA_CHECK(cudaMalloc(&scratch_, bytes));
      scratch_bytes_ = bytes;
    }
    return scratch_;
  }

  void softmax_xent(int64_t classes, LayerIO& io) const {
    const int64_t n = io.n;
    std::lock_guard<std::mutex> lock(mutex_);
    // [2 * n row results] in scratch; the mean loss and the count stay on the device until
    // finish_pass (Note [Deferred results] in exec/executor.cpp).
    auto* rows = static_cast<double*>(scratch(static_cast<size_t>(2 * n) * sizeof(double)));
    cuda::softmax_xent_forward(stream_, n, classes, io.x[0], io.labels, io.aux, rows, &pass_->loss,
                               &pass_->correct, &pass_->flags);
  }

  // What a pass leaves on the device for finish_pass.
  struct DevicePass {
    double loss;
    long long correct;
    int flags;  // cuda::kLossNonFinite | ...
  };

  int device_;
  std::unique_ptr<Backend> cpu_;  // answers the planning questions; runs no kernel
  cudaStream_t stream_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  mutable std::mutex mutex_;  // guards planned_ and the scratch block
  mutable std::map<ConvKey, std::map<int64_t, std::vector<cuda::ConvChoice>>> planned_;  // by batch
  cudaStream_t upload_stream_ = nullptr;
  cudaEvent_t compute_ready_ = nullptr, upload_done_ = nullptr;
  DevicePass* pass_ = nullptr;       // device
  DevicePass* pass_host_ = nullptr;  // pinned
  mutable void* scratch_ = nullptr;
  mutable size_t scratch_bytes_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int device) {
  return std::make_unique<CudaBackend>(device);
}

namespace {

const CudaBackend& as_cuda(const Backend& backend, const char* what) {
  const auto* cuda = dynamic_cast<const CudaBackend*>(&backend);
  if (cuda == nullptr)
    throw ArgumentError(std::string(what) + " needs the CUDA backend, got '" + backend.name() +
                        "'");
  return *cuda;
}

}  // namespace

void cuda_synchronize(const Backend& backend) {
  as_cuda(backend, "cuda_synchronize").synchronize();
}

cudaStream_t cuda_stream(const Backend& backend) {
  return as_cuda(backend, "cuda_stream").stream();
}

}  // namespace sn
