#include "compress/packet.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "compress/bitmap_pack.h"
#include "compress/crc32.h"
#include "compress/half.h"
#include "compress/range_quantizer.h"
#include "compress/topk_select.h"
#include "core/errors.h"
#include "core/hash.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the packet format stores little-endian values with memcpy");

namespace sn::compress {

// Note [Packet format]
// Everything a rank sends for one tensor, in order (little-endian):
//   "SNGC" | u8 version = 1 | u8 method | u8 dtype | u8 ndim | i64 dims[ndim]
//   payload (per method, below)
//   u32 CRC-32 of all the bytes before it
// Payloads:
//   none       n x f32
//   fp16       n x u16 (IEEE binary16, round to nearest even)
//   qsgd       f32 norm | u8 bits | n codes of `bits` bits (sign, then level 0..2^(bits-1)-1)
//   terngrad   f32 scale | n codes of 2 bits (0: 0, 1: +scale, 2: -scale)
//   topk, fft  u64 kept | bitmap of ceil(n/8) bytes | u8 bits |
//              bits == 0: kept x f32; else u8 m | u32 pbase | kept codes of `bits` bits
// Codes are packed lowest bit first, with zero padding to a whole byte. A decoder checks
// the magic, then the checksum (truncation and corruption), then every field against what
// an encoder can write, and that the payload ends exactly at the checksum. The checksum
// is 4 bytes per tensor; the header 8 + 8 ndim bytes. Both count as bytes sent.
namespace {

constexpr uint8_t kMagic[4] = {'S', 'N', 'G', 'C'};
constexpr uint8_t kVersion = 1;
constexpr int kTernBits = 2;

class Writer {
 public:
  explicit Writer(size_t reserve_bytes) { out_.reserve(reserve_bytes); }
  template <typename T>
  void put(T v) {
    const size_t at = out_.size();
    out_.resize(at + sizeof v);
    std::memcpy(out_.data() + at, &v, sizeof v);
  }
  void put_bytes(const void* p, size_t size) {
    const auto* b = static_cast<const uint8_t*>(p);
    out_.insert(out_.end(), b, b + size);
  }
  // Codes of `width` bits, lowest bit first, padded with zeros to a byte.
  template <typename CodeAt>
  void put_codes(int64_t count, int width, CodeAt code_at) {
    const size_t start = out_.size();
    out_.resize(start + static_cast<size_t>((count * width + 7) / 8), 0);
    uint8_t* dst = out_.data() + start;
    uint64_t acc = 0;
    int filled = 0;
    for (int64_t i = 0; i < count; ++i) {
      acc |= uint64_t{code_at(i)} << filled;
      filled += width;
      while (filled >= 8) {
        *dst++ = static_cast<uint8_t>(acc);
        acc >>= 8;
        filled -= 8;
      }
    }
    if (filled > 0) *dst = static_cast<uint8_t>(acc);
  }
  std::vector<uint8_t> finish() {
    put<uint32_t>(crc32(out_.data(), out_.size()));
    return std::move(out_);
  }

 private:
  std::vector<uint8_t> out_;
};

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  const uint8_t* take(size_t n, const char* what) {
    if (n > size_ - at_)
      throw ArgumentError(std::string("compressed packet too short for its ") + what);
    const uint8_t* p = data_ + at_;
    at_ += n;
    return p;
  }
  template <typename T>
  T get(const char* what) {
    T v;
    std::memcpy(&v, take(sizeof v, what), sizeof v);
    return v;
  }
  // Reads `count` codes of `width` bits into sink(i, code).
  template <typename Sink>
  void get_codes(int64_t count, int width, const char* what, Sink sink) {
    const size_t num_bytes = static_cast<size_t>((count * width + 7) / 8);
    const uint8_t* src = take(num_bytes, what);
    const uint64_t mask = (uint64_t{1} << width) - 1;
    uint64_t acc = 0;
    int filled = 0;
    size_t next = 0;
    for (int64_t i = 0; i < count; ++i) {
      while (filled < width) {
        acc |= uint64_t{src[next++]} << filled;
        filled += 8;
      }
      sink(i, static_cast<uint32_t>(acc & mask));
      acc >>= width;
      filled -= width;
    }
    if (acc != 0) throw ArgumentError(std::string("nonzero padding after the ") + what);
  }
  size_t remaining() const { return size_ - at_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

// A uniform float in [0, 1) for element i of the stochastic rounding stream `seed`.
float uniform01(uint64_t seed, int64_t i) {
  const uint64_t z = splitmix64(seed + static_cast<uint64_t>(i) * kGoldenGamma);
  return static_cast<float>(z >> 40) * 0x1.0p-24f;
}

void check_finite(const float* v, int64_t n, Method m) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i]))
      throw ArgumentError(std::string("compress '") + method_name(m) +
                          "': gradient has a non-finite value (" + std::to_string(v[i]) +
                          ") at flat index " + std::to_string(i));
}

