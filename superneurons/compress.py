"""Gradient compression: what each rank puts on the wire in data-parallel training.

``make(name, **options)`` returns a :class:`Compressor`; ``compress(grad)`` gives exactly
the bytes sent (shape and dtype included, checksummed) and ``decompress(packet)`` gives
float32 back in the original shape. The codecs (top-k selection, the range-based N-bit
quantizer, prefix-sum packing with a status bitmap, fp16, QSGD, TernGrad and the packet
format) are C++ (``csrc/compress``); the FFT of ``fft`` is NumPy's (see Note [CPU FFT]).

Example:
    >>> import numpy as np
    >>> import superneurons as sn
    >>> g = np.random.default_rng(0).standard_normal((64, 3, 3, 3)).astype(np.float32)
    >>> c = sn.compress.make("topk", theta=0.9)
    >>> packet = c.compress(g)
    >>> back = c.decompress(packet)
    >>> back.shape, back.dtype, int(np.count_nonzero(back))
    ((64, 3, 3, 3), dtype('float32'), 173)
    >>> len(packet) < g.nbytes / 5
    True
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from superneurons._ext import _C

__all__ = [
    "DEFAULT",
    "DEFAULT_OPTIONS",
    "NAMES",
    "Compressor",
    "PayOff",
    "ThetaSchedule",
    "combined_gbps",
    "inspect",
    "make",
    "min_ratio",
    "pays_off",
]

NAMES = ("none", "fp16", "topk", "qsgd", "terngrad", "fft")

# The compressor `superneurons train --compress on` uses: the best accuracy per byte sent on
# training gradients in benchmarks/compression.py (see the README's compression section).
DEFAULT = "fft"
DEFAULT_OPTIONS: dict[str, Any] = {"theta": 0.85, "bits": 10}

# Options each compressor takes, with their defaults. theta: fraction of values dropped;
# bits: quantizer width (None: float32 values); seed: the stochastic rounding stream.
_OPTIONS: dict[str, dict[str, Any]] = {
    "none": {},
    "fp16": {},
    "topk": {"theta": 0.85, "bits": None},
    "fft": {"theta": 0.85, "bits": 10},
    "qsgd": {"bits": 4, "seed": 0},
    "terngrad": {"seed": 0},
}
_DTYPES = {np.dtype(np.float32): 0, np.dtype(np.float64): 1, np.dtype(np.float16): 2}
_SQRT2 = math.sqrt(2.0)


def _check_theta(theta: object) -> float:
    if isinstance(theta, bool) or not isinstance(theta, (int, float)):
        raise ValueError(f"option 'theta' must be a number in [0, 1), got {theta!r}")
    if not 0.0 <= float(theta) < 1.0:
        raise ValueError(f"option 'theta' must be in [0, 1), got {theta!r}")
    return float(theta)


def _check_bits(name: str, bits: object) -> int | None:
    if bits is None and name == "topk":
        return None
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 16:
        allowed = "an integer in [2, 16]" + (" or None (float32 values)" if name == "topk" else "")
        raise ValueError(f"option 'bits' of {name!r} must be {allowed}, got {bits!r}")
    return bits


# Note [CPU FFT]
# The FFT of the `fft` compressor is numpy.fft (NumPy's bundled pocketfft, BSD-licensed,
# float32 in and complex64 out since NumPy 2); the C++ core does everything after it:
# top-k selection, the range quantizer, the bitmap and the prefix-sum packing. A C++ FFT
# would need a library linked into _C, and none that is permissively licensed installs from
# PyPI as headers (FFTW is GPL; pocketfft may not be vendored here). The CUDA path will use
# cuFFT. The transform is made orthonormal so that dropping coefficients costs exactly
# their energy (Parseval), which makes top-k in the frequency domain the L2-best choice at a
# given number of floats, and comparable with top-k on the raw values:
#   - rfft of the flattened tensor (norm="ortho") has n // 2 + 1 complex bins; Hermitian
#     symmetry makes the other half redundant, and the imaginary parts of bin 0 (and of bin
#     n / 2 for even n) are zero for real input. What is left is exactly n real numbers:
#     Re X0, then sqrt(2) Re Xk, sqrt(2) Im Xk for 0 < k < n / 2, then Re X(n/2) if n is
#     even. The sqrt(2) counts each interior bin for itself and its mirror image.
#   - A complex coefficient therefore costs two floats; top-k selects the real and imaginary
#     parts separately (each is one float on the wire), which is the L2-optimal choice.
#   - The transform is per tensor (per layer): each layer's spectrum gets its own quantizer
#     range. benchmarks/compression.py also measures one whole-model transform.
def _spectrum(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    n = x.size
    out = np.empty(n, np.float32)
    if n == 0:
        return out
    spec = np.fft.rfft(x, norm="ortho")
    m = (n - 1) // 2
    out[0] = spec[0].real
    out[1 : 2 * m + 1 : 2] = _SQRT2 * spec[1 : m + 1].real
    out[2 : 2 * m + 1 : 2] = _SQRT2 * spec[1 : m + 1].imag
    if n % 2 == 0 and n > 1:
        out[n - 1] = spec[n // 2].real
    return out


def _inverse_spectrum(r: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    n = r.size
    if n == 0:
        return r.copy()
    spec = np.zeros(n // 2 + 1, np.complex64)
    m = (n - 1) // 2
    spec[0] = r[0]
    spec[1 : m + 1] = (r[1 : 2 * m + 1 : 2] + 1j * r[2 : 2 * m + 1 : 2]) / _SQRT2
    if n % 2 == 0 and n > 1:
        spec[n // 2] = r[n - 1]
    return np.fft.irfft(spec, n=n, norm="ortho").astype(np.float32, copy=False)


class Compressor:
    """One gradient codec with its options and, optionally, an error-feedback memory.

    Build it with :func:`make`. With ``error_feedback=True`` it keeps, per tensor name, the
    residual between what it was asked to send and what the receiver reconstructs, and adds
    it to the next gradient of that name (Seide et al., 2014; Lin et al., 2017).

    Example:
        >>> import numpy as np
        >>> import superneurons as sn
        >>> c = sn.compress.make("topk", theta=0.5, error_feedback=True)
        >>> g = np.array([4.0, -1.0, 0.5, 3.0], np.float32)
        >>> c.decompress(c.compress(g, name="w")).tolist()
        [4.0, 0.0, 0.0, 3.0]
        >>> c.residual("w").tolist()
        [0.0, -1.0, 0.5, 0.0]
    """

    def __init__(self, name: str, options: dict[str, Any], error_feedback: bool) -> None:
        self.name = name
        self._theta = float(options.get("theta", 0.0))
        self.bits: int | None = options.get("bits")
        self.seed = int(options.get("seed", 0))
        self.error_feedback = error_feedback
        self._residuals: dict[str, npt.NDArray[np.float32]] = {}
        self._calls = 0  # advances the stochastic rounding stream of qsgd and terngrad

    def __repr__(self) -> str:
        opts = {k: getattr(self, k if k != "theta" else "_theta") for k in _OPTIONS[self.name]}
        if self.error_feedback:
            opts["error_feedback"] = True
        args = "".join(f", {k}={v!r}" for k, v in opts.items())
        return f"sn.compress.make({self.name!r}{args})"

    @property
    def theta(self) -> float:
        """Fraction of values (``topk``) or spectral coefficients (``fft``) dropped."""
        return self._theta

    @theta.setter
    def theta(self, value: float) -> None:
        if "theta" not in _OPTIONS[self.name]:
            raise ValueError(f"option 'theta' does not apply to {self.name!r}")
        self._theta = _check_theta(value)

    def compress(self, grad: npt.ArrayLike, name: str = "") -> bytes:
        """The bytes to send for ``grad`` (float16/32/64, any shape); ``name`` keys the
        error-feedback residual."""
        arr = np.asarray(grad)
        code = _DTYPES.get(arr.dtype)
        if code is None:
            raise ValueError(f"grad must be float16, float32 or float64, got dtype {arr.dtype}")
        x = np.asarray(arr, dtype=np.float32, order="C")  # keeps 0-d shapes
        if self.error_feedback:
            previous = self._residuals.get(name)
            if previous is not None and previous.shape != x.shape:
                raise ValueError(
                    f"grad {name!r} has shape {x.shape}, but its error-feedback residual "
                    f"has shape {previous.shape}"
                )
            if previous is not None:
                x = x + previous
        packet = self._encode(x, code)
        if self.error_feedback:
            self._residuals[name] = x - self.decompress(packet)
        return packet

    def _encode(self, x: npt.NDArray[np.float32], dtype_code: int) -> bytes:
        flat = x.reshape(-1)
        if self.name == "fft":
            if not np.isfinite(flat).all():
                bad = int(np.flatnonzero(~np.isfinite(flat))[0])
                raise ValueError(
                    f"compress 'fft': gradient has a non-finite value ({flat[bad]}) at flat "
                    f"index {bad}"
                )
            flat = _spectrum(flat)
        seed = 0
        if self.name in ("qsgd", "terngrad"):
            seed = (self.seed << 32) + self._calls
            self._calls += 1
        packet: bytes = _C.compress_encode(
            self.name, flat, list(x.shape), dtype_code, self._theta, self.bits or 0, seed
        )
        return packet

    def decompress(
        self, packet: bytes | bytearray | memoryview, shape: tuple[int, ...] | None = None
    ) -> npt.NDArray[np.float32]:
        """The float32 tensor a packet describes. Raises ValueError for a truncated,
        corrupted or foreign packet, one made by another compressor, or (when ``shape`` is
        given) one of another shape."""
        if not isinstance(packet, (bytes, bytearray, memoryview)):
            raise ValueError(f"packet must be bytes, got {type(packet).__name__}")
        values, info = _C.compress_decode(packet)
        if info["method"] != self.name:
            raise ValueError(
                f"packet was made by the {info['method']!r} compressor, this one is {self.name!r}"
            )
        if shape is not None and tuple(info["shape"]) != tuple(shape):
            raise ValueError(f"packet holds shape {info['shape']}, expected {tuple(shape)}")
        if self.name == "fft":
            values = _inverse_spectrum(values)
        out: npt.NDArray[np.float32] = values.reshape(info["shape"])
        return out

    def residual(self, name: str = "") -> npt.NDArray[np.float32]:
        """The error-feedback residual kept for ``name`` (empty before the first call)."""
        if not self.error_feedback:
            raise ValueError("this compressor has no error-feedback memory")
        r = self._residuals.get(name)
        return np.zeros(0, np.float32) if r is None else r.copy()

    def reset(self) -> None:
        """Forgets every residual (e.g. after the parameters were re-broadcast)."""
        self._residuals.clear()


def make(name: str, **options: Any) -> Compressor:
    """A compressor by name: ``none``, ``fp16``, ``topk``, ``qsgd``, ``terngrad`` or ``fft``.

    Options: ``theta`` (``topk``, ``fft``; the fraction dropped, in [0, 1), default 0.85),
    ``bits`` (``fft``: the range quantizer's width, default 10; ``topk``: None for float32
    values or a quantizer width; ``qsgd``: bits per value with the sign, default 4),
    ``seed`` (``qsgd``, ``terngrad``) and ``error_feedback`` (any; default False). A bad
    name, an option that does not apply, or a value out of range raises ValueError naming it.

    Example:
        >>> import superneurons as sn
        >>> sn.compress.make("fft", theta=0.85, bits=10)
        sn.compress.make('fft', theta=0.85, bits=10)
        >>> sn.compress.make("topk", theta=1.0)
        Traceback (most recent call last):
        ...
        ValueError: option 'theta' must be in [0, 1), got 1.0
    """
    if name not in _OPTIONS:
        raise ValueError(f"unknown compressor {name!r}; choose one of {', '.join(NAMES)}")
    error_feedback = options.pop("error_feedback", False)
    if not isinstance(error_feedback, bool):
        raise ValueError(f"option 'error_feedback' must be True or False, got {error_feedback!r}")
    unknown = sorted(set(options) - set(_OPTIONS[name]))
    if unknown:
        valid = ", ".join([*_OPTIONS[name], "error_feedback"])
        raise ValueError(f"option {unknown[0]!r} does not apply to {name!r} (options: {valid})")
    merged = {**_OPTIONS[name], **options}
    if "theta" in merged:
        merged["theta"] = _check_theta(merged["theta"])
    if "bits" in merged:
        merged["bits"] = _check_bits(name, merged["bits"])
    if "seed" in merged:
        seed = merged["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
            raise ValueError(f"option 'seed' must be an integer in [0, 2**31), got {seed!r}")
    return Compressor(name, merged, error_feedback)


def inspect(packet: bytes | bytearray | memoryview) -> dict[str, Any]:
    """What a packet says about itself: method, shape, dtype, values kept, code width and,
    for the range quantizer, its mantissa bits, eps and max.

    Example:
        >>> import numpy as np
        >>> import superneurons as sn
        >>> p = sn.compress.make("fft", theta=0.5, bits=8).compress(np.ones(100, np.float32))
        >>> info = sn.compress.inspect(p)
        >>> info["method"], info["shape"], info["kept"], info["bits"], info["bytes"] == len(p)
        ('fft', (100,), 50, 8, True)
    """
    _values, info = _C.compress_decode(packet)
    out: dict[str, Any] = dict(info)
    out["bytes"] = len(packet)
    return out


class ThetaSchedule:
    """theta tied to the learning rate: theta_t^2 = L eta_t (source Theorem 3).

    ``L`` is fixed by the starting point, ``theta_t = theta0 * sqrt(lr_t / lr0)``, so theta
    shrinks with the step size and reaches 0 with it; ``theta0 = 0`` means no sparsification.

    Example:
        >>> from superneurons.compress import ThetaSchedule
        >>> s = ThetaSchedule(theta0=0.9, lr0=0.1)
        >>> s(0.1), round(s(0.025), 4), s(0.0)
        (0.9, 0.45, 0.0)
    """

    def __init__(self, theta0: float, lr0: float) -> None:
        self.theta0 = _check_theta(theta0)
        if not lr0 > 0:
            raise ValueError(f"lr0 must be > 0, got {lr0}")
        self.lr0 = float(lr0)

    def __call__(self, lr: float) -> float:
        if lr < 0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        return min(self.theta0, self.theta0 * math.sqrt(lr / self.lr0))


class PayOff(NamedTuple):
    """The analytic model's verdict for one message (all times in seconds)."""

    pays: bool
    min_ratio: float  # the smallest compression ratio k that pays (Eq. 7.4; inf: none)
    seconds_plain: float  # M / T_comm
    seconds_compressed: float  # M / (k T_comm) + 2 M / T_compress
    speedup: float  # seconds_plain / seconds_compressed


