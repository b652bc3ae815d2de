"""The one place where a ``-gpu`` flag becomes a ``torch.device``."""
from __future__ import annotations

import logging
import os
from typing import Sequence

import torch

logger = logging.getLogger(__name__)


def get_device(gpu: int | str | Sequence[int] | None = None) -> torch.device:
    """Select the compute device.

    ``gpu`` is an id (``0``), a list of ids (the first is used by this process; with torchrun the
    local rank picks from the list), ``-1`` for the CPU, or ``None`` for automatic: the first GPU if
    there is one, else the CPU with a one-line notice. A GPU that cannot be used (no CUDA, or fewer
    devices) falls back to the CPU with one warning that says why, so the original's ``-gpu 0`` commands
    run on any machine.
    """
    if isinstance(gpu, str):
        gpu = [int(g) for g in gpu.replace(" ", "").split(",") if g != ""]
    if isinstance(gpu, (list, tuple)):
        ids = list(gpu)
        if not ids:
            gpu = None
        else:
            local_rank = int(os.environ.get("LOCAL_RANK", 0))
            gpu = ids[local_rank % len(ids)] if ids[0] >= 0 else -1
    if gpu is None:
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
        logger.info("no CUDA device found: running on the CPU")
        return torch.device("cpu")
    gpu = int(gpu)
    if gpu < 0:
        return torch.device("cpu")
    why = _unusable_gpu(gpu)
    if why:
        logger.warning("-gpu %d: %s: running on the CPU", gpu, why)
        return torch.device("cpu")
    return torch.device("cuda", gpu)


def _unusable_gpu(gpu: int) -> str | None:
    """Why CUDA device ``gpu`` cannot be used here, or None."""
    if not torch.cuda.is_available():
        if torch.version.cuda is None:
            return "this PyTorch build has no CUDA support"
        return "CUDA is not available (no GPU or driver found)"
    if gpu >= torch.cuda.device_count():
        return f"only {torch.cuda.device_count()} CUDA device(s) exist"
    return None

