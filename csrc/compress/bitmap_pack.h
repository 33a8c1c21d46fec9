// Packing a sparse vector into a dense one through a status bitmap and a prefix sum
// (source Sec. 7.3.2).
//
// Usage:
//   std::vector<uint64_t> status = sn::compress::bitmap_words(n);  // all zero
//   sn::compress::set_bit(status.data(), i);                        // mark element i kept
//   std::vector<float> dense(sn::compress::popcount(status.data(), n));
//   sn::compress::pack(values, n, status.data(), dense.data());
//   sn::compress::unpack(dense.data(), status.data(), n, restored);  // zeros elsewhere
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sn::compress {

// Words of a bitmap over n elements: element i is bit (i % 64) of word i / 64, so the
// bitmap's little-endian bytes are numpy.packbits(mask, bitorder="little").
inline int64_t bitmap_num_words(int64_t n) { return (n + 63) / 64; }
inline int64_t bitmap_num_bytes(int64_t n) { return (n + 7) / 8; }
inline std::vector<uint64_t> bitmap_words(int64_t n) {
  return std::vector<uint64_t>(static_cast<std::size_t>(bitmap_num_words(n)), 0);
}
inline void set_bit(uint64_t* words, int64_t i) { words[i >> 6] |= uint64_t{1} << (i & 63); }

// Number of set bits among the first n.
int64_t popcount(const uint64_t* words, int64_t n);

// dense[j] = values[i] for the j-th set bit i, in increasing i.
void pack(const float* values, int64_t n, const uint64_t* words, float* dense);

// The inverse: out[i] = dense[j] for the j-th set bit i, 0 where the bit is clear.
void unpack(const float* dense, const uint64_t* words, int64_t n, float* out);

}  // namespace sn::compress
