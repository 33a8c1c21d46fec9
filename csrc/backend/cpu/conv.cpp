// Convolution as im2col + GEMM, one image and one group at a time.
//
// Note [Conv as GEMM]
// For image b and group g, with K = (c_in / groups) * kernel_h * kernel_w and
// P = h_out * w_out:
//   forward:  y_g[c_out_g, P] = w_g[c_out_g, K] * col[K, P]          (+ bias)
//   dw:       dw_g[c_out_g, K] += dy_g[c_out_g, P] * col[K, P]^T      (summed over images)
//   dx:       dcol[K, P] = w_g^T * dy_g, then col2im adds dcol into dx
// col is the im2col of x_g, held in the workspace; the dx step reuses the same buffer
// after the dw step is done with it. A 1x1, stride-1, unpadded conv needs no im2col:
// x_g [c_in_g, h*w] already is col, so the workspace is empty and dx is accumulated by
// the GEMM itself (beta = 1).
#include <algorithm>
#include <cassert>
#include <cstring>

#include "backend/cpu/blas.h"
#include "backend/cpu/kernels.h"

namespace sn::cpu {
namespace {

bool is_pointwise(const ConvGeom& g) {
  return g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 &&
         g.pad_w == 0;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The output positions o in [0, out) whose input position o * stride + offset lies in
// [0, in) form one contiguous range [*lo, *hi); outside it the window reads padding.
void valid_range(int64_t offset, int64_t stride, int64_t in, int64_t out, int64_t* lo,
                 int64_t* hi) {
  int64_t first = offset >= 0 ? 0 : ceil_div(-offset, stride);
  int64_t last = in - offset <= 0 ? 0 : ceil_div(in - offset, stride);
  *hi = std::min(last, out);
  *lo = std::min(first, *hi);
}

// col[(c * kernel_h + ki) * kernel_w + kj, oh * w_out + ow] = x[c, ih, iw] (0 in padding).
void im2col(const ConvGeom& g, int64_t channels, const float* x, float* col) {
  const int64_t hw_out = g.h_out * g.w_out;
  for (int64_t c = 0; c < channels; ++c) {
    const float* x_c = x + c * g.h_in * g.w_in;
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      const int64_t off_h = ki * g.dilation_h - g.pad_h;
      int64_t oh_lo = 0, oh_hi = 0;
      valid_range(off_h, g.stride_h, g.h_in, g.h_out, &oh_lo, &oh_hi);
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        const int64_t off_w = kj * g.dilation_w - g.pad_w;
        int64_t ow_lo = 0, ow_hi = 0;
        valid_range(off_w, g.stride_w, g.w_in, g.w_out, &ow_lo, &ow_hi);
        float* row = col + ((c * g.kernel_h + ki) * g.kernel_w + kj) * hw_out;
        std::fill(row, row + oh_lo * g.w_out, 0.0f);
        for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
          const float* src = x_c + (oh * g.stride_h + off_h) * g.w_in + off_w;
          float* dst = row + oh * g.w_out;
          std::fill(dst, dst + ow_lo, 0.0f);
          if (g.stride_w == 1) {  // the common case: a contiguous copy
            std::copy(src + ow_lo, src + ow_hi, dst + ow_lo);
          } else {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow] = src[ow * g.stride_w];
          }
          std::fill(dst + ow_hi, dst + g.w_out, 0.0f);
        }
        std::fill(row + oh_hi * g.w_out, row + hw_out, 0.0f);
      }
    }
  }
}

// The adjoint of im2col: x[c, ih, iw] += every col entry that was read from it.
void col2im_add(const ConvGeom& g, int64_t channels, const float* col, float* x) {
  const int64_t hw_out = g.h_out * g.w_out;
  for (int64_t c = 0; c < channels; ++c) {
    float* x_c = x + c * g.h_in * g.w_in;
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      const int64_t off_h = ki * g.dilation_h - g.pad_h;
      int64_t oh_lo = 0, oh_hi = 0;
      valid_range(off_h, g.stride_h, g.h_in, g.h_out, &oh_lo, &oh_hi);
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        const int64_t off_w = kj * g.dilation_w - g.pad_w;
        int64_t ow_lo = 0, ow_hi = 0;
        valid_range(off_w, g.stride_w, g.w_in, g.w_out, &ow_lo, &ow_hi);
        const float* row = col + ((c * g.kernel_h + ki) * g.kernel_w + kj) * hw_out;
        for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
          float* dst = x_c + (oh * g.stride_h + off_h) * g.w_in + off_w;
          const float* src = row + oh * g.w_out;
          if (g.stride_w == 1) {  // contiguous, so the compiler can vectorize it
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow] += src[ow];
          } else {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow * g.stride_w] += src[ow];
          }
        }
      }
    }
  }
}

}  // namespace