void check_bits(Method m, int bits) {
  const bool ok = (m == Method::kTopk || m == Method::kFft)
                      ? (bits == 0 || (bits >= kMinQuantBits && bits <= kMaxQuantBits))
                      : (bits >= kMinQuantBits && bits <= kMaxQuantBits);
  if (!ok)
    throw ArgumentError(std::string("compress '") + method_name(m) + "': bits must be in [2, 16]" +
                        ((m == Method::kTopk || m == Method::kFft) ? " (or 0 for float32)" : "") +
                        ", got " + std::to_string(bits));
}

void encode_sparse(Writer& w, const float* v, int64_t n, const Options& o) {
  const int64_t kept = kept_count(n, o.theta);
  const std::vector<uint64_t> status = top_k_bitmap(v, n, kept);
  std::vector<float> dense(static_cast<size_t>(kept));
  pack(v, n, status.data(), dense.data());
  w.put<uint64_t>(static_cast<uint64_t>(kept));
  w.put_bytes(status.data(), static_cast<size_t>(bitmap_num_bytes(n)));
  w.put<uint8_t>(static_cast<uint8_t>(o.bits));
  if (o.bits == 0) {
    w.put_bytes(dense.data(), dense.size() * sizeof(float));
    return;
  }
  const RangeQuantizer q = RangeQuantizer::fit(dense.data(), kept, o.bits);
  w.put<uint8_t>(static_cast<uint8_t>(q.mantissa_bits()));
  w.put<uint32_t>(q.pbase());
  w.put_codes(kept, o.bits, [&](int64_t i) { return q.encode(dense[i]); });
}

void decode_sparse(Reader& r, Decoded& d, int64_t n) {
  const uint64_t kept = r.get<uint64_t>("kept count");
  if (kept > static_cast<uint64_t>(n))
    throw ArgumentError("compressed packet keeps " + std::to_string(kept) + " of only " +
                        std::to_string(n) + " values");
  std::vector<uint64_t> status = bitmap_words(n);
  const size_t map_bytes = static_cast<size_t>(bitmap_num_bytes(n));
  std::memcpy(status.data(), r.take(map_bytes, "status bitmap"), map_bytes);
  if (n % 64 != 0 && (status.back() >> (n % 64)) != 0)
    throw ArgumentError("compressed packet's status bitmap has bits past the tensor's end");
  if (popcount(status.data(), n) != static_cast<int64_t>(kept))
    throw ArgumentError("compressed packet's status bitmap marks a different count than kept");
  d.kept = static_cast<int64_t>(kept);
  d.bits = r.get<uint8_t>("quantizer width");
  std::vector<float> dense(static_cast<size_t>(kept));
  if (d.bits == 0) {
    std::memcpy(dense.data(), r.take(dense.size() * sizeof(float), "values"),
                dense.size() * sizeof(float));
    for (float x : dense)
      if (!std::isfinite(x)) throw ArgumentError("compressed packet has a non-finite value");
  } else {
    const int m = r.get<uint8_t>("mantissa width");
    const uint32_t pbase = r.get<uint32_t>("quantizer base");
    const RangeQuantizer q = RangeQuantizer::from_fields(d.bits, m, pbase);
    r.get_codes(d.kept, d.bits, "quantized values",
                [&](int64_t i, uint32_t code) { dense[i] = q.decode(code); });
    d.mantissa_bits = m;
    d.eps = q.eps();
    d.max_value = q.max_value();
  }
  unpack(dense.data(), status.data(), n, d.values.data());
}

}  // namespace

Method method_from_name(const std::string& name) {
  for (int m = 0; m <= static_cast<int>(Method::kFft); ++m)
    if (name == method_name(static_cast<Method>(m))) return static_cast<Method>(m);
  throw ArgumentError("unknown compressor '" + name +
                      "'; choose none, fp16, topk, qsgd, terngrad or fft");
}

