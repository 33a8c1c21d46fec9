// Checks the gradient compressors (compress/*.h): round trips of every method, the CRC-32
// check value, packing against a scalar reference, and a fuzz of decode() over random and
// mutated packets (checksum recomputed, so the field parsers are reached). Run under
// AddressSanitizer by scripts/test.sh: any read outside the packet fails the build.
//
// Standalone: no test framework. Prints each failed check and exits non-zero on failure.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "compress/bitmap_pack.h"
#include "compress/crc32.h"
#include "compress/packet.h"
#include "compress/range_quantizer.h"
#include "core/errors.h"

namespace {

namespace c = sn::compress;

int64_t g_checks = 0;
int64_t g_failures = 0;

void check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  }
}

std::vector<float> random_grad(std::mt19937_64& rng, int64_t n) {
  std::student_t_distribution<float> t(3.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = 0.01f * t(rng);
  return v;
}

void reseal(std::vector<uint8_t>& packet) {
  const uint32_t crc = c::crc32(packet.data(), packet.size() - 4);
  std::memcpy(packet.data() + packet.size() - 4, &crc, sizeof crc);
}

void test_crc32() {
  const char* s = "123456789";
  check(c::crc32(reinterpret_cast<const uint8_t*>(s), 9) == 0xCBF43926u, "CRC-32 check value");
  check(c::crc32(nullptr, 0) == 0u, "CRC-32 of nothing");
}

void test_pack_reference() {
  std::mt19937_64 rng(1);
  for (int64_t n : {0, 1, 63, 64, 65, 200}) {
    std::vector<float> v = random_grad(rng, n);
    std::vector<uint64_t> words = c::bitmap_words(n);
    std::vector<float> expect;
    for (int64_t i = 0; i < n; ++i)
      if (rng() % 3 == 0) {
        c::set_bit(words.data(), i);
        expect.push_back(v[i]);
      }
    std::vector<float> dense(static_cast<size_t>(c::popcount(words.data(), n)));
    c::pack(v.data(), n, words.data(), dense.data());
    check(dense == expect, "pack matches the scalar reference, n=" + std::to_string(n));
    std::vector<float> back(static_cast<size_t>(n));
    c::unpack(dense.data(), words.data(), n, back.data());
    bool ok = true;
    for (int64_t i = 0; i < n; ++i)
      ok &= back[i] == ((words[i / 64] >> (i % 64)) & 1 ? v[i] : 0.0f);
    check(ok, "unpack inverts pack, n=" + std::to_string(n));
  }
}

void test_round_trips() {
  std::mt19937_64 rng(2);
  const std::vector<float> v = random_grad(rng, 999);
  struct Case {
    c::Method m;
    c::Options o;
  };
  c::Options sparse;
  sparse.theta = 0.85;
  sparse.bits = 10;
  c::Options qsgd;
  qsgd.bits = 4;
  for (const Case& k : {Case{c::Method::kNone, {}}, Case{c::Method::kFp16, {}},
                        Case{c::Method::kTopk, sparse}, Case{c::Method::kFft, sparse},
                        Case{c::Method::kQsgd, qsgd}, Case{c::Method::kTerngrad, {}}}) {
    const std::vector<uint8_t> p = c::encode(k.m, v.data(), 999, {27, 37}, 0, k.o);
    const c::Decoded d = c::decode(p.data(), p.size());
    check(d.method == k.m && d.shape == std::vector<int64_t>({27, 37}) && d.values.size() == 999,
          std::string("header round trip of ") + c::method_name(k.m));
    if (k.m == c::Method::kNone) check(d.values == v, "none is exact");
  }
}

void test_quantizer_bound() {
  std::mt19937_64 rng(3);
  const std::vector<float> v = random_grad(rng, 4000);
  for (int bits = c::kMinQuantBits; bits <= c::kMaxQuantBits; ++bits) {
    const auto q = c::RangeQuantizer::fit(v.data(), 4000, bits);
    bool ok = true;
    for (float x : v) ok &= std::fabs(q.decode(q.encode(x)) - x) <= q.error_bound(x) * 1.000001f;
    check(ok, "quantizer error within bound, bits=" + std::to_string(bits));
  }
}

// Decoding must either succeed with a consistent result or throw ArgumentError.
void decode_or_reject(const std::vector<uint8_t>& p, const std::string& what) {
  try {
    const c::Decoded d = c::decode(p.data(), p.size());
    int64_t n = 1;
    for (int64_t dim : d.shape) n *= dim;
    check(static_cast<int64_t>(d.values.size()) == n, what + ": decoded size matches shape");
  } catch (const sn::ArgumentError&) {
  } catch (const std::exception& e) {
    check(false, what + ": unexpected exception " + e.what());
  }
}

void test_fuzz() {
  std::mt19937_64 rng(4);
  for (int i = 0; i < 3000; ++i) {  // random bytes, with and without a valid magic + CRC
    std::vector<uint8_t> p(4 + rng() % 120);
    for (uint8_t& b : p) b = static_cast<uint8_t>(rng());
    decode_or_reject(p, "random bytes");
    std::memcpy(p.data(), "SNGC", 4);
    if (p.size() > 5) p[4] = 1;
    if (p.size() >= 12) reseal(p);
    decode_or_reject(p, "random bytes with a header");
  }
  const std::vector<float> v = random_grad(rng, 150);
  for (int m = 0; m <= static_cast<int>(c::Method::kFft); ++m) {
    c::Options o;
    o.theta = 0.5;
    o.bits = 5;
    const std::vector<uint8_t> valid =
        c::encode(static_cast<c::Method>(m), v.data(), 150, {10, 15}, 0, o);
    for (int i = 0; i < 3000; ++i) {
      std::vector<uint8_t> p = valid;
      for (int k = 1 + static_cast<int>(rng() % 3); k > 0; --k)
        p[rng() % (p.size() - 4)] = static_cast<uint8_t>(rng());
      if (rng() % 4 == 0) p.resize(std::max<size_t>(12, p.size() - rng() % 16));
      reseal(p);
      decode_or_reject(p, std::string("mutated ") + c::method_name(static_cast<c::Method>(m)));
    }
  }
}

}  // namespace

int main() {
  test_crc32();
  test_pack_reference();
  test_round_trips();
  test_quantizer_bound();
  test_fuzz();
  std::printf("%lld checks, %lld failures\n", static_cast<long long>(g_checks),
              static_cast<long long>(g_failures));
  return g_failures == 0 ? 0 : 1;
}
