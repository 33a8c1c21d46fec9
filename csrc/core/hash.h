// splitmix64: a fast, well-mixed 64-bit hash (Steele et al.), the one used wherever a seed
// must be spread (dropout masks, per-layer and per-iteration seeds).
#pragma once

#include <cstdint>

namespace sn {

constexpr uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ull;  // 2^64 / golden ratio

inline uint64_t splitmix64(uint64_t z) {
  z += kGoldenGamma;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace sn
