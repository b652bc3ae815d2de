"""Videos as data: video files (.mp4/.webm/.mov/.avi/.mkv/.m4v/.gif, :data:`data.formats.VIDEO_SUFFIXES`) and folders
of frames, for every reader: the ``folder`` dataset's clips, transfer queries, start frames, ``metrics.compare``,
``python -m data.check`` and ``python -m data.prepare_videos``.

Video files are decoded with PyAV, whose wheels bundle FFmpeg (``pip install -r requirements.txt`` is all it needs;
torchcodec needs FFmpeg's shared libraries on the system). A clip is read by seeking to the key frame before its
first frame and decoding from there, not the whole file. Frames are found by their presentation timestamps: the
sorted timestamps of a file's video packets (one demuxing pass, no decoding) are its frame index, cached per file
(path, size, modification time) in each process. Frame counts come from the container where it stores one (MP4,
MOV, AVI), else from that index. Every problem with a file (missing, empty, corrupt, no video stream, no frames,
fewer frames than needed) is a :class:`VideoFileError` that names the file.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import cv2
import imageio.v2 as imageio
import numpy as np
import torch
from natsort import natsorted

from data.formats import IMAGE_SUFFIXES, VIDEO_SUFFIXES, is_hidden, is_image, is_video_file, suffix_list
from data.frame_io import FrameReadError
from utils.errors import ArgumentError, MissingFileError

logger = logging.getLogger(__name__)

__all__ = ["VideoFileError", "VideoInfo", "probe", "frame_count", "read_frames", "read_clip_file", "iter_frames",
           "list_videos", "image_files", "read_video", "video_length", "first_frame"]

INDEXED_CONTAINERS = (".mp4", ".mov", ".m4v", ".avi")  # their headers hold a trustworthy frame count
_CACHE_SIZE = 4096  # files whose frame index a process keeps


class VideoFileError(FrameReadError):
    """A video file cannot be used: missing, empty, corrupt, without a video stream, or with too few frames."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video file's video stream."""

    frames: int
    width: int
    height: int
    fps: float | None  # the average frame rate, None when the container gives none


@dataclass(frozen=True)
class _Index:
    """A file's frames: their sorted timestamps, or None when packets carry none (then counted in decoding order)."""

    pts: np.ndarray | None
    count: int


_index_cache: OrderedDict[tuple, _Index] = OrderedDict()
_info_cache: OrderedDict[tuple, VideoInfo] = OrderedDict()


def _key(path: Path) -> tuple:
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def _cached(cache: OrderedDict, key: tuple, make):
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    cache[key] = value = make()
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return value


def _check(path: Path) -> Path:
    """``path`` if it is a non-empty file; else a :class:`VideoFileError` naming it."""
    if not path.is_file():
        raise VideoFileError(f"cannot read video {path}: " + ("a folder, not a video file" if path.is_dir()
                                                               else "no such file"))
    if path.stat().st_size == 0:
        raise VideoFileError(f"cannot read video {path}: an empty file (0 bytes)")
    return path


