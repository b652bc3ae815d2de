"""Shared pieces of the user scripts: model folders per dataset, start-frame images, boolean flags."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from data.augment import resize_clip

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# canonical dataset names (the -dataset flag is case-insensitive) and their asset folders
DATASETS = {"bair": "bair", "landscape": "landscape", "iper": "iPER", "dtdb": "DTDB", "demo": "demo"}
TEXTURES = ("fire", "clouds", "vegetation", "waterfall")


def canonical_dataset(name: str) -> str:
    """'BAIR' -> 'bair', 'iper' -> 'iPER', ...; unknown names are an error listing the known ones."""
    key = name.lower()
    if key not in DATASETS:
        raise SystemExit(f"unknown dataset '{name}'; choose one of {sorted(DATASETS.values())}")
    return DATASETS[key]


def default_model_dir(dataset: str, texture: str | None = None, control: bool = False) -> Path:
    """Where the released (or demo) stage-2 model folder of a dataset lives."""
    ds = canonical_dataset(dataset)
    if ds == "DTDB":
        if not texture:
            raise SystemExit(f"-dataset DTDB needs -texture, one of {', '.join(TEXTURES)}")
        return REPO_ROOT / "models" / "DTDB" / texture / "stage2"
    return REPO_ROOT / "models" / ds / ("stage2_control" if control else "stage2")


def default_image_dir(dataset: str, texture: str | None = None) -> Path:
    """assets/GT_samples/<dataset>[/<texture>] (the demo uses its own start frames)."""
    ds = canonical_dataset(dataset)
    base = REPO_ROOT / "assets" / "GT_samples" / ds
    if ds == "DTDB":
        if not texture:
            raise SystemExit(f"-dataset DTDB needs -texture, one of {', '.join(TEXTURES)}")
        base = base / texture
    return base


def default_clip_dir(dataset: str, texture: str | None = None) -> Path:
    """assets/GT_samples/<dataset>[/<texture>]/transfer: the sample clips for motion transfer (the demo
    model uses landscape's)."""
    ds = canonical_dataset(dataset)
    return default_image_dir("landscape" if ds == "demo" else ds, texture) / "transfer"


def str2bool(v: str | bool) -> bool:
    """Parse 'True'/'False'/'1'/'0'/'yes'/'no' (the original treated any value as True)."""
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("true", "1", "yes", "y", "on"):
        return True
    if s in ("false", "0", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (True/False), got {v!r}")


def list_images(folder: str | Path) -> list[Path]:
    """Every jpg/jpeg/png directly in ``folder`` (naturally sorted); errors for missing/empty folders."""
    from natsort import natsorted

    folder = Path(folder)
    if not folder.is_dir():
        raise SystemExit(f"image folder not found: {folder.resolve()}")
    files = natsorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                      key=lambda p: p.name)
    if not files:
        raise SystemExit(f"no images (jpg/jpeg/png) in {folder.resolve()}")
    return files


def read_image(path: str | Path, size: int) -> torch.Tensor:
    """An RGB image resized to (3, size, size) in [-1, 1]; an unreadable file is an error naming it."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"could not read image {Path(path).resolve()} (missing or corrupt)")
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().unsqueeze(0) / 127.5 - 1.0
    return resize_clip(x, size)[0].clamp(-1, 1)  # the original's kornia Resize: bilinear, no antialiasing


def read_images(files: list[Path], size: int) -> torch.Tensor:
    """Stack of :func:`read_image`: (N, 3, size, size)."""
    return torch.stack([read_image(f, size) for f in files])


def load_pipeline_or_exit(model_dir: Path, device: torch.device):
    """:func:`stage2_cINN.pipeline.load_model` with a short message (no traceback) for missing files."""
    from stage2_cINN.loading import MissingFilesError
    from stage2_cINN.pipeline import load_model

    try:
        return load_model(model_dir, device)
    except MissingFilesError as exc:
        raise SystemExit(f"{exc}\nDownload the released weights (see README: Pretrained models) or pass -ckpt_path.")
