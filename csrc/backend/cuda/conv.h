// 2-D convolution through cuDNN's legacy convolution API: the algorithm choices come from
// cuDNN's heuristics (the *_v7 queries, which run no kernel), so planning needs no GPU
// time. FP32 with FMA math only (no TF32), so results stay comparable with the CPU's.
//
// Usage:
//   std::vector<sn::cuda::ConvChoice> c = sn::cuda::conv_algorithms(handle, shape);
//   sn::cuda::conv_forward(handle, shape, c[0], x, w, bias, y, workspace);
#pragma once

#include <cudnn.h>

#include <cstdint>
#include <string>
#include <vector>

#include "backend/conv_geom.h"

namespace sn::cuda {

using ConvShape = sn::ConvGeom;  // backend/conv_geom.h

// One way to run a conv layer: cuDNN's forward, backward-data and backward-filter
// algorithms (enum values) and the workspace the three share.
struct ConvChoice {
  int forward = 0, backward_data = 0, backward_filter = 0;
  size_t workspace_bytes = 0;
  std::string name;
};

// Fastest first by cuDNN's heuristic rank: the k-th choice pairs the k-th algorithm of each
// direction (the last one of a shorter list repeats); the last choice is the one with the
// smallest workspace in each direction. Never empty (CudaError when cuDNN offers nothing).
std::vector<ConvChoice> conv_algorithms(cudnnHandle_t handle, const ConvShape& s);
// The workspace `c` needs at shape `s` (e.g. a batch smaller than the planned one).
size_t conv_workspace_bytes(cudnnHandle_t handle, const ConvShape& s, const ConvChoice& c);

// Measured milliseconds of one forward plus backward (data and filter) for each choice, on
// scratch buffers of its own (zeros), after one warm-up run each; empty when the scratch
// cannot be allocated (the caller keeps the heuristic order). Waits for `stream`.
std::vector<double> conv_benchmark_ms(cudnnHandle_t handle, cudaStream_t stream, const ConvShape& s,
                                      const std::vector<ConvChoice>& choices);

// y = conv(x, w) (+ bias[c_out]); bias nullable.
void conv_forward(cudnnHandle_t handle, cudaStream_t stream, const ConvShape& s,
                  const ConvChoice& c, const float* x, const float* w, const float* bias, float* y,
                  void* workspace, size_t workspace_bytes);
// dx += dgrad (dx nullable), dw = wgrad, dbias = sum of dy (nullable).
void conv_backward(cudnnHandle_t handle, cudaStream_t stream, const ConvShape& s,
                   const ConvChoice& c, const float* x, const float* w, const float* dy, float* dx,
                   float* dw, float* dbias, void* workspace, size_t workspace_bytes);

}  // namespace sn::cuda
