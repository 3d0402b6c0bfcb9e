"""Atomic file writes: a temporary file in the target's folder, fsync, rename; readable by others as the umask allows.

Every file the project writes for a user (metrics, tables, airframes, policies, run files) goes through here, so a
crash or a full disk never leaves a half-written file under the real name, and no stray temporary file is left.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

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


def cache_dir(name: str) -> Path:
    """RAPTOR_CACHE (default ~/.cache/raptor) / name: downloaded trees, builds and environments kept between runs."""
    return Path(os.environ.get("RAPTOR_CACHE", Path.home() / ".cache" / "raptor")) / name


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


# ----------------------------------------------------------------------------------------------------------------
# Checked files: a header with the payload's SHA-256, so a flipped bit or a cut file is found, never loaded; the
# previous good version kept beside it (NAME.prev) to fall back to.

CHECKED_MAGIC = b"RAPTOR-CHECKED-1 "


def _previous(path: Path) -> Path:
    return path.with_name(path.name + ".prev")


def save_checked(obj, path: str | os.PathLike, keep_previous: bool = True) -> Path:
    """torch.save `obj` behind a checksum header, atomically; the file it replaces becomes NAME.prev."""
    path = Path(path)
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    header = CHECKED_MAGIC + f"{hashlib.sha256(data).hexdigest()} {len(data)}\n".encode()

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(header)
            f.write(data)
        if keep_previous and path.is_file():
            os.replace(path, _previous(path))  # a crash right here leaves NAME.prev, which load_checked falls back to

    return atomic_write(path, write)


def read_checked(path: Path, map_location="cpu"):
    """The object in `path`, or ValueError(reason) for a damaged file. Files without the header (written before
    checksums) are loaded as they are."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(e.strerror or str(e)) from None
    if data.startswith(CHECKED_MAGIC):
        end = data.find(b"\n")
        try:
            digest, size = data[len(CHECKED_MAGIC):end].decode().split()
            size = int(size)
        except ValueError:
            raise ValueError("damaged header") from None
        payload = data[end + 1:]
        if len(payload) != size:
            raise ValueError(f"truncated: {len(payload):,} of {size:,} bytes")
        if hashlib.sha256(payload).hexdigest() != digest:
            raise ValueError("checksum mismatch: the file changed after it was written (disk or copy error)")
        data = payload
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a damaged file
        raise ValueError(f"unreadable ({type(e).__name__}: {str(e)[:120]})") from None


def load_checked(path: str | os.PathLike, map_location="cpu", what: str = "checkpoint", fix: str = ""):
    """Load a file written by save_checked. A damaged file is moved aside (NAME.corrupt) and its previous version
    loaded instead, with a warning naming both; with no good version left, a RaptorError says what to do."""
    path = Path(path)
    try:
        return read_checked(path, map_location)
    except ValueError as e:
        reason = str(e)
    prev = _previous(path)
    if prev.is_file():
        try:
            obj = read_checked(prev, map_location)
        except ValueError as e2:
            raise RaptorError(f"{what} {path} is damaged ({reason}), and so is {prev} ({e2}); {fix}") from None
        if path.is_file():  # (absent when a save stopped between its two renames)
            os.replace(path, path.with_name(path.name + ".corrupt"))
        print(f"raptor: warning: {what} {path} is damaged or missing ({reason}): continuing from the previous one "
              f"({prev.name}), a little older; a damaged one is kept as {path.name}.corrupt", file=sys.stderr,
              flush=True)
        return obj
    raise RaptorError(f"{what} {path} is damaged ({reason}) and there is no earlier one; {fix}")


def read_json(path: str | os.PathLike, what: str = "file", fix: str = ""):
    """json.loads of a file, or a RaptorError that names it (missing, cut short, not JSON)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RaptorError(f"{what} {path} does not exist; {fix}".rstrip("; ")) from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise RaptorError(f"{what} {path} is damaged ({type(e).__name__}: {str(e)[:100]}); {fix}".rstrip("; ")) \
            from None


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line and fsync: a log whose every finished line survives the process that wrote it."""
    path = Path(path)
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line.rstrip("\n") + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise RaptorError(f"cannot append to {path}: {e.strerror or e}; free some space or choose another folder") \
            from None


# ----------------------------------------------------------------------------------------------------------------
# Process locks: a file naming the process (pid, host) that works on a folder while it runs; readers ask whether it
# still lives (a lock left by a killed process, or one copied from another machine, reads as gone).


@contextlib.contextmanager
def process_lock(path: str | os.PathLike):
    path = Path(path)
    atomic_write_text(path, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def lock_alive(path: str | os.PathLike) -> bool | None:
    """True: a live process on this host holds the lock (or one on another host, which cannot be checked); False: the
    process that held it is gone; None: no lock."""
    try:
        lock = json.loads(Path(path).read_text())
        pid, host = int(lock["pid"]), str(lock["host"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
