"""The datasets the project knows, each in one place: its on-disk layout, how it is evaluated, its sample
assets and model folders, its names on the command line and in configs.

Adding a dataset is one :class:`DatasetInfo` (with its :class:`Layout`) below, plus its three configs
(``stage1_VAE/configs``, ``stage2_cINN/AE/configs``, ``stage2_cINN/configs``). The single dataset class of
:mod:`data.dataset` interprets the layout; :func:`metrics.protocol.protocol_slices` the evaluation protocol.

=========  =====================================================================================
name       layout (``<root>`` = ``Data.data_path``)
=========  =====================================================================================
bair       ``<root>/{train,eval,test}/traj_<a>_to_<b>/<n>/{0..29}.png`` (+ ``endeffector_positions.csv``)
landscape  ``<root>/sky_train/<id>/<clip>/frame<k>.jpg`` (train, eval), ``<root>/sky_test/...`` (test);
           videos listed in ``<split_dir>/{train,eval,test}.txt``
iPER       ``<root>/<a>_<b>_<c>/frame_<k>.png``; videos listed in ``<split_dir>/{train,val,test}.txt``
           as ``a/b/c``
DTDB       ``<root>/<texture>/{train,eval}/<video>/frame<k>.<jpg|png>``; test reads eval
folder     ``<root>/{train,eval,test}/<video>/<frames>`` (any image names, natural order) or
           ``<root>/{train,eval,test}/<video>.mp4`` (any video file of :mod:`data.formats`), both may be mixed;
           a root without split folders is read as one split for every mode
demo       no data layout: the bundled demo model (``models/demo``) and its start frames
=========  =====================================================================================

No torch here: configs and command lines are checked against these names before torch is imported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional

from utils.errors import ArgumentError
from utils.paths import ASSETS_DIR, MODELS_DIR

MODES = ("train", "eval", "test")
PACKAGE_DIR = Path(__file__).resolve().parent
# evaluation protocols of the original's eval_synthesis_quality.py (which frames are compared, given T generated
# frames and the real clip with its start frame x0; see metrics.protocol.protocol_slices)
START_FRAME_IN = "start_frame_in"  # BAIR: fake [x0, generated 1..T-1], real frames 0..T-1
ALL_FRAMES = "all_frames"  # iPER: fake [x0, generated 1..T], real frames 0..T
GENERATED_ONLY = "generated_only"  # landscape, DTDB: fake generated 1..T, real frames 0..T-1


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

    name: str  # lower-case key, used in messages
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
    video_files: bool = False  # 'folder': video files (.mp4, .webm, ...) are videos beside folders of frames

    def expected(self, root: Path) -> str:
        """The expected layout, for error messages."""
        return f"expected layout for '{self.name}':\n  " + self.tree.replace("<root>", str(root))


@dataclass(frozen=True)
class DatasetInfo:
    """Everything the project knows about one dataset."""

    name: str  # canonical spelling (configs and -dataset are case-insensitive)
    layout: Optional[Layout]  # None: no data of its own (the demo)
    protocol: Optional[str] = None  # which real/fake frames are compared (START_FRAME_IN, ...); None: not evaluated
    paper_protocol: bool = True  # whether the paper evaluated it (``-protocol paper``); 'folder': -protocol all only
    textures: tuple[str, ...] = ()  # DTDB: sub-datasets, each with its own models and assets
    has_models: bool = True  # -dataset names a model folder models/<name>[/<texture>]/stage2
    clips_from: Optional[str] = None  # whose sample clips (assets/GT_samples/<name>/transfer) it uses
    aliases: tuple[str, ...] = field(default_factory=tuple)

    def _texture(self, texture: str | None) -> str | None:
        if not self.textures:
            return None
        if not texture:
            raise ArgumentError(f"-dataset {self.name} needs -texture, one of {', '.join(self.textures)}")
        return texture

    def model_dir(self, texture: str | None = None, control: bool = False) -> Path:
        """Where the released (or bundled) stage-2 model folder lives: ``models/<name>[/<texture>]/stage2`` (or
        ``stage2_control``)."""
        sub = self._texture(texture)
        base = MODELS_DIR / self.name / sub if sub else MODELS_DIR / self.name
        return base / ("stage2_control" if control else "stage2")

    def image_dir(self, texture: str | None = None) -> Path:
        """``assets/GT_samples/<name>[/<texture>]``: its sample start frames."""
        sub = self._texture(texture)
        base = ASSETS_DIR / "GT_samples" / self.name
        return base / sub if sub else base

    def clip_dir(self, texture: str | None = None) -> Path:
        """``assets/GT_samples/<name>[/<texture>]/transfer``: its sample clips for motion transfer."""
        if self.clips_from:
            return dataset_info(self.clips_from).clip_dir()
        return self.image_dir(texture) / "transfer"

    def results_dir(self, texture: str | None = None, *sub: str) -> Path:
        """``assets/results/<name>[_<texture>]/<sub...>``: where the scripts write by default."""
        t = self._texture(texture)
        return ASSETS_DIR.joinpath("results", f"{self.name}_{t}" if t else self.name, *sub)


BAIR = DatasetInfo("bair", Layout(
    name="bair",
    tree=("<root>/{train,eval,test}/traj_<a>_to_<b>/<n>/{0..29}.png "
          "(+ endeffector_positions.csv per video for control); "
          "make it with data/bair/download_bair.sh and data/bair/convert_bair.py"),
    split_folders={"train": "train", "eval": "eval", "test": "test"},
    random_start={"train": True, "eval": True, "test": False},
    frame_pattern="{k}.png",
    video_depth=2,
    supports_control=True,
), protocol=START_FRAME_IN)

LANDSCAPE = DatasetInfo("landscape", Layout(
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
), protocol=GENERATED_ONLY, aliases=("sky", "sky_timelapse"))

IPER = DatasetInfo("iPER", Layout(
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
), protocol=ALL_FRAMES)

DTDB = DatasetInfo("DTDB", Layout(
    name="dtdb",
    tree=("<root>/<texture>/{train,eval}/<video>/frame<k>.<jpg|png> (test reads eval); "
          "extract frames with data/DTDB/extract_DTDB.py"),
    split_folders={"train": "{texture}/train", "eval": "{texture}/eval", "test": "{texture}/eval"},
    random_start={"train": True, "eval": False, "test": False},
    frame_pattern="frame{k}.{image_format}",
    crop_margin=16,
    needs_texture=True,
), protocol=GENERATED_ONLY, textures=("fire", "clouds", "vegetation", "waterfall"))

FOLDER = DatasetInfo("folder", Layout(
    name="folder",
    tree=("<root>/{train,eval,test}/<video>/<frames> (frames in natural name order) or "
          "<root>/{train,eval,test}/<video>.mp4|.webm|.mov|.avi|.mkv|.m4v|.gif, or <root>/<video>/<frames> and "
          "<root>/<video>.mp4 to use the same videos for every mode; python -m data.prepare_videos converts a "
          "folder of video files into frame folders"),
    split_folders={"train": "train", "eval": "eval", "test": "test"},
    random_start={"train": True, "eval": True, "test": False},
    frame_pattern="frame{k}.png",
    allow_flat_root=True,
    video_files=True,
), protocol=GENERATED_ONLY, paper_protocol=False, has_models=False)

DEMO = DatasetInfo("demo", None, clips_from="landscape")

DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (BAIR, LANDSCAPE, IPER, DTDB, FOLDER, DEMO)}


def dataset_info(name: str) -> DatasetInfo:
    """Look a dataset up by name or alias, case-insensitively (``'BAIR'``, ``'iper'``, ``'sky'`` ...)."""
    key = str(name).strip().lower()
    for info in DATASETS.values():
        if key == info.name.lower() or key in info.aliases:
            return info
    raise ValueError(f"unknown dataset '{name}'; choose one of {', '.join(DATASETS)} (case-insensitive)")


def get_layout(name: str) -> Layout:
    """The on-disk layout of a dataset (``Data.dataset``); a dataset without data of its own is an error."""
    with_data = ", ".join(n for n, i in DATASETS.items() if i.layout is not None)
    try:
        info = dataset_info(name)
    except ValueError:
        raise ValueError(f"unknown dataset '{name}'; choose one of {with_data} (case-insensitive)") from None
    if info.layout is None:
        raise ValueError(f"dataset '{name}' has no data layout; Data.dataset must be one of {with_data}")
    return info.layout


def textured_datasets() -> dict[str, tuple[str, ...]]:
    """``{dataset: its textures}`` of the datasets made of sub-datasets (DTDB)."""
    return {n: i.textures for n, i in DATASETS.items() if i.textures}


def all_textures() -> tuple[str, ...]:
    """Every texture a ``-texture`` flag may name."""
    return tuple(t for textures in textured_datasets().values() for t in textures)


def model_datasets() -> list[str]:
    """The names ``-dataset`` accepts in the scripts that load a model folder by dataset."""
    return [n for n, i in DATASETS.items() if i.has_models]


def protocol_datasets() -> list[str]:
    """The datasets with an evaluation protocol of the paper (``-protocol paper``)."""
    return [n for n, i in DATASETS.items() if i.protocol is not None and i.paper_protocol]


def evaluated_datasets() -> list[str]:
    """The datasets the evaluation scripts evaluate (each with its real/fake frames): the paper's and ``folder``."""
    return [n for n, i in DATASETS.items() if i.protocol is not None]
