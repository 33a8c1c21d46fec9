// cuDNN convolution (see conv.h). cuDNN 9 marks its whole legacy API deprecated in favour
// of the graph API; the legacy calls still work and are much thinner, so this file (and
// only this file) silences the deprecation warnings.
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif

#include "backend/cuda/conv.h"

#include <algorithm>
#include <climits>
#include <limits>
#include <memory>

#include "backend/cuda/kernels.h"
#include "backend/cuda/library_check.h"
#include "core/errors.h"

namespace sn::cuda {
namespace {

int to_int(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX)
    throw ArgumentError(std::string("convolution ") + what +
                        " does not fit cuDNN's int: " + std::to_string(v));
  return static_cast<int>(v);
}

// The four descriptors of one convolution, destroyed on every path.
struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

  explicit Descriptors(const ConvShape& s) {
    // cuDNN's legacy API indexes a tensor with int: the whole tensor must fit, too.
    to_int(s.n * s.c_in * s.h_in * s.w_in, "input (elements of the batch)");
    to_int(s.n * s.c_out * s.h_out * s.w_out, "output (elements of the batch)");
    try {
      SN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
      SN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
      SN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
      SN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
      SN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                                to_int(s.n, "batch"), to_int(s.c_in, "channels"),
                                                to_int(s.h_in, "height"), to_int(s.w_in, "width")));
      SN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(
          y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, to_int(s.n, "batch"), to_int(s.c_out, "channels"),
          to_int(s.h_out, "height"), to_int(s.w_out, "width")));
      SN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(
          w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, to_int(s.c_out, "channels"),
          to_int(s.c_in / s.groups, "channels"), to_int(s.kernel_h, "kernel"),
          to_int(s.kernel_w, "kernel")));
      SN_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
          conv, to_int(s.pad_h, "padding"), to_int(s.pad_w, "padding"),
          to_int(s.stride_h, "stride"), to_int(s.stride_w, "stride"),
          to_int(s.dilation_h, "dilation"), to_int(s.dilation_w, "dilation"),
          CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
      SN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, to_int(s.groups, "groups")));
      SN_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH));
    } catch (...) {
      release();
      throw;
    }
  }
  ~Descriptors() { release(); }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;

  void release() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    x = y = nullptr;
    w = nullptr;
    conv = nullptr;
  }
};

// FP32 arithmetic (no tensor-op math) and deterministic: an algorithm with atomics would
// make two runs of one plan, and two policies, differ in their last bits.
template <typename Perf>
bool usable(const Perf& p) {
  return p.status == CUDNN_STATUS_SUCCESS && p.mathType != CUDNN_TENSOR_OP_MATH &&
         p.mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION &&
         p.determinism == CUDNN_DETERMINISTIC;
}

struct Ranked {
  int algo;
  size_t bytes;
};

template <typename Perf>
std::vector<Ranked> keep_usable(const Perf* perf, int returned) {
  std::vector<Ranked> out;
  for (int i = 0; i < returned; ++i)
    if (usable(perf[i])) out.push_back({static_cast<int>(perf[i].algo), perf[i].memory});
  if (out.empty())
    throw CudaError(
        "cuDNN's heuristic offers no deterministic FP32 (FMA) algorithm for this convolution");
  return out;
}

std::vector<Ranked> forward_ranked(cudnnHandle_t h, const Descriptors& d) {
  int max = 0, returned = 0;
  SN_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(static_cast<size_t>(std::max(max, 1)));
  SN_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, max, &returned,
                                                        perf.data()));
  return keep_usable(perf.data(), returned);
}

std::vector<Ranked> backward_data_ranked(cudnnHandle_t h, const Descriptors& d) {
  int max = 0, returned = 0;
  SN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max));
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(static_cast<size_t>(std::max(max, 1)));
  SN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, max,
                                                             &returned, perf.data()));
  return keep_usable(perf.data(), returned);
}

std::vector<Ranked> backward_filter_ranked(cudnnHandle_t h, const Descriptors& d) {
  int max = 0, returned = 0;
  SN_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max));
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(static_cast<size_t>(std::max(max, 1)));
  SN_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, max,
                                                               &returned, perf.data()));
  return keep_usable(perf.data(), returned);
}

