"""Metrics between two folders of videos (e.g. samples of two models, or real clips vs samples).

``python -m metrics.compare --real DIR --fake DIR [--fvd] [--fid] [--lpips] [--dtfvd] [--gpu G] [--bs B] [--out JSON]``
(several GPUs: ``torchrun --nproc_per_node 4 -m metrics.compare --gpu 0,1,2,3 ...``; each rank reads its share)

Each video in a folder is a sub-folder of frames or a video file (.mp4, .webm, .mov, .avi, .mkv, .m4v, .gif;
:func:`data.videos.read_video`), taken in natural name order. All videos are resized (bilinear, antialiased) to a
common size (``--size``, else the size of the first real video) and cut to ``--frames`` frames, else to the shortest
length among all of them (with a logged notice). Only the metrics asked for constrain that length: FVD needs at
least 10 frames (the Kinetics I3D), DTFVD at most 32 under ``--protocol all`` (the DTDB I3D), FID and LPIPS any
length; a folder whose shortest video is too short is an error naming it, the length found and the length needed.
FVD/DTFVD/FID compare the two sets as distributions; LPIPS pairs the videos by sorted name and
needs equally many in both folders. ``--protocol all`` (default) uses every video and frame, ``--protocol
paper`` counts them as the original evaluation code did (:mod:`metrics.protocol`). Results are printed
and, with ``--out``, written as JSON (resumable per-chunk features in ``<out>.parts`` or ``--work_dir``).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from tqdm import tqdm

from data.frame_io import FrameReadError
from data.videos import VideoFileError, first_frame, list_videos, read_video, video_length
from evaluation.arguments import add_scale_arguments, check_lengths, check_outputs, check_scale_args
from evaluation.backbones import (
    I3D_KINDS,
    KINETICS_METRICS,
    Backbones,
    backbone_notes,
    backbone_weights,
    check_weights_files,
    load_backbones_or_exit,
)
from evaluation.real_stats import read_real_stats, stats_identity, write_real_stats
from evaluation.report import format_table, write_json
from evaluation.runner import entry_point, start_distributed
from evaluation.sharded import Chunk, ShardPlan, all_gather, part_folder, remove_parts, run_chunks
from metrics.protocol import dtfvd_network_frames
from metrics.scoring import FRECHET_METRICS, SYNTHESIS_METRICS, Records, SynthesisFeatures
from stage2_cINN.arguments import video_source
from utils import command
from utils.distributed import DistInfo
from utils.errors import ArgumentError

logger = logging.getLogger(__name__)

def _to_uint8(video: torch.Tensor) -> torch.Tensor:
    return ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def read_videos(paths: Sequence[Path], size: tuple[int, int] | None, desc: str,
                progress: bool = True, frames: int | None = None) -> tuple[list[torch.Tensor], int]:
    """(videos as uint8 (T, 3, H, W) at ``size`` (None: that of the first video), number resized); ``frames``: only
    the first ones are decoded."""
    videos, resized = [], 0
    for path in tqdm(paths, desc=f"reading {desc}", leave=False, disable=not progress):
        try:  # a video shorter than ``frames`` is read whole: the length check names it, on every rank alike
            video = read_video(path, frames if frames is None or video_length(path) >= frames else None)
        except VideoFileError:  # names the file
            raise
        except (FileNotFoundError, OSError, ValueError) as exc:
            raise FrameReadError(f"cannot read video {path}: {exc}") from None
        size = size or tuple(video.shape[-2:])
        if tuple(video.shape[-2:]) != size:
            video = F.interpolate(video, size=size, mode="bilinear", align_corners=False, antialias=True)
            resized += 1
        videos.append(_to_uint8(video))
    return videos, resized


def _stack(videos: dict[int, torch.Tensor], indices: Sequence[int], length: int) -> torch.Tensor:
    """Float videos (B, length, 3, H, W) in [-1, 1] of ``indices``."""
    return torch.stack([videos[i][:length] for i in indices]).float() / 127.5 - 1.0


def _stamp(paths: Sequence[Path]) -> list[list[Any]]:
    return [[p.name, p.stat().st_mtime_ns] for p in paths]


def _read_share(paths: Sequence[Path], mine: Sequence[int], size: tuple[int, int], desc: str, info: DistInfo,
                frames: int | None = None) -> tuple[dict[int, torch.Tensor], int]:
    """This rank's videos by index, and how many of them were resized."""
    indices = [i for i in mine if i < len(paths)]
    videos, resized = read_videos([paths[i] for i in indices], size, desc, progress=info.is_main, frames=frames)
    return dict(zip(indices, videos)), resized


