"""Helpers shared by the data preparation scripts."""
from __future__ import annotations

import argparse
import shutil
from multiprocessing import Pool
from pathlib import Path
from typing import Callable, Iterable, Optional, TypeVar

from natsort import natsorted
from tqdm import tqdm

from data.frame_io import extract_video_frames
from utils.command import positive_int

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["run_jobs", "extract_to_folder", "extract_job", "add_extraction_args", "find_inputs"]


def run_jobs(func: Callable[[T], R], jobs: Iterable[T], workers: int = 1, desc: str = "") -> list[R]:
    """``[func(job) for job in jobs]`` with a progress bar, in ``workers`` processes when ``workers > 1``.

    ``func`` must be a module-level function (picklable) when ``workers > 1``; results come in job order.
    """
    jobs = list(jobs)
    if workers <= 1:
        return [func(job) for job in tqdm(jobs, desc=desc)]
    with Pool(workers) as pool:
        return list(tqdm(pool.imap(func, jobs), total=len(jobs), desc=desc))


def extract_to_folder(video: Path, out_dir: Path, name_pattern: str, size: Optional[int] = None,
                      overwrite: bool = False) -> Optional[int]:
    """Extract the frames of ``video`` into ``out_dir`` atomically; ``None`` if it exists and is kept.

    Frames are first written to the hidden ``.<name>.partial`` (which no dataset lists) and the folder is renamed
    when complete, so an interrupted run leaves no half-filled video folder and a re-run resumes where it stopped.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not overwrite:
            return None
        shutil.rmtree(out_dir)
    partial = out_dir.with_name(f".{out_dir.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    count = extract_video_frames(video, partial, name_pattern, size)
    partial.rename(out_dir)
    return count


def extract_job(job: tuple[Path, Path, str, Optional[int], bool]) -> Optional[int]:
    """:func:`extract_to_folder` on one ``(video, out_dir, name_pattern, size, overwrite)`` job (for a pool)."""
    return extract_to_folder(*job)


def add_extraction_args(parser: argparse.ArgumentParser) -> None:
    """The ``--size``, ``--workers`` and ``--overwrite`` options of the frame extraction scripts."""
    parser.add_argument("--size", type=positive_int, default=None, help="resize the shorter side to this many pixels")
    parser.add_argument("--workers", type=positive_int, default=1, help="inputs processed in parallel")
    parser.add_argument("--overwrite", action="store_true", help="re-extract videos already extracted")


def find_inputs(parser: argparse.ArgumentParser, folder: Path, pattern: str, option: str) -> list[Path]:
    """Files matching ``pattern`` anywhere below ``folder``, in natural order; a usage error if there are none."""
    if not folder.is_dir():
        parser.error(f"{option} {folder} does not exist")
    found = natsorted(folder.rglob(pattern), key=str)
    if not found:
        parser.error(f"no {pattern} found below {option} {folder}")
    return found