const Ranked& smallest(const std::vector<Ranked>& v) {
  return *std::min_element(v.begin(), v.end(),
                           [](const Ranked& a, const Ranked& b) { return a.bytes < b.bytes; });
}

ConvChoice make_choice(const Ranked& f, const Ranked& bd, const Ranked& bf) {
  ConvChoice c;
  c.forward = f.algo;
  c.backward_data = bd.algo;
  c.backward_filter = bf.algo;
  c.workspace_bytes = std::max({f.bytes, bd.bytes, bf.bytes});
  c.name = "cudnn-fwd" + std::to_string(f.algo) + "-bwd-data" + std::to_string(bd.algo) +
           "-bwd-filter" + std::to_string(bf.algo);
  return c;
}

}  // namespace

std::vector<ConvChoice> conv_algorithms(cudnnHandle_t handle, const ConvShape& s) {
  const Descriptors d(s);
  const std::vector<Ranked> f = forward_ranked(handle, d);
  const std::vector<Ranked> bd = backward_data_ranked(handle, d);
  const std::vector<Ranked> bf = backward_filter_ranked(handle, d);
  const size_t ranks = std::max({f.size(), bd.size(), bf.size()});
  std::vector<ConvChoice> out;
  auto add = [&](const ConvChoice& c) {
    for (const ConvChoice& o : out)
      if (o.name == c.name) return;
    out.push_back(c);
  };
  for (size_t k = 0; k < ranks; ++k)
    add(make_choice(f[std::min(k, f.size() - 1)], bd[std::min(k, bd.size() - 1)],
                    bf[std::min(k, bf.size() - 1)]));
  add(make_choice(smallest(f), smallest(bd), smallest(bf)));
  // The heuristic's memory figure is for the math type it lists; the descriptor asks for
  // FMA math, so the workspace is asked for again with the descriptor as it is set.
  for (ConvChoice& c : out) c.workspace_bytes = conv_workspace_bytes(handle, s, c);
  return out;
}

size_t conv_workspace_bytes(cudnnHandle_t handle, const ConvShape& s, const ConvChoice& c) {
  const Descriptors d(s);
  size_t f = 0, bd = 0, bf = 0;
  SN_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(
      handle, d.x, d.w, d.conv, d.y, static_cast<cudnnConvolutionFwdAlgo_t>(c.forward), &f));
  SN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
      handle, d.w, d.y, d.conv, d.x, static_cast<cudnnConvolutionBwdDataAlgo_t>(c.backward_data),
      &bd));
  SN_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
      handle, d.x, d.y, d.conv, d.w,
      static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.backward_filter), &bf));
  return std::max({f, bd, bf});
}

void conv_forward(cudnnHandle_t handle, cudaStream_t stream, const ConvShape& s,
                  const ConvChoice& c, const float* x, const float* w, const float* bias, float* y,
                  void* workspace, size_t workspace_bytes) {
  const Descriptors d(s);
  const float one = 1.0f, zero = 0.0f;
  SN_CUDNN_CHECK(cudnnConvolutionForward(handle, &one, d.x, x, d.w, w, d.conv,
                                         static_cast<cudnnConvolutionFwdAlgo_t>(c.forward),
                                         workspace, workspace_bytes, &zero, d.y, y));
  if (bias != nullptr) add_channel_bias(stream, s.n, s.c_out, s.h_out * s.w_out, bias, y);
}

void conv_backward(cudnnHandle_t handle, cudaStream_t stream, const ConvShape& s,
                   const ConvChoice& c, const float* x, const float* w, const float* dy, float* dx,
                   float* dw, float* dbias, void* workspace, size_t workspace_bytes) {
  const Descriptors d(s);
  const float one = 1.0f, zero = 0.0f;
  if (dx != nullptr)  // accumulated: beta = 1 (Note [Gradient accumulation])
    SN_CUDNN_CHECK(
        cudnnConvolutionBackwardData(handle, &one, d.w, w, d.y, dy, d.conv,
                                     static_cast<cudnnConvolutionBwdDataAlgo_t>(c.backward_data),
                                     workspace, workspace_bytes, &one, d.x, dx));
  SN_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
      handle, &one, d.x, x, d.y, dy, d.conv,
      static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.backward_filter), workspace, workspace_bytes,
      &zero, d.w, dw));
  if (dbias != nullptr) channel_sum(stream, s.n, s.c_out, s.h_out * s.w_out, dy, dbias);
}

