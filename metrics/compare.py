"""Metrics between two folders of videos (e.g. samples of two models, or real clips vs samples).

``python -m metrics.compare --real DIR --fake DIR [--fvd] [--fid] [--lpips] [--dtfvd] [--gpu G] [--bs B] [--out JSON]``

Each video in a folder is a sub-folder of frames (png/jpg), a .gif or an .mp4 (:func:`utils.video.read_video`),
taken in natural name order. All videos are resized (bilinear, antialiased) to a common size (``--size``,
else the size of the first real video) and cut to the shortest length among all of them (with a logged
notice). FVD/DTFVD/FID compare the two sets as distributions; LPIPS pairs the videos by sorted name and
needs equally many in both folders. Results are printed and, with ``--out``, written as JSON.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from tqdm import tqdm

from data.frame_io import FrameReadError
from metrics.evaluation import (
    I3D_KINDS, SYNTHESIS_METRICS, Backbones, SynthesisMetrics, backbone_notes, check_dtfvd_length, format_table,
    load_backbones_or_exit, write_json,
)
from utils.errors import ArgumentError, MissingFileError

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".gif", ".mp4")


def list_videos(folder: str | Path) -> list[Path]:
    """The videos of ``folder`` (frame sub-folders, .gif, .mp4) in natural order; errors if there are none."""
    from natsort import natsorted

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


def _to_uint8(video: torch.Tensor) -> torch.Tensor:
    return ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def read_videos(paths: Sequence[Path], size: tuple[int, int] | None, desc: str) -> tuple[list[torch.Tensor], int]:
    """(videos as uint8 (T, 3, H, W) at ``size`` (None: that of the first video), number resized)."""
    from utils.video import read_video

    videos, resized = [], 0
    for path in tqdm(paths, desc=f"reading {desc}", leave=False):
        try:
            video = read_video(path)
        except (FileNotFoundError, OSError, ValueError) as exc:
            raise FrameReadError(f"cannot read video {path}: {exc}") from None
        size = size or tuple(video.shape[-2:])
        if tuple(video.shape[-2:]) != size:
            video = F.interpolate(video, size=size, mode="bilinear", align_corners=False, antialias=True)
            resized += 1
        videos.append(_to_uint8(video))
    return videos, resized


def _batches(videos: Sequence[torch.Tensor], length: int, batch_size: int):
    """Float batches (B, length, 3, H, W) in [-1, 1]."""
    for i in range(0, len(videos), batch_size):
        yield torch.stack([v[:length] for v in videos[i:i + batch_size]]).float() / 127.5 - 1.0


@torch.no_grad()
def compare_folders(real_dir: str | Path, fake_dir: str | Path, metrics: Sequence[str],
                    device: torch.device | str = "cpu", batch_size: int = 8, i3d: str = "hassony2",
                    size: int | None = None, backbones: Backbones | None = None) -> dict[str, Any]:
    """Metric values (``metrics`` from FVD, DTFVD, FID, LPIPS) between the videos of two folders, plus counts."""
    metrics = [m for m in SYNTHESIS_METRICS if m in metrics]
    if not metrics:
        raise ArgumentError("choose at least one metric: --fvd, --dtfvd, --fid, --lpips")
    real_paths, fake_paths = list_videos(real_dir), list_videos(fake_dir)
    if "LPIPS" in metrics and len(real_paths) != len(fake_paths):
        raise ArgumentError(f"LPIPS pairs videos by sorted name, but {real_dir} has {len(real_paths)} videos and "
                         f"{fake_dir} has {len(fake_paths)}")
    real, resized_real = read_videos(real_paths, (size, size) if size else None, "real")
    target = tuple(real[0].shape[-2:])
    fake, resized_fake = read_videos(fake_paths, target, "fake")
    if resized_real or resized_fake:
        logger.warning("resized %d real and %d fake videos to %dx%d", resized_real, resized_fake, *target)
    lengths = [v.shape[0] for v in real + fake]
    length = min(lengths)
    if max(lengths) > length:
        logger.warning("videos have %d to %d frames: all are cut to the shortest common length, %d frames",
                       length, max(lengths), length)
    if any(m in ("FVD", "DTFVD", "FID") for m in metrics) and min(len(real), len(fake)) < 2:
        raise ArgumentError("FVD/DTFVD/FID need at least 2 videos in each folder")
    if "DTFVD" in metrics:
        check_dtfvd_length(length)
    backbones = load_backbones_or_exit(metrics, device, i3d=i3d, video_length=length, provided=backbones)
    scores = SynthesisMetrics(backbones, metrics, batch_size=batch_size)
    n_pairs = len(real) if "LPIPS" in metrics else 0
    for r, f in tqdm(zip(_batches(real[:n_pairs], length, batch_size), _batches(fake[:n_pairs], length, batch_size)),
                     desc="pairs", total=-(-n_pairs // batch_size), leave=False):
        scores.add_pairs(r, f)
    for batch in _batches(real[n_pairs:], length, batch_size):
        scores.add_real(batch)
    for batch in _batches(fake[n_pairs:], length, batch_size):
        scores.add_fake(batch)
    return {
        "real": str(Path(real_dir).resolve()), "fake": str(Path(fake_dir).resolve()),
        "n_real": len(real), "n_fake": len(fake), "frames": length, "size": list(target),
        "backbones": backbone_notes(backbones, metrics), "metrics": scores.results(),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    import cli

    p = cli.parser(__doc__, prog="python -m metrics.compare")
    p.add_argument("--real", required=True, type=cli.existing_folder, help="folder of real (reference) videos")
    p.add_argument("--fake", required=True, type=cli.existing_folder, help="folder of generated videos")
    for name in SYNTHESIS_METRICS:
        p.add_argument(f"--{name.lower()}", action="store_true", help=f"compute {name}")
    cli.add_gpu_argument(p)
    p.add_argument("--bs", type=cli.positive_int, default=8, help="videos per batch")
    p.add_argument("--i3d", choices=I3D_KINDS, default="hassony2", help="Kinetics I3D for FVD")
    p.add_argument("--size", type=cli.positive_int, default=None,
                   help="resize frames to size x size (default: first real video's)")
    p.add_argument("--out", default=None, help="write the results as JSON to this file")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None, backbones: Backbones | None = None) -> dict[str, Any]:
    from utils.device import get_device
    from utils.logging import setup_logging

    args = parse_args(argv)
    setup_logging()
    metrics = [m for m in SYNTHESIS_METRICS if getattr(args, m.lower())]
    result = compare_folders(args.real, args.fake, metrics, get_device(args.gpu), args.bs, args.i3d, args.size,
                             backbones)
    print(format_table(result["metrics"], f"{result['n_real']} real vs {result['n_fake']} fake videos, "
                                          f"{result['frames']} frames"))
    if args.out:
        write_json(args.out, result)
        print(f"results written to {args.out}")
    return result


if __name__ == "__main__":
    from cli import run

    run(main)