const char* method_name(Method m) {
  switch (m) {
    case Method::kNone:
      return "none";
    case Method::kFp16:
      return "fp16";
    case Method::kTopk:
      return "topk";
    case Method::kQsgd:
      return "qsgd";
    case Method::kTerngrad:
      return "terngrad";
    case Method::kFft:
      return "fft";
  }
  return "?";
}

std::vector<uint8_t> encode(Method method, const float* v, int64_t n,
                            const std::vector<int64_t>& shape, uint8_t dtype, const Options& o) {
  if (shape.size() > static_cast<size_t>(kMaxDims))
    throw ArgumentError("compress: at most 8 dimensions, got " + std::to_string(shape.size()));
  if (dtype > kMaxDtypeCode) throw ArgumentError("compress: unknown dtype code");
  int64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0) throw ArgumentError("compress: negative dimension " + std::to_string(dim));
    if (dim != 0 && count > kMaxElements / dim)
      throw ArgumentError("compress: more than 2^40 elements");
    count *= dim;
  }
  if (count != n)
    throw ArgumentError("compress: shape holds " + std::to_string(count) + " values, got " +
                        std::to_string(n));
  if (method != Method::kNone && method != Method::kFp16) check_finite(v, n, method);
  if (method == Method::kTopk || method == Method::kFft || method == Method::kQsgd)
    check_bits(method, o.bits);
  if (method == Method::kTopk || method == Method::kFft) kept_count(n, o.theta);  // validates

  Writer w(24 + 8 * shape.size() + static_cast<size_t>(n) * sizeof(float) +
           static_cast<size_t>(n / 8));
  w.put_bytes(kMagic, sizeof kMagic);
  w.put<uint8_t>(kVersion);
  w.put<uint8_t>(static_cast<uint8_t>(method));
  w.put<uint8_t>(dtype);
  w.put<uint8_t>(static_cast<uint8_t>(shape.size()));
  for (int64_t dim : shape) w.put<int64_t>(dim);

  switch (method) {
    case Method::kNone:
      w.put_bytes(v, static_cast<size_t>(n) * sizeof(float));
      break;
    case Method::kFp16:
      for (int64_t i = 0; i < n; ++i) w.put<uint16_t>(float_to_half(v[i]));
      break;
    case Method::kQsgd: {
      double sum_sq = 0.0;
      for (int64_t i = 0; i < n; ++i) sum_sq += static_cast<double>(v[i]) * v[i];
      const float norm = static_cast<float>(std::sqrt(sum_sq));
      const uint32_t levels = (uint32_t{1} << (o.bits - 1)) - 1;
      const uint32_t sign_bit = uint32_t{1} << (o.bits - 1);
      w.put<float>(norm);
      w.put<uint8_t>(static_cast<uint8_t>(o.bits));
      w.put_codes(n, o.bits, [&](int64_t i) -> uint32_t {
        if (norm == 0.0f) return 0;
        const float a = std::fabs(v[i]) / norm * static_cast<float>(levels);
        float level = std::floor(a);
        if (uniform01(o.seed, i) < a - level) level += 1.0f;
        const uint32_t l = std::min(static_cast<uint32_t>(level), levels);
        return l == 0 ? 0 : (std::signbit(v[i]) ? sign_bit : 0) | l;
      });
      break;
    }
    case Method::kTerngrad: {
      float scale = 0.0f;
      for (int64_t i = 0; i < n; ++i) scale = std::max(scale, std::fabs(v[i]));
      w.put<float>(scale);
      w.put_codes(n, kTernBits, [&](int64_t i) -> uint32_t {
        if (scale == 0.0f || !(uniform01(o.seed, i) < std::fabs(v[i]) / scale)) return 0;
        return std::signbit(v[i]) ? 2 : 1;
      });
      break;
    }
    case Method::kTopk:
    case Method::kFft:
      encode_sparse(w, v, n, o);
      break;
  }
  return w.finish();
}

