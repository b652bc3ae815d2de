"""Evaluation metrics: FVD / PFVD / DTFVD, FID, LPIPS and diversity scores.

Weights of the backbones are read from local files (see :mod:`metrics.weights`); nothing is
downloaded at run time. Videos are (B, T, 3, H, W) tensors in [-1, 1].
"""
from metrics.diversity import dti3d_diversity, embedding_diversity, i3d_diversity, vgg_diversity
from metrics.dti3d import DTDBI3D, load_dtdb_i3d
from metrics.fid import FIDFeatureExtractor, compute_fid, extract_fid_features, load_fid_inception
from metrics.frechet import frechet_distance, frechet_distance_from_features, statistics
from metrics.fvd import FVDFeatureExtractor, compute_fvd, extract_i3d_features, fvd_from_videos
from metrics.i3d import KineticsI3D, load_kinetics_i3d, load_torchscript_i3d
from metrics.lpips_metric import compute_lpips, load_lpips, load_vgg16_features, lpips_per_video
from metrics.weights import WEIGHTS, weights_path

__all__ = [
    "DTDBI3D", "FIDFeatureExtractor", "FVDFeatureExtractor", "KineticsI3D", "WEIGHTS",
    "compute_fid", "compute_fvd", "compute_lpips", "dti3d_diversity", "embedding_diversity",
    "extract_fid_features", "extract_i3d_features", "frechet_distance", "frechet_distance_from_features",
    "fvd_from_videos", "i3d_diversity", "load_dtdb_i3d", "load_fid_inception", "load_kinetics_i3d",
    "load_lpips", "load_torchscript_i3d", "load_vgg16_features", "lpips_per_video", "statistics",
    "vgg_diversity", "weights_path",
]
