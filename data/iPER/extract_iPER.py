"""Extract the frames of the iPER videos for the iPER data loader.

Input: the iPER videos ``<raw_dir>/**/<a>_<b>_<c>.mp4`` (e.g. ``001_1_1.mp4``; searched recursively).
Output: ``<processed_dir>/<a>_<b>_<c>/frame_<k>.png``, k = 0, 1, ... (PNG, lossless).
Videos whose output folder exists are skipped (use --overwrite to redo them), so an interrupted run
can be restarted. ``--size`` optionally resizes the shorter side (the models train at 64 px).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Optional

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from data.prep_utils import add_extraction_args, extract_job, find_inputs, run_jobs  # noqa: E402
from utils import command  # noqa: E402

VIDEO_NAME = re.compile(r"^\d+_\d+_\d+$")


def main(argv: Optional[list[str]] = None) -> None:
    parser = command.parser(__doc__)
    parser.add_argument("--raw_dir", required=True, type=command.existing_folder,
                        help="folder with the iPER *.mp4 videos")
    parser.add_argument("--processed_dir", required=True, type=Path, help="where <a>_<b>_<c>/frame_<k>.png go")
    add_extraction_args(parser)
    args = parser.parse_args(argv)
    videos = find_inputs(parser, args.raw_dir, "*.mp4", "--raw_dir")
    odd = [v.name for v in videos if not VIDEO_NAME.match(v.stem)]
    if odd:
        print(f"warning: {len(odd)} video names do not look like <a>_<b>_<c>.mp4 (the split lists will not "
              f"find them): {odd[:5]}")
    jobs = [(v, args.processed_dir / v.stem, "frame_{k}.png", args.size, args.overwrite) for v in videos]
    counts = run_jobs(extract_job, jobs, args.workers, "videos")
    done = [c for c in counts if c is not None]
    print(f"extracted {sum(done)} frames from {len(done)} videos into {args.processed_dir}; "
          f"{len(counts) - len(done)} already extracted videos skipped")


if __name__ == "__main__":
    command.run(main)
