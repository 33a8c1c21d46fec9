// Convolution as im2col + GEMM.
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
//
// Note [Conv threads]
// OpenBLAS runs on one thread (threads.cpp); the threads here split each GEMM's output
// into disjoint blocks, so every output element is still one reduction over the same
// inner dimension, in OpenBLAS's order, whatever the thread count:
// - forward, large P: threads split the output positions (rows oh of the image); each
//   builds the im2col columns of its rows in its own slice of the workspace, then
//   multiplies. No barrier.
// - forward, small P: threads build the im2col rows of their input channels, meet at a
//   barrier, then each multiplies its block of output channels.
// - backward: threads split the input channels. A thread owns the rows of col, the
//   columns of dw and the channels of dx of its channels, so for every image it builds
//   its im2col rows, adds its dw columns (images in order, as on one thread), then forms
//   its dcol rows and scatters them into its dx channels. No barrier.
// The one-image workspace of conv2d_workspace_floats is enough for all of it.
//
// Note [Chunked conv]
// conv2d_*_chunked lay the im2col of `images_per_chunk` images side by side,
// col[K, chunk * P], so the GEMMs are chunk times wider (and a weight matrix is read once
// per chunk, not once per image): what pays when P is small, deep in a network. The
// workspace holds col and the chunk's output (forward) or output gradient (backward)
// gathered into [c_out_g, chunk * P]:
//   forward:  gather im2col -> Y = w_g * col (column blocks) -> scatter Y (+ bias) into y
//   backward: gather dY; then per input-channel block: its im2col rows, its dw columns
//             (dw_g += dY * col^T, one reduction over chunk * P), its dcol rows
//             (w_g^T * dY, over the col rows just used) and col2im into its dx channels.
// The GEMM shapes differ from the one-image kernels', so the results differ from theirs
// in the last bits (Note [Fixed GEMM blocks]); they depend on the shape and the chunk,
// never on the thread count. dbias is the same sum as conv2d_backward's.

#include <algorithm>
#include <cassert>
#include <cstring>
#include <string>

#include "backend/cpu/blas.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"
#include "core/errors.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace sn::cpu {
namespace {

// The narrowest forward GEMM block: below four of these per image, the forward pass splits
// output channels instead of output positions (a GEMM a few columns wide wastes most of
// each vector register).
constexpr int64_t kMinBlockColumns = 64;  // output positions

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

// A block of the im2col matrix: channels [c_lo, c_hi) of the image x (one group's
// channels, [channels, h_in, w_in]) and output rows [oh_lo, oh_hi):
// col[((c - c_lo) * kernel_h + ki) * kernel_w + kj, (oh - oh_lo) * w_out + ow] =
// x[c, ih, iw] (0 in padding), with row stride ld (in floats).
void im2col(const ConvGeom& g, const float* x, int64_t c_lo, int64_t c_hi, int64_t oh_lo,
            int64_t oh_hi, float* col, int64_t ld) {
  for (int64_t c = c_lo; c < c_hi; ++c) {
    const float* x_c = x + c * g.h_in * g.w_in;
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      const int64_t off_h = ki * g.dilation_h - g.pad_h;
      int64_t valid_lo = 0, valid_hi = 0;
      valid_range(off_h, g.stride_h, g.h_in, g.h_out, &valid_lo, &valid_hi);
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        const int64_t off_w = kj * g.dilation_w - g.pad_w;
        int64_t ow_lo = 0, ow_hi = 0;
        valid_range(off_w, g.stride_w, g.w_in, g.w_out, &ow_lo, &ow_hi);
        float* row = col + (((c - c_lo) * g.kernel_h + ki) * g.kernel_w + kj) * ld;
        for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
          float* dst = row + (oh - oh_lo) * g.w_out;
          if (oh < valid_lo || oh >= valid_hi) {
            std::fill(dst, dst + g.w_out, 0.0f);
            continue;
          }
          const float* src = x_c + (oh * g.stride_h + off_h) * g.w_in + off_w;
          std::fill(dst, dst + ow_lo, 0.0f);
          if (g.stride_w == 1) {  // the common case: a contiguous copy
            std::copy(src + ow_lo, src + ow_hi, dst + ow_lo);
          } else {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow] = src[ow * g.stride_w];
          }
          std::fill(dst + ow_hi, dst + g.w_out, 0.0f);
        }
      }
    }
  }
}

