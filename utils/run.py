"""What every training entry point shares: CLI parsing, config, device, DDP, run folder and logging."""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from utils.config import load_config, save_config
from utils.device import add_gpu_argument, get_device
from utils.distributed import DistInfo, init_distributed, seed_everything
from utils.logging import RunLogger, setup_logging

logger = logging.getLogger(__name__)


def train_arg_parser(description: str) -> argparse.ArgumentParser:
    """``-cf/--config``, ``-gpu`` and free ``Section.key=value`` overrides."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("-cf", "--config", required=True, help="path to the YAML config")
    add_gpu_argument(p)
    p.add_argument("overrides", nargs="*", help="config overrides such as Training.bs=4 Data.data_path=/x")
    return p


@dataclass
class RunContext:
    """A started run: merged config, device, distributed info, run folder and loggers."""

    config: dict
    device: torch.device
    dist: DistInfo
    run_dir: Path
    log: RunLogger


CONFIG_NAMES = {"stage1": "config_stage1.yaml", "ae": "config_stage2_AE.yaml", "cinn": "config_stage2.yaml"}


def start_run(argv: Sequence[str] | None, schema: str, description: str) -> RunContext:
    """Parse the CLI, validate the config, pick the device, join DDP, create the run folder."""
    args = train_arg_parser(description).parse_args(argv)
    config = load_config(args.config, schema, args.overrides)
    return start_run_from_config(config, args.gpu, schema)


def start_run_from_config(config: dict, gpu=None, schema: str = "stage1") -> RunContext:
    """Like :func:`start_run` for an already validated config (used by tests and scripts)."""
    device = get_device(gpu)
    info = init_distributed(device)
    tr = config["Training"]
    run_dir = Path(tr["save_path"]) / tr["savename"]
    setup_logging(run_dir, info.rank)
    seed_everything(tr["seed"], info.rank)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / CONFIG_NAMES[schema])  # the released layout's name
        logger.info("run folder %s on %s (world size %d)", run_dir, device, info.world_size)
    return RunContext(config, device, info, run_dir, RunLogger(run_dir, config, info.is_main, tr["savename"]))


def run_training(argv: Sequence[str] | None, schema: str, description: str, trainer_cls) -> dict:
    """Entry-point body shared by the three ``main.py``: start the run, fit, leave the process group."""
    from utils.distributed import cleanup_distributed

    ctx = start_run(argv, schema, description)
    try:
        return trainer_cls(ctx).fit()
    finally:
        cleanup_distributed()
