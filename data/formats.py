"""Which files are frames, start-frame images and videos, for every reader and every command line (no torch here,
so that argument checks answer before torch is imported)."""
from __future__ import annotations

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")  # the frames of a video folder (datasets)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")  # start frames of the scripts (-images)
VIDEO_SUFFIXES = (".gif", ".mp4")  # video files read whole (transfer queries, metrics.compare)
