"""Extract frames of Dynamic Texture DataBase (DTDB) videos for the DTDB data loader.

Output: ``<processed_dir>/<texture>/{train,eval}/<video>/frame<k>.<jpg|png>``, k = 0, 1, ...
(``--image_format`` defaults to png for clouds and jpg otherwise, as in the reference configs).

Assumed raw layout: the DTDB mp4 release, e.g.
``<raw_dir>/BY_APPEARANCE_FINAL/{TRAIN,TEST}/<Texture>/<video>.mp4``. Any nesting works: the script
searches ``--raw_dir`` recursively for ``*.mp4``; a video belongs to a texture when one of its folders,
or its file name, is the texture name (case-insensitive; 'fire' matches 'Fire/' and 'Fire_g1_c3.mp4'),
and to a split by a folder named train (-> train) or test/val/eval (-> eval), case-insensitive.
Videos found twice (e.g. also under BY_DYNAMIC_FINAL) are extracted once.
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

SPLIT_FOLDERS = {"train": "train", "test": "eval", "val": "eval", "eval": "eval"}


def matches_texture(video: Path, texture: str, raw_dir: Path) -> bool:
    """Whether a folder of ``video`` below ``raw_dir``, or its name, is (or starts with) the texture name."""
    pattern = re.compile(rf"^{re.escape(texture.lower())}([^a-z]|$)")
    names = [part.lower() for part in video.relative_to(raw_dir).parent.parts] + [video.stem.lower()]
    return any(pattern.match(name) for name in names)


def split_of(video: Path, raw_dir: Path) -> Optional[str]:
    """'train' or 'eval' from the video's folders below ``raw_dir``; ``None`` if no split folder is found."""
    for part in reversed(video.relative_to(raw_dir).parent.parts):
        if part.lower() in SPLIT_FOLDERS:
            return SPLIT_FOLDERS[part.lower()]
    return None


def main(argv: Optional[list[str]] = None) -> None:
    parser = command.parser(__doc__)
    parser.add_argument("--raw_dir", required=True, type=command.existing_folder, help="the unpacked DTDB mp4 release")
    parser.add_argument("--processed_dir", required=True, type=Path, help="the data_path of the DTDB configs")
    parser.add_argument("--texture", required=True, nargs="+", help="e.g. fire vegetation clouds waterfall")
    parser.add_argument("--image_format", choices=("jpg", "png"), default=None,
                        help="frame format (default: png for clouds, jpg otherwise)")
    add_extraction_args(parser)
    args = parser.parse_args(argv)
    videos = find_inputs(parser, args.raw_dir, "*.mp4", "--raw_dir")
    jobs, summary = [], []
    for texture in args.texture:
        fmt = args.image_format or ("png" if texture.lower() == "clouds" else "jpg")
        selected = [v for v in videos if matches_texture(v, texture, args.raw_dir)]
        no_split = [str(v) for v in selected if split_of(v, args.raw_dir) is None]
        if no_split:
            parser.error(f"{len(no_split)} '{texture}' videos are not below a train/test folder, e.g. {no_split[:3]}")
        targets = {}
        for video in selected:
            targets.setdefault(args.processed_dir / texture / split_of(video, args.raw_dir) / video.stem, video)
        if not targets:
            parser.error(f"no *.mp4 for texture '{texture}' found below {args.raw_dir}")
        jobs += [(video, out, f"frame{{k}}.{fmt}", args.size, args.overwrite) for out, video in targets.items()]
        per_split = {s: sum(out.parent.name == s for out in targets) for s in ("train", "eval")}
        summary.append(f"{texture}: {per_split['train']} train / {per_split['eval']} eval videos ({fmt})")
    counts = run_jobs(extract_job, jobs, args.workers, "videos")
    done = [c for c in counts if c is not None]
    print(f"extracted {sum(done)} frames from {len(done)} videos into {args.processed_dir} "
          f"({len(counts) - len(done)} already there); " + "; ".join(summary))


if __name__ == "__main__":
    command.run(main)
