"""NumPy reference implementations of the layers, written for clarity, not speed."""

from __future__ import annotations

import numpy as np

F = np.ndarray


def pad(x: F, ph: int, pw: int, value: float = 0.0) -> F:
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def conv2d(
    x: F,
    w: F,
    b: F | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
) -> F:
    n, _c, h, wd = x.shape
    co, cg, kh, kw = w.shape
    sh, sw = stride
    dh, dw = dilation
    xp = pad(x.astype(np.float64), *padding)
    ho = (h + 2 * padding[0] - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * padding[1] - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, co, ho, wo))
    per_group = co // groups
    for g in range(groups):
        xs = xp[:, g * cg : (g + 1) * cg]
        ws = w[g * per_group : (g + 1) * per_group].astype(np.float64)
        for i in range(kh):
            for j in range(kw):
                patch = xs[
                    :,
                    :,
                    i * dh : i * dh + sh * (ho - 1) + 1 : sh,
                    j * dw : j * dw + sw * (wo - 1) + 1 : sw,
                ]
                y[:, g * per_group : (g + 1) * per_group] += np.einsum(
                    "nchw,oc->nohw", patch, ws[:, :, i, j]
                )
    if b is not None:
        y += b[None, :, None, None]
    return y


def pool(
    x: F, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int], mode: str
) -> F:
    n, c, h, w = x.shape
    kh, kw = kernel
    sh, sw = stride
    ph, pw = padding
    ho = (h + 2 * ph - kh) // sh + 1
    wo = (w + 2 * pw - kw) // sw + 1
    y = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            r0, c0 = i * sh - ph, j * sw - pw
            r1, c1 = min(r0 + kh, h), min(c0 + kw, w)
            win = x[:, :, max(r0, 0) : r1, max(c0, 0) : c1]
            y[:, :, i, j] = win.max(axis=(2, 3)) if mode == "max" else win.mean(axis=(2, 3))
    return y


def fc(x: F, w: F, b: F | None) -> F:
    y = x.reshape(len(x), -1).astype(np.float64) @ w.T.astype(np.float64)
    if b is not None:
        y += b
    return y.reshape(len(x), -1, 1, 1)


def batchnorm_infer(x: F, gamma: F, beta: F, mean: F, var: F, eps: float) -> F:
    s = (None, slice(None), None, None)
    return (x - mean[s]) / np.sqrt(var[s] + eps) * gamma[s] + beta[s]


def batchnorm_train(x: F, gamma: F, beta: F, eps: float) -> F:
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    return batchnorm_infer(x, gamma, beta, mean, var, eps)


def lrn(x: F, size: int, alpha: float, beta: float, k: float) -> F:
    c = x.shape[1]
    sq = x.astype(np.float64) ** 2
    scale = np.empty_like(sq)
    for ch in range(c):
        lo, hi = max(0, ch - (size - 1) // 2), min(c, ch + size // 2 + 1)
        scale[:, ch] = k + alpha / size * sq[:, lo:hi].sum(axis=1)
    return x / scale**beta


def softmax_xent(logits: F, labels: F) -> float:
    z = logits.reshape(len(logits), -1).astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())
