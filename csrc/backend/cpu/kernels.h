// CPU kernels: float32, NCHW, one function per layer direction.
//
// Usage:
//   sn::cpu::ConvGeom g = ...;                       // shapes and hyperparameters
//   std::vector<float> ws(sn::cpu::conv2d_workspace_floats(g, /*slots=*/4));
//   sn::cpu::conv2d_forward(g, x, w, bias, y, ws.data(), /*slots=*/4);
//
// Note [Gradient accumulation]
// Backward kernels ADD their contribution to the input gradients (dx += ...), because a
// tensor read by several layers (fan-out) receives the sum of their gradients. The
// executor zero-fills a gradient buffer before the first backward step that writes it.
// Parameter gradients (dw, dbias, dgamma, dbeta) are OVERWRITTEN: every parameter belongs
// to exactly one layer.
//
// Every pointer is to contiguous float32 unless stated; nullable pointers say so.
// relu_forward, dropout_forward and add_forward must allow y == x (y == a or b): the
// planner runs them in place (Backend::in_place_inputs); never mark those restrict.
// Kernels never allocate: scratch memory is passed in as `workspace`, sized by the
// matching *_workspace_floats function (units: floats, not bytes).
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/conv_geom.h"

namespace sn::cpu {

// ------------------------------------------------------------------ threads
// Kernels run on num_threads() OpenMP threads: SUPERNEURONS_NUM_THREADS when set (an
// integer >= 1), else the machine's cores. OpenBLAS is held at one thread because the
// kernels call it from inside their own parallel loops (Note [Deterministic threading] in
// parallel.h). Results do not depend on the thread count.
// num_threads() throws ArgumentError when SUPERNEURONS_NUM_THREADS is not an integer >= 1.
int num_threads();
// Throws ArgumentError unless threads >= 1.
void set_num_threads(int threads);
// The machine's cores available to this process (the default thread count).
int default_num_threads();

// ---------------------------------------------------------------- convolution
using ConvGeom = sn::ConvGeom;  // backend/conv_geom.h
// Weight layout: [c_out, c_in / groups, kernel_h, kernel_w]; bias: [c_out].
// The workspace holds `slots` slots of one column block's im2col each (Note [Conv slots]
// in conv.cpp); at most `slots` threads run, and the results are the same bits for every
// slot count and thread count. A 1x1, stride-1, unpadded conv over large images needs
// no workspace (it may then be null). slots < 1 is an ArgumentError.
int64_t conv2d_workspace_floats(const ConvGeom& g, int slots);
void conv2d_forward(const ConvGeom& g, const float* x, const float* w,
                    const float* bias /*nullable*/, float* y, float* workspace, int slots);
// dx is nullable (the first layer needs no input gradient); dbias nullable iff no bias.
void conv2d_backward(const ConvGeom& g, const float* x, const float* w, const float* dy,
                     float* dx /*nullable, accumulated*/, float* dw, float* dbias /*nullable*/,
                     float* workspace, int slots);

// ------------------------------------------------------------ fully connected
// y[n, out] = x[n, in] * w[out, in]^T + bias[out]
void fc_forward(int64_t n, int64_t in_features, int64_t out_features, const float* x,
                const float* w, const float* bias /*nullable*/, float* y);
void fc_backward(int64_t n, int64_t in_features, int64_t out_features, const float* x,
                 const float* w, const float* dy, float* dx /*nullable, accumulated*/, float* dw,
                 float* dbias /*nullable*/);

// ------------------------------------------------------------------ pooling
struct PoolGeom {
  int64_t n = 1, c = 1, h_in = 1, w_in = 1, h_out = 1, w_out = 1;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};
// Max pooling ignores padded positions; backward recomputes the argmax from x (the first
// maximum in row-major window order wins), so no index tensor is stored.
void maxpool_forward(const PoolGeom& g, const float* x, float* y);
void maxpool_backward(const PoolGeom& g, const float* x, const float* dy, float* dx);
// Average pooling divides by the number of in-bounds elements of each window
// (padding excluded from the count).
void avgpool_forward(const PoolGeom& g, const float* x, float* y);
void avgpool_backward(const PoolGeom& g, const float* dy, float* dx);
// Global average pooling: y[n, c] = mean over h*w of x[n, c, :, :].
void global_avgpool_forward(int64_t n, int64_t c, int64_t hw, const float* x, float* y);
void global_avgpool_backward(int64_t n, int64_t c, int64_t hw, const float* dy, float* dx);

// --------------------------------------------------------------- batch norm
struct BatchNormGeom {
  int64_t n = 1, c = 1, hw = 1;
  float eps = 1e-5f;
  float momentum = 0.1f;  // running = (1 - momentum) * running + momentum * batch statistic
};
// Training mode: batch statistics; saves mean and inverse std per channel ([c] each) and
// updates the running statistics (running_var uses the unbiased batch variance).
// running_mean and running_var are nullable: a recomputed forward passes nullptr so that
// the running statistics move once per iteration.
void batchnorm_forward_train(const BatchNormGeom& g, const float* x, const float* gamma,
                             const float* beta, float* y, float* save_mean, float* save_invstd,
                             float* running_mean /*nullable*/, float* running_var /*nullable*/);
void batchnorm_forward_infer(const BatchNormGeom& g, const float* x, const float* gamma,
                             const float* beta, const float* running_mean, const float* running_var,
                             float* y);
// dx is nullable (accumulated when given).
void batchnorm_backward(const BatchNormGeom& g, const float* x, const float* gamma,
                        const float* save_mean, const float* save_invstd, const float* dy,
                        float* dx /*nullable*/, float* dgamma, float* dbeta);

// Batch norm followed by ReLU in one pass: y = max(0, batchnorm(x)), bit-identical to
// batchnorm_* then relu_forward, without the intermediate tensor. Backward reads the fused
// output y for the ReLU mask and gives exactly what relu_backward into a zeroed buffer
// followed by batchnorm_backward gives (dx accumulated, nullable; dgamma, dbeta
// overwritten). Same saved statistics and running-statistics contract as above.
void batchnorm_relu_forward_train(const BatchNormGeom& g, const float* x, const float* gamma,
                                  const float* beta, float* y, float* save_mean, float* save_invstd,
                                  float* running_mean /*nullable*/,
                                  float* running_var /*nullable*/);
void batchnorm_relu_forward_infer(const BatchNormGeom& g, const float* x, const float* gamma,
                                  const float* beta, const float* running_mean,
                                  const float* running_var, float* y);
void batchnorm_relu_backward(const BatchNormGeom& g, const float* x, const float* y,
                             const float* gamma, const float* save_mean, const float* save_invstd,
                             const float* dy, float* dx /*nullable*/, float* dgamma, float* dbeta);

// -------------------------------------------------------------- elementwise
void relu_forward(int64_t count, const float* x, float* y);
// x may be the input or the output of the ReLU: y > 0 exactly where x > 0.
void relu_backward(int64_t count, const float* x, const float* dy, float* dx);
void add_forward(int64_t count, const float* a, const float* b, float* y);
// da += dy and db += dy are done by the executor with accumulate(); no kernel needed.
void accumulate(int64_t count, const float* src, float* dst);  // dst += src

// Inverted dropout: y = x * keep / (1 - p), keep = (uniform(seed, i) >= p).
// The mask is a pure function of (seed, element index), so backward (and any
// recomputation) replays it exactly without storing it.
void dropout_forward(int64_t count, float p, uint64_t seed, const float* x, float* y);
void dropout_backward(int64_t count, float p, uint64_t seed, const float* dy, float* dx);

// ------------------------------------------------------------ LRN (AlexNet)
// Across channels: y = x / (k + alpha/size * sum_{window} x^2)^beta, window of `size`
// channels centred on c (clipped at the edges): c - (size-1)/2 .. c + size/2.
struct LrnGeom {
  int64_t n = 1, c = 1, hw = 1;
  int64_t size = 5;
  float alpha = 1e-4f, beta = 0.75f, k = 2.0f;
};
int64_t lrn_workspace_floats(const LrnGeom& g);  // scale buffer + one row, for one image
void lrn_forward(const LrnGeom& g, const float* x, float* y, float* workspace);
void lrn_backward(const LrnGeom& g, const float* x, const float* y, const float* dy, float* dx,
                  float* workspace);

// ------------------------------------------------------------------- concat
// Channel concatenation of `num_inputs` tensors [n, c_i, hw] into y [n, sum c_i, hw].
// Backward accumulates into each dxs[i]; a null dxs[i] (no gradient wanted) is skipped.
void concat_forward(int64_t n, int64_t hw, int64_t num_inputs, const float* const* xs,
                    const int64_t* channels, float* y);
void concat_backward(int64_t n, int64_t hw, int64_t num_inputs, const float* dy,
                     const int64_t* channels, float* const* dxs);

// ------------------------------------------------------ softmax cross-entropy
// logits [n, classes], labels in [0, classes). probs [n, classes] is saved for backward.
// Returns the mean loss over the batch; correct (nullable) receives the number of rows
// whose argmax equals the label.
float softmax_xent_forward(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                           float* probs, int64_t* correct);
// dlogits += (probs - onehot(labels)) / n
void softmax_xent_backward(int64_t n, int64_t classes, const float* probs, const int32_t* labels,
                           float* dlogits);

// -------------------------------------------------------------------- SGD
// True when no element of data[0, count) is NaN or infinite.
bool all_finite(int64_t count, const float* data);
// v = momentum * v + (dw + weight_decay * w); w -= lr * v
void sgd_update(int64_t count, float lr, float momentum, float weight_decay, float* w,
                const float* dw, float* velocity);

}  // namespace sn::cpu
