// The range-based N-bit float of source Sec. 7.3.2: an N-bit code is a sign bit and an
// (N-1)-bit offset into the float32 bit patterns truncated to m mantissa bits, starting at
// eps. Codes are dense around zero and spread out towards max, like gradients.
//
// Usage:
//   auto q = sn::compress::RangeQuantizer::fit(values, n, /*bits=*/10);
//   uint32_t code = q.encode(values[0]);
//   float back = q.decode(code);  // |back - values[0]| <= q.error_bound(values[0])
#pragma once

#include <cstdint>

namespace sn::compress {

constexpr int kMinQuantBits = 2;   // sign + one magnitude code
constexpr int kMaxQuantBits = 16;  // wider codes gain nothing over fp16/fp32 payloads

class RangeQuantizer {
 public:
  // The quantizer whose largest code is max |values| (rounded to m mantissa bits), with the
  // mantissa width m in [0, 23] that minimizes the squared error on (a sample of) values.
  static RangeQuantizer fit(const float* values, int64_t n, int bits);
  // A quantizer read back from a packet; throws ArgumentError when the fields are invalid.
  static RangeQuantizer from_fields(int bits, int mantissa_bits, uint32_t pbase);

  uint32_t encode(float x) const;
  // Throws ArgumentError for a code that no encoder writes (wider than bits, negative zero).
  float decode(uint32_t code) const;

  int bits() const { return bits_; }
  int mantissa_bits() const { return mantissa_bits_; }
  uint32_t pbase() const { return pbase_; }
  float eps() const;        // the smallest nonzero magnitude
  float max_value() const;  // the largest magnitude
  // The guaranteed |x - decode(encode(x))| for normal floats |x| <= max_value():
  // max(2^-(m+1) |x|, eps / 2).
  float error_bound(float x) const;

 private:
  RangeQuantizer(int bits, int mantissa_bits, uint32_t pbase)
      : bits_(bits), mantissa_bits_(mantissa_bits), pbase_(pbase) {}
  uint32_t max_code() const { return (uint32_t{1} << (bits_ - 1)) - 1; }
  int shift() const { return 23 - mantissa_bits_; }

  int bits_;
  int mantissa_bits_;
  uint32_t pbase_;  // the float32 bit pattern of eps, shifted right by 23 - m
};

}  // namespace sn::compress
