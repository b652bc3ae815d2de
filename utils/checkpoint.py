"""Checkpoint I/O: atomic writes (temp file + rename), safe loading (``weights_only=True``) with clear errors.

Every checkpoint and weights file is read with ``torch.load(weights_only=True)``: tensors, numbers, strings
and plain containers only, so a crafted file cannot run code. A file that holds other pickled objects is
refused with :class:`~utils.errors.UnsafeCheckpointError`, naming them. For a *trusted* legacy file, set the
environment variable ``I2V_TRUST_CHECKPOINTS=1`` to load it with full unpickling (logged as a warning).
"""
from __future__ import annotations

import errno
import logging
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping

import torch

from utils.errors import (
    CheckpointError, CheckpointMismatchError, CheckpointWriteError, MissingFileError, NonFiniteWeightsError,
    UnsafeCheckpointError,
)

logger = logging.getLogger(__name__)

TRUST_ENV = "I2V_TRUST_CHECKPOINTS"
TEMP_SUFFIX = ".tmp"  # temp files are ``.<name>.<random>.tmp`` beside their target


def _fsync_dir(folder: Path) -> None:
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


def _atomic_write(path: Path, write) -> None:
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


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename it over ``path``; a failed write
    (e.g. a full disk) raises :class:`CheckpointWriteError` naming the file and the free space."""
    _atomic_write(Path(path), lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write text atomically."""
    _atomic_write(Path(path), lambda f: f.write(text.encode()))


def find_checkpoint(path: str | Path, suffixes: Iterable[str] = (".pth", ".pth.tar", ".pt")) -> Path | None:
    """Return ``path`` if it exists, else the first existing ``path + suffix``; None if none exists."""
    path = Path(path)
    if path.is_file():
        return path
    for suffix in suffixes:
        cand = path.parent / (path.name + suffix)
        if cand.is_file():
            return cand
    return None


def _numpy_globals() -> list:
    """What older checkpoints of this project pickled besides tensors: numpy arrays/scalars (RNG state,
    best values). Reconstructing them runs no user code."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    return [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype,
            type(np.dtype(np.uint32)), type(np.dtype(np.float64)), type(np.dtype(np.float32)),
            type(np.dtype(np.int64))]


def safe_load(path: str | Path, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with the project's errors: unsafe content, a corrupt file."""
    path = Path(path)
    if os.environ.get(TRUST_ENV) == "1":
        logger.warning("%s=1: loading %s with full unpickling (only for files from a trusted source)", TRUST_ENV, path)
        try:
            return torch.load(path, map_location=map_location, weights_only=False)
        except Exception as exc:
            raise CheckpointError(f"could not read checkpoint {path}: {exc}") from exc
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = _unsafe_globals(path)
        if unsafe:
            raise UnsafeCheckpointError(
                f"refusing to load {path}: it holds pickled Python objects ({', '.join(unsafe[:5])}), and "
                f"unpickling them can run code. Only tensors and plain containers are loaded. If the file comes "
                f"from a source you trust, set {TRUST_ENV}=1 to load it anyway") from None
        raise CheckpointError(f"could not read checkpoint {path}: not a PyTorch checkpoint, or a corrupt one "
                              f"({str(exc).splitlines()[0][:200]})") from None
    except Exception as exc:  # truncated, empty or corrupt file
        why = str(exc).splitlines()[0][:200] if str(exc) else "the file is empty or truncated"
        raise CheckpointError(f"could not read checkpoint {path}: {type(exc).__name__}: {why}") from None


def _unsafe_globals(path: Path) -> list[str]:
    try:
        allowed = {f"{g.__module__}.{g.__qualname__}" for g in _numpy_globals()}
        return [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(path) if g not in allowed]
    except Exception:  # not a zip checkpoint
        return []


def load_checkpoint(path: str | Path, map_location: Any = "cpu", hint: str = "") -> dict:
    """Load a checkpoint dict (``.pth`` or ``.pth.tar`` tried when no suffix is given), safely."""
    found = find_checkpoint(path)
    if found is None:
        msg = f"checkpoint not found: {Path(path).resolve()} (also tried .pth, .pth.tar)"
        raise MissingFileError(msg + (f"; {hint}" if hint else ""))
    from utils.checkpoint_set import committed_path

    obj = safe_load(committed_path(found), map_location)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{found} holds a {type(obj).__name__}, not a checkpoint (expected a dict: "
                              "{'state_dict': ...} or a state dict)")
    return obj


def state_dict_of(ckpt: Any) -> dict:
    """The model weights inside a checkpoint (``{'state_dict': ...}`` or a bare state dict)."""
    if isinstance(ckpt, dict) and "state_dict" in ckpt:
        return ckpt["state_dict"]
    return ckpt


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare module inside DDP / torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def atomic_write_with(write: Callable[[BinaryIO], Any], path: str | Path) -> None:
    """Write a file atomically with ``write(binary_file)`` (e.g. ``lambda f: numpy.savez(f, ...)``)."""
    _atomic_write(Path(path), write)


# ---------------------------------------------------------------------------------------------- finiteness
def _float_tensors(obj: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() or obj.is_complex():
            yield prefix, obj
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _float_tensors(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _float_tensors(v, f"{prefix}[{i}]")


def first_nonfinite(obj: Any) -> tuple[str, str] | None:
    """``(key, 'NaN'|'Inf' with counts)`` of the first tensor in ``obj`` holding NaN/Inf, else None (one sync)."""
    items = list(_float_tensors(obj))
    if not items:
        return None
    by_device: dict[torch.device, list[int]] = {}
    for i, (_, t) in enumerate(items):
        by_device.setdefault(t.device, []).append(i)
    flags = torch.ones(len(items), dtype=torch.bool)
    for device, idx in by_device.items():  # one reduction and one copy per device
        flags[idx] = torch.stack([torch.isfinite(items[i][1].detach()).all() for i in idx]).cpu()
    if bool(flags.all()):
        return None
    key, t = items[int((~flags).nonzero()[0])]
    t = t.detach()
    n_nan, n_inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
    what = ", ".join(s for s in (f"{n_nan} NaN" if n_nan else "", f"{n_inf} Inf" if n_inf else "") if s)
    return key, f"{what} of {t.numel()} values"


def check_finite(obj: Any, file: str | Path, action: str = "load", note: str = "") -> None:
    """Raise :class:`NonFiniteWeightsError` naming ``file`` and the tensor when ``obj`` holds NaN/Inf."""
    bad = first_nonfinite(obj)
    if bad is not None:
        raise NonFiniteWeightsError(f"refusing to {action} {file}: tensor '{bad[0]}' holds {bad[1]}{note}")


def load_state_checked(module: torch.nn.Module, state_dict: Mapping, file: str | Path, kind: str,
                       expected: Mapping[str, Any] | None = None, config_name: str = "the config") -> None:
    """``module.load_state_dict(state_dict)`` (strict) after checking that the file fits: a
    :class:`CheckpointMismatchError` names the file, what it looks like, the missing / unexpected /
    mis-shaped keys and the config values that disagree (``expected``: config key -> value)."""
    from utils.fingerprint import mismatch_report

    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"{file}: its 'state_dict' is a {type(state_dict).__name__}, not a mapping of tensors")
    report = mismatch_report(unwrap(module).state_dict(), state_dict, kind, expected or {}, config_name)
    if report:
        raise CheckpointMismatchError(f"{file} does not fit the {kind}: {report}")
    unwrap(module).load_state_dict(state_dict)
