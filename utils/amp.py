"""Mixed precision: one autocast context (a no-op on CPU) and a GradScaler only for fp16."""
from __future__ import annotations

import contextlib

import torch

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, amp: str = "none"):
    """Autocast for ``amp`` in {none, bf16, fp16} on CUDA; a null context on the CPU or with 'none'."""
    if amp not in ("none", *_DTYPES):
        raise ValueError(f"Training.amp must be one of none|bf16|fp16, got {amp!r}")
    if device.type != "cuda" or amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=_DTYPES[amp])


def make_scaler(device: torch.device, amp: str = "none") -> torch.amp.GradScaler:
    """A GradScaler that is enabled only for fp16 on CUDA."""
    return torch.amp.GradScaler(device.type, enabled=(device.type == "cuda" and amp == "fp16"))