// The adjoint of im2col for channels [c_lo, c_hi) and all output rows: x[c, ih, iw] +=
// every col entry that was read from it (col rows relative to c_lo, row stride ld).
void col2im_add(const ConvGeom& g, const float* col, int64_t ld, int64_t c_lo, int64_t c_hi,
                float* x) {
  for (int64_t c = c_lo; c < c_hi; ++c) {
    float* x_c = x + c * g.h_in * g.w_in;
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      const int64_t off_h = ki * g.dilation_h - g.pad_h;
      int64_t oh_lo = 0, oh_hi = 0;
      valid_range(off_h, g.stride_h, g.h_in, g.h_out, &oh_lo, &oh_hi);
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        const int64_t off_w = kj * g.dilation_w - g.pad_w;
        int64_t ow_lo = 0, ow_hi = 0;
        valid_range(off_w, g.stride_w, g.w_in, g.w_out, &ow_lo, &ow_hi);
        const float* row = col + (((c - c_lo) * g.kernel_h + ki) * g.kernel_w + kj) * ld;
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

// The shapes every conv kernel needs, checked against 32-bit BLAS indices up front: an
// exception cannot leave the OpenMP regions below.
struct ConvDims {
  int64_t cin_g, cout_g, khw, k, hw_in, hw_out;
  bool pointwise;
};

ConvDims conv_dims(const ConvGeom& g, int64_t images_per_gemm) {
  ConvDims d;
  d.cin_g = g.c_in / g.groups;
  d.cout_g = g.c_out / g.groups;
  d.khw = g.kernel_h * g.kernel_w;
  d.k = d.cin_g * d.khw;
  d.hw_in = g.h_in * g.w_in;
  d.hw_out = g.h_out * g.w_out;
  d.pointwise = is_pointwise(g);
  to_blasint(d.k);
  to_blasint(d.cout_g);
  to_blasint(d.hw_out * images_per_gemm);
  num_threads();  // reads the setting and holds OpenBLAS at one thread before any GEMM
  return d;
}

void add_bias(const ConvGeom& g, const float* bias, int64_t p_lo, int64_t p_hi, float* y) {
  const int64_t hw_out = g.h_out * g.w_out;
  for (int64_t b = 0; b < g.n; ++b) {
    for (int64_t c = 0; c < g.c_out; ++c) {
      float* y_c = y + (b * g.c_out + c) * hw_out;
      const float bc = bias[c];
      for (int64_t i = p_lo; i < p_hi; ++i) y_c[i] += bc;
    }
  }
}

// dbias[c] = sum over images and positions of dy[., c, .]: channels split over threads.
void bias_grad(const ConvGeom& g, const float* dy, float* dbias) {
  const int64_t hw_out = g.h_out * g.w_out;
  parallel_for(g.c_out, g.n * hw_out, [=](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      double sum = 0.0;
      for (int64_t b = 0; b < g.n; ++b) {
        const float* dy_c = dy + (b * g.c_out + c) * hw_out;
        for (int64_t i = 0; i < hw_out; ++i) sum += dy_c[i];
      }
      dbias[c] = static_cast<float>(sum);
    }
  });
}

// Forward for output rows [oh_lo, oh_hi) of every image and group, building their im2col
// columns in the block's own slice of the workspace.
void forward_rows(const ConvGeom& g, const ConvDims& d, const float* x, const float* w, float* y,
                  float* workspace, int64_t oh_lo, int64_t oh_hi) {
  const int64_t p_lo = oh_lo * g.w_out;
  const int64_t cols = (oh_hi - oh_lo) * g.w_out;
  float* col = d.pointwise ? nullptr : workspace + d.k * p_lo;
  for (int64_t b = 0; b < g.n; ++b) {
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const float* x_g = x + (b * g.c_in + grp * d.cin_g) * d.hw_in;
      float* y_g = y + (b * g.c_out + grp * d.cout_g) * d.hw_out + p_lo;
      const float* w_g = w + grp * d.cout_g * d.k;
      if (d.pointwise) {
        sgemm(false, false, d.cout_g, cols, d.k, 1.0f, w_g, d.k, x_g + p_lo, d.hw_in, 0.0f, y_g,
              d.hw_out);
      } else {
        im2col(g, x_g, 0, d.cin_g, oh_lo, oh_hi, col, cols);
        sgemm(false, false, d.cout_g, cols, d.k, 1.0f, w_g, d.k, col, cols, 0.0f, y_g, d.hw_out);
      }
    }
  }
}

