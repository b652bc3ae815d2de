"""Convert a folder of video files into the ``folder`` dataset layout, frames on disk (for large sets, where decoding
frames from files beats seeking in videos; see benchmarks/README.md):

    python -m data.prepare_videos --src DIR --out ROOT [--size 128] [--fps 10] [--split 0.8 0.1 0.1] [--workers 4]

Every video file below ``--src`` (.mp4, .webm, .mov, .avi, .mkv, .m4v, .gif; sub-folders too) becomes
``ROOT/{train,eval,test}/<name>/frame<k>.jpg``, ``<name>`` being its path below ``--src`` without the suffix
(``a/b.mp4`` -> ``a_b``). ``--size`` resizes the shorter side (keeping the aspect ratio), ``--fps`` keeps the first
frame at or after every 1/fps seconds (never more frames than the video has), ``--split`` gives the fractions of
train, eval and test videos: the videos ordered by a hash of their names (``--seed``) fill the splits in turn, so the
split depends on the set of names only (not on the listing order, the machine or the number of workers). A run
can be repeated or resumed: finished videos are kept in their split, a half-written one (``.<name>.partial``) is
redone, videos added to ``--src`` since are split among themselves (a video is never in two splits), and a
different ``--size``/``--fps``/``--format``/``--split``/``--seed`` for the same ``--out`` is refused. The report
(each video's split and frames, each skipped file and why: not a video, unreadable, fewer than ``--min_frames``
frames, a name already taken) is printed and written to ``ROOT/prepare_videos.json``.
Train on ROOT with ``Data.dataset: folder`` and ``Data.data_path: ROOT``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import cv2
import numpy as np
from natsort import natsorted

from data.formats import VIDEO_SUFFIXES, is_hidden, is_video_file, suffix_list
from data.frame_io import write_frame
from data.prep_utils import run_jobs
from data.registry import MODES
from data.videos import VideoFileError, iter_frames, probe
from utils import command
from utils.atomic import atomic_write_text
from utils.errors import ArgumentError

logger = logging.getLogger(__name__)

REPORT = "prepare_videos.json"
OPTIONS = ("size", "fps", "format", "split", "seed")  # a resumed run must use the same ones


@dataclass(frozen=True)
class Job:
    """One video to convert."""

    source: Path
    target: Path  # ROOT/<split>/<name>
    size: Optional[int]
    fps: Optional[float]
    fmt: str
    min_frames: int


def video_name(source: Path, src: Path) -> str:
    """``<src>/a/b.mp4`` -> ``a_b``."""
    return "_".join(source.relative_to(src).with_suffix("").parts)


def split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """Videos per split (train, eval, test) for ``n`` videos: eval and test rounded down, at least one each when their
    fraction is positive and ``n`` allows it; train gets the rest."""
    total = sum(fractions)
    counts = [0] + [int(n * f / total + 1e-9) for f in fractions[1:]]
    for k in (1, 2):
        if fractions[k] > 0 and counts[k] == 0 and n >= 3:
            counts[k] = 1
    counts[0] = n - sum(counts[1:])
    if counts[0] < 1 and n >= 1 and fractions[0] > 0:
        raise ArgumentError(f"--split {' '.join(map(str, fractions))}: {n} video(s) leave none for training")
    return counts


def assign_splits(names: Sequence[str], fractions: Sequence[float], seed: int) -> dict[str, str]:
    """``{name: 'train'|'eval'|'test'}``: the names ordered by SHA-256 of ``seed`` and the name fill the splits in
    the proportions of ``fractions`` (deterministic: the same names give the same split on any machine)."""
    order = sorted(names, key=lambda n: hashlib.sha256(f"{seed}:{n}".encode()).hexdigest())
    counts, out, start = split_counts(len(order), fractions), {}, 0
    for mode, count in zip(MODES, counts):
        out.update({name: mode for name in order[start:start + count]})
        start += count
    return out


def _resized(frame: np.ndarray, size: Optional[int]) -> np.ndarray:
    if not size:
        return frame
    h, w = frame.shape[:2]
    scale = size / min(h, w)
    return cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def convert(job: Job) -> tuple[str, Optional[int], str]:
    """Decode ``job.source`` once and write its (resampled, resized) frames to ``.<name>.partial``, renamed to
    ``<name>`` when complete; returns (source, frames written or None, why it was skipped)."""
    partial = job.target.with_name(f".{job.target.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)  # a half-written video of an interrupted run: redone
    partial.mkdir(parents=True)
    count, first = 0, None
    try:
        for time, frame in iter_frames(job.source):
            first = time if first is None else first
            if job.fps and (time - first) * job.fps + 1e-6 < count:
                continue  # before the next 1/fps slot
            write_frame(partial / f"frame{count}.{job.fmt}", _resized(frame, job.size))
            count += 1
    except VideoFileError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        return str(job.source), None, f"unreadable: {exc}"
    if count < job.min_frames:
        shutil.rmtree(partial, ignore_errors=True)
        return str(job.source), None, f"{count} frame(s), fewer than --min_frames {job.min_frames}"
    partial.rename(job.target)
    return str(job.source), count, ""


def _find(src: Path) -> tuple[list[Path], dict[str, str]]:
    """(video files below ``src``, {other file: why it is skipped})."""
    videos, skipped = [], {}
    for path in natsorted((p for p in src.rglob("*") if p.is_file()), key=str):
        if any(is_hidden(part) for part in path.relative_to(src).parts):
            continue
        if is_video_file(path):
            videos.append(path)
        else:
            skipped[str(path)] = f"not a video file (expected {suffix_list(VIDEO_SUFFIXES)})"
    return videos, skipped


def _previous_report(out: Path, options: dict[str, Any]) -> dict[str, Any]:
    """The report of an earlier run into ``out`` (or {}); different options are an :class:`ArgumentError`."""
    path = out / REPORT
    if not path.is_file():
        return {}
    report = json.loads(path.read_text())
    before = report.get("options", {})
    differ = [f"--{k} {before.get(k)} (now {options[k]})" for k in OPTIONS if before.get(k) != options[k]]
    if differ:
        raise ArgumentError(f"--out {out} was prepared with other options: {', '.join(differ)}; use the same options "
                            "to resume, or another --out")
    return report


def prepare(src: Path, out: Path, size: Optional[int] = None, fps: Optional[float] = None,
            split: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0, fmt: str = "jpg", min_frames: int = 1,
            workers: int = 1) -> dict[str, Any]:
    """Convert the videos below ``src`` into ``out`` (see the module docstring); returns the report."""
    options = {"size": size, "fps": fps, "format": fmt, "split": [float(f) for f in split], "seed": seed}
    _previous_report(out, options)
    videos, skipped = _find(src)
    named: dict[str, Path] = {}
    for path in videos:
        name = video_name(path, src)
        if name in named:
            skipped[str(path)] = f"its name '{name}' is taken by {named[name]}"
            continue
        try:
            probe(path)  # empty, damaged, no video stream, no frames: reported, not converted
        except VideoFileError as exc:
            skipped[str(path)] = f"unreadable: {exc}"
            continue
        named[name] = path
    if not named:
        raise ArgumentError(f"--src {src}: no readable video files ({suffix_list(VIDEO_SUFFIXES)}) below it"
                            + (f"; skipped {len(skipped)} file(s), e.g. {next(iter(skipped))}" if skipped else ""))
    done = {n: mode for n in named for mode in MODES if (out / mode / n).is_dir()}  # converted by an earlier run
    # a video keeps the split it was written to; new ones (--src grew) are split among themselves, so no video is
    # ever in two splits
    splits = {**assign_splits([n for n in named if n not in done], split, seed), **done}
    for mode in MODES:  # the layout's three split folders, also when a fraction gives none
        (out / mode).mkdir(parents=True, exist_ok=True)
    kept = set(done)
    jobs = [Job(named[n], out / splits[n] / n, size, fps, fmt, min_frames) for n in named if n not in kept]
    results = {source: (count, why) for source, count, why in run_jobs(convert, jobs, workers, desc="videos")}
    skipped.update({source: why for source, (count, why) in results.items() if count is None})
    report = {"options": options, "src": str(src.resolve()),
              "videos": {n: {"source": str(named[n]), "split": splits[n],
                             "frames": len([f for f in (out / splits[n] / n).iterdir() if f.is_file()])}
                         for n in named if (out / splits[n] / n).is_dir()},
              "written": len(jobs) - sum(count is None for count, _ in results.values()), "kept": len(kept),
              "skipped": skipped}
    atomic_write_text(json.dumps(report, indent=2) + "\n", out / REPORT)
    return report


def print_report(report: dict[str, Any], out: Path) -> None:
    """The summary (videos per split, written / kept / skipped) and every skipped file with the reason."""
    per_split = {m: sum(v["split"] == m for v in report["videos"].values()) for m in MODES}
    for source, why in report["skipped"].items():
        print(f"skipped {source}: {why}")
    print(f"{out}: {len(report['videos'])} videos (" + ", ".join(f"{m} {n}" for m, n in per_split.items()) +
          f"); {report['written']} written, {report['kept']} kept from an earlier run, {len(report['skipped'])} "
          f"file(s) skipped; report: {out / REPORT}")


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    p = command.parser(__doc__, prog="python -m data.prepare_videos")
    p.add_argument("--src", required=True, type=command.existing_folder, help="folder of video files (searched "
                   "recursively)")
    p.add_argument("--out", required=True, type=Path, help="dataset root to write (Data.data_path)")
    p.add_argument("--size", type=command.positive_int, default=None,
                   help="resize the shorter side to this many pixels (default: the videos' size)")
    p.add_argument("--fps", type=command.positive_float, default=None,
                   help="frames per second to keep (default: every frame)")
    p.add_argument("--split", type=float, nargs=3, default=[0.8, 0.1, 0.1], metavar=("TRAIN", "EVAL", "TEST"),
                   help="fractions of the videos per split (default: 0.8 0.1 0.1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split")
    p.add_argument("--format", choices=("jpg", "png"), default="jpg", help="frame files (png: lossless)")
    p.add_argument("--min_frames", type=command.positive_int, default=1,
                   help="skip videos with fewer frames (after --fps); e.g. the training clip length")
    p.add_argument("--workers", type=command.positive_int, default=1, help="videos converted in parallel")
    args = p.parse_args(argv)
    if any(f < 0 for f in args.split) or args.split[0] <= 0:
        p.error(f"--split {' '.join(map(str, args.split))}: fractions must be >= 0, with a positive train fraction")
    if args.out.resolve().is_relative_to(args.src.resolve()):
        p.error(f"--out {args.out} is inside --src {args.src}; write the frames elsewhere")
    report = prepare(args.src, args.out, args.size, args.fps, args.split, args.seed, args.format, args.min_frames,
                     args.workers)
    print_report(report, args.out)
    return report


if __name__ == "__main__":
    command.run(main)
