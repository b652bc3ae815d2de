"""FVD, PFVD and DTFVD: I3D embeddings of videos and the Frechet distance between them.

Videos are ``(B, T, 3, H, W)`` in ``[-1, 1]`` (values outside are clipped). Protocols:

``"fvd"``: the TF-Hub protocol of the FVD paper: map to ``[0, 255]``, resize every frame to 224x224
  with TF1's ``tf.image.resize_bilinear`` (``align_corners=False``, no half-pixel centres:
  ``src = dst * in / out``), scale back to ``[-1, 1]``, take the 400-d logits (averaged over time).
  Backbones: the hassony2 port (:class:`metrics.i3d.KineticsI3D`, default; it was converted from
  DeepMind's checkpoint and expects ``[-1, 1]``, so it is fed exactly what the TF graph is fed) or
  StyleGAN-V's TorchScript I3D (TF-Hub weights; called with ``rescale=False, resize=False,
  return_features=True`` on the same ``[-1, 1]`` 224x224 input). Numbers from the hassony2 weights
  are not identical to TF-Hub FVD, whose weights differ from DeepMind's release.
``"pfvd"``: the reference's training-time logging metric: ``[0, 1]`` inputs resized with
  ``align_corners=True`` fed to the hassony2 model; useful for logging, not comparable to paper FVD.
``"dtfvd"``: the DTDB I3D (:class:`metrics.dti3d.DTDBI3D`): frames resized to 224 (bilinear,
  ``align_corners=True``) and kept in ``[-1, 1]``; clips shorter than the network's length (16 or
  32) are tiled in time; the embedding is the 1024-d output of the final average pool.

The distance is one Frechet distance in float64 between all real and all fake embeddings; no
remainder batch is dropped (the reference's TF code drops videos beyond a multiple of 16).
"""
from __future__ import annotations

import logging
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from metrics.dti3d import DTDBI3D
from metrics.frechet import extract_features, frechet_distance_from_features
from metrics.i3d import KineticsI3D

logger = logging.getLogger(__name__)

PROTOCOLS = ("fvd", "pfvd", "dtfvd")
I3D_SIZE = 224
KINETICS_I3D_MIN_FRAMES = 10  # measured: 9 frames at 224x224 leave the (2, 7, 7) average pool one time step


