"""Folders of videos and reading a video (GIF, MP4 or a folder of frames) whole: the query clips of motion
transfer and the videos that ``metrics.compare`` compares."""
from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch
from natsort import natsorted

from data.formats import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from utils.errors import ArgumentError, MissingFileError


def list_videos(folder: str | Path) -> list[Path]:
    """The videos of ``folder`` (frame sub-folders, .gif, .mp4) in natural order; errors if there are none."""
    folder = Path(folder)
    if not folder.exists():
        raise MissingFileError(f"video folder not found: {folder.resolve()}")
    if not folder.is_dir():
        raise ArgumentError(f"not a folder: {folder.resolve()} (expected a folder of videos)")
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")
               and (p.is_dir() or p.suffix.lower() in VIDEO_SUFFIXES)]
    if not entries:
        raise MissingFileError(f"no videos in {folder.resolve()}: expected sub-folders of frames, .gif or .mp4 files")
    return natsorted(entries, key=lambda p: p.name)


def read_video(path: str | Path) -> torch.Tensor:
    """Read a GIF/MP4 file or a folder of frames as (T, 3, H, W) in [-1, 1]."""
    path = Path(path)
    if path.is_dir():
        files = natsorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise MissingFileError(f"no frames (png/jpg) in {path}")
        frames = [_rgb(imageio.imread(f)) for f in files]
    elif path.is_file():
        frames = [_rgb(f) for f in imageio.mimread(path, memtest=False)]
    else:
        raise MissingFileError(f"video not found: {path}")
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _rgb(frame: np.ndarray) -> np.ndarray:
    """A decoded frame (H, W), (H, W, 1|2|3|4) as RGB (H, W, 3): grey repeated, alpha dropped."""
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = frame[..., None]
    return np.repeat(frame[..., :1], 3, axis=-1) if frame.shape[-1] < 3 else frame[..., :3]
