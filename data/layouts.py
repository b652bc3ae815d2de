"""On-disk layouts of the supported datasets: where each split's videos live and how clips are drawn.

One :class:`Layout` per dataset replaces the original's copy of the same loader per dataset; the
single loader in :mod:`data.dataset` interprets it. Every video is a folder of frames.

=========  =====================================================================================
name       layout (``<root>`` = ``Data.data_path``)
=========  =====================================================================================
bair       ``<root>/{train,eval,test}/traj_<a>_to_<b>/<n>/{0..29}.png`` (+ ``endeffector_positions.csv``)
landscape  ``<root>/sky_train/<id>/<clip>/frame<k>.jpg`` (train, eval), ``<root>/sky_test/...`` (test);
           videos listed in ``<split_dir>/{train,eval,test}.txt``
iPER       ``<root>/<a>_<b>_<c>/frame_<k>.png``; videos listed in ``<split_dir>/{train,val,test}.txt``
           as ``a/b/c``
DTDB       ``<root>/<texture>/{train,eval}/<video>/frame<k>.<jpg|png>``; test reads eval
folder     ``<root>/{train,eval,test}/<video>/<frames>`` (any image names, natural order); a root
           without split folders is read as one split for every mode
=========  =====================================================================================
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional

MODES = ("train", "eval", "test")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
PACKAGE_DIR = Path(__file__).resolve().parent


def _same(entry: str) -> str:
    return entry.strip().strip("/")


def _iper_entry(entry: str) -> str:
    return entry.strip().strip("/").replace("/", "_")


def _iper_repeat(entry: str) -> int:
    """iPER videos are repeated ``iter_<mode>`` times the last digit of their id (``001/1/2`` -> 2)."""
    digits = [c for c in entry.strip().strip("/") if c.isdigit()]
    return max(int(digits[-1]), 1) if digits else 1


@dataclass(frozen=True)
class Layout:
    """How one dataset is stored on disk and how clips are drawn from it."""

    name: str
    tree: str  # the expected tree, shown in errors
    split_folders: Mapping[str, str]  # mode -> folder below the root ('{texture}' is filled in)
    random_start: Mapping[str, bool]  # mode -> random start (seeded per index outside training) or 0
    frame_pattern: str  # how frames are named (used by the synthetic writer and the docs)
    video_depth: int = 1  # folder levels between the split folder and a video folder
    list_files: Optional[Mapping[str, str]] = None  # mode -> split list file name, if videos are listed
    default_split_dir: Optional[Path] = None  # where the packaged split lists live
    list_entry: Callable[[str], str] = _same  # list line -> video folder relative to the split folder
    repeat_factor: Optional[Callable[[str], int]] = None  # extra per-video repetition (iPER)
    test_clips_key: Optional[str] = None  # Data key holding a fixed number of test clips (iPER)
    crop_margin: int = 0  # train: resize to img_size + margin, then random crop img_size
    supports_control: bool = False  # BAIR end-effector positions
    needs_texture: bool = False  # DTDB
    allow_flat_root: bool = False  # 'folder': a root without split folders serves every mode
    aliases: tuple[str, ...] = field(default_factory=tuple)

    def expected(self, root: Path) -> str:
        """The expected layout, for error messages."""
        return f"expected layout for '{self.name}':\n  " + self.tree.replace("<root>", str(root))


BAIR = Layout(
    name="bair",
    tree=("<root>/{train,eval,test}/traj_<a>_to_<b>/<n>/{0..29}.png "
          "(+ endeffector_positions.csv per video for control); "
          "make it with data/bair/download_bair.sh and data/bair/convert_bair.py"),
    split_folders={"train": "train", "eval": "eval", "test": "test"},
    random_start={"train": True, "eval": True, "test": False},
    frame_pattern="{k}.png",
    video_depth=2,
    supports_control=True,
)

LANDSCAPE = Layout(
    name="landscape",
    tree=("<root>/sky_train/<id>/<clip>/frame<k>.jpg (train, eval) and <root>/sky_test/<id>/<clip>/frame<k>.jpg "
          "(test), videos listed in <split_dir>/{train,eval,test}.txt; "
          "rename frames with data/landscape/rename_images.py"),
    split_folders={"train": "sky_train", "eval": "sky_train", "test": "sky_test"},
    random_start={"train": True, "eval": True, "test": True},
    frame_pattern="frame{k}.jpg",
    list_files={"train": "train.txt", "eval": "eval.txt", "test": "test.txt"},
    default_split_dir=PACKAGE_DIR / "landscape",
    crop_margin=16,
    aliases=("sky", "sky_timelapse"),
)

IPER = Layout(
    name="iper",
    tree=("<root>/<a>_<b>_<c>/frame_<k>.png, videos listed in <split_dir>/{train,val,test}.txt as a/b/c; "
          "extract frames with data/iPER/extract_iPER.py"),
    split_folders={"train": ".", "eval": ".", "test": "."},
    random_start={"train": True, "eval": True, "test": True},
    frame_pattern="frame_{k}.png",
    list_files={"train": "train.txt", "eval": "val.txt", "test": "test.txt"},
    default_split_dir=PACKAGE_DIR / "iPER",
    list_entry=_iper_entry,
    repeat_factor=_iper_repeat,
    test_clips_key="test_size",
)

DTDB = Layout(
    name="dtdb",
    tree=("<root>/<texture>/{train,eval}/<video>/frame<k>.<jpg|png> (test reads eval); "
          "extract frames with data/DTDB/extract_DTDB.py"),
    split_folders={"train": "{texture}/train", "eval": "{texture}/eval", "test": "{texture}/eval"},
    random_start={"train": True, "eval": False, "test": False},
    frame_pattern="frame{k}.{image_format}",
    crop_margin=16,
    needs_texture=True,
)

FOLDER = Layout(
    name="folder",
    tree=("<root>/{train,eval,test}/<video>/<frames> (frames in natural name order), or <root>/<video>/<frames> "
          "to use the same videos for every mode"),
    split_folders={"train": "train", "eval": "eval", "test": "test"},
    random_start={"train": True, "eval": True, "test": False},
    frame_pattern="frame{k}.png",
    allow_flat_root=True,
)

LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (BAIR, LANDSCAPE, IPER, DTDB, FOLDER)}


def get_layout(name: str) -> Layout:
    """Look a layout up by dataset name, case-insensitively (``'BAIR'``, ``'iPER'``, ``'DTDB'``...)."""
    key = str(name).strip().lower()
    for layout in LAYOUTS.values():
        if key == layout.name or key in layout.aliases:
            return layout
    raise ValueError(f"unknown dataset '{name}'; choose one of {sorted(LAYOUTS)} (case-insensitive)")
