// Python bindings of the gradient compressors (csrc/compress). The public API is
// superneurons/compress.py; these are its private building blocks.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "compress/bitmap_pack.h"
#include "compress/packet.h"
#include "compress/range_quantizer.h"
#include "compress/topk_select.h"
#include "core/errors.h"
#include "python/register.h"

namespace py = pybind11;

namespace sn::python {

namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using ByteArray = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

// The bytes of a bitmap over n elements, as numpy.packbits(mask, bitorder="little").
std::vector<uint64_t> words_from_bytes(const ByteArray& bitmap, int64_t n) {
  if (bitmap.ndim() != 1 || bitmap.shape(0) != compress::bitmap_num_bytes(n))
    throw ArgumentError("bitmap must have ceil(n / 8) = " +
                        std::to_string(compress::bitmap_num_bytes(n)) + " bytes");
  std::vector<uint64_t> words = compress::bitmap_words(n);
  std::memcpy(words.data(), bitmap.data(), static_cast<size_t>(bitmap.shape(0)));
  return words;
}

py::array_t<uint8_t> bytes_from_words(const std::vector<uint64_t>& words, int64_t n) {
  py::array_t<uint8_t> out(compress::bitmap_num_bytes(n));
  std::memcpy(out.mutable_data(), words.data(), static_cast<size_t>(out.shape(0)));
  return out;
}

py::dict decoded_info(const compress::Decoded& d) {
  py::dict info;
  info["method"] = compress::method_name(d.method);
  info["dtype"] = d.dtype;
  info["shape"] = py::tuple(py::cast(d.shape));
  info["kept"] = d.kept;
  info["bits"] = d.bits;
  info["mantissa_bits"] = d.mantissa_bits;
  info["eps"] = d.eps;
  info["max_value"] = d.max_value;
  return info;
}

}  // namespace

void register_compress(py::module_& m) {
  m.def(
      "compress_encode",
      [](const std::string& method, const FloatArray& values, const std::vector<int64_t>& shape,
         int dtype, double theta, int bits, uint64_t seed) {
        if (dtype < 0 || dtype > compress::kMaxDtypeCode)
          throw ArgumentError("compress: unknown dtype code " + std::to_string(dtype));
        compress::Options o;
        o.theta = theta;
        o.bits = bits;
        o.seed = seed;
        const compress::Method mth = compress::method_from_name(method);
        std::vector<uint8_t> wire;
        {
          py::gil_scoped_release release;
          wire = compress::encode(mth, values.data(), values.size(), shape,
                                  static_cast<uint8_t>(dtype), o);
        }
        return py::bytes(reinterpret_cast<const char*>(wire.data()), wire.size());
      },
      py::arg("method"), py::arg("values"), py::arg("shape"), py::arg("dtype"), py::arg("theta"),
      py::arg("bits"), py::arg("seed"),
      "The packet for `values` (flat float32) of `shape`; see csrc/compress/packet.h.");
  m.def(
      "compress_decode",
      [](const py::buffer& packet) {
        const py::buffer_info buf = packet.request();
        if (buf.itemsize != 1 || buf.ndim != 1)
          throw ArgumentError("a compressed packet must be bytes");
        compress::Decoded d;
        {
          py::gil_scoped_release release;
          d = compress::decode(static_cast<const uint8_t*>(buf.ptr), static_cast<size_t>(buf.size));
        }
        py::array_t<float> values(static_cast<py::ssize_t>(d.values.size()));
        std::copy(d.values.begin(), d.values.end(), values.mutable_data());
        return py::make_tuple(values, decoded_info(d));
      },
      py::arg("packet"), "(flat float32 values, header fields) of a packet.");
  m.def(
      "compress_topk_bitmap",
      [](const FloatArray& values, int64_t k) {
        const int64_t n = values.size();
        if (k < 0 || k > n) throw ArgumentError("k must be in [0, n]");
        return bytes_from_words(compress::top_k_bitmap(values.data(), n, k), n);
      },
      py::arg("values"), py::arg("k"));
  m.def(
      "compress_kept_count", [](int64_t n, double theta) { return compress::kept_count(n, theta); },
      py::arg("n"), py::arg("theta"));
  m.def(
      "compress_pack",
      [](const FloatArray& values, const ByteArray& bitmap) {
        const int64_t n = values.size();
        const std::vector<uint64_t> words = words_from_bytes(bitmap, n);
        py::array_t<float> dense(compress::popcount(words.data(), n));
        compress::pack(values.data(), n, words.data(), dense.mutable_data());
        return dense;
      },
      py::arg("values"), py::arg("bitmap"));
  m.def(
      "compress_unpack",
      [](const FloatArray& dense, const ByteArray& bitmap, int64_t n) {
        if (n < 0) throw ArgumentError("n must be >= 0");
        const std::vector<uint64_t> words = words_from_bytes(bitmap, n);
        if (compress::popcount(words.data(), n) != dense.size())
          throw ArgumentError("dense holds " + std::to_string(dense.size()) +
                              " values but the bitmap marks " +
                              std::to_string(compress::popcount(words.data(), n)));
        py::array_t<float> out(n);
        compress::unpack(dense.data(), words.data(), n, out.mutable_data());
        return out;
      },
      py::arg("dense"), py::arg("bitmap"), py::arg("n"));
  m.def(
      "compress_range_quantize",
      [](const FloatArray& values, int bits) {
        const int64_t n = values.size();
        const auto q = compress::RangeQuantizer::fit(values.data(), n, bits);
        py::array_t<float> back(n);
        py::array_t<float> bound(n);
        for (int64_t i = 0; i < n; ++i) {
          back.mutable_data()[i] = q.decode(q.encode(values.data()[i]));
          bound.mutable_data()[i] = q.error_bound(values.data()[i]);
        }
        py::dict info;
        info["mantissa_bits"] = q.mantissa_bits();
        info["eps"] = q.eps();
        info["max_value"] = q.max_value();
        return py::make_tuple(back, bound, info);
      },
      py::arg("values"), py::arg("bits"),
      "Round trip through the range quantizer fitted to `values`, with its error bound.");
}

}  // namespace sn::python