def combined_gbps(quantize: float, fft: float, pack: float, select: float) -> float:
    """One compression throughput from its primitives (all in Gb/s), as Eq. 7.1 adds them:
    ``1 / (2 / T_m + 1 / T_f + 1 / T_p + 1 / T_s)``.

    Example:
        >>> from superneurons.compress import combined_gbps
        >>> round(combined_gbps(quantize=800.0, fft=800.0, pack=272.0, select=800.0), 1)
        115.3
    """
    for what, v in (("quantize", quantize), ("fft", fft), ("pack", pack), ("select", select)):
        if not v > 0:
            raise ValueError(f"{what} throughput must be > 0 Gb/s, got {v}")
    return 1.0 / (2.0 / quantize + 1.0 / fft + 1.0 / pack + 1.0 / select)


def min_ratio(link_gbps: float, compress_gbps: float) -> float:
    """The smallest compression ratio that pays on a link (Eq. 7.4), both in Gb/s:
    ``1 / (1 - 2 T_comm / T_compress)``, infinite when compression is too slow to ever pay.

    Example:
        >>> from superneurons.compress import min_ratio
        >>> round(min_ratio(10.0, 40.0), 2), min_ratio(56.0, 100.0)
        (2.0, inf)
    """
    if not link_gbps > 0 or not compress_gbps > 0:
        raise ValueError(
            f"link_gbps and compress_gbps must be > 0, got {link_gbps} and {compress_gbps}"
        )
    x = 2.0 * link_gbps / compress_gbps
    return math.inf if x >= 1.0 else 1.0 / (1.0 - x)


