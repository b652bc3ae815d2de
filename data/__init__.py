"""Video data: one folders-of-frames dataset for BAIR, Landscape, iPER, DTDB and users' own clips.

Typical use::

    from data import get_dataset, make_loader
    train = get_dataset(config, 'train')          # config: the full parsed YAML
    loader = make_loader(train, batch_size=8, shuffle=True, workers=4)

The names below are the package's public API, imported on first use (PEP 562) so that ``data.registry`` and
``data.config`` (the dataset names and the ``Data`` section a config is checked against) load without torch,
OpenCV or kornia; the project's own modules import from the submodules directly.
"""
import importlib

_EXPORTS = {
    "ClipTransform": "augment",
    "DataLayoutError": "dataset", "FrameFolderDataset": "dataset", "build_dataset": "dataset",
    "find_videos": "dataset", "get_dataset": "dataset",
    "FrameReadError": "frame_io", "read_clip": "frame_io", "read_positions": "frame_io",
    "DATASETS": "registry", "DatasetInfo": "registry", "Layout": "registry", "dataset_info": "registry",
    "get_layout": "registry",
    "make_loader": "loader", "seed_worker": "loader",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
