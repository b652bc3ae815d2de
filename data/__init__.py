"""Video data: one folders-of-frames dataset for BAIR, Landscape, iPER, DTDB and users' own clips.

Typical use::

    from data import get_dataset, make_loader
    train = get_dataset(config, 'train')          # config: the full parsed YAML
    loader = make_loader(train, batch_size=8, shuffle=True, workers=4)
"""
from .augment import ClipTransform
from .dataset import DataLayoutError, FrameFolderDataset, build_dataset, find_videos, get_dataset, get_loader
from .frame_io import FrameReadError, read_clip, read_positions
from .layouts import LAYOUTS, Layout, get_layout
from .loader import make_loader, seed_worker

__all__ = [
    "ClipTransform", "DataLayoutError", "FrameFolderDataset", "FrameReadError", "LAYOUTS", "Layout",
    "build_dataset", "find_videos", "get_dataset", "get_layout", "get_loader", "make_loader", "read_clip",
    "read_positions", "seed_worker",
]
