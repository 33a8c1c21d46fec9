"""Decides whether `scripts/_venv.sh` must run `pip install` again.

A stamp, written into the virtual environment after a successful install, records a
hash of everything that install read (the C++ sources, the build files and the Python
packages, which a non-editable install copies), the interpreter, the build
environment variables and the extras installed. The install is skipped only when
the checkout hashes to the same value and the extras asked for were installed; any
change to a source file, including an uncommitted one, means a rebuild.

    python scripts/_build_stamp.py check STAMP ROOT EXTRAS   # exit 0: up to date
    python scripts/_build_stamp.py write STAMP ROOT EXTRAS   # after a successful install
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

# What `pip install .` reads from the checkout.
SOURCES = ("csrc", "CMakeLists.txt", "setup.py", "pyproject.toml", "superneurons", "nas")
# Environment variables that change what setup.py builds.
BUILD_ENV = ("SUPERNEURONS_CUDA", "SUPERNEURONS_BUILD_TYPE", "SUPERNEURONS_BUILD_DIR")
_SKIP_SUFFIXES = (".pyc", ".so", ".pyd")


def _files(root: Path) -> list[str]:
    """The source files under SOURCES, relative to root, sorted: git's view (tracked and
    untracked but not ignored) in a checkout, a directory walk otherwise."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-co", "--exclude-standard", "--", *SOURCES],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        names = [n for n in out.splitlines() if n]
    except (OSError, subprocess.CalledProcessError):
        names = []
        for top in SOURCES:
            base = root / top
            if base.is_file():
                names.append(top)
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = [d for d in dirnames if d != "__pycache__"]
                rel = Path(dirpath).relative_to(root)
                names += [str(rel / f) for f in filenames]
    return sorted(n for n in names if not n.endswith(_SKIP_SUFFIXES) and (root / n).is_file())


def source_hash(root: Path) -> str:
    """SHA-256 over the names and contents of the source files."""
    h = hashlib.sha256()
    for name in _files(root):
        data = (root / name).read_bytes()
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def stamp(root: Path) -> dict[str, str]:
    """Everything the install depends on, extras apart."""
    return {
        "sources": source_hash(root),
        "python": f"{sys.executable} {sys.version}",
        "env": json.dumps({k: os.environ.get(k) for k in BUILD_ENV}, sort_keys=True),
    }


def _extras(text: str) -> set[str]:
    return {e.strip() for e in text.strip("[]").split(",") if e.strip()}


def is_current(stamp_file: Path, root: Path, extras: str) -> bool:
    """True when the recorded install matches the checkout and covers ``extras``."""
    try:
        recorded = json.loads(stamp_file.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict):
        return False
    installed = set(recorded.get("extras", []))
    same = all(recorded.get(k) == v for k, v in stamp(root).items())
    return same and _extras(extras) <= installed


def write(stamp_file: Path, root: Path, extras: str) -> None:
    """Records a successful install of ``extras`` (kept: extras installed before)."""
    previous: set[str] = set()
    if is_current(stamp_file, root, ""):
        previous = set(json.loads(stamp_file.read_text()).get("extras", []))
    record = {**stamp(root), "extras": sorted(previous | _extras(extras))}
    stamp_file.write_text(json.dumps(record, indent=1) + "\n")


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] not in ("check", "write"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, stamp_file, root, extras = argv[0], Path(argv[1]), Path(argv[2]), argv[3]
    if mode == "check":
        return 0 if is_current(stamp_file, root, extras) else 1
    write(stamp_file, root, extras)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
