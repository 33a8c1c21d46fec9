"""Gradient compressors: round trips, selection, packing, quantizer bounds, bad packets."""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import superneurons as sn
from superneurons._ext import _C
from superneurons.compress import _inverse_spectrum, _spectrum

Floats = npt.NDArray[np.float32]


def grad(shape: tuple[int, ...], seed: int = 0, scale: float = 1e-2) -> Floats:
    rng = np.random.default_rng(seed)
    return (rng.standard_t(3, size=shape) * scale).astype(np.float32)


def header_bytes(ndim: int) -> int:
    return 8 + 8 * ndim  # magic, version, method, dtype, ndim, dims


def top_indices(values: Floats, k: int) -> npt.NDArray[np.intp]:
    """NumPy reference: the k largest |v|, lower index first among equals."""
    order = np.lexsort((np.arange(values.size), -np.abs(values)))
    return np.sort(order[:k])


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 5, 2, 2)])
def test_none_is_exact(dtype: type, shape: tuple[int, ...]) -> None:
    g = grad(shape).astype(dtype)
    c = sn.compress.make("none")
    packet = c.compress(g)
    back = c.decompress(packet)
    assert back.dtype == np.float32 and back.shape == g.shape
    np.testing.assert_array_equal(back, g.astype(np.float32))
    assert len(packet) == header_bytes(len(shape)) + 4 * g.size + 4
    assert (
        sn.compress.inspect(packet)["dtype"] == {np.float32: 0, np.float64: 1, np.float16: 2}[dtype]
    )


def test_fp16_matches_numpy_bit_for_bit() -> None:
    edge = [0.0, -0.0, 1.0, 65504.0, 65519.9, 65520.0, 1e9, -1e9, 2.0**-24, 2.0**-25, 3 * 2.0**-26]
    edge += [2.0**-14, 2.0**-14 - 2.0**-25, 1 + 2.0**-11, 1 + 3 * 2.0**-11, np.inf, -np.inf]
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [
            np.array(edge, np.float32),
            (rng.standard_normal(5000) * 10.0 ** rng.integers(-9, 5, 5000)),
        ]
    ).astype(np.float32)
    c = sn.compress.make("fp16")
    packet = c.compress(x)
    half = np.frombuffer(packet[header_bytes(1) : -4], np.uint16)
    with np.errstate(over="ignore"):
        expected = x.astype(np.float16)
    np.testing.assert_array_equal(half, expected.view(np.uint16))
    np.testing.assert_array_equal(c.decompress(packet), expected.astype(np.float32))
    nan = c.decompress(c.compress(np.array([np.nan], np.float32)))
    assert np.isnan(nan).all()


@pytest.mark.parametrize("theta", [0.0, 0.3, 0.85, 0.99])
@pytest.mark.parametrize("n", [1, 63, 64, 1000])
def test_topk_keeps_exactly_the_top_fraction(theta: float, n: int) -> None:
    g = grad((n,), seed=n)
    c = sn.compress.make("topk", theta=theta)
    back = c.decompress(c.compress(g))
    k = n - math.floor(theta * n)
    kept = top_indices(g, k)
    np.testing.assert_array_equal(np.flatnonzero(back != 0), kept)
    np.testing.assert_array_equal(back[kept], g[kept])  # float32 values travel exactly


def test_topk_breaks_ties_by_index() -> None:
    g = np.array([1.0, -2.0, 2.0, 1.0, -1.0, 2.0, 1.0], np.float32)
    np.testing.assert_array_equal(
        sn.compress.make("topk", theta=0.5).decompress(
            sn.compress.make("topk", theta=0.5).compress(g)
        ),
        [1.0, -2.0, 2.0, 0.0, 0.0, 2.0, 0.0],
    )
    bitmap = _C.compress_topk_bitmap(g, 4)
    np.testing.assert_array_equal(
        np.unpackbits(bitmap, bitorder="little")[:7], [1, 1, 1, 0, 0, 1, 0]
    )


@pytest.mark.parametrize("n", [1, 2, 3, 8, 9, 1000, 1001])
def test_spectrum_is_the_orthonormal_real_dft(n: int) -> None:
    x = grad((n,), seed=n)
    r = _spectrum(x)
    assert r.size == n  # Hermitian symmetry: n real numbers, no more
    full = np.fft.fft(x.astype(np.float64), norm="ortho")
    m = (n - 1) // 2
    assert r[0] == pytest.approx(full[0].real, abs=1e-6)
    np.testing.assert_allclose(r[1 : 2 * m + 1 : 2], math.sqrt(2) * full[1 : m + 1].real, atol=1e-6)
    np.testing.assert_allclose(r[2 : 2 * m + 1 : 2], math.sqrt(2) * full[1 : m + 1].imag, atol=1e-6)
    assert np.linalg.norm(r) == pytest.approx(np.linalg.norm(x), rel=1e-5)  # Parseval
    np.testing.assert_allclose(_inverse_spectrum(r), x, atol=1e-6)


