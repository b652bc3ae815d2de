"""Rename the frames of every landscape (sky time-lapse) clip to frame0, frame1, ... in natural order.

Every folder below ``--data_dir`` that directly holds images (png/jpg/jpeg/bmp) is a clip; its frames are
renamed to ``frame<k><suffix>`` (the suffix is kept), closing gaps left by missing frames. The rename is
two-phase (all files to hidden temporary names, then to their final names), so no file is ever overwritten;
re-running is a no-op, and a run interrupted mid-way is completed by the next run.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Optional

from natsort import natsorted
from tqdm import tqdm

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from data.formats import IMAGE_EXTENSIONS  # noqa: E402
from utils import command  # noqa: E402

TEMP_NAME = re.compile(r"^\.rename_tmp_(\d+)\.")


def _temp_path(folder: Path, index: int, suffix: str) -> Path:
    return folder / f".rename_tmp_{index}{suffix}"


def plan_clip(folder: Path) -> dict[int, Path]:
    """Target index -> current file of each frame of a clip folder.

    Temporary files of an interrupted run keep their index; the other images, in natural order, fill the
    remaining indices in increasing order (which restores the original order after either phase).
    """
    images = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    temps = {int(m.group(1)): p for p in images if (m := TEMP_NAME.match(p.name))}
    others = natsorted((p for p in images if not TEMP_NAME.match(p.name)), key=lambda p: p.name)
    if any(index >= len(images) for index in temps):
        raise RuntimeError(f"{folder}: leftover temporary files do not match the frame count; fix by hand")
    free = [k for k in range(len(images)) if k not in temps]
    return {**temps, **dict(zip(free, others))}


def rename_clip(folder: Path, dry_run: bool = False) -> bool:
    """Rename one clip's frames to ``frame<k>``; returns False if they already are."""
    plan = plan_clip(folder)
    if all(path.name == f"frame{k}{path.suffix}" for k, path in plan.items()):
        return False
    if dry_run:
        return True
    staged = {}
    for k, path in sorted(plan.items()):
        temp = _temp_path(folder, k, path.suffix)
        if path != temp:
            if temp.exists():
                raise FileExistsError(f"refusing to overwrite {temp}")
            os.rename(path, temp)
        staged[k] = temp
    for k, temp in sorted(staged.items()):
        target = folder / f"frame{k}{temp.suffix}"
        if target.exists():
            raise FileExistsError(f"refusing to overwrite {target}")
        os.rename(temp, target)
    return True


def find_clips(data_dir: Path) -> list[Path]:
    """Every folder below ``data_dir`` (itself included) that directly holds image files."""
    clips = [Path(dirpath) for dirpath, _, files in os.walk(data_dir)
             if any(Path(f).suffix.lower() in IMAGE_EXTENSIONS for f in files)]
    return natsorted(clips, key=str)


def main(argv: Optional[list[str]] = None) -> None:
    parser = command.parser(__doc__)
    parser.add_argument("--data_dir", required=True, type=command.existing_folder,
                        help="the landscape root (sky_train/, sky_test/)")
    parser.add_argument("--dry_run", action="store_true", help="only report which clips would be renamed")
    args = parser.parse_args(argv)
    clips = find_clips(args.data_dir)
    renamed = sum(rename_clip(clip, args.dry_run) for clip in tqdm(clips, desc="clips"))
    verb = "would rename" if args.dry_run else "renamed"
    print(f"{verb} the frames of {renamed} of {len(clips)} clips below {args.data_dir}; "
          f"{len(clips) - renamed} were already named frame0..frameN")


if __name__ == "__main__":
    command.run(main)
