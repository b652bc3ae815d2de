"""What every training entry point shares: config checks, device, DDP, run folder and logging.

A run is started in two steps so that nothing is written before every input is checked:
:func:`start_run_from_config` checks the config (placeholders, data path), picks the device and joins DDP;
the trainer is then built (data, networks, weights files: each raises a clear error); only then
:meth:`RunContext.open` creates the run folder, saves the merged config and starts wandb
(:func:`run_training` does all three). The command line is :func:`cli.train_main`.

One run per folder (:mod:`utils.runfolder`): :func:`start_run_from_config` already refuses a folder that
holds another run's checkpoints or is locked by a live run; :meth:`RunContext.open` takes the folder's lock
before it writes anything.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from utils.config import PLACEHOLDER, ConfigError, placeholders
from utils.errors import MissingFileError

if TYPE_CHECKING:  # torch is imported when a run starts, not when its config is checked
    import torch

    from utils.distributed import DistInfo
    from utils.logging import RunLogger

logger = logging.getLogger(__name__)

CONFIG_NAMES = {"stage1": "config_stage1.yaml", "ae": "config_stage2_AE.yaml", "cinn": "config_stage2.yaml"}
_LOGGING_DEFAULTS = {"entity": None, "project": "image2video"}


@dataclass
class RunContext:
    """A started run: merged config, device, distributed info, run folder and loggers (after :meth:`open`)."""

    config: dict
    device: "torch.device"
    dist: "DistInfo"
    run_dir: Path
    schema: str = "stage1"
    log: "RunLogger | None" = None
    lock: Any = None  # utils.runfolder.RunFolderLock, held by rank 0 once open
    resume_epoch: int | None = None  # set by a resume: metrics.csv rows from this epoch on are dropped

    def open(self) -> "RunContext":
        """Lock the run folder (rank 0), then create it, its log file, the saved config and the wandb/CSV
        loggers (once)."""
        if self.log is not None:
            return self
        from utils.config import save_config
        from utils.logging import RunLogger, setup_logging
        from utils.runfolder import claim_run_folder

        if self.dist.is_main:
            self.lock = claim_run_folder(self.run_dir, self.config["Training"])
        setup_logging(self.run_dir, self.dist.rank)
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.run_dir / CONFIG_NAMES[self.schema])  # the released layout's name
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


def check_ready(config: dict) -> dict:
    """Refuse a config that still holds the shipped placeholders (``INSERT_...``) or whose data folder is
    missing, naming each key; placeholders in ``Logging`` fall back to wandb's defaults with a warning."""
    where = f"config '{config.get('_path', '')}'"
    found = {k: v for k, v in placeholders(config).items() if not k.startswith("Logging.")}
    if found:
        listed = ", ".join(f"{k}={v!r}" for k, v in found.items())
        example = next(iter(found))
        raise ConfigError(f"{where} still holds placeholder values ({PLACEHOLDER}...): {listed}. Set them in the "
                          f"file or on the command line, e.g. {example}=<value>")
    data_path = Path(str(config["Data"]["data_path"])).expanduser()
    if not data_path.is_dir():
        raise MissingFileError(f"{where}: Data.data_path={config['Data']['data_path']!r}: folder not found "
                               f"({data_path.resolve()}); see README: Data preparation")
    logging_ph = placeholders(config.get("Logging") or {})
    if logging_ph:
        logger.warning("%s: Logging.%s still hold placeholders: using wandb's defaults (%s)", where,
                       "/".join(logging_ph), ", ".join(f"{k}={_LOGGING_DEFAULTS.get(k)}" for k in logging_ph))
        config["Logging"].update({k: _LOGGING_DEFAULTS.get(k) for k in logging_ph})
    return config


def start_run_from_config(config: dict, gpu: Any = None, schema: str = "stage1", open_run: bool = True) -> RunContext:
    """Check the config, pick the device, join DDP and seed; with ``open_run`` also create the run folder
    (:meth:`RunContext.open`; :func:`run_training` opens it only once the trainer is built)."""
    from utils.amp import PrecisionError, check_amp
    from utils.device import get_device
    from utils.distributed import init_distributed, seed_everything
    from utils.logging import setup_logging
    from utils.runfolder import check_run_folder

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
        check_run_folder(run_dir, tr)  # reads only: another run's checkpoints, a live run's lock
    seed_everything(tr["seed"], info.rank)
    ctx = RunContext(config, device, info, run_dir, schema)
    return ctx.open() if open_run else ctx


def run_training(config: dict, gpu: Any, schema: str, trainer_cls: type) -> dict:
    """Start the run, build the trainer (every input checked), open the run folder, fit, leave DDP."""
    from utils.distributed import cleanup_distributed

    ctx = None
    try:
        ctx = start_run_from_config(config, gpu, schema, open_run=False)
        trainer = trainer_cls(ctx)
        ctx.open()
        return trainer.fit()
    finally:
        if ctx is not None:
            ctx.close()
        cleanup_distributed()
