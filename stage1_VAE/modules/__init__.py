"""Stage-1 networks (the original's stage1_VAE/modules: decoder.py, resnet3D.py, patch_disc.py) and
:func:`build_stage1`, which builds them from a parsed stage-1 config."""
from __future__ import annotations

import logging
from typing import Mapping

from torch import nn

from blocks.discriminators import PatchDiscriminator
from stage1_VAE.modules.decoder import Generator
from stage1_VAE.modules.discriminators import TemporalDiscriminator
from stage1_VAE.modules.encoder import Encoder
from stage1_VAE.modules.resnet3d import trunk_output_size
from utils.config import ConfigError

__all__ = [
    "Encoder",
    "Generator",
    "PatchDiscriminator",
    "TemporalDiscriminator",
    "build_stage1",
    "check_stage1_shapes",
    "temporal_crop_length",
]

logger = logging.getLogger(__name__)


def temporal_crop_length(n_frames: int, subsample_length: int) -> int:
    """Frames the temporal discriminator sees: a window of ``subsample_length`` for clips of 16+ frames."""
    return min(subsample_length, n_frames) if n_frames >= 16 else n_frames


def _trunk_problem(section: str, cfg: Mapping, frames: int, img: int, stem_stride_t: int, pool: bool, what: str) -> str:
    """Empty when the 3D-ResNet of ``section`` maps ``frames`` x ``img`` px to 1 x 4x4, else the complaint."""
    use_max_pool = bool(cfg.get("use_max_pool", pool))
    t, s = trunk_output_size(frames, img, stem_stride_t, use_max_pool, cfg["stride_t"], cfg["stride_s"])
    if (t, s) == (1, 4):
        return ""
    return (
        f"{section}: {what} of Data.img_size={img} with {section}.stride_t={list(cfg['stride_t'])}, "
        f"{section}.stride_s={list(cfg['stride_s'])}, {section}.use_max_pool={use_max_pool} ends at "
        f"time {t} x {s}x{s}, but its head needs time 1 x 4x4"
    )


def check_stage1_shapes(config: Mapping) -> None:
    """Raise ``ValueError`` naming the config values when the stage-1 networks' shapes do not fit together."""
    data, enc, dec = config["Data"], config["Encoder"], config["Decoder"]
    img, seq_len = int(data["img_size"]), int(data.get("sequence_length", 17))
    n_frames = seq_len - 1  # frame 0 is the start frame x0
    sub = int(config.get("Training", {}).get("subsample_length", 12))
    crop = temporal_crop_length(n_frames, sub)
    problems = [
        _trunk_problem("Encoder", enc, n_frames, img, 2, False,
                       f"{n_frames} frames (Data.sequence_length={seq_len} minus x0)"),
        _trunk_problem("Discriminator_Temporal", config["Discriminator_Temporal"], crop, img, 1, True,
                       f"a crop of {crop} frames (Training.subsample_length={sub})"),
    ]
    if int(enc["z_dim"]) != int(dec["z_dim"]):
        problems.append(f"Encoder.z_dim={enc['z_dim']} differs from Decoder.z_dim={dec['z_dim']}")
    us, ut = [int(v) for v in dec["upsample_s"]], [int(v) for v in dec["upsample_t"]]
    out_s, out_t = 32 * us[0] * us[1], 8 * ut[0] * ut[1]
    if out_s != img or out_t != n_frames:
        problems.append(
            f"Decoder: upsample_s={us}, upsample_t={ut} generate {out_t} frames of {out_s}x{out_s}, "
            f"but Data.img_size={img} and Data.sequence_length={seq_len} ask for {n_frames} frames of {img}x{img}"
        )
    problems = [p for p in problems if p]
    if problems:
        raise ConfigError(f"{config.get('_path') or 'stage-1 config'}: inconsistent stage-1 config: "
                          + "; ".join(problems))


def build_stage1(config: Mapping) -> dict[str, nn.Module]:
    """Build ``encoder``, ``decoder``, ``disc_t``, ``disc_s`` from a parsed stage-1 config (original schema)."""
    check_stage1_shapes(config)
    return {
        "encoder": Encoder.from_config(config["Encoder"]),
        "decoder": Generator.from_config(config["Decoder"]),
        "disc_t": TemporalDiscriminator.from_config(config["Discriminator_Temporal"]),
        "disc_s": PatchDiscriminator.from_config(config["Discriminator_Patch"]),
    }