@pytest.mark.parametrize("bits", [4, 8, 10, 16])
def test_fft_theta0_stays_within_the_quantizer_bound(bits: int) -> None:
    g = grad((40, 25), seed=bits)
    c = sn.compress.make("fft", theta=0.0, bits=bits)
    packet = c.compress(g)
    info = sn.compress.inspect(packet)
    assert info["kept"] == g.size and info["bits"] == bits
    r = np.abs(_spectrum(g.reshape(-1))).astype(np.float64)
    bound = np.maximum(r * 2.0 ** -(info["mantissa_bits"] + 1), info["eps"] / 2)
    # Orthonormal transform: the spatial L2 error equals the spectral one.
    error = np.linalg.norm(c.decompress(packet) - g)
    assert error <= np.linalg.norm(bound) + 1e-6 * np.linalg.norm(g)
    assert error > 0 or bits == 16


def test_fft_keeps_the_top_spectral_coefficients() -> None:
    g = grad((1000,), seed=3)
    packet = sn.compress.make("fft", theta=0.9, bits=16).compress(g)
    info = sn.compress.inspect(packet)
    assert info["kept"] == 100
    kept_ref = top_indices(_spectrum(g), 100)
    values, _ = _C.compress_decode(packet)
    np.testing.assert_array_equal(np.flatnonzero(values), kept_ref)


def test_fft_reconstructs_a_smooth_signal_better_than_topk() -> None:
    t = np.linspace(0, 1, 4096, dtype=np.float32)
    smooth = (np.sin(2 * np.pi * 3 * t) + 0.5 * np.cos(2 * np.pi * 7 * t)).astype(np.float32)
    err = {}
    for name in ("fft", "topk"):
        c = sn.compress.make(name, theta=0.95, bits=16)
        back = c.decompress(c.compress(smooth))
        err[name] = np.linalg.norm(back - smooth) / np.linalg.norm(smooth)
    assert err["fft"] < 0.01 < err["topk"]


# --------------------------------------------------------------------------- quantizer
@pytest.mark.parametrize("bits", [2, 3, 6, 10, 16])
@pytest.mark.parametrize("scale", [1e-6, 1e-2, 1.0, 1e4])
def test_range_quantizer_error_is_within_its_bound(bits: int, scale: float) -> None:
    x = grad((5000,), seed=bits, scale=scale)
    x[:3] = 0.0
    back, bound, info = _C.compress_range_quantize(x, bits)
    assert np.all(np.abs(back - x) <= bound * (1 + 1e-6))
    assert np.all(back[:3] == 0)
    assert np.all(np.sign(back) * np.sign(x) >= 0)  # never flips a sign
    assert 0 <= info["mantissa_bits"] <= 23
    # The top code is max |x| rounded to m mantissa bits: nothing is clamped beyond rounding.
    assert info["max_value"] >= np.abs(x).max() * (1 - 2.0 ** -(info["mantissa_bits"] + 1))
    np.testing.assert_array_equal(_C.compress_range_quantize(-x, bits)[0], -back)  # symmetric
    assert len(np.unique(np.abs(back))) <= 2 ** (bits - 1)


def test_range_quantizer_beats_uniform_quantization_on_heavy_tails() -> None:
    x = grad((20000,), seed=5)
    back, _, _ = _C.compress_range_quantize(x, 8)
    levels = 2**7 - 1
    m = np.abs(x).max()
    uniform = np.round(x / m * levels) / levels * m
    assert np.linalg.norm(back - x) < 0.5 * np.linalg.norm(uniform - x)


