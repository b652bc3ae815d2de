"""One run per folder: a lock held for the run's lifetime, and no silent reuse of another run's checkpoints.

:func:`check_run_folder` (reads only) is called on rank 0 by :func:`training.run.start_run_from_config`, and
:func:`claim_run_folder` by :meth:`training.run.RunContext.open` before the run folder, its log file or a wandb
run is created:

* a folder that holds checkpoints is refused unless the run resumes from it (``Training.reload_path`` is
  this folder) or ``Training.overwrite: True`` (its checkpoints, manifests and ``metrics.csv`` are deleted);
* the folder's ``.run.lock`` is locked (``flock``, released by the OS when the process dies, even on
  ``kill -9``); a second run stops with :class:`~utils.errors.RunFolderError` naming the holder's PID, already
  in ``start_run_from_config`` (before its trainer is built). Where ``flock`` is unsupported (some network
  file systems) the PID in the file decides: a dead PID's lock is taken over;
* temp files and incomplete checkpoint sets of interrupted writes are removed, committed sets completed.
"""
from __future__ import annotations

import errno
import logging
import os
import socket
from pathlib import Path
from typing import Mapping

from training.checkpoint_set import MANIFEST_SUFFIX, recover_folder
from utils.errors import RunFolderError

logger = logging.getLogger(__name__)

LOCK_NAME = ".run.lock"
CHECKPOINT_PATTERNS = ("latest_checkpoint*.pth*", "best_PFVD_*.pth*", "Encoder_stage2.pth*", "cINN.pth*",
                       f"*{MANIFEST_SUFFIX}")
_HELD: dict[Path, "RunFolderLock"] = {}  # folders this process holds (a second start in-process reuses it)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunFolderLock:
    """An exclusive lock on ``folder/.run.lock`` holding ``pid host``; released on :meth:`release` or exit."""

    def __init__(self, folder: Path):
        self.folder = Path(folder).resolve()
        self.path = self.folder / LOCK_NAME
        self.fd: int | None = None

    def _holder(self) -> tuple[int | None, str]:
        try:
            pid, _, host = self.path.read_text().strip().partition(" ")
            return int(pid), host
        except (OSError, ValueError):
            return None, ""

    def _refuse(self, pid: int | None, host: str) -> RunFolderError:
        elsewhere = f" on {host}" if host and host != socket.gethostname() else ""
        who = f"PID {pid}{elsewhere}" if pid else "another process"
        return RunFolderError(f"run folder {self.folder} is in use by another run ({who}, lock file {self.path}); "
                              "wait for it to finish or choose another Training.savename")

    def probe(self) -> None:
        """Raise :class:`RunFolderError` if a live process holds the lock (reads only: nothing is created)."""
        if not self.path.is_file() or self.folder in _HELD:
            return
        try:
            import fcntl

            fd = os.open(self.path, os.O_RDONLY)
        except (ImportError, OSError):
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except BlockingIOError:
            raise self._refuse(*self._holder()) from None
        except OSError:
            pass
        finally:
            os.close(fd)

    def acquire(self) -> "RunFolderLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)  # the umask applies
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self._refuse(*self._holder()) from None
        except (ImportError, OSError) as exc:  # no flock here: decide by the PID in the file
            if isinstance(exc, OSError) and exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                os.close(fd)
                raise
            pid, host = self._holder()
            if pid and pid != os.getpid() and host in ("", socket.gethostname()) and _alive(pid):
                os.close(fd)
                raise self._refuse(pid, host) from None
            if pid:
                logger.warning("taking over the stale lock %s of PID %d (no longer running)", self.path, pid)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self.fd = fd
        _HELD[self.folder] = self
        return self

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.ftruncate(self.fd, 0)
            except OSError:
                pass
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None
        _HELD.pop(self.folder, None)


def existing_checkpoints(folder: Path) -> list[Path]:
    """The checkpoint files and set manifests in ``folder``."""
    if not folder.is_dir():
        return []
    return sorted({p for pattern in CHECKPOINT_PATTERNS for p in folder.glob(pattern) if p.is_file()})


def _same(a: str | Path, b: Path) -> bool:
    try:
        return Path(a).expanduser().resolve() == b.resolve()
    except OSError:
        return False


def check_run_folder(run_dir: Path, training: Mapping) -> list[Path]:
    """Raise :class:`RunFolderError` when a live run holds the folder or a fresh run would replace another
    run's checkpoints; returns the files ``Training.overwrite`` will delete (empty otherwise). Reads only."""
    run_dir = Path(run_dir)
    RunFolderLock(run_dir).probe()
    found = existing_checkpoints(run_dir)
    reload_path = training.get("reload_path") or ""
    if not found or (reload_path and _same(reload_path, run_dir)):
        return []
    if training.get("overwrite"):
        return found
    shown = ", ".join(p.name for p in found[:4]) + (" ..." if len(found) > 4 else "")
    hint = (f"Training.reload_path={reload_path} resumes from another folder and would replace them"
            if reload_path else f"resume it with Training.reload_path={run_dir}")
    raise RunFolderError(f"run folder {run_dir} already holds checkpoints ({shown}): {hint}; or choose another "
                         "Training.savename, or set Training.overwrite=True to delete them")


def claim_run_folder(run_dir: Path, training: Mapping) -> RunFolderLock:
    """Check, lock and tidy the run folder (see the module docstring); returns the held lock."""
    run_dir = Path(run_dir)
    doomed = check_run_folder(run_dir, training)
    held = _HELD.get(run_dir.resolve()) if run_dir.exists() else None
    lock = held if held is not None and held.fd is not None else RunFolderLock(run_dir).acquire()
    if doomed:
        logger.warning("Training.overwrite: deleting %d checkpoint file(s) and metrics.csv of the previous run in %s",
                       len(doomed), run_dir)
        for path in doomed + [run_dir / "metrics.csv"]:
            path.unlink(missing_ok=True)
    recover_folder(run_dir)
    return lock