def _tf1_interp_matrix(n_in: int, n_out: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(n_out, n_in) weights of TF1 bilinear resizing along one axis (no half-pixel centres)."""
    src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
    lo = src.floor().long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    frac = src - lo.double()
    mat = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    mat.index_put_((rows, lo), 1.0 - frac, accumulate=True)
    mat.index_put_((rows, hi), frac, accumulate=True)
    return mat.to(device=device, dtype=dtype)


def resize_bilinear_tf1(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (..., H, W) like TF1's ``tf.image.resize_bilinear(align_corners=False)``."""
    h_in, w_in = frames.shape[-2:]
    if (h_in, w_in) == tuple(size):
        return frames
    rows = _tf1_interp_matrix(h_in, size[0], frames.device, frames.dtype)
    cols = _tf1_interp_matrix(w_in, size[1], frames.device, frames.dtype)
    return rows @ frames @ cols.T


def _resize_frames(videos: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """(B, T, C, H, W) -> (B, T, C, size, size); mode 'tf1' or 'align_corners'."""
    b, t = videos.shape[:2]
    if videos.shape[-2:] == (size, size):
        return videos
    if mode == "tf1":
        return resize_bilinear_tf1(videos, (size, size))
    frames = F.interpolate(videos.flatten(0, 1), size=(size, size), mode="bilinear", align_corners=True)
    return frames.view(b, t, *frames.shape[1:])


def tile_time(videos: torch.Tensor, length: int) -> torch.Tensor:
    """Repeat (B, T, ...) videos in time and cut them to ``length`` frames when T < length."""
    t = videos.shape[1]
    if t >= length:
        return videos
    reps = -(-length // t)
    return videos.repeat(1, reps, *([1] * (videos.dim() - 2)))[:, :length]


class FVDFeatureExtractor:
    """Embeds (B, T, 3, H, W) videos in [-1, 1] with an I3D following one of ``PROTOCOLS``."""

    def __init__(self, model: nn.Module | torch.jit.ScriptModule, protocol: str = "fvd",
                 device: torch.device | str = "cpu", resize: bool = True) -> None:
        """``resize=False`` feeds frames at their own size (only for tests with tiny inputs)."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; choose from {PROTOCOLS}")
        if protocol == "dtfvd" and not isinstance(model, DTDBI3D):
            raise TypeError("the dtfvd protocol needs a DTDBI3D network")
        if protocol == "pfvd" and not isinstance(model, KineticsI3D):
            raise TypeError("the pfvd protocol needs the hassony2 KineticsI3D network")
        if protocol == "fvd" and isinstance(model, DTDBI3D):
            raise TypeError("the fvd protocol needs a Kinetics-400 I3D (KineticsI3D or TorchScript)")
        self.model = model.eval().to(device)
        self.protocol = protocol
        self.device = torch.device(device)
        self.resize = resize

    @property
    def min_frames(self) -> int:
        """The fewest frames a video may have: the Kinetics I3D at its 224x224 input needs
        :data:`KINETICS_I3D_MIN_FRAMES` (its strides leave fewer time steps than its final (2, 7, 7) average pool
        takes: a conv3d error); the DTDB I3D tiles shorter clips; 1 for frames fed at their own size (tests)."""
        return KINETICS_I3D_MIN_FRAMES if self.resize and self.protocol != "dtfvd" else 1

    def preprocess(self, videos: torch.Tensor) -> torch.Tensor:
        """Protocol input of the network, (B, 3, T, H', W')."""
        x = videos.to(self.device, torch.float32).clamp(-1.0, 1.0)
        if self.protocol == "fvd":
            x = (x + 1.0) * 127.5  # [0, 255], the TF graph's input
            if self.resize:
                x = _resize_frames(x, I3D_SIZE, "tf1")
            x = x / 127.5 - 1.0
        elif self.protocol == "pfvd":
            x = (x + 1.0) / 2.0
            if self.resize:
                x = _resize_frames(x, I3D_SIZE, "align_corners")
        else:
            x = tile_time(x, self.model.n_frames)
            if x.shape[1] > self.model.n_frames:
                raise ValueError(f"the {self.model.n_frames}-frame DTDB I3D got {x.shape[1]} frames")
            if self.resize:
                x = _resize_frames(x, I3D_SIZE, "align_corners")
        return x.permute(0, 2, 1, 3, 4).contiguous()

    @torch.no_grad()
    def __call__(self, videos: torch.Tensor) -> torch.Tensor:
        """Embeddings (B, D): 400-d logits (fvd, pfvd) or the 1024-d representation (dtfvd)."""
        x = self.preprocess(videos)
        if self.protocol == "dtfvd":
            return self.model.representation(x)
        if isinstance(self.model, torch.jit.ScriptModule):
            return self.model(x, rescale=False, resize=False, return_features=True)
        return self.model(x)[1]


def extract_i3d_features(videos: torch.Tensor | Iterable[torch.Tensor], extractor: FVDFeatureExtractor,
                         batch_size: int = 16) -> np.ndarray:
    """Embeddings (N, D) in float64 of all videos: a tensor (N, T, 3, H, W) or an iterable of batches."""
    return extract_features(videos, extractor, batch_size, desc=f"{extractor.protocol} features")


def compute_fvd(real_features: np.ndarray, fake_features: np.ndarray) -> float:
    """Frechet distance (float64) between real (N1, D) and fake (N2, D) video embeddings."""
    return frechet_distance_from_features(real_features, fake_features)
