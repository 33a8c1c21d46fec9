#include "compress/topk_select.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "compress/bitmap_pack.h"
#include "core/errors.h"

namespace sn::compress {

int64_t kept_count(int64_t n, double theta) {
  if (!(theta >= 0.0 && theta < 1.0))
    throw ArgumentError("theta must be in [0, 1), got " + std::to_string(theta));
  return n - static_cast<int64_t>(std::floor(theta * static_cast<double>(n)));
}

// The k-th largest magnitude comes from nth_element on a copy (linear on average, the CPU
// twin of the source's bucketSelect); one pass then keeps everything above it and the first
// elements equal to it until exactly k are kept.
std::vector<uint64_t> top_k_bitmap(const float* values, int64_t n, int64_t k) {
  SN_ASSERT(k >= 0 && k <= n, "k out of [0, n]");
  std::vector<uint64_t> words = bitmap_words(n);
  if (k == 0) return words;
  if (k == n) {
    for (int64_t i = 0; i < n; ++i) set_bit(words.data(), i);
    return words;
  }
  std::vector<float> mags(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) mags[i] = std::fabs(values[i]);
  std::nth_element(mags.begin(), mags.begin() + (k - 1), mags.end(), std::greater<float>());
  const float threshold = mags[static_cast<size_t>(k - 1)];
  int64_t above = 0;
  for (int64_t i = 0; i < n; ++i) above += std::fabs(values[i]) > threshold;
  int64_t ties_left = k - above;
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(values[i]);
    if (a > threshold || (a == threshold && ties_left-- > 0)) set_bit(words.data(), i);
  }
  return words;
}

}  // namespace sn::compress
