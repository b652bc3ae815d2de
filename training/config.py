"""Config keys every training stage shares (``Training``, ``Logging``), the start-up checks of a training config,
and the trainers' command line (``-cf CONFIG -gpu IDS [Section.key=value ...]``). No torch here: a config is
read and checked, and ``--help`` answers, before torch is imported."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Mapping, Sequence

from utils.command import add_gpu_argument, existing_file, parser
from utils.config import (
    PLACEHOLDER,
    ConfigError,
    Key,
    NonNegFloat,
    NonNegInt,
    PosFloat,
    PosInt,
    Text,
    WandbMode,
    load_config,
    opt,
    placeholders,
    req,
)
from utils.errors import MissingFileError

logger = logging.getLogger(__name__)

# mode None -> 'online' when a wandb login exists, else 'disabled' (resolved by training.logger)
LOGGING_SCHEMA: dict = {"entity": opt(Text), "project": opt(Text, "image2video"), "mode": opt(WandbMode)}
_LOGGING_DEFAULTS = {"entity": None, "project": "image2video"}

# Training keys shared by every stage; the values are documented defaults
COMMON_TRAINING: dict = {
    "n_epochs": req(PosInt),
    "lr": req(PosFloat),
    "bs": req(PosInt),
    "bs_eval": opt(PosInt),  # None -> same as bs
    "workers": Key(NonNegInt, 4),
    "weight_decay": Key(NonNegFloat, 0.0),
    "verbose_idx": Key(PosInt, 30),
    "savename": "run",
    "save_path": "runs",
    "reload_path": opt(Text, ""),  # a run folder to resume from (its latest checkpoint set)
    "overwrite": False,  # a fresh run in a folder holding checkpoints deletes them (else it is refused)
    "seed": 42,
    "amp": "none",  # none | bf16 (autocast on CPU and CUDA) | fp16 (CUDA only, with a GradScaler)
    "compile": False,  # torch.compile the networks
    "grad_clip": Key(NonNegFloat, 0.0),  # 0 disables gradient clipping
    "max_steps_per_epoch": opt(PosInt),  # cap iterations per epoch (smoke runs, demo)
    "max_eval_batches": opt(PosInt),  # cap validation batches
    "save_media": True,  # GIF/MP4 of samples each epoch, and the curves of metrics.csv as metrics.png
    "lpips_weights": opt(Text),  # local VGG16 ImageNet weights (vgg16-397923af.pth); None -> torch hub cache
    "allow_random_lpips": False,  # tests/demo only: LPIPS with a random VGG backbone (logged loudly)
    "i3d_weights": opt(Text),  # I3D weights for the per-epoch FVD; None -> models/PI3D or models/DTI3D
}


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


def training_config(argv: Sequence[str] | None, description: str | None,
                    schema: Mapping) -> tuple[dict, list[int] | None]:
    """The trainers' command line: ``(config, -gpu ids)`` with the config read, type-checked against ``schema``,
    overridden by ``Section.key=value`` arguments and checked by :func:`check_ready`."""
    p = parser(description)
    p.add_argument("-cf", "--config", required=True, type=existing_file, help="path to the YAML config")
    add_gpu_argument(p)
    p.add_argument("overrides", nargs="*", help="config overrides such as Training.bs=4 Data.data_path=/x")
    args: argparse.Namespace = p.parse_args(argv)
    return check_ready(load_config(args.config, schema, args.overrides)), args.gpu
