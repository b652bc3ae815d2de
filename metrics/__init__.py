"""Evaluation metrics: FVD / PFVD / DTFVD, FID, LPIPS and diversity scores, the feature networks they use and the
counting protocols (the maths; :mod:`evaluation` runs them over a model's samples or two folders of videos).

Weights of the backbones are read from local files (see :mod:`metrics.weights`); nothing is
downloaded at run time. Videos are (B, T, 3, H, W) tensors in [-1, 1]. The names below are the package's
public API, imported on first use so that importing one submodule does not load every network's code.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "metrics.diversity": ("dti3d_diversity", "embedding_diversity", "vgg_diversity"),
    "metrics.dti3d": ("DTDBI3D", "load_dtdb_i3d"),
    "metrics.fid": ("FIDFeatureExtractor", "compute_fid", "extract_fid_features", "load_fid_inception"),
    "metrics.frechet": ("frechet_distance", "frechet_distance_from_features", "frechet_distance_to_features",
                        "statistics"),
    "metrics.fvd": ("FVDFeatureExtractor", "compute_fvd", "extract_i3d_features"),
    "metrics.i3d": ("KineticsI3D", "load_kinetics_i3d", "load_torchscript_i3d"),
    "metrics.lpips_metric": ("compute_lpips", "load_lpips", "load_vgg16_features", "lpips_per_frame",
                             "lpips_per_video"),
    "metrics.weights": ("WEIGHTS", "weights_path"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name in _MODULE_OF:
        return getattr(importlib.import_module(_MODULE_OF[name]), name)
    raise AttributeError(f"module 'metrics' has no attribute {name!r}")
