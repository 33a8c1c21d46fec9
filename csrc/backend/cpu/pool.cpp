// Max, average and global average pooling.
//
// Note [Pool windows]
// Window (oh, ow) covers input rows oh * stride_h - pad_h + [0, kernel_h) and likewise
// for columns; both ranges are clipped to the input, so padded positions never take part
// (max ignores them, average leaves them out of the count). A window lying entirely in
// padding (only possible when pad >= kernel, which the graph rejects) gives 0 and passes
// no gradient.
#include <algorithm>

#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"

namespace sn::cpu {
namespace {

struct Window {
  int64_t h_lo, h_hi, w_lo, w_hi;  // clipped input ranges [lo, hi)
  int64_t count() const {
    return std::max<int64_t>(0, h_hi - h_lo) * std::max<int64_t>(0, w_hi - w_lo);
  }
};

Window window(const PoolGeom& g, int64_t oh, int64_t ow) {
  const int64_t h0 = oh * g.stride_h - g.pad_h;
  const int64_t w0 = ow * g.stride_w - g.pad_w;
  return {std::max<int64_t>(h0, 0), std::min(h0 + g.kernel_h, g.h_in), std::max<int64_t>(w0, 0),
          std::min(w0 + g.kernel_w, g.w_in)};
}

// Offset (within one h_in * w_in plane) of the first maximum of the window in row-major
// order, or -1 for an empty window.
int64_t argmax(const PoolGeom& g, const float* x_plane, const Window& win) {
  int64_t best = -1;
  for (int64_t ih = win.h_lo; ih < win.h_hi; ++ih) {
    for (int64_t iw = win.w_lo; iw < win.w_hi; ++iw) {
      const int64_t idx = ih * g.w_in + iw;
      if (best < 0 || x_plane[idx] > x_plane[best]) best = idx;
    }
  }
  return best;
}

}  // namespace

void maxpool_forward(const PoolGeom& g, const float* x, float* y) {
  parallel_for(g.n * g.c, g.h_in * g.w_in, [&](int64_t lo, int64_t hi) {
    for (int64_t plane = lo; plane < hi; ++plane) {
      const float* x_p = x + plane * g.h_in * g.w_in;
      float* y_p = y + plane * g.h_out * g.w_out;
      for (int64_t oh = 0; oh < g.h_out; ++oh) {
        for (int64_t ow = 0; ow < g.w_out; ++ow) {
          const int64_t best = argmax(g, x_p, window(g, oh, ow));
          y_p[oh * g.w_out + ow] = best < 0 ? 0.0f : x_p[best];
        }
      }
    }
  });
}

void maxpool_backward(const PoolGeom& g, const float* x, const float* dy, float* dx) {
  parallel_for(g.n * g.c, g.h_in * g.w_in, [&](int64_t lo, int64_t hi) {
    for (int64_t plane = lo; plane < hi; ++plane) {
      const float* x_p = x + plane * g.h_in * g.w_in;
      const float* dy_p = dy + plane * g.h_out * g.w_out;
      float* dx_p = dx + plane * g.h_in * g.w_in;
      for (int64_t oh = 0; oh < g.h_out; ++oh) {
        for (int64_t ow = 0; ow < g.w_out; ++ow) {
          const int64_t best = argmax(g, x_p, window(g, oh, ow));
          if (best >= 0) dx_p[best] += dy_p[oh * g.w_out + ow];
        }
      }
    }
  });
}

void avgpool_forward(const PoolGeom& g, const float* x, float* y) {
  parallel_for(g.n * g.c, g.h_in * g.w_in, [&](int64_t lo, int64_t hi) {
    for (int64_t plane = lo; plane < hi; ++plane) {
      const float* x_p = x + plane * g.h_in * g.w_in;
      float* y_p = y + plane * g.h_out * g.w_out;
      for (int64_t oh = 0; oh < g.h_out; ++oh) {
        for (int64_t ow = 0; ow < g.w_out; ++ow) {
          const Window win = window(g, oh, ow);
          float sum = 0.0f;
          for (int64_t ih = win.h_lo; ih < win.h_hi; ++ih) {
            for (int64_t iw = win.w_lo; iw < win.w_hi; ++iw) sum += x_p[ih * g.w_in + iw];
          }
          const int64_t count = win.count();
          y_p[oh * g.w_out + ow] = count > 0 ? sum / static_cast<float>(count) : 0.0f;
        }
      }
    }
  });
}

void avgpool_backward(const PoolGeom& g, const float* dy, float* dx) {
  parallel_for(g.n * g.c, g.h_in * g.w_in, [&](int64_t lo, int64_t hi) {
    for (int64_t plane = lo; plane < hi; ++plane) {
      const float* dy_p = dy + plane * g.h_out * g.w_out;
      float* dx_p = dx + plane * g.h_in * g.w_in;
      for (int64_t oh = 0; oh < g.h_out; ++oh) {
        for (int64_t ow = 0; ow < g.w_out; ++ow) {
          const Window win = window(g, oh, ow);
          const int64_t count = win.count();
          if (count == 0) continue;
          const float share = dy_p[oh * g.w_out + ow] / static_cast<float>(count);
          for (int64_t ih = win.h_lo; ih < win.h_hi; ++ih) {
            for (int64_t iw = win.w_lo; iw < win.w_hi; ++iw) dx_p[ih * g.w_in + iw] += share;
          }
        }
      }
    }
  });
}

void global_avgpool_forward(int64_t n, int64_t c, int64_t hw, const float* x, float* y) {
  parallel_for(n * c, hw, [&](int64_t lo, int64_t hi) {
    for (int64_t plane = lo; plane < hi; ++plane) {
      const float* x_p = x + plane * hw;
      double sum = 0.0;
      for (int64_t i = 0; i < hw; ++i) sum += x_p[i];
      y[plane] = static_cast<float>(sum / static_cast<double>(hw));
    }
  });
}

void global_avgpool_backward(int64_t n, int64_t c, int64_t hw, const float* dy, float* dx) {
  const float inv_hw = 1.0f / static_cast<float>(hw);
  parallel_for(n * c, hw, [&](int64_t lo, int64_t hi) {
    for (int64_t plane = lo; plane < hi; ++plane) {
      const float share = dy[plane] * inv_hw;
      float* dx_p = dx + plane * hw;
      for (int64_t i = 0; i < hw; ++i) dx_p[i] += share;
    }
  });
}

}  // namespace sn::cpu
