# Sourced by the other scripts: a virtual environment in .venv with superneurons installed
# from this checkout (a real `pip install .`, the way users install it). The install is
# skipped when .venv already holds a build of exactly these sources with these extras
# (scripts/_build_stamp.py hashes them); otherwise the build shows its progress.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
EXTRAS="${1:-}"
STAMP="$VENV/.superneurons-install.json"
if [ ! -x "$VENV/bin/python" ]; then
  echo "superneurons: creating the virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if "$VENV/bin/python" "$ROOT/scripts/_build_stamp.py" check "$STAMP" "$ROOT" "$EXTRAS" &&
  "$VENV/bin/python" -I -c 'import importlib.metadata as m; m.version("superneurons")' 2>/dev/null; then
  echo "superneurons: $VENV is up to date with this checkout (no rebuild)"
else
  rm -f "$STAMP"
  log="$VENV/pip-install.log"
  echo "superneurons: installing into $VENV with pip, building the C++ extension"
  echo "  (a few minutes on 2 cores the first time; full log in $log)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # pip -v streams the build; show the compile steps and what was installed.
  if ! "$VENV/bin/python" -m pip install -v "$ROOT$EXTRAS" 2>&1 | tee "$log" |
    { grep --line-buffered -E '^ *\[[0-9]+/[0-9]+\] |^Successfully installed' || true; }; then
    echo "superneurons: the install failed; the end of $log:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  "$VENV/bin/python" "$ROOT/scripts/_build_stamp.py" write "$STAMP" "$ROOT" "$EXTRAS"
fi
