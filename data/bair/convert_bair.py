"""Convert the BAIR robot pushing TFRecords into folders of PNG frames (no TensorFlow needed).

Input: ``<data_dir>/softmotion30_44k/{train,test}/traj_<a>_to_<b>.tfrecords`` (as unpacked by
``data/bair/download_bair.sh``); any ``*.tfrecords`` below ``--data_dir`` is converted.
Output, per example ``n`` (1-based index of the example within its record file)::

    <output_dir>/<split>/traj_<a>_to_<b>/<n>/{0..29}.png
    <output_dir>/<split>/traj_<a>_to_<b>/<n>/endeffector_positions.csv   (30 rows: x,y,z)

``traj_0_to_255`` is the test split, ``traj_256_to_511`` the eval split, every other record train.
Frames come from ``<i>/image_aux1/encoded`` (raw 64x64x3 RGB bytes), positions from ``<i>/endeffector_pos``.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from data.frame_io import FrameReadError, write_frame, write_positions  # noqa: E402
from data.prep_utils import find_inputs, run_jobs  # noqa: E402
from data.tfrecord import read_examples  # noqa: E402
from utils import command  # noqa: E402

SPLIT_OF_RECORD = {"traj_0_to_255": "test", "traj_256_to_511": "eval"}
IMAGE_KEY = "{i}/image_aux1/encoded"
POSITION_KEY = "{i}/endeffector_pos"


def split_of(record: Path) -> str:
    """The split a record file belongs to (by its name)."""
    return SPLIT_OF_RECORD.get(record.stem, "train")


def decode_frame(raw: bytes) -> np.ndarray:
    """A BAIR frame: raw square RGB bytes (64x64x3 in the release), or an encoded PNG/JPEG as a fallback."""
    side = int(round((len(raw) / 3) ** 0.5))
    if side * side * 3 == len(raw):
        return np.frombuffer(raw, dtype=np.uint8).reshape(side, side, 3)
    image = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise FrameReadError(f"cannot decode a frame of {len(raw)} bytes (neither raw square RGB nor an image file)")
    return image[..., ::-1]


def convert_record(record: Path, output_dir: Path) -> tuple[str, int]:
    """Convert one TFRecord file; returns ``(split, number of videos)``."""
    split = split_of(record)
    count = 0
    for n, example in enumerate(read_examples(record), start=1):
        video_dir = output_dir / split / record.stem / str(n)
        video_dir.mkdir(parents=True, exist_ok=True)
        positions = []
        i = 0
        while IMAGE_KEY.format(i=i) in example:
            write_frame(video_dir / f"{i}.png", decode_frame(example[IMAGE_KEY.format(i=i)][0]))
            positions.append(example[POSITION_KEY.format(i=i)])
            i += 1
        if i == 0:
            raise FrameReadError(f"{record}: example {n} has no '{IMAGE_KEY.format(i=0)}' feature")
        write_positions(video_dir, np.stack(positions))
        count += 1
    return split, count


def _convert(args: tuple[Path, Path]) -> tuple[str, int]:
    return convert_record(*args)


def main(argv: Optional[list[str]] = None) -> None:
    parser = command.parser(__doc__)
    parser.add_argument("--data_dir", required=True, type=command.existing_folder,
                        help="folder holding softmotion30_44k/ (or the record files themselves)")
    parser.add_argument("--output_dir", required=True, type=Path, help="where <split>/traj_*/<n>/ are written")
    parser.add_argument("--workers", type=command.positive_int, default=1, help="record files converted in parallel")
    args = parser.parse_args(argv)
    records = find_inputs(parser, args.data_dir, "*.tfrecords", "--data_dir")
    results = run_jobs(_convert, [(record, args.output_dir) for record in records], args.workers, "records")
    videos: Counter[str] = Counter()
    for split, count in results:
        videos[split] += count
    print(f"converted {len(records)} record files into {args.output_dir}: "
          + ", ".join(f"{split} {videos[split]} videos" for split in ("train", "eval", "test")))


if __name__ == "__main__":
    command.run(main)
