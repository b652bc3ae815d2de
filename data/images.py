"""Start frames of the user scripts: listing and reading them as the original did (OpenCV), with a warning for each
image that is not a plain square RGB picture. A video (a file, or a folder of frames) gives its first frame."""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch
from natsort import natsorted
from PIL import Image

from data.augment import resize_clip
from data.formats import IMAGE_SUFFIXES, VIDEO_SUFFIXES, is_hidden, is_image, is_video_file, suffix_list
from data.frame_io import FrameReadError
from data.videos import first_frame, image_files, video_length
from utils.errors import MissingFileError

logger = logging.getLogger(__name__)

_GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
MIN_SIDE = 16  # pixels: a smaller start frame is upscaled from next to nothing (warned)


def list_images(source: str | Path) -> list[Path]:
    """An image file, or every image directly in a folder (:data:`data.formats.IMAGE_SUFFIXES`, naturally sorted);
    errors name the path."""
    source = Path(source)
    if source.is_file() and is_image(source):
        return [source]
    if not source.is_dir():
        raise MissingFileError(f"no image or image folder at {source.resolve()} "
                               f"(expected {suffix_list(IMAGE_SUFFIXES)})")
    files = image_files(source)
    if not files:
        raise MissingFileError(f"no images ({suffix_list(IMAGE_SUFFIXES)}) in {source.resolve()}")
    return files


def list_start_frames(source: str | Path) -> list[Path]:
    """Where start frames come from: an image or a video file; or a folder's images and video files (naturally
    sorted); or, in a folder without either, its sub-folders of frames (a ``folder`` dataset's split: each video's
    first frame). Errors name the path."""
    source = Path(source)
    if source.is_file() and (is_image(source) or is_video_file(source)):
        return [source]
    if not source.is_dir():
        raise MissingFileError(f"no image, video or folder of them at {source.resolve()} (expected "
                               f"{suffix_list(IMAGE_SUFFIXES)} images or {suffix_list(VIDEO_SUFFIXES)} videos)")
    visible = [p for p in source.iterdir() if not is_hidden(p)]
    files = [p for p in visible if p.is_file() and (is_image(p) or is_video_file(p))]
    if not files:
        files = [p for p in visible if p.is_dir() and any(is_image(f) for f in p.iterdir())]
    if not files:
        raise MissingFileError(f"no images or videos in {source.resolve()}: expected {suffix_list(IMAGE_SUFFIXES)} "
                               f"images, {suffix_list(VIDEO_SUFFIXES)} videos or sub-folders of frames")
    return natsorted(files, key=lambda p: p.name)


def check_start_frames(files: list[Path]) -> list[Path]:
    """``files`` once every video among them opens and has a frame (cheap: the container's header or packets, no
    decoding); an empty or damaged video is a :class:`~data.videos.VideoFileError` naming it."""
    for path in files:
        if path.is_dir() or is_video_file(path):
            if video_length(path) == 0:
                raise MissingFileError(f"no frames ({suffix_list(IMAGE_SUFFIXES)}) in {path}")
    return files


def _image_mode(path: Path) -> tuple[str, bool]:
    """(PIL mode, has transparency) from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            return im.mode, im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
    except Exception:  # not readable by PIL: OpenCV decides below
        return "", False


def read_image(path: str | Path, size: int) -> torch.Tensor:
    """An image as RGB (3, size, size) in [-1, 1], read as the original reads start frames (``cv2.imread``
    in colour mode: a grey image gets its grey level in all three channels, an alpha channel is dropped;
    a non-square image is resized to a square), with a warning for each of these cases and for an image below
    16x16 px. A video file or a folder of frames gives its first frame."""
    path = Path(path)
    if path.is_dir() or is_video_file(path):
        img = first_frame(path)  # RGB; a video file's errors name it
    else:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise FrameReadError(f"could not read image {path.resolve()} (missing, corrupt or not an image)")
        mode, alpha = _image_mode(path)
        if alpha:
            logger.warning("%s has an alpha channel (%s): it is dropped, transparent pixels keep their colour", path,
                           mode)
        if mode in _GREY_MODES:
            logger.warning("%s is a greyscale image: its grey level is used for R, G and B (as cv2.imread); the "
                           "model was trained on colour frames", path)
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    if min(h, w) < MIN_SIDE:
        logger.warning("%s is only %dx%d px (width x height), below %dx%d: it is upscaled to %dx%d and holds next to "
                       "no detail to start a video from", path, w, h, MIN_SIDE, MIN_SIDE, size, size)
    if h != w:
        logger.warning("%s is %dx%d (width x height), not square: resized to %dx%d as the original does (the "
                       "aspect ratio changes)", path, w, h, size, size)
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().unsqueeze(0) / 127.5 - 1.0
    return resize_clip(x, size)[0].clamp(-1, 1)  # the original's kornia Resize: bilinear, no antialiasing


def read_images(files: list[Path], size: int) -> torch.Tensor:
    """Stack of :func:`read_image`: (N, 3, size, size)."""
    return torch.stack([read_image(f, size) for f in files])
