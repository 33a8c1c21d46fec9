"""Checkpoints: a session's state and some metadata in one ``.npz`` archive.

Note [Checkpoint safety]
- Writes are atomic: the archive goes to a temporary file beside the target, named
  ``<name>.<pid>.<random>.sn-partial``, which is fsynced and renamed over the target.
  A crash leaves the previous checkpoint intact and at worst a ``.sn-partial`` file;
  the next save to the same target removes those whose writing process is gone.
- The file gets the usual mode (0666 minus the umask, so 0644 under umask 022).
- A load validates everything first (that the file is an archive, every array's
  presence, shape, dtype and finiteness, the metadata and the iteration) and writes
  into the session only after that: a failed load changes nothing. Every unusable
  file raises :class:`CheckpointError` (a ``ValueError``) naming the file and the
  problem.

Example:
    >>> import pathlib, tempfile, superneurons as sn
    >>> g = sn.models.resnet(depth=8, num_classes=10, image_size=8, in_channels=1)
    >>> s = sn.Session(g, batch_size=4, seed=0)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.ckpt"
    >>> save_checkpoint(path, s, {"epoch": 1})
    >>> load_checkpoint(path, s)
    {'epoch': 1}
    >>> _ = path.write_bytes(b"not a checkpoint")
    >>> try:
    ...     load_checkpoint(path, s)
    ... except CheckpointError as e:
    ...     print("not a superneurons checkpoint" in str(e))
    True
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from numpy.lib.npyio import NpzFile

from superneurons._checks import first_nonfinite

if TYPE_CHECKING:
    from superneurons.session import Session

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "apply_checkpoint",
    "check_checkpoint_path",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
]

PARTIAL_SUFFIX = ".sn-partial"  # temporary files of an unfinished write
META_KEY = "__meta__"
ITERATION_KEY = "__iteration__"
MAX_ITERATION = 2**63 - 1  # the core counts iterations in int64


class CheckpointError(ValueError):
    """A checkpoint file cannot be used (missing, empty, truncated, not a checkpoint,
    corrupt metadata, or written for another graph); the message names the file."""


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read and checked on its own (not yet against a session)."""

    path: Path
    arrays: dict[str, npt.NDArray[Any]]  # the session state, ``__iteration__`` included
    meta: dict[str, Any]

    @property
    def iteration(self) -> int:
        return int(self.arrays[ITERATION_KEY])


