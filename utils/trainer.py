"""Pieces every training loop shares: checkpoint sets and resume, NaN/Inf guards, DDP/compile wrapping,
loaders (skipping unreadable clips), log averaging."""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import torch
from torch import nn

from utils.checkpoint import (
    atomic_save, check_finite, load_checkpoint, load_state_checked, unwrap,
)
from utils.checkpoint_set import set_files, write_set
from utils.distributed import DistInfo, rng_state, set_rng_state
from utils.errors import CheckpointError, CheckpointMismatchError, NonFiniteLossError

logger = logging.getLogger(__name__)


def training_state(
    epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None, **extra: Any,
) -> dict:
    """The released checkpoint format ``{'epoch','state_dict','optim_state_dict','scheduler_state_dict'}``
    plus any extra bookkeeping (RNG state, best value, global step) needed for an exact resume."""
    state = {
        "epoch": epoch,
        "state_dict": unwrap(model).state_dict(),
        "optim_state_dict": optimizer.state_dict() if optimizer is not None else None,
        "scheduler_state_dict": scheduler.state_dict() if scheduler is not None else None,
    }
    state.update(bookkeeping(**extra))
    return state


def bookkeeping(**extra: Any) -> dict:
    """Extra checkpoint entries as plain types (``best`` may be a numpy float), loadable with weights_only."""
    if extra.get("best") is not None:
        extra["best"] = float(extra["best"])
    return extra


def save_checkpoint_set(ctx: Any, set_name: str, files: Mapping[str, dict], epoch: int) -> None:
    """Rank 0: write ``{file name: checkpoint}`` into the run folder as one set (:mod:`utils.checkpoint_set`),
    after checking that no tensor in it is NaN/Inf (:class:`NonFiniteWeightsError`: nothing is written)."""
    if not ctx.dist.is_main:
        return
    for name, obj in files.items():
        check_finite(obj, ctx.run_dir / name, "write", f" (epoch {epoch}); the previous checkpoint set is kept")
    write_set(ctx.run_dir, set_name, files, epoch)


def save_weights(ctx: Any, obj: dict, name: str) -> None:
    """Rank 0: atomically write a single weights file (``cINN.pth``, ``Encoder_stage2.pth``) unless non-finite."""
    if ctx.dist.is_main:
        check_finite(obj, ctx.run_dir / name, action="write")
        atomic_save(obj, ctx.run_dir / name)


def load_checkpoint_set(folder: str | Path, set_name: str, names: Iterable[str],
                        map_location: Any = "cpu") -> dict[str, tuple[Path, dict]]:
    """``{name: (path, checkpoint)}`` of the newest complete set in ``folder``; refuses files of mixed epochs
    (a folder written before checkpoint sets existed, where a kill fell between two files)."""
    epoch, paths = set_files(folder, set_name, names)
    ckpts = {name: (path, load_checkpoint(path, map_location=map_location)) for name, path in paths.items()}
    epochs = {name: ckpt.get("epoch") for name, (_, ckpt) in ckpts.items()}
    if len(set(epochs.values()) | ({epoch} if epoch is not None else set())) > 1:
        listed = ", ".join(f"{name} epoch {e}" for name, e in epochs.items())
        raise CheckpointError(f"refusing to resume from {folder}: its checkpoint files are from different epochs "
                              f"({listed}{f'; the set records epoch {epoch}' if epoch is not None else ''}); a write "
                              "was interrupted. Keep only files of one epoch, or start afresh")
    return ckpts


def restore_training_state(ckpt: Mapping, path: Path, model: nn.Module, optimizer: Any = None, scheduler: Any = None,
                           kind: str = "model", expected: Mapping | None = None,
                           config_name: str = "the config") -> None:
    """Load weights (checked: finite, same keys and shapes), optimiser and scheduler states from ``ckpt``."""
    for key in ("state_dict",) + (("optim_state_dict",) if optimizer is not None else ()):
        if key not in ckpt:
            raise CheckpointError(f"{path} has no '{key}' (keys: {sorted(ckpt)[:8]}): not a training checkpoint")
    check_finite(ckpt["state_dict"], path)
    load_state_checked(model, ckpt["state_dict"], path, kind, expected, config_name)
    restore_states(path, {"optim_state_dict": (optimizer, ckpt.get("optim_state_dict")),
                          "scheduler_state_dict": (scheduler, ckpt.get("scheduler_state_dict"))})


def restore_states(path: Path, states: Mapping[str, tuple[Any, Any]]) -> None:
    """``{key: (optimiser or scheduler, its saved state)}``: load each (skipping None), naming file and key."""
    for key, (obj, state) in states.items():
        if obj is None or state is None:
            continue
        try:
            obj.load_state_dict(state)
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointMismatchError(f"{path}: its {key} does not fit this run's {type(obj).__name__} "
                                          f"({exc})") from None


