"""Checkpoint files: atomic ``torch.save``, safe loading (``weights_only=True``) with clear errors, NaN/Inf checks
and checksums.

Every checkpoint and weights file is read with ``torch.load(weights_only=True)``: tensors, numbers, strings
and plain containers only, so a crafted file cannot run code. A file that holds other pickled objects is
refused with :class:`~utils.errors.UnsafeCheckpointError`, naming them. For a *trusted* legacy file, set the
environment variable ``I2V_TRUST_CHECKPOINTS=1`` to load it with full unpickling (logged as a warning).
"""
from __future__ import annotations

import hashlib
import logging
import os
import pickle
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import torch

from utils.atomic import atomic_write_with
from utils.errors import CheckpointError, MissingFileError, NonFiniteWeightsError, UnsafeCheckpointError

logger = logging.getLogger(__name__)

TRUST_ENV = "I2V_TRUST_CHECKPOINTS"


def atomic_save(obj: Any, path: str | Path, shown: str | Path | None = None) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename it over ``path``; a failed write
    (e.g. a full disk) raises :class:`CheckpointWriteError` naming the file (``shown`` when ``path`` is a staged
    stand-in for it) and the free space."""
    atomic_write_with(lambda f: torch.save(obj, f), path, shown)


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


_SHA256: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (``hashlib`` algorithm, read in 4 MiB blocks; not cached)."""
    digest = hashlib.new(algorithm)
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes (cached per path, size and modification time)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA256:
        _SHA256[key] = file_digest(path)
    return _SHA256[key]


def _numpy_globals() -> list:
    """What older checkpoints of this project pickled besides tensors: numpy arrays/scalars (RNG state,
    best values). Reconstructing them runs no user code."""
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
                              f"({_unpickler_reason(exc)})") from None
    except Exception as exc:  # truncated, empty or corrupt file
        why = str(exc).splitlines()[0][:200] if str(exc) else "the file is empty or truncated"
        why = _unpickler_reason(exc) if "weights_only" in str(exc) else why
        raise CheckpointError(f"could not read checkpoint {path}: {type(exc).__name__}: {why}") from None


def _unpickler_reason(exc: BaseException) -> str:
    """Why the weights-only unpickler stopped (e.g. ``Unsupported operand 252``), without torch's advice to retry
    with ``weights_only=False``: for a corrupt file that advice is wrong, and it would run the file's code."""
    text = str(exc)
    _, marker, after = text.partition("WeightsUnpickler error:")
    lines = [ln.strip() for ln in (after if marker else text).splitlines() if ln.strip()]
    lines = [ln for ln in lines if "weights_only" not in ln and not ln.startswith("Check the documentation")]
    return f"the unpickler stopped: {lines[0][:200]}" if lines else "its bytes are not a pickle"


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
    obj = safe_load(found, map_location)
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