def pays_off(message_bytes: float, link_gbps: float, compress_gbps: float, ratio: float) -> PayOff:
    """Whether compressing a message by ``ratio`` beats sending it plain (Eq. 7.1-7.4).

    ``link_gbps`` is the network's throughput and ``compress_gbps`` the compressor's (one
    direction; decompression is assumed as fast), both in gigabits per second; sending a
    compressed message costs ``M / (k T_comm)`` plus ``2 M / T_compress`` for compressing
    and decompressing it. With a compressor that needs k of about 30 on 56 Gb/s InfiniBand
    (about 116 Gb/s, 14.5 GB/s), k = 2 already pays on 10 Gb/s Ethernet (Fig. 7.10).

    Example:
        >>> import superneurons as sn
        >>> ethernet = sn.compress.pays_off(100e6, link_gbps=10, compress_gbps=116, ratio=2)
        >>> ethernet.pays, round(ethernet.min_ratio, 2)
        (True, 1.21)
        >>> round(sn.compress.pays_off(100e6, 56, 116, ratio=2).min_ratio, 1)
        29.0
    """
    if not message_bytes >= 0:
        raise ValueError(f"message_bytes must be >= 0, got {message_bytes}")
    if not ratio >= 1:
        raise ValueError(f"ratio must be >= 1, got {ratio}")
    k_min = min_ratio(link_gbps, compress_gbps)
    bits = 8.0 * message_bytes
    plain = bits / (link_gbps * 1e9)
    compressed = plain / ratio + 2.0 * bits / (compress_gbps * 1e9)
    speedup = plain / compressed if compressed > 0 else 1.0
    return PayOff(ratio > k_min, k_min, plain, compressed, speedup)
