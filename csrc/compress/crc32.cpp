#include "compress/crc32.h"

#include <array>

namespace sn::compress {

namespace {

// Slicing-by-4 tables: table[0] is the classic byte table, table[k][b] advances table[0][b]
// through k more zero bytes, so four bytes fold in one step.
using Tables = std::array<std::array<uint32_t, 256>, 4>;

Tables make_tables() {
  constexpr uint32_t kPolynomial = 0xEDB88320u;  // 0x04C11DB7 bit-reversed
  Tables t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c & 1u) ? (c >> 1) ^ kPolynomial : c >> 1;
    t[0][b] = c;
  }
  for (int k = 1; k < 4; ++k)
    for (uint32_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFFu];
  return t;
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t size) {
  static const Tables t = make_tables();
  uint32_t c = 0xFFFFFFFFu;
  size_t i = 0;
  for (; i + 4 <= size; i += 4) {
    c ^= uint32_t{data[i]} | uint32_t{data[i + 1]} << 8 | uint32_t{data[i + 2]} << 16 |
         uint32_t{data[i + 3]} << 24;
    c = t[3][c & 0xFFu] ^ t[2][(c >> 8) & 0xFFu] ^ t[1][(c >> 16) & 0xFFu] ^ t[0][c >> 24];
  }
  for (; i < size; ++i) c = (c >> 8) ^ t[0][(c ^ data[i]) & 0xFFu];
  return c ^ 0xFFFFFFFFu;
}

}  // namespace sn::compress