// Forward with output channels in blocks (small P): per image, the threads build the
// im2col by input-channel blocks, then multiply by output-channel blocks.
void forward_channels(const ConvGeom& g, const ConvDims& d, const float* x, const float* w,
                      float* y, float* workspace, const Blocks& in_blocks, const Blocks& out_blocks,
                      int threads) {
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
#else
  (void)threads;
#endif
  {
    for (int64_t b = 0; b < g.n; ++b) {
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const float* x_g = x + (b * g.c_in + grp * d.cin_g) * d.hw_in;
        float* y_g = y + (b * g.c_out + grp * d.cout_g) * d.hw_out;
        const float* w_g = w + grp * d.cout_g * d.k;
        const float* col = x_g;
        if (!d.pointwise) {
#if defined(_OPENMP)
#pragma omp for schedule(dynamic, 1)
#endif
          for (int64_t i = 0; i < in_blocks.count; ++i) {
            const int64_t c_lo = in_blocks.lo(i), c_hi = in_blocks.hi(i, d.cin_g);
            im2col(g, x_g, c_lo, c_hi, 0, g.h_out, workspace + c_lo * d.khw * d.hw_out, d.hw_out);
          }  // implicit barrier: the im2col is complete
          col = workspace;
        }
#if defined(_OPENMP)
#pragma omp for schedule(dynamic, 1)
#endif
        for (int64_t i = 0; i < out_blocks.count; ++i) {
          const int64_t o_lo = out_blocks.lo(i), o_hi = out_blocks.hi(i, d.cout_g);
          sgemm(false, false, o_hi - o_lo, d.hw_out, d.k, 1.0f, w_g + o_lo * d.k, d.k, col,
                d.hw_out, 0.0f, y_g + o_lo * d.hw_out, d.hw_out);
        }  // implicit barrier: the next image overwrites the im2col
      }
    }
  }
}

// Backward for input channels [c_lo, c_hi) of every group: im2col rows, dw columns and dx
// channels of those channels only (Note [Conv threads]).
void backward_channels(const ConvGeom& g, const ConvDims& d, const float* x, const float* w,
                       const float* dy, float* dx, float* dw, float* workspace, int64_t c_lo,
                       int64_t c_hi) {
  const int64_t rows = (c_hi - c_lo) * d.khw;
  const int64_t r_lo = c_lo * d.khw;
  float* col = workspace + r_lo * d.hw_out;
  for (int64_t b = 0; b < g.n; ++b) {
    // dw is overwritten: the first image writes it, later images add to it.
    const float dw_beta = b == 0 ? 0.0f : 1.0f;
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const float* x_g = x + (b * g.c_in + grp * d.cin_g) * d.hw_in;
      const float* dy_g = dy + (b * g.c_out + grp * d.cout_g) * d.hw_out;
      const float* w_g = w + grp * d.cout_g * d.k + r_lo;
      float* dw_g = dw + grp * d.cout_g * d.k + r_lo;
      float* dx_g = dx == nullptr ? nullptr : dx + (b * g.c_in + grp * d.cin_g) * d.hw_in;

      if (d.pointwise) {
        sgemm(false, true, d.cout_g, rows, d.hw_out, 1.0f, dy_g, d.hw_out, x_g + r_lo * d.hw_in,
              d.hw_in, dw_beta, dw_g, d.k);
        if (dx_g != nullptr) {
          sgemm(true, false, rows, d.hw_out, d.cout_g, 1.0f, w_g, d.k, dy_g, d.hw_out, 1.0f,
                dx_g + r_lo * d.hw_in, d.hw_in);
        }
        continue;
      }
      im2col(g, x_g, c_lo, c_hi, 0, g.h_out, col, d.hw_out);
      sgemm(false, true, d.cout_g, rows, d.hw_out, 1.0f, dy_g, d.hw_out, col, d.hw_out, dw_beta,
            dw_g, d.k);
      if (dx_g != nullptr) {
        sgemm(true, false, rows, d.hw_out, d.cout_g, 1.0f, w_g, d.k, dy_g, d.hw_out, 0.0f, col,
              d.hw_out);
        col2im_add(g, col, d.hw_out, c_lo, c_hi, dx_g);
      }
    }
  }
}