# --------------------------------------------------------------------------- packing
@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 300),
    density=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31),
)
def test_pack_and_unpack_match_numpy(n: int, density: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(n).astype(np.float32)
    mask = rng.random(n) < density
    bitmap = np.packbits(mask, bitorder="little")
    dense = _C.compress_pack(values, bitmap)
    np.testing.assert_array_equal(dense, values[mask])
    np.testing.assert_array_equal(_C.compress_unpack(dense, bitmap, n), np.where(mask, values, 0))


@pytest.mark.parametrize("bits", [None, 3, 10])
@pytest.mark.parametrize("shape", [(1,), (100,), (64, 3, 3, 3)])
def test_sparse_packet_size_accounts_for_the_bitmap(
    bits: int | None, shape: tuple[int, ...]
) -> None:
    g = grad(shape)
    n = g.size
    packet = sn.compress.make("topk", theta=0.85, bits=bits).compress(g)
    kept = n - math.floor(0.85 * n)
    values = 4 * kept if bits is None else 1 + 4 + math.ceil(kept * bits / 8)
    assert len(packet) == header_bytes(len(shape)) + 8 + math.ceil(n / 8) + 1 + values + 4
    assert struct.unpack("<I", packet[-4:])[0] == zlib.crc32(packet[:-4])  # the CRC is CRC-32


# ----------------------------------------------------------------------- qsgd, terngrad
def test_qsgd_and_terngrad_are_unbiased_and_on_their_grids() -> None:
    g = grad((2000,), seed=9)
    for name, options in (("qsgd", {"bits": 4}), ("terngrad", {})):
        c = sn.compress.make(name, **options)
        draws = np.stack([c.decompress(c.compress(g)) for _ in range(2000)])
        assert np.abs(draws.mean(axis=0) - g).max() < 0.08 * np.abs(g).max()
        info = sn.compress.inspect(c.compress(g))
        if name == "qsgd":
            grid = info["max_value"] * np.arange(8) / 7
        else:
            grid = np.array([0.0, info["max_value"]])
        ratios = np.abs(draws[:50])[:, :, None] - grid.astype(np.float32)[None, None, :]
        assert np.all(np.min(np.abs(ratios), axis=2) <= 1e-6 * info["max_value"])
        assert len(c.compress(g)) < g.nbytes / 7


def test_error_feedback_sends_everything_eventually() -> None:
    c = sn.compress.make("topk", theta=0.9, error_feedback=True)
    rng = np.random.default_rng(0)
    total_in = np.zeros(500, np.float64)
    total_out = np.zeros(500, np.float64)
    for _ in range(30):
        g = rng.standard_normal(500).astype(np.float32)
        total_in += g
        total_out += c.decompress(c.compress(g, name="w"))
    np.testing.assert_allclose(total_out + c.residual("w"), total_in, atol=1e-4)
    assert np.linalg.norm(c.residual("w")) > 0
    c.reset()
    assert c.residual("w").size == 0
    c.compress(np.ones(500, np.float32), name="w")
    with pytest.raises(ValueError, match="shape"):
        c.compress(np.ones(10, np.float32), name="w")


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("topk", {"theta": 1.0}, "'theta'"),
        ("fft", {"theta": -0.1}, "'theta'"),
        ("fft", {"theta": float("nan")}, "'theta'"),
        ("fft", {"bits": 1}, "'bits'"),
        ("fft", {"bits": 17}, "'bits'"),
        ("fft", {"bits": None}, "'bits'"),
        ("qsgd", {"bits": 40}, "'bits'"),
        ("qsgd", {"theta": 0.5}, "'theta'"),
        ("none", {"bits": 8}, "'bits'"),
        ("topk", {"error_feedback": 1}, "'error_feedback'"),
        ("zip", {}, "unknown compressor"),
    ],
)
def test_bad_options_raise_value_error_naming_them(
    name: str, options: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        sn.compress.make(name, **options)


def test_theta_setter_validates() -> None:
    c = sn.compress.make("fft")
    c.theta = 0.5
    assert c.theta == 0.5
    with pytest.raises(ValueError, match="'theta'"):
        c.theta = 1.5


def test_bad_gradients_raise() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        sn.compress.make("topk").compress(np.array([1.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="non-finite"):
        sn.compress.make("fft").compress(np.array([1.0, np.inf], np.float32))
    with pytest.raises(ValueError, match="dtype"):
        sn.compress.make("none").compress(np.arange(3))


def test_wrong_packets_raise() -> None:
    g = grad((10, 10))
    packet = sn.compress.make("topk").compress(g)
    with pytest.raises(ValueError, match="'topk' compressor"):
        sn.compress.make("fft").decompress(packet)
    with pytest.raises(ValueError, match="shape"):
        sn.compress.make("topk").decompress(packet, shape=(100,))
    with pytest.raises(ValueError, match="checksum"):
        sn.compress.make("topk").decompress(packet[:-1])
    corrupted = bytearray(packet)
    corrupted[30] ^= 0x10
    with pytest.raises(ValueError, match="checksum"):
        sn.compress.make("topk").decompress(bytes(corrupted))
    with pytest.raises(ValueError, match="magic"):
        sn.compress.make("topk").decompress(b"PK\x03\x04" + packet[4:])
    with pytest.raises(ValueError, match="bytes"):
        sn.compress.make("topk").decompress("not bytes")  # type: ignore[arg-type]


def resealed(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_fields_no_encoder_writes_are_rejected_even_with_a_valid_checksum() -> None:
    g = grad((100,))
    packet = sn.compress.make("topk", theta=0.5).compress(g)
    body = bytearray(packet[:-4])
    kept_at = header_bytes(1)
    for mutate, match in (
        (lambda b: b.__setitem__(4, 2), "version"),
        (lambda b: b.__setitem__(5, 9), "method"),
        (lambda b: b.__setitem__(6, 7), "dtype"),
        (lambda b: b.__setitem__(kept_at, 51), "different count"),
        (lambda b: b.__setitem__(kept_at + 8 + 12, 0xF0), "past the tensor"),
        (lambda b: b.extend(b"\x00"), "after its payload"),
    ):
        mutated = bytearray(body)
        mutate(mutated)
        with pytest.raises(ValueError, match=match):
            sn.compress.make("topk").decompress(resealed(bytes(mutated)))


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_fuzz_random_bytes_only_raise_value_error(data: bytes) -> None:
    for blob in (data, b"SNGC" + data, resealed(b"SNGC\x01" + data)):
        with pytest.raises(ValueError):
            sn.compress.make("topk").decompress(blob)


_VALID = {
    name: sn.compress.make(
        name, **({"bits": 5} if name in ("topk", "fft", "qsgd") else {})
    ).compress(grad((3, 7), seed=1))
    for name in sn.compress.NAMES
}


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(sn.compress.NAMES),
    cuts=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    truncate=st.integers(0, 10_000),
)
def test_fuzz_mutated_packets_decode_or_raise_value_error(
    name: str, cuts: list[tuple[int, int]], truncate: int
) -> None:
    """Valid packets with bytes changed and the checksum recomputed reach the field
    parsers: each either decodes to the declared shape or raises ValueError."""
    body = bytearray(_VALID[name][:-4])
    for at, value in cuts:
        body[at % len(body)] = value
    body = body[: max(8, len(body) - truncate % 8)]
    try:
        back = sn.compress.make(name).decompress(resealed(bytes(body)))
    except ValueError:
        return
    assert back.dtype == np.float32 and back.size == math.prod(back.shape)


# ----------------------------------------------------------------- when compression pays
def test_pays_off_reproduces_the_source_conclusions() -> None:
    # A compressor that needs k ~ 30 on 56 Gb/s InfiniBand (Fig. 7.10) ...
    compress_gbps = 116.0
    infiniband = sn.compress.pays_off(250e6, 56, compress_gbps, ratio=30)
    assert 25 <= infiniband.min_ratio <= 35 and infiniband.pays
    assert not sn.compress.pays_off(250e6, 56, compress_gbps, ratio=10).pays
    # ... gets its benefit from k = 2 on 10 Gb/s Ethernet.
    ethernet = sn.compress.pays_off(250e6, 10, compress_gbps, ratio=2)
    assert ethernet.pays and ethernet.min_ratio <= 2 and ethernet.speedup > 1.4
    # A compressor slower than twice the link never pays (k is infinite).
    assert sn.compress.min_ratio(56, 100) == math.inf
    assert sn.compress.pays_off(1e6, 10, 40, ratio=2).min_ratio == pytest.approx(2.0)
    with pytest.raises(ValueError, match="ratio"):
        sn.compress.pays_off(1e6, 10, 40, ratio=0.5)


def test_theta_schedule_follows_the_learning_rate() -> None:
    s = sn.compress.ThetaSchedule(theta0=0.8, lr0=0.1)
    lrs = [0.1, 0.05, 0.01, 0.0]
    thetas = [s(lr) for lr in lrs]
    assert thetas[0] == 0.8 and thetas[-1] == 0.0
    ratios = [t**2 / lr for t, lr in zip(thetas[:-1], lrs[:-1], strict=True)]
    np.testing.assert_allclose(ratios, 0.8**2 / 0.1)  # theta_t^2 = L eta_t
    assert sn.compress.ThetaSchedule(0.0, 0.1)(0.1) == 0.0


def test_readme_compression_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "sn.compress" in b]
    exec(compile(code, "README.md", "exec"), {})
    sizes = capsys.readouterr().out.split()[:3]
    assert int(sizes[0]) < int(sizes[1]) / 10 and sizes[2] == "260"  # 15% of 1728 kept