Decoded decode(const uint8_t* data, size_t size) {
  if (size < sizeof kMagic + 4 + 4 || std::memcmp(data, kMagic, sizeof kMagic) != 0)
    throw ArgumentError("not a superneurons compressed packet (bad magic or too short: " +
                        std::to_string(size) + " bytes)");
  uint32_t stored;
  std::memcpy(&stored, data + size - 4, sizeof stored);
  if (crc32(data, size - 4) != stored)
    throw ArgumentError("compressed packet checksum mismatch: truncated or corrupted (" +
                        std::to_string(size) + " bytes)");
  Reader r(data, size - 4);
  r.take(sizeof kMagic, "magic");
  const uint8_t version = r.get<uint8_t>("version");
  if (version != kVersion)
    throw ArgumentError("compressed packet version " + std::to_string(version) +
                        " is not supported (expected 1)");
  const uint8_t method = r.get<uint8_t>("method");
  if (method > static_cast<uint8_t>(Method::kFft))
    throw ArgumentError("compressed packet has unknown method " + std::to_string(method));
  Decoded d;
  d.method = static_cast<Method>(method);
  d.dtype = r.get<uint8_t>("dtype");
  if (d.dtype > kMaxDtypeCode)
    throw ArgumentError("compressed packet has unknown dtype " + std::to_string(d.dtype));
  const uint8_t ndim = r.get<uint8_t>("ndim");
  if (ndim > kMaxDims)
    throw ArgumentError("compressed packet has " + std::to_string(ndim) + " dimensions (max 8)");
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) {
    const int64_t dim = r.get<int64_t>("shape");
    if (dim < 0 || (dim != 0 && n > kMaxElements / dim))
      throw ArgumentError("compressed packet has an invalid shape");
    n *= dim;
    d.shape.push_back(dim);
  }
  // Every method needs at least n / 4 bytes (terngrad's 2-bit codes, a topk bitmap at n / 8
  // plus kept values): refuse to allocate for a header that promises more than was sent.
  if (static_cast<uint64_t>(n) / 8 > r.remaining())
    throw ArgumentError("compressed packet too short for its shape");
  d.values.assign(static_cast<size_t>(n), 0.0f);
  d.kept = n;

  switch (d.method) {
    case Method::kNone:
      std::memcpy(d.values.data(), r.take(static_cast<size_t>(n) * sizeof(float), "values"),
                  static_cast<size_t>(n) * sizeof(float));
      break;
    case Method::kFp16: {
      const uint8_t* src = r.take(static_cast<size_t>(n) * 2, "values");
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, sizeof h);
        d.values[i] = half_to_float(h);
      }
      d.bits = 16;
      break;
    }
    case Method::kQsgd: {
      const float norm = r.get<float>("norm");
      d.bits = r.get<uint8_t>("code width");
      if (!std::isfinite(norm) || norm < 0.0f)
        throw ArgumentError("compressed packet has an invalid qsgd norm");
      if (d.bits < kMinQuantBits || d.bits > kMaxQuantBits)
        throw ArgumentError("compressed packet has an invalid qsgd code width");
      const uint32_t levels = (uint32_t{1} << (d.bits - 1)) - 1;
      const int sign_shift = d.bits - 1;
      r.get_codes(n, d.bits, "qsgd codes", [&](int64_t i, uint32_t code) {
        const uint32_t l = code & levels;
        if (l == 0 && code != 0) throw ArgumentError("compressed packet has a qsgd negative zero");
        const float x = norm * static_cast<float>(l) / static_cast<float>(levels);
        d.values[i] = (code >> sign_shift) != 0 ? -x : x;
      });
      d.max_value = norm;
      break;
    }
    case Method::kTerngrad: {
      const float scale = r.get<float>("scale");
      if (!std::isfinite(scale) || scale < 0.0f)
        throw ArgumentError("compressed packet has an invalid terngrad scale");
      r.get_codes(n, kTernBits, "terngrad codes", [&](int64_t i, uint32_t code) {
        if (code == 3) throw ArgumentError("compressed packet has an invalid terngrad code");
        d.values[i] = code == 0 ? 0.0f : code == 1 ? scale : -scale;
      });
      d.bits = kTernBits;
      d.max_value = scale;
      break;
    }
    case Method::kTopk:
    case Method::kFft:
      decode_sparse(r, d, n);
      break;
  }
  if (r.remaining() != 0)
    throw ArgumentError("compressed packet has " + std::to_string(r.remaining()) +
                        " bytes after its payload");
  return d;
}

}  // namespace sn::compress
