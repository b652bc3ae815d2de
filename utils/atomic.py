"""Atomic file writes: a temporary file in the target's folder, flushed to disk, then renamed over the target, so
that a kill or a full disk never leaves a half-written file (the previous file stays as it was)."""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

from utils.errors import CheckpointError, CheckpointWriteError

TEMP_SUFFIX = ".tmp"  # temp files are ``.<name>.<random>.tmp`` beside their target


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (renames) to disk, where the platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def human_bytes(n: float) -> str:
    """``1234567`` -> ``'1.2 MB'``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _write_failed(path: Path, exc: BaseException) -> CheckpointWriteError:
    """A :class:`CheckpointWriteError` naming the file, the reason and the free space on its disk."""
    try:
        free = f"{human_bytes(shutil.disk_usage(path.parent).free)} free on its disk"
    except OSError:
        free = "free space unknown"
    full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "unexpected pos" in str(exc)
    reason = "no space left on the device" if full else f"{type(exc).__name__}: {exc}"
    err = CheckpointWriteError(f"could not write {path}: {reason} ({free}); the previous {path.name} is unchanged")
    err.errno = errno.ENOSPC if full else getattr(exc, "errno", None)
    return err


def atomic_write_with(write: Callable[[BinaryIO], Any], path: str | Path) -> None:
    """Write ``path`` atomically with ``write(binary_file)`` (e.g. ``lambda f: numpy.savez(f, ...)``); a failed
    write (e.g. a full disk) raises :class:`~utils.errors.CheckpointWriteError` naming the file and the free
    space, and leaves the previous file as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, (OSError, RuntimeError)) and not isinstance(exc, CheckpointError):
            raise _write_failed(path, exc) from exc
        raise


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write text atomically (:func:`atomic_write_with`)."""
    atomic_write_with(lambda f: f.write(text.encode()), path)