// Input-channel blocks of the backward pass: at least 16 GEMM columns of dw each.
Blocks input_channel_blocks(const ConvDims& d) {
  return blocks_of(d.cin_g, (16 + d.khw - 1) / d.khw);
}

}  // namespace

int64_t conv2d_workspace_floats(const ConvGeom& g) {
  if (is_pointwise(g)) return 0;
  return (g.c_in / g.groups) * g.kernel_h * g.kernel_w * g.h_out * g.w_out;
}

void conv2d_forward(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y,
                    float* workspace) {
  const ConvDims d = conv_dims(g, 1);
  assert(!d.pointwise || d.hw_in == d.hw_out);
  const int threads = num_threads();
  if (d.hw_out >= kMinBlockColumns * 4 || d.cout_g < 32) {
    // Output rows in blocks of at least kMinBlockColumns positions.
    const Blocks rows = blocks_of(g.h_out, (kMinBlockColumns + g.w_out - 1) / g.w_out);
    parallel_blocks(rows.count, threads, [&](int64_t i) {
      forward_rows(g, d, x, w, y, workspace, rows.lo(i), rows.hi(i, g.h_out));
    });
  } else {
    const Blocks in_blocks = input_channel_blocks(d);
    const Blocks out_blocks = blocks_of(d.cout_g, 16);
    forward_channels(g, d, x, w, y, workspace, in_blocks, out_blocks,
                     static_cast<int>(std::min<int64_t>(threads, out_blocks.count)));
  }
  if (bias != nullptr) {
    parallel_ranges(d.hw_out, threads_for(d.hw_out, g.n * g.c_out),
                    [&](int64_t lo, int64_t hi) { add_bias(g, bias, lo, hi, y); });
  }
}

void conv2d_backward(const ConvGeom& g, const float* x, const float* w, const float* dy, float* dx,
                     float* dw, float* dbias, float* workspace) {
  const ConvDims d = conv_dims(g, 1);
  const Blocks blocks = input_channel_blocks(d);
  parallel_blocks(blocks.count, num_threads(), [&](int64_t i) {
    backward_channels(g, d, x, w, dy, dx, dw, workspace, blocks.lo(i), blocks.hi(i, d.cin_g));
  });
  if (dbias != nullptr) bias_grad(g, dy, dbias);
}

namespace {

void check_chunk(const ConvGeom& g, int64_t images_per_chunk) {
  if (images_per_chunk < 1 || images_per_chunk > g.n) {
    throw ArgumentError("conv2d chunked: images_per_chunk must be in [1, " + std::to_string(g.n) +
                        "] (the batch), got " + std::to_string(images_per_chunk));
  }
}

// im2col of images [b0, b0 + images) of group grp, channels [c_lo, c_hi), into
// col[(c - c_lo) * khw + ..., (b - b0) * P + p] with row stride ld = images * P.
void im2col_chunk(const ConvGeom& g, const ConvDims& d, const float* x, int64_t b0, int64_t images,
                  int64_t grp, int64_t c_lo, int64_t c_hi, float* col) {
  const int64_t ld = images * d.hw_out;
  for (int64_t b = b0; b < b0 + images; ++b) {
    const float* x_g = x + (b * g.c_in + grp * d.cin_g) * d.hw_in;
    im2col(g, x_g, c_lo, c_hi, 0, g.h_out, col + (b - b0) * d.hw_out, ld);
  }
}

}  // namespace

int64_t conv2d_chunked_workspace_floats(const ConvGeom& g, int64_t images_per_chunk) {
  check_chunk(g, images_per_chunk);
  const int64_t k = (g.c_in / g.groups) * g.kernel_h * g.kernel_w;
  return images_per_chunk * (k + g.c_out / g.groups) * g.h_out * g.w_out;
}

