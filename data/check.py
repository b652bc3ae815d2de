"""Scan a dataset before training: every frame readable, frame sizes, gaps in the frame numbers.

    python -m data.check -cf stage1_VAE/configs/bair_config.yaml Data.data_path=/data/bair [--modes train eval test]

Takes any stage's config (its ``Data`` section, checked, and ``Training.control``), lists each split's videos as
training does (folders of frames and, for the ``folder`` dataset, video files), then decodes every frame of every
video (threads, with a progress bar). Prints one line
per problem and a summary per split; the exit status is 1 when a problem was found, else 0. Training
skips a clip with an unreadable frame (and stops when more than 1 % of an epoch's clips are); this finds
them all up front.
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from tqdm import tqdm

from data.config import DATA_SCHEMA
from data.dataset import DataLayoutError, Video, find_videos, frame_gaps
from data.frame_io import POSITIONS_FILE, FrameReadError, read_frame, read_positions
from data.registry import get_layout
from data.videos import VideoFileError, iter_frames
from utils import command
from utils.config import ConfigError, load_config, validate_config


@dataclass
class VideoReport:
    """What was wrong with one video folder."""

    frames: int = 0
    unreadable: list[str] = field(default_factory=list)
    sizes: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    small: str = ""


def _check_file(video: Video, report: VideoReport) -> tuple[int, int] | None:
    """Decode every frame of a video file: a damaged file, or fewer frames than its container says, is unreadable;
    returns the (height, width) of its frames."""
    first, decoded = None, 0
    try:
        for _, frame in iter_frames(video.path):
            decoded += 1
            first = first or frame.shape[:2]
    except VideoFileError as exc:
        report.unreadable.append(f"{exc} (after {decoded} of {len(video)} frames)")
        return first
    if decoded < len(video):
        report.unreadable.append(f"{video.path}: {decoded} frames decode, the container says {len(video)} (the file "
                                 "is truncated or damaged)")
    return first


def check_video(video: Video, img_size: int, control: bool = False) -> VideoReport:
    """Decode every frame of ``video``; report unreadable/empty files, sizes differing from the first
    frame's, gaps in the frame numbers, frames smaller than ``img_size`` and short positions files."""
    report, first = VideoReport(frames=len(video)), None
    if video.is_file:
        first = _check_file(video, report)
    for name in video.frames:
        try:
            h, w = read_frame(video.path / name).shape[:2]
        except FrameReadError as exc:
            report.unreadable.append(str(exc))
            continue
        if first is None:
            first = (h, w)
        elif (h, w) != first:
            report.sizes.append(f"{video.path / name}: {w}x{h} pixels, the video's first frame is "
                                f"{first[1]}x{first[0]}")
    if first is not None and min(first) < img_size:
        report.small = f"{video.path}: frames of {first[1]}x{first[0]} pixels, smaller than Data.img_size={img_size}"
    report.gaps = [f"{video.path}: frame numbers jump from {a} to {b}" for a, b in frame_gaps(video.frames)]
    if control:
        try:
            rows = len(read_positions(video.path))
            if rows < len(video):
                report.unreadable.append(f"{video.path / POSITIONS_FILE}: {rows} rows for {len(video)} frames")
        except FrameReadError as exc:
            report.unreadable.append(str(exc))
    return report


def check_split(data: Mapping, mode: str, control: bool, workers: int) -> tuple[list[str], str]:
    """(problems, summary line) of one split."""
    unreadable: list[str] = []
    try:
        videos = find_videos(get_layout(data["dataset"]), data, mode, unreadable)
    except (FileNotFoundError, DataLayoutError, ValueError) as exc:
        return [f"{mode}: {exc}" for exc in [*unreadable, exc]], f"{mode}: not usable"
    img_size = int(data["img_size"])
    with ThreadPoolExecutor(max_workers=workers) as pool:  # OpenCV decodes outside the GIL
        reports = list(tqdm(pool.map(lambda v: check_video(v, img_size, control), videos), total=len(videos),
                            desc=f"checking {mode}", unit="video"))
    problems = unreadable + [p for r in reports for p in r.unreadable + r.sizes + r.gaps]
    small = [r.small for r in reports if r.small]
    count = lambda attr: sum(bool(getattr(r, attr)) for r in reports)  # noqa: E731
    summary = (f"{mode}: {len(videos)} videos, {sum(r.frames for r in reports)} frames; "
               f"{sum(len(r.unreadable) for r in reports)} unreadable (in {count('unreadable')} videos), "
               f"{len(unreadable)} video files unreadable, "
               f"{sum(len(r.sizes) for r in reports)} of another size, gaps in {count('gaps')} videos, "
               f"{len(small)} videos smaller than img_size (upscaled)")
    return problems + [f"note: {s}" for s in small[:3]], summary


def main(argv: Sequence[str] | None = None) -> int:
    """Check the splits; 1 when a problem was found (a config error is raised as the project's error)."""
    p = command.parser(__doc__)
    p.add_argument("-cf", "--config", required=True, help="a stage-1, AE or cINN config")
    p.add_argument("--modes", nargs="+", default=["train", "eval"], choices=["train", "eval", "test"])
    p.add_argument("--workers", type=command.positive_int, default=min(8, os.cpu_count() or 1), help="decoding threads")
    p.add_argument("--max-list", type=command.positive_int, default=50, help="problems printed per split")
    p.add_argument("overrides", nargs="*", help="config overrides such as Data.data_path=/x")
    args = p.parse_args(argv)
    raw = load_config(args.config, None, args.overrides)
    if not isinstance(raw.get("Data"), dict):
        raise ConfigError(f"config '{args.config}' has no Data section (expected a stage-1, AE or cINN config)")
    private = {k: v for k, v in raw.items() if str(k).startswith("_")}
    data = validate_config({"Data": raw["Data"], **private}, {"Data": DATA_SCHEMA})["Data"]
    control = bool((raw.get("Training") or {}).get("control", False))
    found = False
    for mode in args.modes:
        problems, summary = check_split(data, mode, control, args.workers)
        real = [q for q in problems if not q.startswith("note: ")]
        found |= bool(real)
        for line in problems[: args.max_list]:
            print(line)
        if len(problems) > args.max_list:
            print(f"... {len(problems) - args.max_list} more")
        print(summary)
    print("problems found" if found else "no problems found")
    return 1 if found else 0


if __name__ == "__main__":
    command.run(lambda argv: sys.exit(main(argv)))
