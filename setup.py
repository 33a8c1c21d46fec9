"""Builds superneurons: the C++ core through CMake into the extension superneurons._C."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    """Configures and builds the CMake project, placing _C where setuptools expects it."""

    def build_extension(self, ext: Extension) -> None:
        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        # One build folder per interpreter and CMake: a venv and the system Python must not
        # share one, and pip's isolated builds bring a new CMake/Ninja in a temporary prefix
        # each time, which a cached build folder would still point to.
        tools = f"{sys.executable}|{shutil.which('cmake')}|{shutil.which('ninja')}"
        tag = hashlib.sha1(tools.encode()).hexdigest()[:10]
        default = ROOT / "build" / f"py-{sys.version_info[0]}{sys.version_info[1]}-{tag}"
        build_dir = Path(os.environ.get("SUPERNEURONS_BUILD_DIR", default))
        build_dir.mkdir(parents=True, exist_ok=True)
        cuda = os.environ.get("SUPERNEURONS_CUDA", "AUTO")
        config = [
            "cmake",
            "-S",
            str(ROOT),
            "-B",
            str(build_dir),
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DSUPERNEURONS_CUDA={cuda}",
            "-DSUPERNEURONS_TESTS=OFF",
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
            f"-DCMAKE_BUILD_TYPE={os.environ.get('SUPERNEURONS_BUILD_TYPE', 'Release')}",
        ]
        try:
            import ninja  # noqa: F401

            config += ["-G", "Ninja"]
        except ImportError:
            pass
        subprocess.run(config, check=True)
        jobs = str(os.cpu_count() or 2)
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "_C", "-j", jobs], check=True)


setup(ext_modules=[CMakeExtension("superneurons._C")], cmdclass={"build_ext": CMakeBuild})