std::vector<double> conv_benchmark_ms(cudnnHandle_t handle, cudaStream_t stream, const ConvShape& s,
                                      const std::vector<ConvChoice>& choices) {
  const size_t x_bytes = static_cast<size_t>(s.n * s.c_in * s.h_in * s.w_in) * sizeof(float);
  const size_t y_bytes = static_cast<size_t>(s.n * s.c_out * s.h_out * s.w_out) * sizeof(float);
  const size_t w_bytes =
      static_cast<size_t>(s.c_out * (s.c_in / s.groups) * s.kernel_h * s.kernel_w) * sizeof(float);
  // The workspace block is as large as the largest workspace that fits in what is free
  // (with 64 MiB to spare); a choice needing more cannot run on this device now and is
  // reported as not measured (infinity), like one that fails.
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
    cudaGetLastError();
    return {};
  }
  const size_t data_bytes = 2 * x_bytes + y_bytes + 2 * w_bytes + (size_t{64} << 20);
  const size_t room = free_bytes > data_bytes ? free_bytes - data_bytes : 0;
  size_t ws_bytes = 0;
  for (const ConvChoice& c : choices)
    if (c.workspace_bytes <= room) ws_bytes = std::max(ws_bytes, c.workspace_bytes);
  // x, dx, y (also dy), w, dw, workspace; freed on every path.
  std::vector<void*> blocks;
  auto release = [&] {
    for (void* b : blocks) cudaFree(b);
    blocks.clear();
  };
  for (size_t bytes :
       {x_bytes, x_bytes, y_bytes, w_bytes, w_bytes, std::max<size_t>(ws_bytes, 1)}) {
    void* b = nullptr;
    if (cudaMalloc(&b, bytes) != cudaSuccess) {
      cudaGetLastError();  // out of memory is not sticky
      release();
      return {};
    }
    blocks.push_back(b);
    if (cudaMemsetAsync(b, 0, bytes, stream) != cudaSuccess) {
      cudaGetLastError();  // not left behind for the next launch check to find
      release();
      return {};
    }
  }
  auto* x = static_cast<float*>(blocks[0]);
  auto* dx = static_cast<float*>(blocks[1]);
  auto* y = static_cast<float*>(blocks[2]);
  auto* w = static_cast<float*>(blocks[3]);
  auto* dw = static_cast<float*>(blocks[4]);
  cudaEvent_t start = nullptr, stop = nullptr;
  std::vector<double> ms;
  const double not_measured = std::numeric_limits<double>::infinity();
  try {
    SN_CUDA_CHECK(cudaEventCreate(&start));
    SN_CUDA_CHECK(cudaEventCreate(&stop));
    for (const ConvChoice& c : choices) {
      if (c.workspace_bytes > ws_bytes) {
        ms.push_back(not_measured);
        continue;
      }
      auto run = [&] {
        conv_forward(handle, stream, s, c, x, w, nullptr, y, blocks[5], c.workspace_bytes);
        conv_backward(handle, stream, s, c, x, w, y, dx, dw, nullptr, blocks[5], c.workspace_bytes);
      };
      auto refused = [&] {
        // cuDNN refused this choice here (a status, or memory inside the library): it is
        // not offered. A sticky device error would surface at the next checked call.
        cudaStreamSynchronize(stream);
        cudaGetLastError();
        ms.push_back(not_measured);
      };
      try {
        run();  // warm-up: cuDNN may compile or load the kernels on first use
        SN_CUDA_CHECK(cudaEventRecord(start, stream));
        run();
        SN_CUDA_CHECK(cudaEventRecord(stop, stream));
        SN_CUDA_CHECK(cudaEventSynchronize(stop));
        float t = 0.0f;
        SN_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
        ms.push_back(static_cast<double>(t));
      } catch (const CudaError&) {
        refused();
      } catch (const OutOfMemoryError&) {
        refused();
      }
    }
  } catch (...) {
    cudaStreamSynchronize(stream);
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    release();
    throw;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  release();
  return ms;
}

}  // namespace sn::cuda
