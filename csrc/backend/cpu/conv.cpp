// Convolution as im2col + GEMM over column blocks of the whole batch.
//
// Note [Conv as GEMM]
// For group g, with K = (c_in / groups) * kernel_h * kernel_w, the batch's output
// positions (image, oh, ow) are the columns of one GEMM:
//   forward:  y_g[c_out_g, cols] = w_g[c_out_g, K] * col[K, cols]         (+ bias)
//   dw:       dw_g[c_out_g, K]   = dy_g[c_out_g, cols] * col[K, cols]^T
//   dx:       dcol[K, cols] = w_g^T * dy_g, then col2im adds dcol into dx
// col is the im2col of x_g. It is never built whole: the columns are cut into blocks
// (Note [Column blocks]) and each block's im2col lives in a slot of the workspace only
// while that block is multiplied. A 1x1, stride-1, unpadded conv reads x itself as col
// where a block lies inside one image (and accumulates dx by the GEMM, beta = 1).
//
// Note [Column blocks]
// A block is at most about 256 columns (fewer for a large K, so that a slot's im2col stays
// near 1 MiB and in cache): a few output rows of one image when an image has that many
// positions, else several whole images side by side (at most the batch), so that the
// GEMMs stay wide deep in a network where an image has 4 or 16 positions. A 1x1,
// stride-1, unpadded conv keeps its blocks inside one image and reads x itself (no
// workspace), unless its images have fewer than 64 positions and its weights at least
// 4096 entries: then gathering whole images into wide GEMMs pays for the copy. The
// blocks depend on the shape and the batch only, never on the thread count or the
// workspace, which is what makes the algorithms of the CPU backend interchangeable bit
// for bit (Note [Conv slots]).
//
// Note [Conv threads]
// OpenBLAS runs on one thread (threads.cpp); OpenMP threads take whole tasks:
// - forward: a task is (group, column block, output-channel block); output channels are
//   split only when there are fewer than 8 column blocks. A task builds its block's
//   im2col in its slot, multiplies, and writes its own outputs (plus bias).
// - backward dx: a task is (group, image or block of whole images, input-channel block):
//   it owns those dx channels of those images, and for each of its column blocks forms
//   its dcol rows (w_g^T * dy) and adds them into dx by col2im.
// - backward dw: a task is (group, input-channel block). It owns the dw columns of its
//   channels and walks all column blocks in order: im2col rows, then dw += dy * col^T
//   (the first block writes, later blocks add: the same order on any number of threads).
// Every output element is therefore one reduction in a fixed order over GEMMs of fixed
// shapes (Note [Fixed GEMM blocks] in parallel.h), whatever the thread count.
//
// Note [Conv slots]
// The workspace holds `slots` slots, one per thread at work; a slot is one block's
// im2col (forward; the backward's dcol and col rows need no more) and, for blocks of whole images,
// the block's output or output gradient gathered into [c_out_g, columns]. With fewer slots fewer
// threads run and the bits stay the same, so the CPU backend offers the convolution at several slot
// counts (cpu_backend.cpp): the planner takes the fastest whose workspace fits the memory left at
// that step, and policies that choose differently still agree.

#include <algorithm>
#include <cassert>
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

// Note [Column blocks]: the block width aimed at, in columns, and the im2col floats of a
// block aimed at (a large K gets narrower blocks, down to the minimum width).
constexpr int64_t kMinBlockColumns = 64;
constexpr int64_t kMaxBlockColumns = 256;
constexpr int64_t kBlockColFloats = int64_t{1} << 18;  // floats (1 MiB)
// Forward output-channel blocks: at least this many channels (narrower GEMMs waste the
// micro-kernel), and only when there are fewer than kMaxBlocks column blocks.
constexpr int64_t kMinOutBlock = 32;  // channels
// A pointwise conv gathers whole images into its blocks only when its weights have at
// least this many entries (below it, per-image GEMMs are too small to matter).
constexpr int64_t kGatherWeights = 4096;

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

