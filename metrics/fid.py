"""FID over all frames with pytorch-fid's InceptionV3 (pool3, 2048-d) and local weights.

pytorch-fid's ``fid_inception_v3`` fetches its weights by URL; here the same network is assembled
from pytorch-fid's own building blocks and the weights are read from a local file
(``pt_inception-2015-12-05-6726825d.pth``, see :mod:`metrics.weights`), so nothing is downloaded.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable
from unittest import mock

import numpy as np
import torch
from pytorch_fid import inception as fid_inception
from torch import nn

from metrics.frechet import extract_features, frechet_distance_from_features
from metrics.weights import build_with_weights, load_backbone_weights

logger = logging.getLogger(__name__)

FID_DIM = 2048


def _build_fid_inception_v3(state_dict: dict[str, torch.Tensor] | None) -> nn.Module:
    """pytorch-fid's FID Inception (TF FID weights' structure); ``state_dict=None`` keeps random weights."""
    if state_dict is not None:
        return build_with_weights(lambda: _build_fid_inception_v3(None), state_dict)
    net = fid_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = fid_inception.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = fid_inception.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = fid_inception.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = fid_inception.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = fid_inception.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = fid_inception.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = fid_inception.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = fid_inception.FIDInceptionE_1(1280)
    net.Mixed_7c = fid_inception.FIDInceptionE_2(2048)
    return net


def load_fid_inception(device: torch.device | str = "cpu", path: str | Path | None = None,
                       allow_random_backbone: bool = False) -> fid_inception.InceptionV3:
    """pytorch-fid ``InceptionV3([3])`` (pool3 features) with local weights, eval mode, on ``device``.

    ``allow_random_backbone=True`` (tests only) keeps random weights when the file is missing.
    """
    net = _build_fid_inception_v3(load_backbone_weights("fid_inception", path, allow_random_backbone))
    with mock.patch.object(fid_inception, "fid_inception_v3", lambda: net):
        model = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[FID_DIM]])
    return model.eval().to(device)


class FIDFeatureExtractor:
    """Maps frames (N, 3, H, W) in [-1, 1] to 2048-d pool3 features of pytorch-fid's Inception."""

    def __init__(self, model: fid_inception.InceptionV3, device: torch.device | str = "cpu") -> None:
        self.model = model.eval().to(device)
        self.device = torch.device(device)

    @torch.no_grad()
    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        x = (frames.to(self.device, torch.float32).clamp(-1.0, 1.0) + 1.0) / 2.0  # pytorch-fid takes [0, 1]
        return self.model(x)[0].flatten(1)


def _frames(videos: torch.Tensor | Iterable[torch.Tensor]) -> Iterable[torch.Tensor]:
    """Frames of (B, T, 3, H, W) video batches (or of (N, 3, H, W) frame batches), flattened."""
    for batch in ([videos] if isinstance(videos, torch.Tensor) else videos):
        yield batch.flatten(0, 1) if batch.dim() == 5 else batch


def extract_fid_features(videos: torch.Tensor | Iterable[torch.Tensor], extractor: FIDFeatureExtractor,
                         batch_size: int = 64) -> np.ndarray:
    """pool3 features (N_frames, 2048), float64, of every frame of the videos (batched by frames)."""
    return extract_features(_frames(videos), extractor, batch_size, desc="FID features")


def compute_fid(real_features: np.ndarray, fake_features: np.ndarray) -> float:
    """Frechet distance (float64) between real and fake frame features."""
    return frechet_distance_from_features(real_features, fake_features)
