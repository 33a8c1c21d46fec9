"""The one module that imports the C++ extension ``superneurons._C``.

OpenBLAS ships in the ``scipy_openblas32`` wheel; the extension finds it through its
RPATH, and as a fallback (unusual install layouts) we load it here first. It is loaded
privately (RTLD_LOCAL): the dynamic loader then satisfies _C's dependency by soname,
while the symbols stay out of the global namespace, where they could interpose on
another OpenBLAS copy (SciPy's or NumPy's) in the same process.
"""

from __future__ import annotations

import ctypes
import os

try:
    import scipy_openblas32 as _openblas

    _lib = os.path.join(_openblas.get_lib_dir(), "libscipy_openblas.so")
    if os.path.exists(_lib):
        ctypes.CDLL(_lib, mode=ctypes.RTLD_LOCAL)
except ImportError:  # pragma: no cover - a broken install; _C's import error says more
    pass

try:
    import superneurons._C as _C
except ModuleNotFoundError as error:  # pragma: no cover - depends on how Python was started
    here = os.path.dirname(os.path.abspath(__file__))
    raise ImportError(
        f"the compiled core superneurons._C is missing from {here}. If you installed with "
        "`pip install .` and are running from the source checkout, Python is importing the "
        "source tree instead: run from another directory, or install with "
        "`pip install -e .` to build in place."
    ) from error

__all__ = ["_C"]
