"""Checkpoint I/O: atomic writes (temp file + rename) and loading with clear errors."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable

import torch

from utils.errors import MissingFileError


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename it over ``path``."""
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


def load_checkpoint(path: str | Path, map_location: Any = "cpu", hint: str = "") -> dict:
    """Load a checkpoint file (``.pth`` or ``.pth.tar`` tried when no suffix is given)."""
    found = find_checkpoint(path)
    if found is None:
        msg = f"checkpoint not found: {Path(path).resolve()} (also tried .pth, .pth.tar)"
        raise MissingFileError(msg + (f"; {hint}" if hint else ""))
    try:
        return torch.load(found, map_location=map_location, weights_only=False)
    except Exception as exc:  # corrupt or truncated file
        raise RuntimeError(f"could not read checkpoint {found}: {exc}") from exc


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