void conv2d_forward_chunked(const ConvGeom& g, const float* x, const float* w, const float* bias,
                            float* y, float* workspace, int64_t images_per_chunk) {
  check_chunk(g, images_per_chunk);
  const ConvDims d = conv_dims(g, images_per_chunk);
  const int threads = num_threads();
  const Blocks in_blocks = input_channel_blocks(d);
  for (int64_t b0 = 0; b0 < g.n; b0 += images_per_chunk) {
    const int64_t images = std::min(images_per_chunk, g.n - b0);
    const int64_t cols = images * d.hw_out;
    float* col = workspace;
    float* out = workspace + images * d.k * d.hw_out;  // [cout_g, cols]
    const Blocks col_blocks = blocks_of(cols, 4 * kMinBlockColumns);
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      parallel_blocks(in_blocks.count * images, threads, [&](int64_t task) {
        const int64_t i = task % in_blocks.count, b = b0 + task / in_blocks.count;
        const int64_t c_lo = in_blocks.lo(i), c_hi = in_blocks.hi(i, d.cin_g);
        const float* x_g = x + (b * g.c_in + grp * d.cin_g) * d.hw_in;
        im2col(g, x_g, c_lo, c_hi, 0, g.h_out, col + c_lo * d.khw * cols + (b - b0) * d.hw_out,
               cols);
      });
      const float* w_g = w + grp * d.cout_g * d.k;
      parallel_blocks(col_blocks.count, threads, [&](int64_t i) {
        const int64_t lo = col_blocks.lo(i), hi = col_blocks.hi(i, cols);
        sgemm(false, false, d.cout_g, hi - lo, d.k, 1.0f, w_g, d.k, col + lo, cols, 0.0f, out + lo,
              cols);
      });
      parallel_for(images * d.cout_g, d.hw_out, [&](int64_t lo, int64_t hi) {
        for (int64_t t = lo; t < hi; ++t) {
          const int64_t b = b0 + t / d.cout_g, co = t % d.cout_g;
          const float* src = out + co * cols + (b - b0) * d.hw_out;
          float* dst = y + (b * g.c_out + grp * d.cout_g + co) * d.hw_out;
          const float bc = bias != nullptr ? bias[grp * d.cout_g + co] : 0.0f;
          for (int64_t p = 0; p < d.hw_out; ++p) dst[p] = src[p] + bc;
        }
      });
    }
  }
}

void conv2d_backward_chunked(const ConvGeom& g, const float* x, const float* w, const float* dy,
                             float* dx, float* dw, float* dbias, float* workspace,
                             int64_t images_per_chunk) {
  check_chunk(g, images_per_chunk);
  const ConvDims d = conv_dims(g, images_per_chunk);
  const int threads = num_threads();
  const Blocks in_blocks = input_channel_blocks(d);
  for (int64_t b0 = 0; b0 < g.n; b0 += images_per_chunk) {
    const int64_t images = std::min(images_per_chunk, g.n - b0);
    const int64_t cols = images * d.hw_out;
    float* col = workspace;
    float* dys = workspace + images * d.k * d.hw_out;  // [cout_g, cols]
    // dw is overwritten: the first chunk writes it, later chunks add to it.
    const float dw_beta = b0 == 0 ? 0.0f : 1.0f;
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      parallel_for(images * d.cout_g, d.hw_out, [&](int64_t lo, int64_t hi) {
        for (int64_t t = lo; t < hi; ++t) {
          const int64_t b = b0 + t / d.cout_g, co = t % d.cout_g;
          const float* src = dy + (b * g.c_out + grp * d.cout_g + co) * d.hw_out;
          std::copy(src, src + d.hw_out, dys + co * cols + (b - b0) * d.hw_out);
        }
      });
      const float* w_g = w + grp * d.cout_g * d.k;
      float* dw_g = dw + grp * d.cout_g * d.k;
      parallel_blocks(in_blocks.count, threads, [&](int64_t i) {
        const int64_t c_lo = in_blocks.lo(i), c_hi = in_blocks.hi(i, d.cin_g);
        const int64_t r_lo = c_lo * d.khw, rows = (c_hi - c_lo) * d.khw;
        float* col_i = col + r_lo * cols;
        im2col_chunk(g, d, x, b0, images, grp, c_lo, c_hi, col_i);
        sgemm(false, true, d.cout_g, rows, cols, 1.0f, dys, cols, col_i, cols, dw_beta, dw_g + r_lo,
              d.k);
        if (dx == nullptr) return;
        sgemm(true, false, rows, cols, d.cout_g, 1.0f, w_g + r_lo, d.k, dys, cols, 0.0f, col_i,
              cols);
        for (int64_t b = b0; b < b0 + images; ++b) {
          float* dx_g = dx + (b * g.c_in + grp * d.cin_g) * d.hw_in;
          col2im_add(g, col_i + (b - b0) * d.hw_out, cols, c_lo, c_hi, dx_g);
        }
      });
    }
  }
  if (dbias != nullptr) bias_grad(g, dy, dbias);
}

}  // namespace sn::cpu