int64_t conv2d_workspace_floats(const ConvGeom& g) {
  if (is_pointwise(g)) return 0;
  return (g.c_in / g.groups) * g.kernel_h * g.kernel_w * g.h_out * g.w_out;
}

void conv2d_forward(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y,
                    float* workspace) {
  const int64_t cin_g = g.c_in / g.groups;
  const int64_t cout_g = g.c_out / g.groups;
  const int64_t k = cin_g * g.kernel_h * g.kernel_w;
  const int64_t hw_in = g.h_in * g.w_in;
  const int64_t hw_out = g.h_out * g.w_out;
  const bool pointwise = is_pointwise(g);
  assert(!pointwise || hw_in == hw_out);

  for (int64_t b = 0; b < g.n; ++b) {
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const float* x_g = x + (b * g.c_in + grp * cin_g) * hw_in;
      float* y_g = y + (b * g.c_out + grp * cout_g) * hw_out;
      const float* col = x_g;
      if (!pointwise) {
        im2col(g, cin_g, x_g, workspace);
        col = workspace;
      }
      sgemm(false, false, cout_g, hw_out, k, 1.0f, w + grp * cout_g * k, k, col, hw_out, 0.0f, y_g,
            hw_out);
    }
    if (bias != nullptr) {
      for (int64_t c = 0; c < g.c_out; ++c) {
        float* y_c = y + (b * g.c_out + c) * hw_out;
        const float bc = bias[c];
        for (int64_t i = 0; i < hw_out; ++i) y_c[i] += bc;
      }
    }
  }
}

void conv2d_backward(const ConvGeom& g, const float* x, const float* w, const float* dy, float* dx,
                     float* dw, float* dbias, float* workspace) {
  const int64_t cin_g = g.c_in / g.groups;
  const int64_t cout_g = g.c_out / g.groups;
  const int64_t k = cin_g * g.kernel_h * g.kernel_w;
  const int64_t hw_in = g.h_in * g.w_in;
  const int64_t hw_out = g.h_out * g.w_out;
  const bool pointwise = is_pointwise(g);

  for (int64_t b = 0; b < g.n; ++b) {
    // dw is overwritten: the first image writes it, later images add to it.
    const float dw_beta = b == 0 ? 0.0f : 1.0f;
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const float* x_g = x + (b * g.c_in + grp * cin_g) * hw_in;
      const float* dy_g = dy + (b * g.c_out + grp * cout_g) * hw_out;
      const float* w_g = w + grp * cout_g * k;
      float* dw_g = dw + grp * cout_g * k;
      float* dx_g = dx == nullptr ? nullptr : dx + (b * g.c_in + grp * cin_g) * hw_in;

      if (pointwise) {
        sgemm(false, true, cout_g, k, hw_out, 1.0f, dy_g, hw_out, x_g, hw_out, dw_beta, dw_g, k);
        if (dx_g != nullptr) {
          sgemm(true, false, k, hw_out, cout_g, 1.0f, w_g, k, dy_g, hw_out, 1.0f, dx_g, hw_out);
        }
        continue;
      }
      im2col(g, cin_g, x_g, workspace);
      sgemm(false, true, cout_g, k, hw_out, 1.0f, dy_g, hw_out, workspace, hw_out, dw_beta, dw_g,
            k);
      if (dx_g != nullptr) {
        sgemm(true, false, k, hw_out, cout_g, 1.0f, w_g, k, dy_g, hw_out, 0.0f, workspace, hw_out);
        col2im_add(g, cin_g, workspace, dx_g);
      }
    }
  }

  if (dbias != nullptr) {
    for (int64_t c = 0; c < g.c_out; ++c) {
      double sum = 0.0;
      for (int64_t b = 0; b < g.n; ++b) {
        const float* dy_c = dy + (b * g.c_out + c) * hw_out;
        for (int64_t i = 0; i < hw_out; ++i) sum += dy_c[i];
      }
      dbias[c] = static_cast<float>(sum);
    }
  }
}

}  // namespace sn::cpu
