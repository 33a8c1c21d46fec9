#include "compress/half.h"

#include <cstring>

namespace sn::compress {

uint16_t float_to_half(float x) {
  uint32_t f;
  std::memcpy(&f, &x, sizeof f);
  const uint32_t sign = (f >> 16) & 0x8000u;
  const uint32_t abs = f & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u)  // inf or NaN; NaN keeps a quiet payload bit
    return static_cast<uint16_t>(sign | 0x7C00u | (abs > 0x7F800000u ? 0x0200u : 0u));
  if (abs >= 0x477FF000u)  // rounds to >= 65520: overflow to inf
    return static_cast<uint16_t>(sign | 0x7C00u);
  if (abs < 0x38800000u) {  // below 2^-14: a half subnormal (or zero)
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // below 2^-25 rounds to 0
    const uint32_t exponent = abs >> 23;                        // 102 .. 112
    const uint32_t mantissa = (abs & 0x7FFFFFu) | 0x800000u;    // with the hidden bit
    const uint32_t shift = 126 - exponent;                      // 14 .. 24
    uint32_t h = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits.
  uint32_t h = (abs - 0x38000000u) >> 13;
  const uint32_t rest = abs & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry bumps the exponent
  return static_cast<uint16_t>(sign | h);
}

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  uint32_t mantissa = h & 0x3FFu;
  uint32_t f;
  if (exponent == 0x1Fu) {
    f = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {
    f = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    f = sign;
  } else {  // subnormal half: normalize
    int e = -1;
    do {
      ++e;
      mantissa <<= 1;
    } while ((mantissa & 0x400u) == 0);
    f = sign | ((112 - e) << 23) | ((mantissa & 0x3FFu) << 13);
  }
  float x;
  std::memcpy(&x, &f, sizeof x);
  return x;
}

}  // namespace sn::compress
