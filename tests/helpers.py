"""Tiny configurations and a tiny model written in the released folder layout (random, perturbed weights)."""
from __future__ import annotations

import copy
from pathlib import Path

import torch
import yaml

from stage1_VAE.config import STAGE1_SCHEMA
from stage2_cINN.AE.config import AE_SCHEMA
from stage2_cINN.config import CINN_SCHEMA
from utils.checkpoint import atomic_save
from utils.config import validate_config, yaml_load

ROOT = Path(__file__).resolve().parents[1]


def tiny_stage1_config(data_path: str = "unused", **training) -> dict:
    """A small BAIR-like stage-1 config (32 px, 16 frames, channel_factor 8, z_dim 16)."""
    cfg = yaml_load((ROOT / "stage1_VAE/configs/tiny_config.yaml").read_text())
    cfg["Data"]["data_path"] = data_path
    cfg["Training"].update(training)
    return validate_config(cfg, STAGE1_SCHEMA)


def tiny_ae_config(data_path: str = "unused", **training) -> dict:
    cfg = yaml_load((ROOT / "stage2_cINN/AE/configs/tiny_config.yaml").read_text())
    cfg["Data"]["data_path"] = data_path
    cfg["Training"].update(training)
    return validate_config(cfg, AE_SCHEMA)


def tiny_cinn_config(stage1_dir: str, ae_dir: str, data_path: str = "unused", **training) -> dict:
    cfg = yaml_load((ROOT / "stage2_cINN/configs/tiny_config.yaml").read_text())
    cfg["First_stage_model"].update(model_path=str(Path(stage1_dir).parent), model_name=Path(stage1_dir).name)
    cfg["Conditioning_Model"].update(model_path=str(Path(ae_dir).parent), model_name=Path(ae_dir).name)
    cfg["Data"]["data_path"] = data_path
    cfg["Training"].update(training)
    return validate_config(cfg, CINN_SCHEMA)


def perturb_(module: torch.nn.Module, scale: float = 0.05, seed: int = 0) -> torch.nn.Module:
    """Move every floating parameter away from its initial value (so nothing is an identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.is_floating_point():
                p.add_(scale * torch.randn(p.shape, generator=g))
    return module


def _dump(cfg: dict, path: Path) -> None:
    from utils.config import strip_private

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(strip_private(cfg), sort_keys=False))


def write_tiny_model(root: Path, relative_paths: bool = True, encoder_suffix: str = ".pth.tar",
                     drop_control_key: bool = True, seed: int = 0, control: bool = False) -> dict:
    """Write stage1/, stage2_AE/, stage2/ under ``root`` like a released model, with random weights.

    ``config_stage2.yaml`` points at the other folders with paths relative to itself (``../stage1``)
    or absolute ones; the stage-1 encoder is saved with ``encoder_suffix``; ``Training.control`` is
    removed as in the released configs. Returns the networks (for hand compositions in tests).
    """
    from stage1_VAE.modules import build_stage1
    from stage2_cINN.AE.modules import build_ae_encoder
    from stage2_cINN.modules import build_cinn

    torch.manual_seed(seed)
    root = Path(root)
    s1, ae, s2 = root / "stage1", root / "stage2_AE", root / "stage2"
    cfg1 = tiny_stage1_config()
    nets = build_stage1(cfg1)
    enc, dec = perturb_(nets["encoder"], seed=seed), perturb_(nets["decoder"], seed=seed + 1)
    _dump(cfg1, s1 / "config_stage1.yaml")
    atomic_save({"epoch": 0, "state_dict": dec.state_dict()}, s1 / "best_PFVD_GEN.pth")
    atomic_save({"epoch": 0, "state_dict": enc.state_dict()}, s1 / f"best_PFVD_ENC{encoder_suffix}")

    cfg_ae = tiny_ae_config()
    cond = perturb_(build_ae_encoder(cfg_ae["AE"]), scale=0.02, seed=seed + 2)
    _dump(cfg_ae, ae / "config_stage2_AE.yaml")
    atomic_save({"state_dict": cond.state_dict()}, ae / "Encoder_stage2.pth")

    cfg2 = tiny_cinn_config(s1 if not relative_paths else "../stage1", ae if not relative_paths else "../stage2_AE",
                            control=control)
    if relative_paths:  # relative to the config's folder, as a released folder unpacked anywhere
        cfg2["First_stage_model"].update(model_path="..", model_name="stage1")
        cfg2["Conditioning_Model"].update(model_path="..", model_name="stage2_AE")
    flow = build_cinn(cfg2, int(cfg1["Decoder"]["z_dim"]))
    flow.train()
    with torch.no_grad():  # data-dependent ActNorm init, then move away from it
        cond_dim = cfg2["Conditioning_Model"]["z_dim"] + (30 if control else 0)
        flow(torch.randn(64, cfg1["Decoder"]["z_dim"]) * 2 + 0.5, torch.randn(64, cond_dim))
    perturb_(flow, scale=0.05, seed=seed + 3)
    flow.eval()
    out = copy.deepcopy(cfg2)
    if drop_control_key and not control:
        del out["Training"]["control"]
    _dump(out, s2 / "config_stage2.yaml")
    atomic_save({"state_dict": flow.state_dict()}, s2 / "cINN.pth")
    return {"encoder": enc.eval(), "decoder": dec.eval(), "conditioner": cond.eval(), "flow": flow,
            "dirs": {"stage1": s1, "ae": ae, "stage2": s2}}


REAL_CLIPS = ROOT / "assets" / "GT_samples" / "landscape" / "transfer"  # 12 real sky clips, 33-34 frames, 640x360


def write_real_mp4s(folder: Path, names: list[str], height: int = 36, frames: int | None = None) -> list[Path]:
    """The real sky clips ``names`` (e.g. 'sample1') encoded as H.264 .mp4 files in ``folder``, downscaled to
    ``height`` pixels (16:9; even sizes) and cut to ``frames`` frames if given: videos in the form researchers have."""
    import torch.nn.functional as F

    from data.videos import read_video
    from utils.media import save_mp4

    width = round(height * 16 / 9 / 2) * 2
    written = []
    for name in names:
        video = read_video(REAL_CLIPS / name, frames)
        video = F.interpolate(video, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
        path = save_mp4(video, Path(folder) / f"{name}.mp4", fps=25)
        assert path is not None, "no MP4 writer (imageio-ffmpeg)"
        written.append(path)
    return written
