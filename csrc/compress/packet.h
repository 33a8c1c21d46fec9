// The wire format of a compressed gradient: every byte a rank sends, self-describing and
// checked on arrival.
//
// Usage:
//   sn::compress::Options o;
//   o.theta = 0.85;  // drop 85% of the values
//   o.bits = 10;     // quantize the rest to 10 bits
//   std::vector<uint8_t> wire = sn::compress::encode(Method::kTopk, grad, {64, 3, 3, 3}, 0, o);
//   sn::compress::Decoded d = sn::compress::decode(wire.data(), wire.size());
//   // d.values has 64*3*3*3 floats, d.shape == {64, 3, 3, 3}
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sn::compress {

enum class Method : uint8_t {
  kNone = 0,      // float32 as is
  kFp16 = 1,      // IEEE binary16
  kTopk = 2,      // top (1 - theta) by magnitude, bitmap + dense values (optionally quantized)
  kQsgd = 3,      // stochastic uniform levels of |x| / ||x||_2 (Alistarh et al., 2017)
  kTerngrad = 4,  // stochastic {-1, 0, 1} * max |x| (Wen et al., 2017)
  kFft = 5,       // kTopk applied to a spectrum; the transform is done by the caller
};

// Parses "none", "fp16", ... ; throws ArgumentError listing the valid names otherwise.
Method method_from_name(const std::string& name);
const char* method_name(Method m);

struct Options {
  double theta = 0.0;  // topk/fft: fraction dropped, in [0, 1)
  int bits = 0;        // topk/fft: 0 sends float32 values, else the range quantizer's N;
                       // qsgd: bits per value including the sign
  uint64_t seed = 0;   // qsgd/terngrad: the stochastic rounding stream
};

struct Decoded {
  Method method = Method::kNone;
  uint8_t dtype = 0;  // the caller's code for the original dtype, returned as sent
  std::vector<int64_t> shape;
  std::vector<float> values;  // prod(shape) floats
  // What the packet says about itself (for sn.compress.inspect and the benchmarks).
  int64_t kept = 0;        // values sent (topk/fft); every value otherwise
  int bits = 0;            // quantizer or code width, 0 for float32 values
  int mantissa_bits = -1;  // range quantizer only
  float eps = 0.0f;        // range quantizer only
  float max_value = 0.0f;  // range quantizer's top, qsgd's norm or terngrad's scale
};

// Throws ArgumentError for an invalid option, a shape whose product is not n, or
// non-finite values given to a lossy method.
std::vector<uint8_t> encode(Method method, const float* values, int64_t n,
                            const std::vector<int64_t>& shape, uint8_t dtype,
                            const Options& options);

// Throws ArgumentError for anything that is not a packet written by encode: wrong magic or
// version, a size that disagrees with the header, a checksum mismatch, or fields no
// encoder writes. Reads nothing outside [data, data + size).
Decoded decode(const uint8_t* data, size_t size);

constexpr int kMaxDims = 8;
// Original dtype codes the packet may carry: 0 float32, 1 float64, 2 float16.
constexpr uint8_t kMaxDtypeCode = 2;
constexpr int64_t kMaxElements = int64_t{1} << 40;  // elements per packet

}  // namespace sn::compress
