#include "compress/bitmap_pack.h"

#include <algorithm>
#include <numeric>

namespace sn::compress {

// Note [Prefix-sum packing]
// The source marks kept elements in a status vector, prefix-sums it into a location vector
// and scatters each kept element to its location; on a GPU every step is data-parallel.
// Here the status vector is the bitmap that also goes on the wire, and the prefix sum runs
// over the popcounts of its 64-bit words: word w's first kept element lands at
// offsets[w], and inside a word the set bits are walked lowest first. That is the same
// algorithm with one scan element per word instead of per element (the CUDA path scans
// per element with CCCL), and on the CPU it reads the bitmap once and skips empty words.
namespace {

std::vector<int64_t> word_offsets(const uint64_t* words, int64_t num_words) {
  std::vector<int64_t> counts(static_cast<size_t>(num_words));
  for (int64_t w = 0; w < num_words; ++w) counts[w] = __builtin_popcountll(words[w]);
  std::vector<int64_t> offsets(static_cast<size_t>(num_words));
  std::exclusive_scan(counts.begin(), counts.end(), offsets.begin(), int64_t{0});
  return offsets;
}

// Bits of word w that lie below n (the last word may be partial).
uint64_t word_in_range(const uint64_t* words, int64_t w, int64_t n) {
  const int64_t rest = n - w * 64;
  return rest >= 64 ? words[w] : words[w] & ((uint64_t{1} << rest) - 1);
}

}  // namespace

int64_t popcount(const uint64_t* words, int64_t n) {
  int64_t total = 0;
  for (int64_t w = 0; w < bitmap_num_words(n); ++w)
    total += __builtin_popcountll(word_in_range(words, w, n));
  return total;
}

void pack(const float* values, int64_t n, const uint64_t* words, float* dense) {
  const int64_t num_words = bitmap_num_words(n);
  const std::vector<int64_t> offsets = word_offsets(words, num_words);
  for (int64_t w = 0; w < num_words; ++w) {
    uint64_t bits = word_in_range(words, w, n);
    int64_t at = offsets[w];
    while (bits != 0) {
      dense[at++] = values[w * 64 + __builtin_ctzll(bits)];
      bits &= bits - 1;
    }
  }
}

void unpack(const float* dense, const uint64_t* words, int64_t n, float* out) {
  const int64_t num_words = bitmap_num_words(n);
  const std::vector<int64_t> offsets = word_offsets(words, num_words);
  std::fill(out, out + n, 0.0f);
  for (int64_t w = 0; w < num_words; ++w) {
    uint64_t bits = word_in_range(words, w, n);
    int64_t at = offsets[w];
    while (bits != 0) {
      out[w * 64 + __builtin_ctzll(bits)] = dense[at++];
      bits &= bits - 1;
    }
  }
}

}  // namespace sn::compress
