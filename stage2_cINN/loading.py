"""Find and load the frozen networks a stage-2 config points at (stage-1 encoder/decoder, AE encoder, the cINN).

Released model folders (the original's README and ``get_model.py``)::

    <First_stage_model.model_path>/<model_name>/   config_stage1.yaml, best_PFVD_GEN.pth, best_PFVD_ENC.pth[.tar]
    <Conditioning_Model.model_path>/<model_name>/  config_stage2_AE.yaml, Encoder_stage2.pth
    models/<dataset>/stage2/                        config_stage2.yaml, cINN.pth

:func:`model_files` resolves every file once into a :class:`ModelFiles` record (a path written in a config is
tried as given, then relative to the config's folder, then relative to the repository root), which
:meth:`ModelFiles.check` checks (every missing file reported in one error) before anything is loaded from it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import torch

from blocks.fingerprint import AE_ENCODER, CINN, STAGE1_DECODER, STAGE1_ENCODER, expected_values, load_state_checked
from stage1_VAE.config import CONFIG_FILE as STAGE1_CONFIG_FILE
from stage1_VAE.config import STAGE1_SCHEMA
from stage1_VAE.modules import build_stage1
from stage2_cINN.AE.config import AE_SCHEMA
from stage2_cINN.AE.config import CONFIG_FILE as AE_CONFIG_FILE
from stage2_cINN.AE.modules import build_ae_encoder
from stage2_cINN.modules import build_cinn
from training.checkpoint_set import committed_path
from utils.checkpoint import check_finite, find_checkpoint, load_checkpoint, state_dict_of
from utils.config import load_config
from utils.errors import MissingFileError
from utils.paths import REPO_ROOT

logger = logging.getLogger(__name__)

CINN_FILE = "cINN"  # cINN.pth (or .pth.tar) in a stage-2 model folder
LAYOUT = """expected layout (released weights):
  models/<dataset>/stage1/      config_stage1.yaml, best_PFVD_GEN.pth, best_PFVD_ENC.pth (or .pth.tar)
  models/<dataset>/stage2_AE/   config_stage2_AE.yaml, Encoder_stage2.pth
  models/<dataset>/stage2/      config_stage2.yaml, cINN.pth
