#include "compress/range_quantizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "core/errors.h"

namespace sn::compress {

// Note [Range quantizer]
// Why: gradients (and their spectra) live in a narrow, roughly bell-shaped range; N-bit
// IEEE formats waste codes outside it and uniform codes waste them near max.
// How (source Sec. 7.3.2, with what it leaves open decided here):
//   - Code layout: bit N-1 is the sign, the low N-1 bits a magnitude code c. c = 0 is zero;
//     c >= 1 decodes to the float whose bit pattern is (pbase + c - 1) << (23 - m). So
//     magnitudes step through float32 values with m mantissa bits, from eps (c = 1) up to
//     max (c = 2^(N-1) - 1): 2^m codes per octave, a step that doubles every octave.
//     Signs are symmetric, which is the source's balanced state P = 2^N / 2 by construction
//     (its min is -max): no eps search is needed.
//   - Range: max is max |x| of the tensor being sent, rounded to m mantissa bits, so
//     nothing is ever clamped at the top; it travels in the packet (as pbase and m) instead
//     of being estimated once from early iterations, because gradient ranges drift by
//     orders of magnitude during training and between layers.
//   - eps and m follow from [0, max]: for each m in [0, 23], pbase puts the top code at max,
//     which fixes eps = max / 2^((2^(N-1) - 2) / 2^m) roughly; we keep the m with the
//     smallest squared error over up to kFitSamples evenly strided values. Small m covers
//     many octaves coarsely, large m few octaves finely.
//   - Rounding: to nearest in the truncated mantissa (ties away from zero), by adding half a
//     step to the bit pattern before shifting; a carry moves into the exponent correctly.
//   - Below eps: |x| < eps rounds to the nearer of 0 and eps (the "min clamp" is this flush
//     to zero); exact zeros stay zero. Non-finite input is rejected before fitting.
// Limits: 2 <= N <= 16; the error bound is max(2^-(m+1) |x|, eps / 2) for |x| <= max.
namespace {

constexpr int64_t kFitSamples = 4096;  // values scored per mantissa width

uint32_t float_bits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

float bits_float(uint32_t b) {
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

// The float32 pattern of |x| rounded to m mantissa bits, shifted right by 23 - m.
uint32_t rounded_top(float abs_x, int shift) {
  const uint32_t half = shift > 0 ? uint32_t{1} << (shift - 1) : 0;
  return (float_bits(abs_x) + half) >> shift;
}

}  // namespace

RangeQuantizer RangeQuantizer::from_fields(int bits, int mantissa_bits, uint32_t pbase) {
  if (bits < kMinQuantBits || bits > kMaxQuantBits)
    throw ArgumentError("quantizer bits must be in [2, 16], got " + std::to_string(bits));
  if (mantissa_bits < 0 || mantissa_bits > 23)
    throw ArgumentError("quantizer mantissa bits must be in [0, 23], got " +
                        std::to_string(mantissa_bits));
  const RangeQuantizer q(bits, mantissa_bits, pbase);
  // The top code must still be a finite float pattern.
  const uint64_t top = (uint64_t{pbase} + q.max_code() - 1) << q.shift();
  if (pbase == 0 || top > float_bits(std::numeric_limits<float>::max()))
    throw ArgumentError("quantizer range out of float32 range (pbase " + std::to_string(pbase) +
                        ")");
  return q;
}

RangeQuantizer RangeQuantizer::fit(const float* values, int64_t n, int bits) {
  if (bits < kMinQuantBits || bits > kMaxQuantBits)
    throw ArgumentError("bits must be in [2, 16], got " + std::to_string(bits));
  float max_abs = 0.0f;
  for (int64_t i = 0; i < n; ++i) max_abs = std::max(max_abs, std::fabs(values[i]));
  const uint32_t max_code = (uint32_t{1} << (bits - 1)) - 1;
  if (max_abs == 0.0f) return RangeQuantizer(bits, 23, 1);  // everything encodes to 0

  const int64_t stride = std::max<int64_t>(1, n / kFitSamples);
  RangeQuantizer best(bits, 0, 1);
  double best_error = std::numeric_limits<double>::infinity();
  for (int m = 0; m <= 23; ++m) {
    const int shift = 23 - m;
    const uint32_t top = rounded_top(max_abs, shift);
    // Keep the top code a finite float (max_abs near FLT_MAX rounds up into inf).
    if ((uint64_t{top} << shift) > float_bits(std::numeric_limits<float>::max())) continue;
    const uint32_t pbase = top > max_code ? top - (max_code - 1) : 1;
    const RangeQuantizer q(bits, m, pbase);
    double error = 0.0;
    for (int64_t i = 0; i < n; i += stride) {
      const double d = static_cast<double>(values[i]) - q.decode(q.encode(values[i]));
      error += d * d;
    }
    if (error < best_error) {
      best_error = error;
      best = q;
    }
  }
  return best;
}

uint32_t RangeQuantizer::encode(float x) const {
  const uint32_t sign = std::signbit(x) ? uint32_t{1} << (bits_ - 1) : 0;
  const float a = std::fabs(x);
  const uint32_t top = rounded_top(a, shift());
  uint32_t c;
  if (top >= pbase_) {
    c = std::min<uint32_t>(top - pbase_ + 1, max_code());
  } else {
    c = a >= 0.5f * eps() ? 1 : 0;
  }
  return c == 0 ? 0 : sign | c;
}

float RangeQuantizer::decode(uint32_t code) const {
  const uint32_t c = code & max_code();
  if (code >> bits_ != 0) throw ArgumentError("quantized code wider than the quantizer");
  if (c == 0) {
    if (code != 0)
      throw ArgumentError("quantized code is a negative zero, which no encoder writes");
    return 0.0f;
  }
  const float a = bits_float((pbase_ + c - 1) << shift());
  return (code >> (bits_ - 1)) != 0 ? -a : a;
}

float RangeQuantizer::eps() const { return bits_float(pbase_ << shift()); }

float RangeQuantizer::max_value() const { return bits_float((pbase_ + max_code() - 1) << shift()); }

float RangeQuantizer::error_bound(float x) const {
  return std::max(std::ldexp(std::fabs(x), -(mantissa_bits_ + 1)), 0.5f * eps());
}

}  // namespace sn::compress
