"""Starting a training run: device, DDP, seeds, run folder, saved config and logging.

A run is started in two steps so that nothing is written before every input is checked:
:func:`start_run_from_config` checks the config (placeholders, data path, AMP mode, a writable
``Training.save_path``), picks the device and joins
DDP; the trainer is then built (data, networks, weights files: each raises a clear error); only then
:meth:`RunContext.open` creates the run folder, saves the merged config and starts wandb (:func:`run_training`
does all three). The command line (``-cf CONFIG -gpu IDS [Section.key=value ...]``) is
:func:`training.config.training_config`.

One run per folder (:mod:`training.runfolder`): :func:`start_run_from_config` already refuses a folder that
holds another run's checkpoints or is locked by a live run; :meth:`RunContext.open` takes the folder's lock
before it writes anything.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from training.config import check_ready
from training.logger import RunLogger
from training.runfolder import RunFolderLock, check_run_folder, claim_run_folder
from utils.atomic import check_writable_folder
from utils.config import ConfigError, save_config
from utils.device import get_device
from utils.distributed import DistInfo, cleanup_distributed, init_distributed, seed_everything
from utils.logsetup import setup_logging
from utils.precision import PrecisionError, check_amp

logger = logging.getLogger(__name__)


@dataclass
class RunContext:
    """A started run: merged config, device, distributed info, run folder and loggers (after :meth:`open`)."""

    config: dict
    device: torch.device
    dist: DistInfo
    run_dir: Path
    config_file: str = "config.yaml"  # the merged config's name in the run folder (the released layout's)
    log: RunLogger | None = None
    lock: RunFolderLock | None = None  # held by rank 0 once open
    resume_epoch: int | None = None  # set by a resume: metrics.csv rows from this epoch on are dropped

    def open(self) -> "RunContext":
        """Lock the run folder (rank 0), then create it, its log file, the saved config and the wandb/CSV
        loggers (once)."""
        if self.log is not None:
            return self
        if self.dist.is_main:
            self.lock = claim_run_folder(self.run_dir, self.config["Training"])
        setup_logging(self.run_dir, self.dist.rank)
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.run_dir / self.config_file)
            logger.info("run folder %s on %s (world size %d)", self.run_dir, self.device, self.dist.world_size)
        self.log = RunLogger(self.run_dir, self.config, self.dist.is_main, self.config["Training"]["savename"])
        if self.resume_epoch is not None:
            self.log.drop_epochs_from(self.resume_epoch)
        return self

    def close(self) -> None:
        """Release the run folder's lock (also released by the OS when the process ends)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None


class Trainer(Protocol):
    """What :func:`run_training` needs of a stage's trainer."""

    CONFIG_FILE: str

    def __init__(self, ctx: RunContext) -> None: ...

    def fit(self) -> dict: ...


def start_run_from_config(config: dict, gpu: Any = None, config_file: str = "config.yaml",
                          open_run: bool = True) -> RunContext:
    """Check the config, pick the device, join DDP and seed; with ``open_run`` also create the run folder
    (:meth:`RunContext.open`; :func:`run_training` opens it only once the trainer is built)."""
    check_ready(config)
    setup_logging(rank=int(os.environ.get("RANK", 0)))
    device = get_device(gpu)
    tr = config["Training"]
    try:  # before the run folder exists
        check_amp(device, tr.get("amp", "none"))
    except PrecisionError as exc:
        raise ConfigError(f"{config.get('_path', 'config')}: {exc}") from None
    info = init_distributed(device)
    run_dir = Path(tr["save_path"]) / tr["savename"]
    if info.is_main:
        check_writable_folder(run_dir, "the run folder (Training.save_path/Training.savename)")  # nothing created
        check_run_folder(run_dir, tr)  # reads only: another run's checkpoints, a live run's lock
    seed_everything(tr["seed"], info.rank)
    ctx = RunContext(config, device, info, run_dir, config_file)
    return ctx.open() if open_run else ctx


def run_training(config: dict, gpu: Any, trainer_cls: type[Trainer]) -> dict:
    """Start the run, build the trainer (every input checked), open the run folder, fit, leave DDP."""
    ctx = None
    try:
        ctx = start_run_from_config(config, gpu, trainer_cls.CONFIG_FILE, open_run=False)
        trainer = trainer_cls(ctx)
        ctx.open()
        return trainer.fit()
    finally:
        if ctx is not None:
            ctx.close()
        cleanup_distributed()
