"""Small synthetic datasets in every layout (moving coloured shapes on textured backgrounds), for tests and
smoke runs, and BAIR-style TFRecords for the converter.

CLI: ``python -m data.synthetic --layout bair --out DIR [--n_videos 3 --n_frames 30 --size 64]``
(``--tfrecord N`` instead writes ``DIR/softmotion30_44k/{train,test}/*.tfrecords`` with N examples each).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Optional, Union

import cv2
import numpy as np

from data.frame_io import write_frame, write_positions
from data.registry import DATASETS, MODES, get_layout
from data.tfrecord import write_examples
from utils import command

LAYOUT_NAMES = [info.layout.name for info in DATASETS.values() if info.layout is not None]

logger = logging.getLogger(__name__)

__all__ = ["render_video", "write_synthetic_dataset", "write_bair_tfrecord", "BAIR_SPLIT_RECORDS"]

# record (trajectory) name per split, as in the BAIR release: test records 0-255 are test, 256-511 eval
BAIR_SPLIT_RECORDS = {"train": "traj_512_to_767", "eval": "traj_256_to_511", "test": "traj_0_to_255"}

# video id (as written in a split list, or the folder relative to the split folder) per layout
_VIDEO_IDS: dict[str, Callable[[str, int], str]] = {
    "bair": lambda mode, i: f"{BAIR_SPLIT_RECORDS[mode]}/{i + 1}",
    "landscape": lambda mode, i: f"{mode}{i:03d}/{mode}{i:03d}_1" + ("/" if mode == "test" else ""),
    "iper": lambda mode, i: f"{100 * MODES.index(mode) + i + 1:03d}/1/{1 + i % 2}",
    "dtdb": lambda mode, i: f"{mode}_video{i:03d}",
    "folder": lambda mode, i: f"video{i:03d}",
}


def render_video(rng: np.random.Generator, n_frames: int, size: int) -> np.ndarray:
    """A clip of a coloured disc and square moving (and bouncing) over a textured background: uint8 (N, H, W, 3)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    background = np.zeros((size, size, 3), np.float32)
    for c in range(3):
        fx, fy, phase = rng.uniform(1, 6), rng.uniform(1, 6), rng.uniform(0, 2 * np.pi)
        background[..., c] = 0.5 + 0.25 * np.sin(2 * np.pi * (fx * xx + fy * yy) + phase)
    background += rng.normal(0, 0.04, background.shape).astype(np.float32)
    background = (np.clip(background, 0, 1) * 255).astype(np.uint8)
    radius = max(2, size // 8)
    pos = rng.uniform(radius, size - radius, (2, 2))
    vel = rng.uniform(-size / 12, size / 12, (2, 2))
    colours = rng.integers(0, 256, (2, 3))
    frames = np.empty((n_frames, size, size, 3), np.uint8)
    for k in range(n_frames):
        frame = background.copy()
        cv2.circle(frame, tuple(int(v) for v in pos[0]), radius, tuple(int(v) for v in colours[0]), -1)
        x, y = (int(v) for v in pos[1])
        cv2.rectangle(frame, (x - radius, y - radius), (x + radius, y + radius), tuple(int(v) for v in colours[1]), -1)
        frames[k] = frame
        pos += vel
        bounce = (pos < radius) | (pos > size - radius)
        vel[bounce] *= -1
        pos = np.clip(pos, radius, size - radius)
    return frames


def _bair_positions(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    start = rng.uniform([0.40, -0.30, 0.19], [0.43, 0.50, 0.30])
    steps = rng.normal(0, 0.01, (n_frames, 3)).cumsum(axis=0)
    return (start + steps).astype(np.float32)


def write_synthetic_dataset(name: str, root: Union[str, Path], n_videos: int = 3, n_frames: int = 20, size: int = 64,
                            texture: str = "fire", image_format: Optional[str] = None,
                            split_dir: Optional[Union[str, Path]] = None, seed: int = 0) -> dict[str, Any]:
    """Write ``n_videos`` videos per split of dataset ``name`` under ``root`` in that dataset's layout.

    Landscape/iPER split lists go to ``split_dir`` (default ``root/splits``); BAIR videos get an
    ``endeffector_positions.csv``. Returns the ``Data`` config entries that load it (``dataset``,
    ``data_path`` and, as needed, ``split_dir``, ``texture``, ``image_format``).
    """
    layout = get_layout(name)
    root = Path(root)
    rng = np.random.default_rng(seed)
    fmt = image_format or ("png" if name.lower() in ("bair", "iper", "folder") else "jpg")
    data: dict[str, Any] = {"dataset": layout.name, "data_path": str(root)}
    if layout.needs_texture:
        data.update(texture=texture, image_format=fmt)
    if layout.list_files:
        split_dir = Path(split_dir) if split_dir is not None else root / "splits"
        split_dir.mkdir(parents=True, exist_ok=True)
        data["split_dir"] = str(split_dir)
    written: set[Path] = set()
    for mode in MODES:
        split = root / layout.split_folders[mode].format(texture=texture)
        if not layout.list_files and split in written:
            continue  # e.g. DTDB: test reads the eval folder
        written.add(split)
        ids = [_VIDEO_IDS[layout.name](mode, i) for i in range(n_videos)]
        for video_id in ids:
            video_dir = split / layout.list_entry(video_id)
            video_dir.mkdir(parents=True, exist_ok=True)
            for k, frame in enumerate(render_video(rng, n_frames, size)):
                write_frame(video_dir / layout.frame_pattern.format(k=k, image_format=fmt), frame)
            if layout.supports_control:
                write_positions(video_dir, _bair_positions(rng, n_frames))
        if layout.list_files:
            (split_dir / layout.list_files[mode]).write_text("\n".join(ids) + "\n")
    logger.info("wrote a synthetic '%s' dataset to %s", layout.name, root)
    return data


def write_bair_tfrecord(path: Union[str, Path], n_examples: int, n_frames: int = 30, size: int = 64,
                        seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Write a BAIR-style TFRecord: per example and frame ``i``, ``<i>/image_aux1/encoded`` (raw RGB bytes),
    ``<i>/endeffector_pos`` (3 floats) and ``<i>/action`` (4 floats).

    Returns the ground truth per example: ``{'frames': uint8 (n_frames, size, size, 3), 'positions': float32
    (n_frames, 3)}``.
    """
    rng = np.random.default_rng(seed)
    truth, examples = [], []
    for _ in range(n_examples):
        frames, positions = render_video(rng, n_frames, size), _bair_positions(rng, n_frames)
        example: dict[str, Any] = {}
        for i in range(n_frames):
            example[f"{i}/action"] = rng.normal(0, 1, 4).astype(np.float32)
            example[f"{i}/endeffector_pos"] = positions[i]
            example[f"{i}/image_aux1/encoded"] = frames[i].tobytes()
        examples.append(example)
        truth.append({"frames": frames, "positions": positions})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_examples(path, examples)
    return truth


def main(argv: Optional[list[str]] = None) -> None:
    parser = command.parser(__doc__)
    parser.add_argument("--layout", required=True, type=str.lower, choices=sorted(LAYOUT_NAMES),
                        help="bair, landscape, iPER, DTDB or folder")
    parser.add_argument("--out", required=True, type=Path, help="output root folder")
    parser.add_argument("--n_videos", type=command.positive_int, default=3, help="videos per split")
    parser.add_argument("--n_frames", type=command.positive_int, default=30, help="frames per video")
    parser.add_argument("--size", type=command.positive_int, default=64, help="frame size in pixels")
    parser.add_argument("--texture", default="fire", help="DTDB texture")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tfrecord", type=command.non_negative_int, default=0, metavar="N",
                        help="bair only: write raw TFRecords with N examples per record instead of frames")
    args = parser.parse_args(argv)
    if args.tfrecord:
        base = args.out / "softmotion30_44k"
        for i, (split, record) in enumerate([("train", "traj_512_to_767"), ("test", "traj_0_to_255"),
                                             ("test", "traj_256_to_511")]):
            write_bair_tfrecord(base / split / f"{record}.tfrecords", args.tfrecord, args.n_frames, args.size,
                                seed=args.seed + i)
        print(f"wrote 3 BAIR TFRecords with {args.tfrecord} examples each under {base}")
        return
    data = write_synthetic_dataset(args.layout, args.out, args.n_videos, args.n_frames, args.size,
                                   texture=args.texture, seed=args.seed)
    print(f"wrote a synthetic {data['dataset']} dataset: Data entries {data}")


if __name__ == "__main__":
    command.run(main)
