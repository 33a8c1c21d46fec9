// The shape of one convolution at a batch size, as every backend's kernels take it, and
// its construction from a graph layer (one place for both the CPU and CUDA backends).
#pragma once

#include <cstdint>

#include "graph/graph.h"

namespace sn {

struct ConvGeom {
  int64_t n = 1;  // batch
  int64_t c_in = 1, h_in = 1, w_in = 1;
  int64_t c_out = 1, h_out = 1, w_out = 1;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;  // c_in and c_out are both divisible by groups
};

// Layer l (a conv2d) of g at batch n.
inline ConvGeom conv_geom(const Graph& g, const Layer& l, int64_t n) {
  const Dims& in = g.layer(l.inputs[0]).out;
  const LayerAttrs& a = l.attrs;
  ConvGeom c;
  c.n = n;
  c.c_in = in.c;
  c.h_in = in.h;
  c.w_in = in.w;
  c.c_out = l.out.c;
  c.h_out = l.out.h;
  c.w_out = l.out.w;
  c.kernel_h = a.kernel_h;
  c.kernel_w = a.kernel_w;
  c.stride_h = a.stride_h;
  c.stride_w = a.stride_w;
  c.pad_h = a.pad_h;
  c.pad_w = a.pad_w;
  c.dilation_h = a.dilation_h;
  c.dilation_w = a.dilation_w;
  c.groups = a.groups;
  return c;
}

}  // namespace sn
