"""Reading and writing frames, clips, videos and BAIR end-effector positions (OpenCV; RGB in memory)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
import torch

from utils.errors import I2VError

__all__ = ["BadClipsError", "FrameReadError", "POSITIONS_FILE", "read_clip", "read_frame", "read_positions",
           "write_positions", "write_frame", "extract_video_frames"]

POSITIONS_FILE = "endeffector_positions.csv"


class FrameReadError(I2VError, OSError):
    """A frame image (or a positions file) could not be read or decoded."""


class BadClipsError(FrameReadError):
    """Too many clips of an epoch had unreadable frames (more than the loader's allowed fraction)."""


def read_frame(path: Path) -> np.ndarray:
    """Decode one image with OpenCV into BGR uint8 ``(H, W, 3)``; :class:`FrameReadError` names the file."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        size = Path(path).stat().st_size if Path(path).is_file() else None
        why = "missing" if size is None else "an empty file" if size == 0 else "not a valid image file"
        raise FrameReadError(f"cannot read image {path}: {why}")
    return image


def read_clip(paths: Sequence[Path]) -> torch.Tensor:
    """Decode frames with OpenCV into a uint8 RGB tensor ``(T, 3, H, W)``.

    Frames whose size differs from the first frame's are resized to it, so one clip stacks into a tensor.
    """
    frames = [read_frame(path) for path in paths]
    height, width = frames[0].shape[:2]
    frames = [f if f.shape[:2] == (height, width) else cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA)
              for f in frames]
    clip = np.ascontiguousarray(np.stack(frames)[..., ::-1])  # BGR -> RGB
    return torch.from_numpy(clip).permute(0, 3, 1, 2)


def write_frame(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 ``(H, W, 3)`` image; the format follows the suffix (PNG is lossless)."""
    path = Path(path)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])):
        raise OSError(f"could not write image {path}")


def read_positions(video_dir: Path) -> np.ndarray:
    """Read ``endeffector_positions.csv`` of a BAIR video: one ``x, y, z`` row per frame, float32 ``(N, 3)``."""
    path = Path(video_dir) / POSITIONS_FILE
    try:
        text = path.read_text().replace(",", " ")
        positions = np.loadtxt(io.StringIO(text), dtype=np.float64, ndmin=2).astype(np.float32)
    except (OSError, ValueError) as err:
        raise FrameReadError(f"cannot read end-effector positions {path}: {err}") from err
    if positions.shape[1] != 3:
        raise FrameReadError(f"{path}: expected 3 columns (x, y, z), found {positions.shape[1]}")
    return positions


def write_positions(video_dir: Path, positions: np.ndarray) -> None:
    """Write ``(N, 3)`` positions as ``endeffector_positions.csv``; 9 significant digits round-trip float32."""
    np.savetxt(Path(video_dir) / POSITIONS_FILE, np.asarray(positions, dtype=np.float32).reshape(-1, 3),
               fmt="%.9g", delimiter=",")


def extract_video_frames(video: Path, out_dir: Path, name_pattern: str, size: Optional[int] = None) -> int:
    """Decode every frame of ``video`` into ``out_dir / name_pattern.format(k=k)``; returns the frame count.

    ``size`` resizes the shorter side to ``size`` pixels (keeping the aspect ratio) when given.
    """
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise FrameReadError(f"cannot open video {video}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if size:
                height, width = frame.shape[:2]
                scale = size / min(height, width)
                frame = cv2.resize(frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
            target = out_dir / name_pattern.format(k=count)
            if not cv2.imwrite(str(target), frame):
                raise OSError(f"could not write image {target}")
            count += 1
    finally:
        capture.release()
    if count == 0:
        raise FrameReadError(f"no frame could be decoded from {video}")
    return count
