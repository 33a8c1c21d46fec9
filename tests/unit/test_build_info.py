"""build_info() names what the installation was built with, CUDA libraries included."""

from __future__ import annotations

import re

import superneurons as sn


def test_library_versions_are_reported_exactly_when_built_with_cuda() -> None:
    info = sn.build_info()
    keys = ("cuda_runtime", "cudnn", "cublas")
    if not info["cuda"]:
        assert all(info[k] is None for k in keys), info
        return
    for k in keys:  # read from the libraries themselves; no device needed
        assert re.fullmatch(r"\d+\.\d+(\.\d+)?", info[k]), (k, info[k])
    assert int(info["cudnn"].split(".")[0]) >= 8
