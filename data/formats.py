"""Which files are frames/images and which are videos, one list for every reader and every command line: the
datasets' frame folders, start frames (``-images``, the app), transfer queries (``-videos``), ``metrics.compare``,
``python -m data.check`` and ``python -m data.prepare_videos``. No torch here, so that argument checks answer before
torch is imported."""
from __future__ import annotations

from pathlib import Path

# images OpenCV decodes (frames of a video folder, start frames); GIF is a video (data.videos reads its frames)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
IMAGE_EXTENSIONS = IMAGE_SUFFIXES  # the name the dataset code and the preparation scripts use
# video files PyAV (FFmpeg) decodes (data.videos)
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v", ".gif")


def is_image(path: str | Path) -> bool:
    """Whether ``path`` names an image file by its suffix (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_video_file(path: str | Path) -> bool:
    """Whether ``path`` names a video file by its suffix (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def is_hidden(path: str | Path) -> bool:
    """Hidden files and folders (``.x``: macOS ``._frame1.jpg``, a half-written ``.video.partial``) are not data."""
    return Path(path).name.startswith(".")


def suffix_list(suffixes: tuple[str, ...]) -> str:
    """``'png/jpg/...'`` for messages."""
    return "/".join(s.lstrip(".") for s in suffixes)


def unique_names(paths: list[Path]) -> list[str]:
    """Output names of inputs: a file's stem, a folder's name; where two would clash (``a.mp4`` and ``a.gif``) the
    file's full name with its dot replaced (``a_mp4``, ``a_gif``)."""
    stems = [p.name if p.is_dir() else p.stem for p in map(Path, paths)]
    return [stem if stems.count(stem) == 1 else Path(p).name.replace(".", "_") for stem, p in zip(stems, paths)]
