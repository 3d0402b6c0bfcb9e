"""Atomic file writes: a temporary file in the target's folder, fsync, rename; readable by others as the umask allows.

Every file the project writes for a user (metrics, tables, airframes, policies, run files) goes through here, so a
crash or a full disk never leaves a half-written file under the real name, and no stray temporary file is left.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from raptor.errors import RaptorError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode an ordinary new file gets here (0644 under the usual umask 022), not mkstemp's private 0600."""
    return 0o666 & ~_umask()


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call write(tmp_path) for a temporary file beside `path`, fsync it, then rename it over `path`.

    An OSError (no space, read-only folder, quota) becomes a RaptorError that names the file; the temporary file is
    removed whatever happens."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as e:
        raise RaptorError(f"cannot write {path}: {e.strerror or e}; choose a writable folder") from None
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except OSError as e:
        raise RaptorError(f"cannot write {path}: {e.strerror or e}; free some space or choose another folder") \
            from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    return atomic_write(path, write)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def check_writable_folder(folder: str | os.PathLike, what: str = "--out") -> Path:
    """Create `folder` if needed and prove a file can be written there, before any long work starts."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RaptorError(f"{what} {folder} is a file, not a folder; choose another {what}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".raptor-write-check.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise RaptorError(f"{what} {folder} is not writable ({e.strerror or e}); choose another {what}") from None
    return folder