def _extent(videos: dict[int, torch.Tensor], paths: Sequence[Path]) -> tuple[int, str, int]:
    """(frames of the shortest video, its name, frames of the longest) of one side's videos on this rank."""
    if not videos:
        return 10**9, "", 0
    shortest = min(videos, key=lambda i: videos[i].shape[0])
    return videos[shortest].shape[0], paths[shortest].name, max(v.shape[0] for v in videos.values())


def _common_length(real: tuple[dict[int, torch.Tensor], Sequence[Path], Path, int],
                   fake: tuple[dict[int, torch.Tensor], Sequence[Path], Path, int], metrics: Sequence[str],
                   protocol: str, frames: int | None, size: tuple[int, int], info: DistInfo
                   ) -> tuple[int, list[tuple]]:
    """(frames compared per video: ``frames``, else the shortest length of every rank's videos; per folder (folder,
    shortest length, its video, longest length, resized)), logged with the resizing on rank 0. Too short for
    ``frames``, or too long for DTFVD, is an :class:`ArgumentError` naming the folder, its shortest video, the length
    found and the length needed."""
    shares = all_gather([(*_extent(videos, paths), resized) for videos, paths, _, resized in (real, fake)], info)
    sides = []
    for k, (_, _, folder, _) in enumerate((real, fake)):
        shortest = min((s[k] for s in shares), key=lambda e: e[0])
        sides.append((folder, shortest[0], shortest[1], max(s[k][2] for s in shares), sum(s[k][3] for s in shares)))
    flags = ("--real", "--fake")
    for flag, (folder, low, name, _, _) in zip(flags, sides):
        if frames is not None and low < frames:
            raise ArgumentError(f"{flag} {folder}: its shortest video, {name}, has {low} frame(s); --frames {frames} "
                                f"needs at least {frames}")
    length = frames or min(low for _, low, _, _, _ in sides)
    if "DTFVD" in metrics and protocol == "all":  # paper: the DTDB I3D takes the first 16 or 32 frames
        _check_length(["DTFVD"], length, sides, frames, None)
    longest = max(high for _, _, _, high, _ in sides)
    if info.is_main and any(resized for *_, resized in sides):
        logger.warning("resized %d real and %d fake videos to %dx%d", sides[0][4], sides[1][4], *size)
    if info.is_main and longest > length:
        logger.warning("videos have %d to %d frames: all are cut to %s, %d frames",
                       min(low for _, low, _, _, _ in sides), longest,
                       "--frames" if frames else "the shortest common length", length)
    return length, sides


def _check_length(metrics: Sequence[str], length: int, sides: Sequence[tuple], frames: int | None,
                  backbones: Backbones | None) -> None:
    """An :class:`ArgumentError` naming the folder with the shortest video (or ``--frames``), the length found and
    the length needed, when a metric cannot compare videos of ``length`` frames."""
    k = min(range(len(sides)), key=lambda i: sides[i][1])
    where = (f"--frames {frames}" if frames else
             f"{('--real', '--fake')[k]} {sides[k][0]}: its shortest video, {sides[k][2]}, has {length} frame(s)")
    try:
        check_lengths(metrics, length, where, backbones)
    except ArgumentError as exc:
        hint = "; --frames 32 compares the first 32 frames of every video" if length > 32 else ""
        raise ArgumentError(f"{exc}{hint}") from None