// The adjoint of im2col for channels [c_lo, c_hi) and output rows [oh_lo, oh_hi):
// x[c, ih, iw] += every col entry that was read from it (col rows relative to c_lo,
// columns relative to oh_lo, row stride ld).
void col2im_add(const ConvGeom& g, const float* col, int64_t ld, int64_t c_lo, int64_t c_hi,
                int64_t oh_lo, int64_t oh_hi, float* x) {
  for (int64_t c = c_lo; c < c_hi; ++c) {
    float* x_c = x + c * g.h_in * g.w_in;
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      const int64_t off_h = ki * g.dilation_h - g.pad_h;
      int64_t valid_lo = 0, valid_hi = 0;
      valid_range(off_h, g.stride_h, g.h_in, g.h_out, &valid_lo, &valid_hi);
      const int64_t lo = std::max(valid_lo, oh_lo), hi = std::min(valid_hi, oh_hi);
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        const int64_t off_w = kj * g.dilation_w - g.pad_w;
        int64_t ow_lo = 0, ow_hi = 0;
        valid_range(off_w, g.stride_w, g.w_in, g.w_out, &ow_lo, &ow_hi);
        const float* row = col + (((c - c_lo) * g.kernel_h + ki) * g.kernel_w + kj) * ld;
        for (int64_t oh = lo; oh < hi; ++oh) {
          float* dst = x_c + (oh * g.stride_h + off_h) * g.w_in + off_w;
          const float* src = row + (oh - oh_lo) * g.w_out;
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

// The shapes every conv kernel needs and the column blocks (Note [Column blocks]),
// checked against 32-bit BLAS indices up front: an exception cannot leave the OpenMP
// regions below.
struct ConvDims {
  int64_t cin_g, cout_g, khw, k, hw_in, hw_out;
  bool pointwise;
  bool by_rows;            // blocks of output rows inside one image, else of whole images
  int64_t rows_per_block;  // by_rows: output rows per block
  int64_t blocks_per_image;
  int64_t images_per_block;  // !by_rows
  int64_t width;             // the widest block, in columns
  int64_t blocks;            // column blocks of the batch
  // One block: images [b_lo, b_hi), output rows [oh_lo, oh_hi) of each; per_image
  // columns of each image, cols in all.
  struct Block {
    int64_t b_lo, b_hi, oh_lo, oh_hi, per_image, cols;
  };
  Block block(int64_t i, const ConvGeom& g) const {
    Block b;
    if (by_rows) {
      b.b_lo = i / blocks_per_image;
      b.b_hi = b.b_lo + 1;
      b.oh_lo = (i % blocks_per_image) * rows_per_block;
      b.oh_hi = std::min(g.h_out, b.oh_lo + rows_per_block);
    } else {
      b.b_lo = i * images_per_block;
      b.b_hi = std::min(g.n, b.b_lo + images_per_block);
      b.oh_lo = 0;
      b.oh_hi = g.h_out;
    }
    b.per_image = (b.oh_hi - b.oh_lo) * g.w_out;
    b.cols = b.per_image * (b.b_hi - b.b_lo);
    return b;
  }
  // im2col of the block needed (a pointwise conv reads x when the block is in one image).
  bool needs_col() const { return !(pointwise && by_rows); }
};

ConvDims conv_dims(const ConvGeom& g) {
  ConvDims d;
  d.cin_g = g.c_in / g.groups;
  d.cout_g = g.c_out / g.groups;
  d.khw = g.kernel_h * g.kernel_w;
  d.k = d.cin_g * d.khw;
  d.hw_in = g.h_in * g.w_in;
  d.hw_out = g.h_out * g.w_out;
  d.pointwise = is_pointwise(g);
  const int64_t target =
      std::clamp(kBlockColFloats / std::max<int64_t>(1, d.k), kMinBlockColumns, kMaxBlockColumns);
  // A pointwise conv reads x itself, one image at a time, unless its images are small and
  // its weights large: then gathering whole images into wide GEMMs pays for the copy.
  const bool gather_pointwise = d.hw_out < kMinBlockColumns && d.k * d.cout_g >= kGatherWeights;
  d.by_rows = d.hw_out >= target || (d.pointwise && !gather_pointwise);
  if (d.by_rows) {
    d.rows_per_block = std::max<int64_t>(1, target / g.w_out);
    d.blocks_per_image = ceil_div(g.h_out, d.rows_per_block);
    d.images_per_block = 1;
    d.width = std::min(d.rows_per_block, g.h_out) * g.w_out;
    d.blocks = g.n * d.blocks_per_image;
  } else {
    d.rows_per_block = g.h_out;
    d.blocks_per_image = 1;
    d.images_per_block =
        std::clamp<int64_t>(target / std::max<int64_t>(1, d.hw_out), 1, std::max<int64_t>(1, g.n));
    d.width = d.images_per_block * d.hw_out;
    d.blocks = ceil_div(g.n, d.images_per_block);
  }
  to_blasint(d.k);
  to_blasint(d.cout_g);
  to_blasint(d.width);
  to_blasint(d.hw_in);
  num_threads();  // reads the setting and holds OpenBLAS at one thread before any GEMM
  return d;
}

// The im2col of block blk, channels [c_lo, c_hi): image b's columns side by side in col
// (row stride blk.cols). x_group points at the group's first channel of image 0; images
// are c_in * h_in * w_in floats apart.
void block_im2col(const ConvGeom& g, const ConvDims::Block& blk, const float* x_group, int64_t c_lo,
                  int64_t c_hi, float* col) {
  for (int64_t b = blk.b_lo; b < blk.b_hi; ++b)
    im2col(g, x_group + b * g.c_in * g.h_in * g.w_in, c_lo, c_hi, blk.oh_lo, blk.oh_hi,
           col + (b - blk.b_lo) * blk.per_image, blk.cols);
}

// Floats of one slot (Note [Conv slots]): the block's im2col, plus the block's gathered
// output (gradient) when a block holds whole images.
int64_t slot_floats(const ConvDims& d) {
  return (d.needs_col() ? d.k * d.width : 0) + (d.by_rows ? 0 : d.cout_g * d.width);
}

void check_slots(int slots) {
  if (slots < 1) throw ArgumentError("conv2d: slots must be >= 1, got " + std::to_string(slots));
}

// Calls f(task, slot) for every task in [0, count) on at most `slots` threads; slot is
// the calling thread's own index in [0, slots). f must not throw.
template <class F>
void parallel_slots(int64_t count, int slots, F&& f) {
  const int t = static_cast<int>(std::min<int64_t>({int64_t{slots}, count, num_threads()}));
  if (t <= 1) {
    const FlushDenormals ftz;  // Note [Denormals] in parallel.h
    for (int64_t i = 0; i < count; ++i) f(i, 0);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel num_threads(t)
  {
    const FlushDenormals ftz;
    const int slot = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < count; ++i) f(i, slot);
  }
#else
  const FlushDenormals ftz;
  for (int64_t i = 0; i < count; ++i) f(i, 0);
#endif
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

// Input-channel blocks of the backward pass: at least 64 rows of col each (the dw GEMM's
// columns, the dcol GEMM's rows), so its GEMMs stay wide.
// Few input channels (a stem's 3) still make two blocks, so two threads share the pass.
Blocks dw_channel_blocks(const ConvDims& d) {
  return blocks_of(d.cin_g, std::min(ceil_div(64, d.khw), ceil_div(d.cin_g, 2)));
}
// For dx the tasks are also split by images, so fewer channel blocks are needed: each
// holds at least 256 rows of col unless the channels are few.
Blocks dx_channel_blocks(const ConvDims& d) { return blocks_of(d.cin_g, ceil_div(256, d.khw)); }

// Forward output-channel blocks: split only when the column blocks are too few to keep
// kMaxBlocks tasks (a shape-only rule: Note [Fixed GEMM blocks]).
Blocks output_channel_blocks(const ConvDims& d, int64_t groups) {
  const int64_t tasks = d.blocks * groups;
  if (tasks >= kMaxBlocks) return blocks_of(d.cout_g, d.cout_g);
  const int64_t want = ceil_div(kMaxBlocks, tasks);
  return blocks_of(d.cout_g, std::max(kMinOutBlock, ceil_div(d.cout_g, want)));
}

}  // namespace

int64_t conv2d_workspace_floats(const ConvGeom& g, int slots) {
  check_slots(slots);
  return slots * slot_floats(conv_dims(g));
}

void conv2d_forward(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y,
                    float* workspace, int slots) {
  check_slots(slots);
  const ConvDims d = conv_dims(g);
  assert(!d.pointwise || d.hw_in == d.hw_out);
  const Blocks out = output_channel_blocks(d, g.groups);
  const int64_t slot_size = slot_floats(d);
  const int64_t tasks = g.groups * d.blocks * out.count;
  parallel_slots(tasks, slots, [&](int64_t task, int slot) {
    const int64_t grp = task / (d.blocks * out.count);
    const int64_t i = (task / out.count) % d.blocks;
    const int64_t o_lo = out.lo(task % out.count), o_hi = out.hi(task % out.count, d.cout_g);
    const ConvDims::Block blk = d.block(i, g);
    const int64_t p_lo = blk.oh_lo * g.w_out;
    float* col = workspace + slot * slot_size;
    const float* w_g = w + (grp * d.cout_g + o_lo) * d.k;
    auto x_g = [&](int64_t b) { return x + (b * g.c_in + grp * d.cin_g) * d.hw_in; };
    const float* b_mat = col;
    int64_t ldb = blk.cols;
    if (d.needs_col()) {
      block_im2col(g, blk, x_g(0), 0, d.cin_g, col);
    } else {
      b_mat = x_g(blk.b_lo) + p_lo;
      ldb = d.hw_in;
    }
    if (d.by_rows) {  // the block's outputs are rows of y: multiply straight into them
      float* y_g = y + (blk.b_lo * g.c_out + grp * d.cout_g + o_lo) * d.hw_out + p_lo;
      sgemm(false, false, o_hi - o_lo, blk.cols, d.k, 1.0f, w_g, d.k, b_mat, ldb, 0.0f, y_g,
            d.hw_out);
      if (bias != nullptr)
        for (int64_t co = o_lo; co < o_hi; ++co) {
          const float bc = bias[grp * d.cout_g + co];
          float* y_c = y_g + (co - o_lo) * d.hw_out;
          for (int64_t p = 0; p < blk.cols; ++p) y_c[p] += bc;
        }
      return;
    }
    float* res = col + (d.needs_col() ? d.k * d.width : 0);  // [o_hi - o_lo, cols]
    sgemm(false, false, o_hi - o_lo, blk.cols, d.k, 1.0f, w_g, d.k, b_mat, ldb, 0.0f, res,
          blk.cols);
    for (int64_t b = blk.b_lo; b < blk.b_hi; ++b)
      for (int64_t co = o_lo; co < o_hi; ++co) {
        const float* src = res + (co - o_lo) * blk.cols + (b - blk.b_lo) * blk.per_image;
        float* dst = y + (b * g.c_out + grp * d.cout_g + co) * d.hw_out;
        const float bc = bias != nullptr ? bias[grp * d.cout_g + co] : 0.0f;
        for (int64_t p = 0; p < blk.per_image; ++p) dst[p] = src[p] + bc;
      }
  });
}

void conv2d_backward(const ConvGeom& g, const float* x, const float* w, const float* dy, float* dx,
                     float* dw, float* dbias, float* workspace, int slots) {
  check_slots(slots);
  const ConvDims d = conv_dims(g);
  const int64_t slot_size = slot_floats(d);
  // The output gradient of block blk, group grp as a [cout_g, cols] matrix: rows of dy
  // inside one image, else gathered into `dys`. Returns the matrix and its row stride.
  auto block_dy = [&](const ConvDims::Block& blk, int64_t grp, float* dys) {
    if (d.by_rows)
      return std::make_pair(
          dy + (blk.b_lo * g.c_out + grp * d.cout_g) * d.hw_out + blk.oh_lo * g.w_out, d.hw_out);
    for (int64_t b = blk.b_lo; b < blk.b_hi; ++b)
      for (int64_t co = 0; co < d.cout_g; ++co) {
        const float* src = dy + (b * g.c_out + grp * d.cout_g + co) * d.hw_out;
        std::copy(src, src + blk.per_image, dys + co * blk.cols + (b - blk.b_lo) * blk.per_image);
      }
    return std::make_pair(static_cast<const float*>(dys), blk.cols);
  };
  auto x_g = [&](int64_t b, int64_t grp) { return x + (b * g.c_in + grp * d.cin_g) * d.hw_in; };
  auto dx_g = [&](int64_t b, int64_t grp) { return dx + (b * g.c_in + grp * d.cin_g) * d.hw_in; };
  const int64_t gather_at = d.needs_col() ? d.k * d.width : 0;  // dys in a slot

  // dx (Note [Conv threads]): a task owns the dx of its images and input channels.
  if (dx != nullptr) {
    const Blocks in = dx_channel_blocks(d);
    const int64_t units = d.by_rows ? g.n : d.blocks;  // images, or blocks of whole images
    const int64_t blocks_per_unit = d.by_rows ? d.blocks_per_image : 1;
    parallel_slots(g.groups * units * in.count, slots, [&](int64_t task, int slot) {
      const int64_t grp = task / (units * in.count);
      const int64_t unit = (task / in.count) % units;
      const int64_t c_lo = in.lo(task % in.count), c_hi = in.hi(task % in.count, d.cin_g);
      const int64_t rows = (c_hi - c_lo) * d.khw, r_lo = c_lo * d.khw;
      float* col = workspace + slot * slot_size;
      const float* w_g = w + grp * d.cout_g * d.k + r_lo;
      for (int64_t i = unit * blocks_per_unit; i < (unit + 1) * blocks_per_unit; ++i) {
        const ConvDims::Block blk = d.block(i, g);
        const auto [dy_mat, ldy] = block_dy(blk, grp, col + gather_at);
        if (!d.needs_col()) {  // pointwise, one image: the GEMM accumulates into dx
          sgemm(true, false, rows, blk.cols, d.cout_g, 1.0f, w_g, d.k, dy_mat, ldy, 1.0f,
                dx_g(blk.b_lo, grp) + c_lo * d.hw_in + blk.oh_lo * g.w_out, d.hw_in);
          continue;
        }
        sgemm(true, false, rows, blk.cols, d.cout_g, 1.0f, w_g, d.k, dy_mat, ldy, 0.0f, col,
              blk.cols);
        for (int64_t b = blk.b_lo; b < blk.b_hi; ++b)
          col2im_add(g, col + (b - blk.b_lo) * blk.per_image, blk.cols, c_lo, c_hi, blk.oh_lo,
                     blk.oh_hi, dx_g(b, grp));
      }
    });
  }

  // dw: a task owns the dw columns of its input channels and walks the blocks in order.
  const Blocks in = dw_channel_blocks(d);
  parallel_slots(g.groups * in.count, slots, [&](int64_t task, int slot) {
    const int64_t grp = task / in.count;
    const int64_t c_lo = in.lo(task % in.count), c_hi = in.hi(task % in.count, d.cin_g);
    const int64_t rows = (c_hi - c_lo) * d.khw, r_lo = c_lo * d.khw;
    float* col = workspace + slot * slot_size;
    float* dw_g = dw + grp * d.cout_g * d.k + r_lo;
    for (int64_t i = 0; i < d.blocks; ++i) {
      const ConvDims::Block blk = d.block(i, g);
      const auto [dy_mat, ldy] = block_dy(blk, grp, col + gather_at);
      const float beta = i == 0 ? 0.0f : 1.0f;  // the first block writes, later blocks add
      if (!d.needs_col()) {                     // pointwise, one image: x is col
        sgemm(false, true, d.cout_g, rows, blk.cols, 1.0f, dy_mat, ldy,
              x_g(blk.b_lo, grp) + c_lo * d.hw_in + blk.oh_lo * g.w_out, d.hw_in, beta, dw_g, d.k);
        continue;
      }
      block_im2col(g, blk, x_g(0, grp), c_lo, c_hi, col);
      sgemm(false, true, d.cout_g, rows, blk.cols, 1.0f, dy_mat, ldy, col, blk.cols, beta, dw_g,
            d.k);
    }
  });
  if (dbias != nullptr) bias_grad(g, dy, dbias);
}

}  // namespace sn::cpu
