"""A run's checkpoints: the released format plus the bookkeeping of an exact resume (RNG state, step, best value),
written as checkpoint sets (:mod:`training.checkpoint_set`) and never from NaN/Inf weights."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import nn

from blocks.fingerprint import load_state_checked
from training.checkpoint_set import set_files, write_set
from utils.checkpoint import check_finite, load_checkpoint, unwrap
from utils.distributed import rng_state, set_rng_state
from utils.errors import CheckpointError, CheckpointMismatchError


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
    """Rank 0: write ``{file name: checkpoint}`` into the run folder as one set (:mod:`training.checkpoint_set`),
    after checking that no tensor in it is NaN/Inf (:class:`NonFiniteWeightsError`: nothing is written)."""
    if not ctx.dist.is_main:
        return
    for name, obj in files.items():
        check_finite(obj, ctx.run_dir / name, "write", f" (epoch {epoch}); the previous checkpoint set is kept")
    write_set(ctx.run_dir, set_name, files, epoch)


def save_weights(ctx: Any, obj: dict, name: str, epoch: int) -> None:
    """Rank 0: write a single weights file (``cINN.pth``, ``Encoder_stage2.pth``) unless non-finite, as a set of
    one file (``cINN.set.json`` records its checksum, which ``load_model`` verifies)."""
    if ctx.dist.is_main:
        check_finite(obj, ctx.run_dir / name, action="write")
        write_set(ctx.run_dir, Path(name).stem, {name: obj}, epoch)


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


def restore_rng(ckpt: Mapping) -> None:
    """Restore the RNG state saved with a checkpoint (if any)."""
    if ckpt.get("rng") is not None:
        set_rng_state(ckpt["rng"])


def current_rng() -> dict:
    """RNG state to store with a checkpoint."""
    return rng_state()