@torch.no_grad()
def compare_folders(real_dir: str | Path, fake_dir: str | Path, metrics: Sequence[str],
                    device: torch.device | str = "cpu", batch_size: int = 8, i3d: str = "hassony2",
                    size: int | None = None, backbones: Backbones | None = None, protocol: str = "all",
                    weights_dir: str | Path | None = None, real_stats: str | Path | None = None,
                    save_real_stats: str | Path | None = None, work_dir: str | Path | None = None,
                    info: DistInfo | None = None, frames: int | None = None) -> dict[str, Any] | None:
    """Metric values (``metrics`` from FVD, DTFVD, FID, LPIPS) between the videos of two folders (or two video
    files), plus counts; ``frames``: compare the first ``frames`` frames of every video (default: the shortest
    length).

    Under torchrun (``info``) each rank reads and embeds its share of the videos; rank 0 gets the result,
    the other ranks None. ``work_dir`` keeps resumable per-chunk features; ``real_stats`` /
    ``save_real_stats`` read / write the real folder's feature statistics.
    """
    info = info or DistInfo()
    metrics = [m for m in SYNTHESIS_METRICS if m in metrics]
    if not metrics:
        raise ArgumentError("choose at least one metric: --fvd, --dtfvd, --fid, --lpips")
    real_paths, fake_paths = list_videos(real_dir), list_videos(fake_dir)
    n_real, n_fake = len(real_paths), len(fake_paths)
    if "LPIPS" in metrics and n_real != n_fake:
        raise ArgumentError(f"LPIPS pairs videos by sorted name, but {real_dir} has {n_real} videos and "
                         f"{fake_dir} has {n_fake}")
    # every weights file before any video is read (DTFVD's length, 16 or 32, is known once the videos are)
    check_weights_files(metrics, i3d, (16, 32), weights_dir, backbones)
    target = (size, size) if size else tuple(first_frame(real_paths[0]).shape[:2])
    mine = [i for _, idx in ShardPlan(max(n_real, n_fake), batch_size, info).my_chunks() for i in idx]
    real, resized_real = _read_share(real_paths, mine, target, "real", info, frames)
    fake, resized_fake = _read_share(fake_paths, mine, target, "fake", info, frames)
    length, sides = _common_length((real, real_paths, Path(real_dir), resized_real),
                            (fake, fake_paths, Path(fake_dir), resized_fake), metrics, protocol, frames, target, info)
    if any(m in FRECHET_METRICS for m in metrics) and min(n_real, n_fake) < 2:
        raise ArgumentError("FVD/DTFVD/FID need at least 2 videos in each folder")
    dt_frames = dtfvd_network_frames(protocol, length, length) if "DTFVD" in metrics else 16
    backbones = load_backbones_or_exit(metrics, device, i3d=i3d, dtfvd_frames=dt_frames, provided=backbones,
                                       weights_dir=weights_dir)
    _check_length([m for m in metrics if m in KINETICS_METRICS], length, sides, frames, backbones)  # 1-frame GIFs
    feats = SynthesisFeatures(backbones, metrics, protocol, dt_frames, batch_size=batch_size)
    counts = feats.used_counts(n_real, n_fake, length)  # a ProtocolError before any feature
    identity = stats_identity(protocol, {"source": "folder", "n_real": n_real, "size": list(target)}, backbones, counts)
    cached = read_real_stats(real_stats, identity)
    fingerprint = {"script": "metrics.compare", **identity, "real": str(Path(real_dir).resolve()),
                   "fake": str(Path(fake_dir).resolve()), "videos": [_stamp(real_paths), _stamp(fake_paths)],
                   "requested": metrics, "real_features": cached is None, "chunk_size": batch_size,
                   "weights": backbone_weights(backbones, metrics)}
    plan = ShardPlan(max(n_real, n_fake), batch_size, info,
                     part_folder(work_dir, fingerprint) if work_dir is not None else None)

    def compute(chunks: Sequence[Chunk]) -> Iterator[Records]:
        for _, idx in chunks:
            r_idx, f_idx = [i for i in idx if i < n_real], [i for i in idx if i < n_fake]
            r = _stack(real, r_idx, length) if r_idx else None
            f = [_stack(fake, f_idx, length)] if f_idx else []
            if r_idx == f_idx:
                yield feats.chunk_records(idx, r, f, cached is None)
            else:  # unpaired (no LPIPS): the two sides separately
                yield {**feats.chunk_records(r_idx, r, [], cached is None), **feats.chunk_records(f_idx, None, f)}

    records = run_chunks(plan, compute, "comparing")
    if records is None:
        return None
    trials, counts, stats = feats.score(records, n_real, n_fake, length, cached)
    written = write_real_stats(save_real_stats, stats, identity,
                               {"script": "metrics.compare", "real": fingerprint["real"]})
    remove_parts(plan.work_dir)
    return {
        "real": fingerprint["real"], "fake": fingerprint["fake"], "n_real": n_real, "n_fake": n_fake,
        "frames": length, "size": list(target), "protocol": protocol, "world_size": info.world_size, "counts": counts,
        "backbones": backbone_notes(backbones, metrics), "weights": backbone_weights(backbones, metrics),
        "real_stats": {"read": str(real_stats) if real_stats else None, "written": written}, "metrics": trials[0],
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = command.parser(__doc__, prog="python -m metrics.compare")
    p.add_argument("--real", required=True, type=video_source, help="folder of real (reference) videos")
    p.add_argument("--fake", required=True, type=video_source, help="folder of generated videos")
    for name in SYNTHESIS_METRICS:
        p.add_argument(f"--{name.lower()}", action="store_true", help=f"compute {name}")
    command.add_gpu_argument(p)
    p.add_argument("--bs", type=command.positive_int, default=8, help="videos per batch (and per resumable chunk)")
    p.add_argument("--i3d", choices=I3D_KINDS, default="hassony2", help="Kinetics I3D for FVD")
    p.add_argument("--size", type=command.positive_int, default=None,
                   help="resize frames to size x size (default: first real video's)")
    p.add_argument("--frames", type=command.positive_int, default=None,
                   help="compare the first N frames of every video (default: the shortest video's length)")
    p.add_argument("--out", default=None, help="write the results as JSON to this file")
    add_scale_arguments(p, default_protocol="all", trials=False)
    return p.parse_args(argv)


def run(args: argparse.Namespace, backbones: Backbones | None = None) -> dict[str, Any] | None:
    """Compare the folders of ``args``; print and write the result on rank 0."""
    check_scale_args(args)
    check_outputs(args, args.out, "--out")
    device, info = start_distributed(args)
    work_dir = args.work_dir or (Path(args.out).with_suffix(".parts") if args.out else None)
    metrics = [m for m in SYNTHESIS_METRICS if getattr(args, m.lower())]
    result = compare_folders(args.real, args.fake, metrics, device, args.bs, args.i3d, args.size, backbones,
                             args.protocol, args.weights_dir, args.real_stats, args.save_real_stats, work_dir, info,
                             args.frames)
    if result is None:
        return None
    print(format_table(result["metrics"], f"{result['n_real']} real vs {result['n_fake']} fake videos, "
                                          f"{result['frames']} frames, protocol {result['protocol']}"))
    if args.out:
        write_json(args.out, result)
        print(f"results written to {args.out}")
    return result


def main(argv: Sequence[str] | None = None, backbones: Backbones | None = None) -> dict[str, Any] | None:
    return entry_point(parse_args, run, argv, backbones)


if __name__ == "__main__":
    command.run(main)
