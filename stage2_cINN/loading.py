"""Find and load the frozen networks a stage-2 config points at (stage-1 encoder/decoder, AE encoder).

Released model folders (SPEC 4)::

    <First_stage_model.model_path>/<model_name>/   config_stage1.yaml, best_PFVD_GEN.pth, best_PFVD_ENC.pth[.tar]
    <Conditioning_Model.model_path>/<model_name>/  config_stage2_AE.yaml, Encoder_stage2.pth
    models/<dataset>/stage2/                        config_stage2.yaml, cINN.pth

A path written in a config is tried as given, then relative to the config's folder, then relative to
the repository root; every file that is still missing is reported in one error.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

import torch

from utils.checkpoint import check_finite, find_checkpoint, load_checkpoint, load_state_checked, state_dict_of
from utils.config import load_config
from utils.errors import MissingFileError
from utils.fingerprint import AE_ENCODER, STAGE1_DECODER, STAGE1_ENCODER, expected_values

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]

LAYOUT = """expected layout (released weights):
  models/<dataset>/stage1/      config_stage1.yaml, best_PFVD_GEN.pth, best_PFVD_ENC.pth (or .pth.tar)
  models/<dataset>/stage2_AE/   config_stage2_AE.yaml, Encoder_stage2.pth
  models/<dataset>/stage2/      config_stage2.yaml, cINN.pth
with config_stage2.yaml's First_stage_model / Conditioning_Model (model_path + model_name) pointing at the
first two folders. See models/README.md."""


class MissingFilesError(MissingFileError):
    """One or more files of a model are missing; the message lists each by full path."""


def candidate_dirs(path: str | Path, config_dir: Path | None) -> list[Path]:
    """The places a config-relative path may refer to: as given, beside the config, under the repo."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return [p]
    out = [Path.cwd() / p]
    if config_dir is not None:
        out.append(config_dir / p)
    out.append(REPO_ROOT / p)
    return out


def resolve(path: str | Path, config_dir: Path | None, names: Iterable[str] = ()) -> Path:
    """The first candidate of :func:`candidate_dirs` that exists and holds ``names`` (checkpoint
    names may omit .pth/.pth.tar); else the first existing folder; else the first candidate (errors
    then name the files there)."""
    cands = candidate_dirs(path, config_dir)
    for c in cands:
        if c.exists() and all(find_checkpoint(c / n) is not None or (c / n).exists() for n in names):
            return c.resolve()
    existing = [c for c in cands if c.is_dir()]
    return (existing[0] if existing else cands[0]).resolve()


def _model_dir(section: dict, config_dir: Path | None, names: list[str]) -> Path:
    joined = Path(str(section["model_path"])) / str(section["model_name"])
    return resolve(joined, config_dir, names)


def _missing(folder: Path, names: Iterable[str]) -> list[str]:
    return [str(folder / n) + ("" if n.endswith(".yaml") else "(.pth|.pth.tar)")
            for n in names if (folder / n).exists() is False and find_checkpoint(folder / n) is None]


def first_stage_files(cinn_config: dict) -> tuple[Path, list[str]]:
    fs = cinn_config["First_stage_model"]
    names = ["config_stage1.yaml", fs["checkpoint_decoder"], fs["checkpoint_encoder"]]
    return _model_dir(fs, _config_dir(cinn_config), names), names


def conditioner_files(cinn_config: dict) -> tuple[Path, list[str]]:
    cm = cinn_config["Conditioning_Model"]
    names = ["config_stage2_AE.yaml", cm["checkpoint_name"]]
    return _model_dir(cm, _config_dir(cinn_config), names), names


def _config_dir(config: dict) -> Path | None:
    return Path(config["_path"]).parent if config.get("_path") else None


def check_files(cinn_config: dict, extra: Iterable[Path] = ()) -> None:
    """Raise :class:`MissingFilesError` listing every missing file of the frozen models (and ``extra``)."""
    missing = [str(p) for p in extra if not Path(p).exists()]
    for folder, names in (first_stage_files(cinn_config), conditioner_files(cinn_config)):
        missing += _missing(folder, names)
    if missing:
        raise MissingFilesError("missing model files:\n  " + "\n  ".join(missing) + "\n" + LAYOUT)


def load_first_stage(cinn_config: dict, device: torch.device, parts: Iterable[str] = ("encoder", "decoder")) -> dict:
    """The frozen stage-1 networks (eval mode, no grad) and their config, as ``{'config', part: module}``."""
    from stage1_VAE.modules import build_stage1

    folder, names = first_stage_files(cinn_config)
    cfg1 = load_config(folder / "config_stage1.yaml", "stage1")
    with torch.device("meta"):
        nets = build_stage1(cfg1)
    fs = cinn_config["First_stage_model"]
    files = {"decoder": fs["checkpoint_decoder"], "encoder": fs["checkpoint_encoder"]}
    kinds = {"decoder": STAGE1_DECODER, "encoder": STAGE1_ENCODER}
    out, epochs = {"config": cfg1}, {}
    for part in parts:
        ckpt = load_checkpoint(folder / files[part], map_location="cpu")
        epochs[files[part]] = ckpt.get("epoch")
        out[part] = _freeze(load_weights(nets[part], ckpt, find_checkpoint(folder / files[part]), kinds[part], cfg1,
                                         device))
    if len({e for e in epochs.values() if e is not None}) > 1:
        logger.warning("%s: the stage-1 files are from different epochs (%s)", folder,
                       ", ".join(f"{name} epoch {e}" for name, e in epochs.items()))
    return out


def load_weights(net: torch.nn.Module, ckpt: dict, path: Path, kind: str, config: dict, device: torch.device,
                 z_dim: int | None = None) -> torch.nn.Module:
    """Materialise ``net`` (built on the meta device) on ``device`` with the checkpoint's weights, refusing
    NaN/Inf values and a file of another model or configuration size (named in the error)."""
    sd = state_dict_of(ckpt)
    check_finite(sd, path)
    net = net.to_empty(device=device)
    config_name = Path(str(config.get("_path", "the config"))).name
    load_state_checked(net, sd, path, kind, expected_values(kind, config, z_dim), config_name)
    return net


def load_conditioner(cinn_config: dict, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """The frozen AE encoder that embeds the start frame, and its config."""
    from stage2_cINN.AE.modules import build_ae_encoder

    folder, names = conditioner_files(cinn_config)
    cfg_ae = load_config(folder / "config_stage2_AE.yaml", "ae")
    with torch.device("meta"):
        enc = build_ae_encoder(cfg_ae["AE"])
    path = find_checkpoint(folder / names[1])
    enc = load_weights(enc, load_checkpoint(folder / names[1], map_location="cpu"), path, AE_ENCODER, cfg_ae, device)
    return _freeze(enc), cfg_ae


def embed_start_frame(conditioner: torch.nn.Module, x0: torch.Tensor, size: int) -> torch.Tensor:
    """The AE's mean embedding of x0 (B, 3, H, W), resized to the AE's input size when it differs."""
    if x0.shape[-2:] != (size, size):
        x0 = torch.nn.functional.interpolate(x0, size=(size, size), mode="bilinear", align_corners=False)
    return conditioner.embed(x0)  # (B, z_dim)


def _freeze(net: torch.nn.Module) -> torch.nn.Module:
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net