# ----------------------------------------------------------------------------- writing
def check_checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """Raises :class:`CheckpointError` when a checkpoint could not be written to
    ``path`` (a directory, an unwritable folder); called before training starts so
    that a bad path does not surface only after the first epoch.

    Example:
        >>> import tempfile
        >>> try:
        ...     check_checkpoint_path(tempfile.gettempdir())
        ... except CheckpointError as e:
        ...     print("is a directory" in str(e))
        True
    """
    target = Path(path)
    if target.is_dir():
        raise CheckpointError(f"{target}: is a directory; give a file name for the checkpoint")
    if target.exists() and not target.is_file():
        raise CheckpointError(f"{target}: exists and is not a regular file")
    folder = target.parent
    while not folder.exists():  # the nearest existing folder must take new entries
        folder = folder.parent
    if not folder.is_dir():
        raise CheckpointError(f"{target}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CheckpointError(f"{target}: cannot create files in {folder} (permission denied)")
    if target.exists() and not os.access(target, os.W_OK):
        raise CheckpointError(f"{target}: the file is not writable (permission denied)")
    return target


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_partials(target: Path) -> list[Path]:
    """Deletes ``<target>.<pid>.<random>.sn-partial`` files whose process has ended."""
    removed = []
    for p in target.parent.glob(f"{target.name}.*{PARTIAL_SUFFIX}"):
        parts = p.name[len(target.name) + 1 : -len(PARTIAL_SUFFIX)].split(".")
        if len(parts) != 2 or not parts[0].isdigit():
            continue
        pid = int(parts[0])
        if pid != os.getpid() and not _pid_alive(pid):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def save_checkpoint(
    path: str | os.PathLike[str], session: Session, meta: dict[str, Any] | None = None
) -> None:
    """Writes the session's state atomically (see the note at the top of this module).

    ``meta`` must be JSON-serialisable; :meth:`Trainer.fit` stores the epoch and the
    history there.
    """
    target = check_checkpoint_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(target)
    arrays = session.state_dict()
    arrays[META_KEY] = np.frombuffer(
        json.dumps(meta or {}, allow_nan=False).encode(), dtype=np.uint8
    )
    tmp = target.parent / f"{target.name}.{os.getpid()}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}"
    # os.open applies the umask to 0o666, as open() would (mkstemp would give 0600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- reading
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile, zlib.error)


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Reads and checks a checkpoint file on its own; changes nothing.

    Raises :class:`CheckpointError` for a missing, empty, truncated or foreign file, a
    missing or corrupt ``__meta__`` or ``__iteration__`` entry, or arrays that are not
    finite float32.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint file")
    if p.is_dir():
        raise CheckpointError(f"{p}: is a directory, not a checkpoint file")
    if p.stat().st_size == 0:
        raise CheckpointError(f"{p}: the file is empty (an interrupted write?)")
    unreadable = f"{p}: not a superneurons checkpoint (a .npz archive), or truncated"
    # The file is opened here, not by np.load: np.load leaks its handle when the archive
    # turns out to be corrupt.
    with open(p, "rb") as f:
        try:
            loaded = np.load(f, allow_pickle=False)
        except _READ_ERRORS as e:
            raise CheckpointError(f"{unreadable}: {e}") from e
        if not isinstance(loaded, NpzFile):
            raise CheckpointError(f"{p}: holds a single array, not a checkpoint archive")
        try:
            with loaded as npz:
                arrays = {k: npz[k] for k in npz.files}
        except _READ_ERRORS as e:
            raise CheckpointError(f"{unreadable}: {e}") from e
    meta = _read_meta(p, arrays.pop(META_KEY, None))
    if ITERATION_KEY not in arrays:
        raise CheckpointError(f"{p}: has no '{ITERATION_KEY}' entry")
    it = arrays[ITERATION_KEY]
    if it.shape != () or it.dtype.kind not in "iu":
        raise CheckpointError(
            f"{p}: '{ITERATION_KEY}' must be an integer scalar, got dtype {it.dtype}, "
            f"shape {it.shape}"
        )
    if not 0 <= int(it) <= MAX_ITERATION:
        raise CheckpointError(f"{p}: iteration {int(it)} is outside [0, 2**63)")
    for name, arr in arrays.items():
        if name == ITERATION_KEY:
            continue
        if arr.dtype != np.float32:
            raise CheckpointError(f"{p}: '{name}' has dtype {arr.dtype}, expected float32")
        where = first_nonfinite(arr)
        if where is not None:
            raise CheckpointError(
                f"{p}: '{name}' holds a non-finite value ({arr[where]} at {list(where)}); "
                "the run that wrote it had diverged"
            )
    return Checkpoint(p, arrays, meta)


def _read_meta(path: Path, raw: npt.NDArray[Any] | None) -> dict[str, Any]:
    if raw is None:
        raise CheckpointError(f"{path}: has no '{META_KEY}' entry (not written by save_checkpoint)")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{path}: '{META_KEY}' is not a byte string")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8") or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt metadata: {e}") from e
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: metadata must be a JSON object, got {type(meta).__name__}")
    return meta


def apply_checkpoint(ck: Checkpoint, session: Session) -> None:
    """Checks ``ck`` against ``session`` (names, shapes), then loads it into the session."""
    expected = session.state_dict()  # copies; the cost of one checkpoint's memory
    missing = sorted(set(expected) - set(ck.arrays))
    extra = sorted(set(ck.arrays) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{ck.path}: does not match this graph (written for another one?): missing "
            f"{missing[:5]}, unexpected {extra[:5]}"
        )
    for name, arr in expected.items():
        if name != ITERATION_KEY and ck.arrays[name].shape != arr.shape:
            raise CheckpointError(
                f"{ck.path}: '{name}' has shape {ck.arrays[name].shape}, expected {arr.shape}"
            )
    try:
        session.load_state_dict(ck.arrays)
    except ValueError as e:  # everything was checked above; keep the promise of one type
        raise CheckpointError(f"{ck.path}: {e}") from e


def load_checkpoint(path: str | os.PathLike[str], session: Session) -> dict[str, Any]:
    """Restores a checkpoint into ``session`` and returns the metadata saved with it.

    Everything is checked before anything is written: on :class:`CheckpointError` the
    session is unchanged.
    """
    ck = read_checkpoint(path)
    apply_checkpoint(ck, session)
    return ck.meta
