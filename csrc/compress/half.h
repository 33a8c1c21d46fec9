// IEEE 754 binary16 conversion in software (round to nearest even), so the CPU build needs
// no F16C instructions; the CUDA path uses __float2half_rn, which rounds the same way.
//
// Usage:
//   uint16_t h = sn::compress::float_to_half(1.5f);  // 0x3E00
//   float f = sn::compress::half_to_float(h);        // 1.5f
#pragma once

#include <cstdint>

namespace sn::compress {

uint16_t float_to_half(float x);
float half_to_float(uint16_t h);

}  // namespace sn::compress
