"""Pieces every training loop shares: loaders (skipping unreadable clips), one epoch's iteration, running means,
the end of an epoch (best value, logs), DDP / compile wrapping and gradient averaging."""
from __future__ import annotations

import logging
import math
from typing import Any, Iterable, Iterator, Mapping

import torch
import torch.distributed as dist
from torch import nn

from data.dataset import get_dataset
from data.loader import BAD_CLIPS_KEY, TRAINING_BAD_CLIP_LIMIT, BadClipCounter, make_loader
from utils.distributed import DistInfo

logger = logging.getLogger(__name__)


def build_loaders(ctx: Any) -> tuple[Any, Any]:
    """(train, eval) loaders of a run: shuffled and sharded training batches (ragged batch dropped), every eval
    clip in order; a clip with an unreadable frame is skipped and logged, more than 1 % of them stop the run."""
    cfg, tr = ctx.config, ctx.config["Training"]
    common = dict(workers=tr["workers"], seed=tr["seed"], skip_bad_clips=TRAINING_BAD_CLIP_LIMIT)
    train = make_loader(get_dataset(cfg, "train"), tr["bs"], shuffle=True, distributed=ctx.dist.enabled,
                        drop_last=True, **common)
    evaluation = make_loader(get_dataset(cfg, "eval"), tr["bs_eval"] or tr["bs"], shuffle=False, distributed=False,
                             drop_last=False, **common)
    return train, evaluation


def epoch_iter(loader: Iterable, epoch: int, max_steps: int | None = None) -> Iterator:
    """Iterate a loader for one epoch (optional step cap). The shuffle order depends only on the seed and
    the epoch (DistributedSampler epoch, or the loader's generator reseeded), so a resumed run sees the
    same batches. Augmentation draws are exact on resume with ``workers == 0`` (the global RNG is part of
    the checkpoint); persistent workers keep their own streams. Clips skipped for unreadable frames are
    counted and logged (:class:`data.loader.BadClipCounter`)."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    elif getattr(loader, "generator", None) is not None and hasattr(loader, "base_seed"):
        loader.generator.manual_seed(loader.base_seed + 7919 * epoch)
    bad = BadClipCounter(loader, n_steps(loader, max_steps) * (getattr(loader, "batch_size", None) or 1), epoch)
    for i, batch in enumerate(loader):
        if max_steps is not None and i >= max_steps:
            break
        if isinstance(batch, dict) and BAD_CLIPS_KEY in batch:  # clips with unreadable frames (skip_bad_clips)
            bad.add(batch.pop(BAD_CLIPS_KEY))
            if not batch:
                continue
        yield batch
    bad.finish()


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


def finish_epoch(trainer: Any, epoch: int, train_logs: Mapping, metrics: Mapping, score: float | None,
                 **extra: Any) -> bool:
    """Shared end of an epoch: update ``trainer.best`` when ``score`` (lower is better) improves, and on
    rank 0 log the row (train logs, ``val_`` metrics, extras, best) to CSV/wandb/console. Returns
    whether the score improved."""
    improved = score is not None and is_better(score, trainer.best)
    if improved:
        trainer.best = score
    if trainer.ctx.dist.is_main:
        loaders = (getattr(trainer, "train_loader", None), getattr(trainer, "eval_loader", None))
        bad = {"bad_clips": sum(getattr(loader, "bad_clips", 0) for loader in loaders)}
        row = {"epoch": epoch, **train_logs, **{f"val_{k}": v for k, v in metrics.items()}, **extra, **bad,
               "best": trainer.best}
        trainer.ctx.log.log_epoch(row, trainer.step)
        logger.info("epoch %d: %s", epoch, ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    return improved


def is_better(value: float, best: float | None) -> bool:
    """Lower is better; NaN never improves."""
    return not math.isnan(value) and (best is None or value < best)


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
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, src=0)


def average_gradients(module: nn.Module, info: DistInfo) -> None:
    """All-reduce (mean) the gradients of a module that is not wrapped in DDP (the discriminators, whose
    several forwards per step and R1 double-backward are simpler to run outside DDP)."""
    if not info.enabled:
        return
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