def resume_counters(ckpt: Mapping, ctx: Any = None) -> tuple[int, int, float | None]:
    """(first epoch to run, global step, best value) from a checkpoint; restores its RNG state too, and
    drops the run's ``metrics.csv`` rows from that epoch on (they are logged again)."""
    restore_rng(ckpt)
    start = ckpt["epoch"] + 1
    if ctx is not None:  # before the run is opened: RunContext.open drops them
        ctx.resume_epoch = start
        if ctx.log is not None:
            ctx.log.drop_epochs_from(start)
    return start, ckpt.get("step", 0), ckpt.get("best")


class FiniteMonitor:
    """Watches every step's loss terms for NaN/Inf. On CUDA the flag stays on the device (no host sync per
    step) until :meth:`check` reads it (at logging steps and before any checkpoint); elsewhere every step
    is checked at once. The error names the first bad step and its terms."""

    def __init__(self, device: torch.device, what: str) -> None:
        self.eager = torch.device(device).type != "cuda"
        self.what = what
        self._names: tuple[str, ...] | None = None
        self._first: torch.Tensor | None = None
        self._values: torch.Tensor | None = None

    def add(self, logs: Mapping[str, torch.Tensor | float], step: int) -> None:
        names = tuple(logs)
        if names != self._names:  # e.g. discriminator terms from epoch ``pretrain`` on
            self.check()
            self._names, self._first = names, None
        device = next((v.device for v in logs.values() if isinstance(v, torch.Tensor)), torch.device("cpu"))
        values = torch.stack([torch.as_tensor(v, device=device).detach().float().reshape(()) for v in logs.values()])
        if self._first is None:
            self._first = torch.full((), -1, dtype=torch.long, device=values.device)
            self._values = values.clone()
        new = (~torch.isfinite(values).all()) & (self._first < 0)
        self._first = torch.where(new, step, self._first)
        self._values = torch.where(new, values, self._values)
        if self.eager:
            self.check()

    def check(self) -> None:
        """Raise :class:`NonFiniteLossError` if any step so far had a NaN/Inf loss term (one host sync)."""
        if self._first is None or int(self._first) < 0:
            return
        values = dict(zip(self._names, self._values.tolist()))
        bad = ", ".join(f"{k}={v}" for k, v in values.items() if not math.isfinite(v))
        good = ", ".join(f"{k}={v:.4g}" for k, v in values.items() if math.isfinite(v))
        raise NonFiniteLossError(
            f"non-finite {self.what} loss at step {int(self._first)}: {bad}" + (f" (finite: {good})" if good else "")
            + "; stopped before writing a checkpoint, so the last good checkpoint set is kept. Lower Training.lr, "
            "set Training.grad_clip, or check the data for NaN/Inf values")

    def check_metrics(self, metrics: Mapping[str, float], epoch: int) -> None:
        """Also refuse to go on (and save) after a validation whose metrics are NaN/Inf."""
        self.check()
        bad = {k: v for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)}
        if bad:
            raise NonFiniteLossError(
                f"the {self.what} validation of epoch {epoch} gave non-finite "
                + ", ".join(f"{k}={v}" for k, v in bad.items())
                + ": the model's outputs are not finite; no checkpoint was written, the last good set is kept. "
                "Lower Training.lr or set Training.grad_clip")


def build_loaders(ctx: Any) -> tuple[Any, Any]:
    """(train, eval) loaders of a run: shuffled and sharded training batches (ragged batch dropped), every eval
    clip in order; a clip with an unreadable frame is skipped and logged, more than 1 % of them stop the run."""
    from data import get_dataset, make_loader
    from data.loader import TRAINING_BAD_CLIP_LIMIT

    cfg, tr = ctx.config, ctx.config["Training"]
    common = dict(workers=tr["workers"], seed=tr["seed"], skip_bad_clips=TRAINING_BAD_CLIP_LIMIT)
    train = make_loader(get_dataset(cfg, "train"), tr["bs"], shuffle=True, distributed=ctx.dist.enabled,
                        drop_last=True, **common)
    evaluation = make_loader(get_dataset(cfg, "eval"), tr["bs_eval"] or tr["bs"], shuffle=False, distributed=False,
                             drop_last=False, **common)
    return train, evaluation


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
    the checkpoint); persistent workers keep their own streams. Clips skipped for unreadable frames are
    counted and logged (:class:`data.loader.BadClipCounter`)."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    elif getattr(loader, "generator", None) is not None and hasattr(loader, "base_seed"):
        loader.generator.manual_seed(loader.base_seed + 7919 * epoch)
    from data.loader import BAD_CLIPS_KEY, BadClipCounter

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
