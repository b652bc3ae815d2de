"""One video dataset for every layout of :mod:`data.registry`: folders of frames and, for the ``folder`` layout, video
files (decoded by seeking to each clip, :mod:`data.videos`).

An item is ``{'seq': float (T, 3, img_size, img_size) in [-1, 1]}`` with ``T = Data.sequence_length``,
plus ``'cond'``: the raw ``(3,)`` end-effector position at the clip's last frame for BAIR with control.

Config keys read (``config['Data']`` unless noted; defaults in brackets):
``dataset``, ``data_path``, ``sequence_length``, ``img_size``, ``aug`` [True],
``Augmentation.{brightness, contrast, saturation, hue}`` [0], ``Augmentation.prob_hflip`` [0.5],
``iter_train`` / ``iter_eval`` / ``iter_test`` [1], ``texture`` (DTDB, required), ``image_format``
[any of png/jpg/jpeg/bmp], ``reverse`` [False], ``test_size`` (iPER) [1000], ``split_dir``
[the packaged lists in ``data/landscape`` / ``data/iPER``], ``crop_margin`` [16 for landscape/DTDB,
else 0], and ``config['Training']['control']`` [False].
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch
from natsort import natsorted
from torch.utils.data import Dataset
from tqdm import tqdm

from data.augment import ClipTransform
from data.formats import IMAGE_EXTENSIONS, VIDEO_SUFFIXES, is_hidden, is_video_file, suffix_list
from data.frame_io import POSITIONS_FILE, FrameReadError, read_clip, read_positions
from data.registry import MODES, Layout, get_layout
from data.videos import VideoFileError, frame_count, read_clip_file
from utils.errors import I2VError, MissingFileError

logger = logging.getLogger(__name__)

__all__ = ["DataLayoutError", "Video", "FrameFolderDataset", "find_videos", "frame_gaps", "build_dataset",
           "get_dataset"]

EVAL_SEED = 0  # seeds the per-index start frame of eval/test clips
TEST_CLIPS_SEED = 0  # seeds the fixed set of iPER test clips
_MODE_ALIASES = {"val": "eval", "valid": "eval", "validation": "eval"}
_MAX_LISTED = 10
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


class DataLayoutError(I2VError, ValueError):
    """The data on disk does not give a usable split (no videos, or none long enough)."""


@dataclass(frozen=True)
class Video:
    """One video: a folder (its frame file names in natural order) or a video file (its frame count), and how often
    it is repeated per epoch."""

    path: Path
    frames: np.ndarray  # file names (str) relative to ``path``; a numpy array keeps forked workers lean
    repeat: int = 1
    length: int = -1  # frames of a video file; -1 for a folder of frames

    @property
    def is_file(self) -> bool:
        return self.length >= 0

    def __len__(self) -> int:
        return self.length if self.length >= 0 else len(self.frames)


def _extensions(data: Mapping[str, Any]) -> tuple[str, ...]:
    fmt = data.get("image_format")
    if not fmt:
        return IMAGE_EXTENSIONS
    fmt = "." + str(fmt).lower().lstrip(".")
    return (".jpg", ".jpeg") if fmt in (".jpg", ".jpeg") else (fmt,)


def _list_frames(video_dir: Path, extensions: tuple[str, ...]) -> np.ndarray:
    names = [p.name for p in video_dir.iterdir()  # hidden files (e.g. macOS '._frame1.jpg') are not frames
             if p.suffix.lower() in extensions and not is_hidden(p) and p.is_file()]
    return np.array(natsorted(names), dtype=str)


def _video(path: Path, repeat: int, extensions: tuple[str, ...]) -> Video:
    """The :class:`Video` of a frame folder or (its frame count from the container) a video file."""
    if path.is_file():
        return Video(path, np.array([], dtype=str), repeat, length=frame_count(path))
    return Video(path, _list_frames(path, extensions), repeat)


def frame_gaps(names: Sequence[str]) -> list[tuple[str, str]]:
    """``(before, after)`` pairs of neighbouring frames whose numbers (the last number in the name) are not
    consecutive, e.g. ``('frame11.jpg', 'frame13.jpg')``; empty when the names carry no numbers."""
    numbers = []
    for name in names:
        match = _LAST_NUMBER.search(Path(str(name)).stem)
        if match is None:
            return []
        numbers.append(int(match.group(1)))
    return [(str(a), str(b)) for a, b, x, y in zip(names, names[1:], numbers, numbers[1:]) if y != x + 1]


def _warn_gaps(videos: Sequence[Video], split: Path) -> None:
    """One warning per video with missing frames (the first ``_MAX_LISTED`` videos, then a count)."""
    gapped = [(v, g) for v in videos if (g := frame_gaps(v.frames))]
    for video, gaps in gapped[:_MAX_LISTED]:
        shown = ", ".join(f"{a} -> {b}" for a, b in gaps[:3]) + (" ..." if len(gaps) > 3 else "")
        logger.warning("%s: %d gap(s) in the frame numbers (%s); clips across a gap join non-consecutive frames",
                       video.path, len(gaps), shown)
    if len(gapped) > _MAX_LISTED:
        logger.warning("%d more videos in %s have gaps in their frame numbers (python -m data.check -cf <config> "
                       "lists them)", len(gapped) - _MAX_LISTED, split)


def _subfolders(folder: Path, depth: int, video_files: bool = False) -> list[Path]:
    """The video folders ``depth`` levels below ``folder`` (not hidden ones, e.g. a half-written ``.x.partial``),
    and with ``video_files`` the video files at that level."""
    level = [folder]
    for k in range(depth):
        last = k == depth - 1
        level = [child for parent in level for child in parent.iterdir() if not is_hidden(child)
                 and (child.is_dir() or (last and video_files and is_video_file(child) and child.is_file()))]
    return natsorted(level, key=str)


def _not_videos(split: Path, layout: Layout) -> str:
    """For an error about a split without videos: the files it holds that are not videos, if any."""
    others = natsorted(p.name for p in split.iterdir() if p.is_file() and not is_hidden(p))
    if not others:
        return ""
    kinds = (f"sub-folders of frames or {suffix_list(VIDEO_SUFFIXES)} files" if layout.video_files
             else "sub-folders of frames")
    return (f"; it holds {len(others)} file(s) that are not videos ({', '.join(others[:5])}"
            f"{' ...' if len(others) > 5 else ''}): expected {kinds}")


def _split_folder(layout: Layout, root: Path, mode: str, data: Mapping[str, Any]) -> Path:
    if not root.is_dir():
        raise MissingFileError(f"dataset root {root} does not exist (Data.data_path); {layout.expected(root)}")
    texture = data.get("texture")
    if layout.needs_texture and not texture:
        raise DataLayoutError(f"dataset '{layout.name}' needs Data.texture (e.g. 'fire', 'clouds', 'vegetation', "
                       f"'waterfall'); {layout.expected(root)}")
    folder = root / layout.split_folders[mode].format(texture=texture)
    if folder.is_dir():
        return folder
    if layout.allow_flat_root and not any((root / name).is_dir() for name in layout.split_folders.values()):
        logger.info("%s has no %s/ folders; reading its sub-folders as the videos of every mode",
                    root, "/, ".join(MODES))
        return root
    raise MissingFileError(f"split folder {folder} for mode '{mode}' does not exist; {layout.expected(root)}")


def _listed_videos(layout: Layout, split: Path, mode: str, data: Mapping[str, Any]) -> list[tuple[Path, int]]:
    split_dir = Path(data.get("split_dir") or layout.default_split_dir).expanduser()
    list_file = split_dir / layout.list_files[mode]
    if not list_file.is_file():
        raise MissingFileError(f"split list {list_file} for mode '{mode}' does not exist (Data.split_dir)")
    entries = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    if not entries:
        raise DataLayoutError(f"split list {list_file} is empty")
    videos = [(split / layout.list_entry(e), layout.repeat_factor(e) if layout.repeat_factor else 1)
              for e in entries]
    missing = [str(path) for path, _ in videos if not path.is_dir()]
    if missing:
        logger.warning("%d of %d videos listed in %s are missing under %s and are skipped: %s%s",
                       len(missing), len(videos), list_file, split, ", ".join(missing[:_MAX_LISTED]),
                       " ..." if len(missing) > _MAX_LISTED else "")
    return [(path, rep) for path, rep in videos if path.is_dir()]


def find_videos(layout: Layout, data: Mapping[str, Any], mode: str, unreadable: Optional[list] = None) -> list[Video]:
    """List the videos of one split with their frames; videos too short for a clip, and video files that cannot be
    read (their messages are appended to ``unreadable`` when given), are skipped with one warning each."""
    root = Path(str(data["data_path"])).expanduser()
    split = _split_folder(layout, root, mode, data)
    if layout.list_files:
        candidates = _listed_videos(layout, split, mode, data)
    else:
        candidates = [(path, 1) for path in _subfolders(split, layout.video_depth, layout.video_files)]
    if not candidates:
        raise DataLayoutError(f"no videos found for mode '{mode}' in {split}{_not_videos(split, layout)}; "
                              f"{layout.expected(root)}")
    length, extensions = int(data["sequence_length"]), _extensions(data)
    videos, short, bad = [], [], []
    for path, repeat in tqdm(candidates, desc=f"indexing {layout.name}/{mode}", leave=False,
                             disable=len(candidates) < 2000):
        try:
            video = _video(path, repeat, extensions)
        except VideoFileError as exc:  # empty, corrupt, no frames: the others are used
            bad.append(str(exc))
            continue
        (videos if len(video) >= length else short).append(video)
    if unreadable is not None:
        unreadable.extend(bad)
    if bad:
        logger.warning("skipping %d of %d videos in %s that cannot be read: %s%s", len(bad), len(candidates), split,
                       "; ".join(bad[:_MAX_LISTED]), " ..." if len(bad) > _MAX_LISTED else "")
    if short:
        names = ", ".join(f"{v.path} ({len(v)} frames)" for v in short[:_MAX_LISTED])
        logger.warning("skipping %d of %d videos in %s with fewer than sequence_length=%d frames: %s%s",
                       len(short), len(candidates), split, length, names, " ..." if len(short) > _MAX_LISTED else "")
    if not videos:
        files = f" or {suffix_list(VIDEO_SUFFIXES)} files" if layout.video_files else ""
        why = f" ({len(bad)} unreadable: {bad[0]})" if bad else ""
        raise DataLayoutError(f"no video in {split} (mode '{mode}') has at least sequence_length={length} frames "
                              f"with extension {'/'.join(extensions)}{files}{why}; {layout.expected(root)}")
    _warn_gaps(videos, split)
    return videos


class FrameFolderDataset(Dataset):
    """Clips of ``sequence_length`` consecutive frames from folders of frames or video files."""

    def __init__(self, videos: Sequence[Video], sequence_length: int, transform: Callable[[torch.Tensor], torch.Tensor],
                 mode: str = "train", random_start: bool = True, control: bool = False, reverse: bool = False,
                 fixed_clips: Optional[Sequence[tuple[int, int]]] = None) -> None:
        if not videos:
            raise DataLayoutError("a dataset needs at least one video")
        self.videos = list(videos)
        self.sequence_length = int(sequence_length)
        self.transform = transform
        self.mode = mode
        self.random_start = random_start
        self.control = control
        self.reverse = reverse and mode == "train"
        short = [str(v.path) for v in self.videos if len(v) < self.sequence_length]
        if short:
            raise DataLayoutError(f"videos shorter than sequence_length={sequence_length}: {short[:_MAX_LISTED]}")
        if control:
            missing = [str(v.path / POSITIONS_FILE) for v in self.videos if not (v.path / POSITIONS_FILE).is_file()]
            if missing:
                raise MissingFileError(f"control needs {POSITIONS_FILE} in every video folder; {len(missing)} "
                                        f"missing, e.g. {missing[:3]} (re-run data/bair/convert_bair.py)")
        if fixed_clips is not None:
            self._clips = np.asarray(fixed_clips, dtype=np.int64).reshape(-1, 2)
        else:
            video_idx = np.repeat(np.arange(len(self.videos)), [v.repeat for v in self.videos])
            self._clips = np.stack([video_idx, np.full_like(video_idx, -1)], axis=1)
        self._positions: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._clips)

    def clip_for(self, index: int) -> tuple[int, int]:
        """``(video index, start frame)`` of item ``index``; random in training, fixed per index otherwise."""
        video_idx, start = (int(v) for v in self._clips[index])
        if start >= 0:
            return video_idx, start
        n_starts = len(self.videos[video_idx]) - self.sequence_length + 1
        if not self.random_start:
            return video_idx, 0
        if self.mode == "train":
            return video_idx, int(torch.randint(0, n_starts, ()))
        return video_idx, int(np.random.default_rng([EVAL_SEED, index]).integers(0, n_starts))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} clips")
        video_idx, start = self.clip_for(index)
        video = self.videos[video_idx]
        last = start + self.sequence_length - 1
        if video.is_file:  # decoded from the key frame before ``start``
            clip = read_clip_file(video.path, start, self.sequence_length)
        else:
            clip = read_clip([video.path / name for name in video.frames[start:last + 1]])
        if self.reverse and float(torch.rand(())) < 0.5:
            clip, last = clip.flip(0), start
        item = {"seq": self.transform(clip)}
        if self.control:
            positions = self._positions.get(video_idx)
            if positions is None:
                positions = self._positions.setdefault(video_idx, read_positions(video.path))
            if last >= len(positions):
                raise FrameReadError(f"{video.path / POSITIONS_FILE} has {len(positions)} rows; frame {last} needed")
            item["cond"] = torch.from_numpy(positions[last].copy())
        return item

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(mode={self.mode!r}, videos={len(self.videos)}, clips={len(self)}, "
                f"sequence_length={self.sequence_length}, control={self.control})")


def _normalise_mode(mode: str) -> str:
    key = _MODE_ALIASES.get(str(mode).lower(), str(mode).lower())
    if key not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return key


def build_dataset(layout: Layout, data: Mapping[str, Any], mode: str, control: bool = False) -> FrameFolderDataset:
    """Build the dataset of one split of ``layout`` from a config's ``Data`` section."""
    mode = _normalise_mode(mode)
    for key in ("data_path", "sequence_length", "img_size"):
        if key not in data:
            raise KeyError(f"config Data section lacks '{key}'")
    if control and not layout.supports_control:
        raise DataLayoutError(f"control (Training.control) is only available for BAIR, not '{layout.name}'")
    iterations = int(data.get(f"iter_{mode}", 1))
    videos = [replace(v, repeat=v.repeat * iterations) for v in find_videos(layout, data, mode)]
    length = int(data["sequence_length"])
    fixed_clips = None
    if mode == "test" and layout.test_clips_key:
        rng = np.random.default_rng(TEST_CLIPS_SEED)
        n_clips = int(data.get(layout.test_clips_key) or 1000)
        video_idx = np.arange(n_clips) % len(videos)  # clip i from video i mod n, as the original's iPER test set
        fixed_clips = [(int(v), int(rng.integers(0, len(videos[v]) - length + 1))) for v in video_idx]
    margin = data.get("crop_margin")
    margin = int(layout.crop_margin if margin is None else margin)
    transform = ClipTransform.from_config(data, train=mode == "train", crop_margin=margin)
    dataset = FrameFolderDataset(videos, length, transform, mode=mode, random_start=layout.random_start[mode],
                                 control=control, reverse=bool(data.get("reverse", False)), fixed_clips=fixed_clips)
    logger.info("%s %s: %d videos, %d clips per epoch", layout.name, mode, len(videos), len(dataset))
    return dataset


def get_dataset(config: Mapping[str, Any], mode: str, control: Optional[bool] = None) -> FrameFolderDataset:
    """The dataset of split ``mode`` ('train', 'eval', 'test') described by a full parsed config.

    ``control`` defaults to ``config['Training'].get('control', False)``.
    """
    data = config["Data"]
    if control is None:
        control = bool((config.get("Training") or {}).get("control", False))
    return build_dataset(get_layout(data["dataset"]), data, mode, control=control)

