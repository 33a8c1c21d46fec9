// CRC-32 (the IEEE 802.3 / zlib polynomial, reflected) over a byte range: the checksum
// that ends every compressed packet.
//
// Usage:
//   uint32_t c = sn::compress::crc32(bytes.data(), bytes.size());  // "123456789" -> 0xCBF43926
#pragma once

#include <cstddef>
#include <cstdint>

namespace sn::compress {

uint32_t crc32(const uint8_t* data, size_t size);

}  // namespace sn::compress