def _open(path: Path) -> "av.container.InputContainer":
    """The opened container of ``path`` with at least one video stream; :class:`VideoFileError` naming it otherwise."""
    _check(path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoFileError(f"cannot read video {path}: not a readable video file "
                             f"({getattr(exc, 'strerror', None) or exc})") from None
    if not container.streams.video:
        container.close()
        raise VideoFileError(f"cannot read video {path}: the file holds no video (no video stream with frames)")
    return container


def _stream(container: "av.container.InputContainer") -> "av.video.stream.VideoStream":
    stream = container.streams.video[0]
    stream.thread_count = 1  # one decoding thread: loader workers are the parallelism; faster for short clips too
    # (16-frame clips, measured on 2 cores: 10.6 ms single-threaded, 20.9 ms slice threads, 34.2 ms frame threads)
    return stream


def _scan(path: Path) -> _Index:
    """One demuxing pass (no decoding) over the video packets."""
    with _open(path) as container:
        stream = container.streams.video[0]
        try:
            stamps = [p.pts if p.pts is not None else p.dts for p in container.demux(stream) if p.size]
        except av.error.FFmpegError as exc:
            raise VideoFileError(f"cannot read video {path}: corrupt ({exc})") from None
    if any(s is None for s in stamps):
        return _Index(None, len(stamps))
    pts = np.unique(np.asarray(stamps, dtype=np.int64))
    return _Index(pts if len(pts) == len(stamps) else None, len(stamps))  # repeated stamps: decoding order


def _frame_index(path: Path) -> _Index:
    """The file's frame index, cached per file (path, size, modification time)."""
    return _cached(_index_cache, _key(_check(path)), lambda: _scan(path))


def _probe(path: Path) -> VideoInfo:
    with _open(path) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        rate = stream.average_rate or stream.guessed_rate
        frames = int(stream.frames or 0) if path.suffix.lower() in INDEXED_CONTAINERS else 0
    if frames <= 0:
        frames = _frame_index(path).count
    if frames <= 0:
        raise VideoFileError(f"cannot read video {path}: the file holds no video (no frames)")
    return VideoInfo(frames, int(width), int(height), float(rate) if rate else None)


def probe(path: str | Path) -> VideoInfo:
    """Frame count, size and frame rate of a video file: the count from the container (MP4, MOV, AVI) or from its
    packets (one demuxing pass for WebM, MKV, GIF); cached per file. 0 frames is a :class:`VideoFileError`."""
    path = Path(path)
    return _cached(_info_cache, _key(_check(path)), lambda: _probe(path))


def frame_count(path: str | Path) -> int:
    """The number of frames of a video file (:func:`probe`)."""
    return probe(path).frames


def _rgb_array(frame: "av.VideoFrame") -> np.ndarray:
    return frame.to_ndarray(format="rgb24")  # (H, W, 3) uint8; grey repeated, alpha dropped


def _decode_in_order(path: Path, start: int, count: int) -> list[np.ndarray]:
    """Frames ``start .. start+count-1`` counted in decoding order from the file's start (files whose packets carry
    no usable timestamps)."""
    frames: list[np.ndarray] = []
    with _open(path) as container:
        for k, frame in enumerate(container.decode(_stream(container))):
            if k >= start:
                frames.append(_rgb_array(frame))
            if len(frames) == count:
                break
    return frames


def _decode_by_pts(path: Path, wanted: np.ndarray, seek: bool) -> list[np.ndarray] | None:
    """The frames whose timestamps are ``wanted`` (sorted), decoded from the key frame at or before the first one
    (``seek``) or from the file's start; None when the seek went past the first wanted frame, [] when the decoded
    timestamps are not in presentation order (AVI with B-frames numbers its packets in decoding order)."""
    targets = {int(t): i for i, t in enumerate(wanted)}
    first, last = int(wanted[0]), int(wanted[-1])
    found: dict[int, np.ndarray] = {}
    previous = None
    with _open(path) as container:
        stream = _stream(container)
        if seek:
            container.seek(first, stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            pts = frame.pts
            if pts is None:
                continue
            if previous is not None and pts <= previous:
                return []  # timestamps that do not rise: they say nothing of the frames' order
            previous = pts
            if seek and not found and pts > first:
                return None  # landed after the clip's first frame (a container that seeks coarsely)
            if pts in targets:
                found[targets[pts]] = _rgb_array(frame)
            if pts >= last:
                break
    return [found[i] for i in sorted(found)]


def read_frames(path: str | Path, start: int = 0, count: int | None = None) -> np.ndarray:
    """Frames ``start .. start+count-1`` (all from ``start`` when ``count`` is None) of a video file as RGB uint8
    (count, H, W, 3), decoded from the key frame before ``start`` (not from the file's start). Too few frames, or
    frames that do not decode, are a :class:`VideoFileError` naming the file."""
    path = Path(path)
    if start == 0 and count is not None and count > 0:  # the first frames (start frames, n_frames): no index pass
        try:
            frames = _decode_in_order(path, 0, int(count))
        except av.error.FFmpegError:
            frames = []
        if len(frames) == count:
            return _stacked(frames)
    index = _frame_index(path)  # what is wrong with the file, below
    if index.count == 0:
        raise VideoFileError(f"cannot read video {path}: the file holds no video (no frames)")
    count = index.count - start if count is None else int(count)
    if start < 0 or count <= 0 or start + count > index.count:
        need = f"frames {start}..{start + count - 1}" if start else f"{count} frames"
        raise VideoFileError(f"video {path} has {index.count} frames; {need} needed")
    try:
        if index.pts is None:
            frames = _decode_in_order(path, start, count)
        else:
            wanted = index.pts[start:start + count]
            try:
                frames = _decode_by_pts(path, wanted, seek=start > 0)
            except av.error.FFmpegError:  # a container that cannot seek: decoded from its start below
                frames = None
            if frames is None:
                frames = _decode_by_pts(path, wanted, seek=False)
            if len(frames) != count:  # decoded timestamps other than the packets' or out of order: count in
                # decoding order (the decoder's output order is the presentation order), for this file from now on
                _index_cache[_key(path)] = _Index(None, index.count)
                frames = _decode_in_order(path, start, count)
    except av.error.FFmpegError as exc:
        raise VideoFileError(f"cannot read video {path}: corrupt ({exc})") from None
    if len(frames) != count:
        raise VideoFileError(f"cannot read video {path}: {count - len(frames)} of frames {start}..{start + count - 1} "
                             "did not decode (the file is damaged or truncated)")
    return _stacked(frames)


def _stacked(frames: list[np.ndarray]) -> np.ndarray:
    """(T, H, W, 3): a stream whose size changes has every frame at the first one's size."""
    if len({f.shape for f in frames}) > 1:
        h, w = frames[0].shape[:2]
        frames = [f if f.shape[:2] == (h, w) else cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames]
    return np.stack(frames)


def read_clip_file(path: str | Path, start: int, count: int) -> torch.Tensor:
    """A clip of a video file as uint8 RGB (count, 3, H, W), like :func:`data.frame_io.read_clip` of frame files."""
    return torch.from_numpy(read_frames(path, start, count)).permute(0, 3, 1, 2)


def iter_frames(path: str | Path) -> Iterator[tuple[float, np.ndarray]]:
    """``(time in seconds, RGB uint8 (H, W, 3))`` of every frame of a video file, decoded in one pass."""
    path = Path(path)
    with _open(path) as container:
        stream = _stream(container)
        base = stream.time_base
        try:
            for k, frame in enumerate(container.decode(stream)):
                time = float(frame.pts * base) if frame.pts is not None and base else float(k)
                yield time, _rgb_array(frame)
        except av.error.FFmpegError as exc:
            raise VideoFileError(f"cannot read video {path}: corrupt ({exc})") from None


# ---------------------------------------------------------------------- files and frame folders alike
def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder`` (not hidden ones), in natural order: a video's frames, start frames."""
    return natsorted((p for p in folder.iterdir() if p.is_file() and is_image(p) and not is_hidden(p)),
                     key=lambda p: p.name)


def list_videos(source: str | Path) -> list[Path]:
    """A video file, or the videos of a folder (sub-folders of frames and video files, natural order); errors
    name the path (and, when the folder holds no video, the files it does hold)."""
    source = Path(source)
    if source.is_file():
        if not is_video_file(source):
            raise ArgumentError(f"{source.resolve()} is not a video file; expected a folder of videos or a "
                                f"{suffix_list(VIDEO_SUFFIXES)} file")
        return [source]
    if not source.exists():
        raise MissingFileError(f"video folder not found: {source.resolve()}")
    entries = [p for p in source.iterdir() if not is_hidden(p) and (p.is_dir() or is_video_file(p))]
    if not entries:
        others = natsorted(p.name for p in source.iterdir() if p.is_file() and not is_hidden(p))
        seen = f"; it holds {len(others)} other file(s): {', '.join(others[:5])}{' ...' if len(others) > 5 else ''}" \
            if others else ""
        raise MissingFileError(f"no videos in {source.resolve()}: expected sub-folders of frames or "
                               f"{suffix_list(VIDEO_SUFFIXES)} files{seen}")
    return natsorted(entries, key=lambda p: p.name)


def video_length(path: str | Path) -> int:
    """Frames of a video file or a folder of frames."""
    path = Path(path)
    return len(image_files(path)) if path.is_dir() else frame_count(path)


def first_frame(path: str | Path) -> np.ndarray:
    """Frame 0 of a video file or a folder of frames as RGB uint8 (H, W, 3)."""
    path = Path(path)
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise MissingFileError(f"no frames ({suffix_list(IMAGE_SUFFIXES)}) in {path}")
        return _rgb(imageio.imread(files[0]))
    return read_frames(path, 0, 1)[0]


def read_video(path: str | Path, n_frames: int | None = None) -> torch.Tensor:
    """A video file or a folder of frames as (T, 3, H, W) in [-1, 1]; ``n_frames``: only the first ones (a file
    is decoded no further; a :class:`VideoFileError` when it has fewer)."""
    path = Path(path)
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise MissingFileError(f"no frames ({suffix_list(IMAGE_SUFFIXES)}) in {path}")
        if n_frames is not None and len(files) < n_frames:
            raise VideoFileError(f"video {path} has {len(files)} frames; {n_frames} are needed")
        frames = np.stack([_rgb(imageio.imread(f)) for f in files[:n_frames]])
    elif path.exists() or path.suffix:
        frames = read_frames(path, 0, n_frames)
    else:
        raise MissingFileError(f"video not found: {path}")
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _rgb(frame: np.ndarray) -> np.ndarray:
    """A decoded frame (H, W), (H, W, 1|2|3|4) as RGB (H, W, 3): grey repeated, alpha dropped."""
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = frame[..., None]
    return np.repeat(frame[..., :1], 3, axis=-1) if frame.shape[-1] < 3 else frame[..., :3]
