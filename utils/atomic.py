"""Atomic file writes: a temporary file in the target's folder, flushed to disk, then renamed over the target, so
that a kill, a full disk or a second process writing the same file never leaves a half-written file (the previous
file stays as it was, or the whole file of one of the writers is there).

Temporary files are created with mode ``0o666`` and the process's umask applies, as for ``open(path, 'w')``
(``tempfile.mkstemp`` would give ``0o600``): what a run writes can be read by whoever the user's umask lets read
it. :func:`check_writable_folder` / :func:`check_writable_file` check an output place before any work.
"""
from __future__ import annotations

import errno
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from utils.errors import CheckpointWriteError, I2VError, OutputPathError

TEMP_SUFFIX = ".tmp"  # temp files are ``.<name>.<random>.tmp`` (``.tmp<suffix>`` for path writers) beside their target


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
    kept = f"; the previous {path.name} is unchanged" if path.exists() else ""
    err = CheckpointWriteError(f"could not write {path}: {reason} ({free}){kept}")
    err.errno = errno.ENOSPC if full else getattr(exc, "errno", None)
    return err


def _new_temp(path: Path, keep_suffix: bool = False) -> tuple[int, Path]:
    """A new, empty temp file beside ``path`` (mode 0o666 less the umask), open for writing: ``(fd, its path)``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}{path.suffix if keep_suffix else ''}"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))


def _fail(tmp: Path | None, shown: Path, exc: BaseException) -> None:
    """Remove the temp file; raise a failed write (an OSError/RuntimeError) as :class:`CheckpointWriteError`."""
    if tmp is not None:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    if isinstance(exc, (OSError, RuntimeError)) and not isinstance(exc, I2VError):
        raise _write_failed(shown, exc) from exc


def atomic_write_with(write: Callable[[BinaryIO], Any], path: str | Path, shown: str | Path | None = None) -> None:
    """Write ``path`` atomically with ``write(binary_file)`` (e.g. ``lambda f: numpy.savez(f, ...)``); a failed
    write (e.g. a full disk) raises :class:`~utils.errors.CheckpointWriteError` naming the file (``shown``, when
    ``path`` is a staged stand-in for it) and the free space, and leaves the previous file as it was."""
    path = Path(path)
    shown = Path(shown) if shown is not None else path
    tmp = None
    try:
        fd, tmp = _new_temp(path)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        _fail(tmp, shown, exc)
        raise


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write text atomically (:func:`atomic_write_with`)."""
    atomic_write_with(lambda f: f.write(text.encode()), path)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """For writers that need a file name (ffmpeg, imageio): yields a temp path beside ``path`` with the same
    suffix (so that the format is recognised); when the block ends without an error it is flushed and renamed
    over ``path``, else removed (a failed write raises :class:`~utils.errors.CheckpointWriteError`)."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = _new_temp(path, keep_suffix=True)
        os.close(fd)
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        _fail(tmp, path, exc)
        raise


# ------------------------------------------------------------------------------ output places, checked first
def _probe(folder: Path) -> None:
    """Create and remove a file in ``folder`` (what a write needs; ``os.access`` misses ACLs and root squash)."""
    fd, tmp = _new_temp(folder / ".write-check")
    os.close(fd)
    tmp.unlink()


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable_folder(path: str | Path, what: str) -> Path:
    """``path`` as a folder that outputs can be written to: an existing folder, or one that can be created
    (its nearest existing parent is a writable folder; nothing is created here). Otherwise an
    :class:`~utils.errors.OutputPathError` naming ``what`` (a flag or config key) and the reason."""
    path = Path(path).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{what} {path} is a file; expected a folder (it is created if absent)")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise OutputPathError(f"{what} {path}: {base} is a file, so the folder cannot be created there")
    try:
        _probe(base)
    except OSError as exc:
        why = {errno.EROFS: "a read-only file system", errno.EACCES: "permission denied",
               errno.EPERM: "permission denied", errno.ENOSPC: "no space left on the device"}.get(
                   exc.errno, exc.strerror or str(exc))
        where = "" if base == path else f" (to create it in {base})"
        raise OutputPathError(f"{what} {path}: cannot write there{where}: {why}") from None
    return path


def check_writable_file(path: str | Path, what: str) -> Path:
    """``path`` as a file that can be written (atomically: its folder must be writable) and is not a folder."""
    path = Path(path).expanduser().absolute()
    if path.is_dir():
        raise OutputPathError(f"{what} {path} is a folder; expected a file name")
    check_writable_folder(path.parent, what)
    return path
