"""Pieces every training loop shares: resumable checkpoints, DDP/compile wrapping, loaders, log averaging."""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import torch
from torch import nn

from utils.checkpoint import atomic_save, load_checkpoint
from utils.distributed import DistInfo, rng_state, set_rng_state
from utils.errors import MissingFileError

logger = logging.getLogger(__name__)


def training_state(
    epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None, **extra: Any,
) -> dict:
    """The released checkpoint format ``{'epoch','state_dict','optim_state_dict','scheduler_state_dict'}``
    plus any extra bookkeeping (RNG state, best value, global step) needed for an exact resume."""
    from utils.checkpoint import unwrap

    state = {
        "epoch": epoch,
        "state_dict": unwrap(model).state_dict(),
        "optim_state_dict": optimizer.state_dict() if optimizer is not None else None,
        "scheduler_state_dict": scheduler.state_dict() if scheduler is not None else None,
    }
    state.update(extra)
    return state


def save_training_state(path: str | Path, *args: Any, **kwargs: Any) -> None:
    """Atomically write :func:`training_state` to ``path``."""
    atomic_save(training_state(*args, **kwargs), path)


def load_training_state(
    path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None, map_location: Any = "cpu",
) -> dict:
    """Restore model/optimizer/scheduler from a checkpoint written by :func:`save_training_state`."""
    from utils.checkpoint import unwrap

    ckpt = load_checkpoint(path, map_location=map_location)
    unwrap(model).load_state_dict(ckpt["state_dict"])
    if optimizer is not None and ckpt.get("optim_state_dict") is not None:
        optimizer.load_state_dict(ckpt["optim_state_dict"])
    if scheduler is not None and ckpt.get("scheduler_state_dict") is not None:
        scheduler.load_state_dict(ckpt["scheduler_state_dict"])
    return ckpt


def resume_file(folder: str | Path, name: str) -> Path:
    """``folder/name.pth`` (or ``.pth.tar``) of a run to resume; a clear error when it is missing."""
    from utils.checkpoint import find_checkpoint

    path = find_checkpoint(Path(folder) / name)
    if path is None:
        raise MissingFileError(f"cannot resume: {Path(folder) / name}.pth is missing (Training.reload_path)")
    return path


def resume_counters(ckpt: Mapping) -> tuple[int, int, float | None]:
    """(first epoch to run, global step, best value) from a checkpoint; restores its RNG state too."""
    restore_rng(ckpt)
    return ckpt["epoch"] + 1, ckpt.get("step", 0), ckpt.get("best")


def finish_epoch(trainer: Any, epoch: int, train_logs: Mapping, metrics: Mapping, score: float | None,
                 **extra: Any) -> bool:
    """Shared end of an epoch: update ``trainer.best`` when ``score`` (lower is better) improves, and on
    rank 0 log the row (train logs, ``val_`` metrics, extras, best) to CSV/wandb/console. Returns
    whether the score improved."""
    improved = score is not None and is_better(score, trainer.best)
    if improved:
        trainer.best = score
    if trainer.ctx.dist.is_main:
        row = {"epoch": epoch, **train_logs, **{f"val_{k}": v for k, v in metrics.items()}, **extra,
               "best": trainer.best}
        trainer.ctx.log.log_epoch(row, trainer.step)
        logger.info("epoch %d: %s", epoch, ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    return improved


def restore_rng(ckpt: Mapping) -> None:
    """Restore the RNG state saved with a checkpoint (if any)."""
    if ckpt.get("rng") is not None:
        set_rng_state(ckpt["rng"])


def current_rng() -> dict:
    """RNG state to store with a checkpoint."""
    return rng_state()


def wrap_model(model: nn.Module, device: torch.device, info: DistInfo, compile: bool = False) -> nn.Module:
    """Move to ``device``; wrap in DDP under torchrun; optionally ``torch.compile``."""
    model = model.to(device)
    if info.enabled and any(p.requires_grad for p in model.parameters()):
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False,
        )
    if compile:
        model = torch.compile(model)
    return model


def sync_initialised_params(model: torch.nn.Module, dist_info) -> None:
    """Broadcast rank 0's parameters and buffers (after data-dependent ActNorm init) to all ranks."""
    if dist_info.enabled:
        import torch.distributed as dist

        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, src=0)


def epoch_iter(loader: Iterable, epoch: int, max_steps: int | None = None) -> Iterator:
    """Iterate a loader for one epoch (optional step cap). The shuffle order depends only on the seed and
    the epoch (DistributedSampler epoch, or the loader's generator reseeded), so a resumed run sees the
    same batches. Augmentation draws are exact on resume with ``workers == 0`` (the global RNG is part of
    the checkpoint); persistent workers keep their own streams."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    elif getattr(loader, "generator", None) is not None and hasattr(loader, "base_seed"):
        loader.generator.manual_seed(loader.base_seed + 7919 * epoch)
    for i, batch in enumerate(loader):
        if max_steps is not None and i >= max_steps:
            break
        yield batch


def n_steps(loader: Any, max_steps: int | None) -> int:
    """Number of iterations :func:`epoch_iter` yields (for tqdm)."""
    n = len(loader)
    return min(n, max_steps) if max_steps is not None else n


class MeanTracker:
    """Accumulates scalar tensors on the device without host syncs; ``.mean()`` syncs once."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, logs: Mapping[str, torch.Tensor | float]) -> None:
        for k, v in logs.items():
            v = torch.as_tensor(v).detach().float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v
        self.count += 1

    def mean(self) -> dict[str, torch.Tensor]:
        return {k: v / max(self.count, 1) for k, v in self.sums.items()}


def all_finite(*tensors: torch.Tensor) -> bool:
    """True if all values are finite (one host sync)."""
    return bool(torch.stack([torch.isfinite(t.detach()).all() for t in tensors]).all())


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean PSNR over frames of videos in [-1, 1] (computed on [0, 1])."""
    mse = ((x.float() - y.float()) / 2).pow(2).flatten(-3).mean(-1).clamp_min(1e-10)
    return (10 * torch.log10(1.0 / mse)).mean()


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM (11x11 Gaussian window) over frames of videos in [-1, 1]."""
    import kornia

    a = ((x.float() + 1) / 2).flatten(0, -4)
    b = ((y.float() + 1) / 2).flatten(0, -4)
    return kornia.metrics.ssim(a, b, window_size=11).mean()


def is_better(value: float, best: float | None) -> bool:
    """Lower is better; NaN never improves."""
    return not math.isnan(value) and (best is None or value < best)


def average_gradients(module: nn.Module, info: DistInfo) -> None:
    """All-reduce (mean) the gradients of a module that is not wrapped in DDP (the discriminators, whose
    several forwards per step and R1 double-backward are simpler to run outside DDP)."""
    if not info.enabled:
        return
    import torch.distributed as dist

    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= info.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()
