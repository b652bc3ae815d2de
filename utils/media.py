"""Writing results: video tensors to uint8 frames, composed side by side and in grids, as GIF / MP4 / PNG.

Every file is written atomically (:func:`utils.atomic.atomic_path`: a temp file beside it, renamed over it when
complete), so a killed run or two runs writing into one folder never leave a half-written file."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import imageio.v2 as imageio
import numpy as np
import torch

from utils.atomic import atomic_path

logger = logging.getLogger(__name__)


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(…, 3, H, W) in [-1, 1] -> (…, H, W, 3) uint8."""
    x = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).cpu().numpy()


def _hold(v: torch.Tensor, T: int) -> torch.Tensor:
    """A frame (3, H, W) repeated, or a video (t, 3, H, W) whose last frame is held, to T frames."""
    if v.dim() == 3:
        return v.unsqueeze(0).expand(T, *v.shape)
    if v.shape[0] < T:
        return torch.cat([v, v[-1:].expand(T - v.shape[0], *v.shape[1:])])
    return v


def side_by_side(videos: Sequence[torch.Tensor], pad: int = 2) -> torch.Tensor:
    """Place videos (each (T, 3, H, W) or a start frame (3, H, W), repeated over time) in a row."""
    T = max([v.shape[0] for v in videos if v.dim() == 4] or [1])
    cols = [torch.nn.functional.pad(_hold(v, T), (pad, pad, pad, pad), value=1.0) for v in videos]
    return torch.cat(cols, dim=-1)


def grid(rows: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack rows of equal width (each (T, 3, H, W)) vertically; shorter rows hold their last frame."""
    T = max(r.shape[0] for r in rows)
    return torch.cat([_hold(r, T) for r in rows], dim=-2)


def save_gif(video: torch.Tensor, path: str | Path, fps: float = 3.0) -> Path:
    """Write (T, 3, H, W) in [-1, 1] as a looping GIF."""
    path = Path(path)
    with atomic_path(path) as tmp:
        imageio.mimsave(tmp, list(to_uint8(video)), duration=1000.0 / fps, loop=0)
    return path


def save_mp4(video: torch.Tensor, path: str | Path, fps: float = 3.0) -> Path | None:
    """Write (T, 3, H, W) in [-1, 1] as H.264 MP4 (sizes padded to even); None if ffmpeg is missing."""
    path = Path(path)
    frames = to_uint8(video)
    h, w = frames.shape[1:3]
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
    try:
        with atomic_path(path) as tmp:  # ffmpeg needs a file name
            with imageio.get_writer(tmp, fps=fps, codec="libx264", macro_block_size=1, quality=8) as writer:
                for f in frames:
                    writer.append_data(f)
    except Exception as exc:  # imageio-ffmpeg missing or broken
        logger.warning("could not write %s (%s); GIF and PNG are still written", path, exc)
        return None
    return path


def save_png(image: torch.Tensor, path: str | Path) -> Path:
    """Write (3, H, W) in [-1, 1] as PNG."""
    path = Path(path)
    with atomic_path(path) as tmp:
        imageio.imwrite(tmp, to_uint8(image))
    return path


def frame_strip(video: torch.Tensor) -> torch.Tensor:
    """(T, 3, H, W) -> (3, H, T*W): all frames left to right."""
    return torch.cat(list(video), dim=-1)
