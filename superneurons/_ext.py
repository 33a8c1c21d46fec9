"""The one module that imports the C++ extension ``superneurons._C``.

OpenBLAS ships in the ``scipy_openblas32`` wheel; the extension finds it through its
RPATH, and as a fallback (editable or unusual installs) we load it here first.
"""

from __future__ import annotations

import ctypes
import os

try:
    import scipy_openblas32 as _openblas

    _lib = os.path.join(_openblas.get_lib_dir(), "libscipy_openblas.so")
    if os.path.exists(_lib):
        ctypes.CDLL(_lib, mode=ctypes.RTLD_GLOBAL)
except ImportError:  # pragma: no cover - a broken install; _C's import error says more
    pass

import superneurons._C as _C

__all__ = ["_C"]