with config_stage2.yaml's First_stage_model / Conditioning_Model (model_path + model_name) pointing at the
first two folders. See models/README.md; the paper's weights: README, "Pretrained models" (or give another
model folder, -ckpt_path)."""


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


@dataclass(frozen=True)
class ModelFiles:
    """Every file of a stage-2 model, resolved once (None: not found; ``missing`` names what is absent)."""

    stage1_config: Path
    decoder: Path | None
    encoder: Path | None
    ae_config: Path
    ae_encoder: Path | None
    cinn: Path | None
    missing: tuple[str, ...]

    def check(self) -> "ModelFiles":
        """Raise :class:`MissingFilesError` listing every missing file (with the expected layout)."""
        if self.missing:
            raise MissingFilesError("missing model files:\n  " + "\n  ".join(self.missing) + "\n" + LAYOUT)
        return self


def _checkpoint(folder: Path, name: str, missing: list[str]) -> Path | None:
    """``folder/name`` (.pth, .pth.tar tried), or the staged file standing in for it when a committed checkpoint
    set's renames were interrupted, its checksum verified against the set's manifest (if any); None (and
    recorded in ``missing``) when absent."""
    found = find_checkpoint(folder / name)
    if found is None:
        missing.append(f"{folder / name}(.pth|.pth.tar)")
        return None
    return committed_path(found)


def _config_file(folder: Path, name: str, missing: list[str]) -> Path:
    if not (folder / name).is_file():
        missing.append(str(folder / name))
    return folder / name


def model_files(cinn_config: Mapping, cinn_folder: Path | None = None) -> ModelFiles:
    """Resolve the files of the frozen models ``cinn_config`` points at and, with ``cinn_folder`` (a trained
    model's folder), its ``cINN.pth``."""
    config_dir = Path(cinn_config["_path"]).parent if cinn_config.get("_path") else None
    fs, cm = cinn_config["First_stage_model"], cinn_config["Conditioning_Model"]
    missing: list[str] = []
    stage1 = resolve(Path(str(fs["model_path"])) / str(fs["model_name"]), config_dir,
                     [STAGE1_CONFIG_FILE, fs["checkpoint_decoder"], fs["checkpoint_encoder"]])
    ae = resolve(Path(str(cm["model_path"])) / str(cm["model_name"]), config_dir,
                 [AE_CONFIG_FILE, cm["checkpoint_name"]])
    cinn = None
    if cinn_folder is not None:
        cinn = find_checkpoint(Path(cinn_folder) / CINN_FILE)
        if cinn is None:
            missing.append(str(Path(cinn_folder).resolve() / f"{CINN_FILE}.pth"))
        else:
            cinn = committed_path(cinn)  # its checksum verified when the run recorded one (cINN.set.json)
    return ModelFiles(
        stage1_config=_config_file(stage1, STAGE1_CONFIG_FILE, missing),
        decoder=_checkpoint(stage1, fs["checkpoint_decoder"], missing),
        encoder=_checkpoint(stage1, fs["checkpoint_encoder"], missing),
        ae_config=_config_file(ae, AE_CONFIG_FILE, missing),
        ae_encoder=_checkpoint(ae, cm["checkpoint_name"], missing),
        cinn=cinn, missing=tuple(missing))


def load_weights(net: torch.nn.Module, ckpt: dict, path: Path, kind: str, config: dict, device: torch.device,
                 z_dim: int | None = None) -> torch.nn.Module:
    """Materialise ``net`` (built on the meta device) on ``device`` with the weights of ``ckpt`` (read from
    ``path``), refusing NaN/Inf values and a file of another model or configuration size (named in the error)."""
    sd = state_dict_of(ckpt)
    check_finite(sd, path)
    net = net.to_empty(device=device)
    config_name = Path(str(config.get("_path", "the config"))).name
    load_state_checked(net, sd, path, kind, expected_values(kind, config, z_dim), config_name)
    return net


def load_first_stage(files: ModelFiles, device: torch.device, parts: Iterable[str] = ("encoder", "decoder")) -> dict:
    """The frozen stage-1 networks (eval mode, no grad) and their config, as ``{'config', part: module}``."""
    cfg1 = load_config(files.stage1_config, STAGE1_SCHEMA)
    with torch.device("meta"):
        nets = build_stage1(cfg1)
    paths = {"decoder": files.decoder, "encoder": files.encoder}
    kinds = {"decoder": STAGE1_DECODER, "encoder": STAGE1_ENCODER}
    out, epochs = {"config": cfg1}, {}
    for part in parts:
        ckpt = load_checkpoint(paths[part], map_location="cpu")
        epochs[paths[part].name] = ckpt.get("epoch")
        out[part] = _freeze(load_weights(nets[part], ckpt, paths[part], kinds[part], cfg1, device))
    if len({e for e in epochs.values() if e is not None}) > 1:
        logger.warning("%s: the stage-1 files are from different epochs (%s)", files.stage1_config.parent,
                       ", ".join(f"{name} epoch {e}" for name, e in epochs.items()))
    return out


def load_conditioner(files: ModelFiles, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """The frozen AE encoder that embeds the start frame, and its config."""
    cfg_ae = load_config(files.ae_config, AE_SCHEMA)
    with torch.device("meta"):
        enc = build_ae_encoder(cfg_ae["AE"])
    ckpt = load_checkpoint(files.ae_encoder, map_location="cpu")
    return _freeze(load_weights(enc, ckpt, files.ae_encoder, AE_ENCODER, cfg_ae, device)), cfg_ae


def load_cinn(files: ModelFiles, config: dict, z_dim: int, device: torch.device) -> torch.nn.Module:
    """The trained cINN of a model folder (eval mode, no grad)."""
    with torch.device("meta"):
        flow = build_cinn(config, z_dim)
    ckpt = load_checkpoint(files.cinn, map_location="cpu")
    return _freeze(load_weights(flow, ckpt, files.cinn, CINN, config, device, z_dim))


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
