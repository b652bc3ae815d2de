"""Diversity of several realisations sampled for the same start frame.

Input: a tensor ``(n_realiz, B, T, 3, H, W)`` in ``[-1, 1]`` (realisation ``i`` of example ``b`` is
``x[i, b]``), or an iterable of such tensors (batches over examples). Scores:

- VGG: frames resized to 224x224 (bilinear), ImageNet-normalised, VGG16 features relu1_2, relu2_2,
  relu3_3, relu4_3, relu5_3; per layer, the mean squared difference between the features of every
  ordered pair of different realisations (mean over all elements, pairs, frames and examples); the
  score is the mean over the five layers.
- I3D / DTI3D: the same with one embedding per video: the FVD-protocol I3D logits, or the DTFVD
  representation of the DTDB I3D (reported x1000).
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from metrics.fvd import FVDFeatureExtractor

logger = logging.getLogger(__name__)

VGG_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DTI3D_SCALE = 1000.0


def pairwise_sq_diff_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over ordered pairs i != j of the squared differences ``(x[i] - x[j])**2``, elementwise summed
    over everything but dim 1: x (n, M, ...) -> (M,) in float64."""
    n = x.shape[0]
    total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    for i in range(n):
        for j in range(i + 1, n):
            total += 2.0 * (x[i] - x[j]).double().pow(2).flatten(1).sum(1)
    return total


def _chunks(realizations: torch.Tensor | Iterable[torch.Tensor], batch_size: int) -> Iterator[torch.Tensor]:
    """(n, b, ...) chunks with b <= batch_size along the example axis."""
    for batch in ([realizations] if isinstance(realizations, torch.Tensor) else realizations):
        if batch.dim() != 6 or batch.shape[0] < 2:
            raise ValueError(f"expected (n_realiz >= 2, B, T, 3, H, W), got {tuple(batch.shape)}")
        yield from batch.split(batch_size, dim=1)


@torch.no_grad()
def vgg_layer_diversity(realizations: torch.Tensor, vgg: nn.Module, device: torch.device | str = "cpu",
                        frame_batch: int = 8, size: int | None = 224) -> torch.Tensor:
    """Per start frame and VGG layer, the mean squared feature difference between different realisations:
    ``(n_realiz, B, T, 3, H, W)`` -> ``(B, 5)`` float64 (mean over ordered pairs, frames and elements)."""
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    n, b = realizations.shape[:2]
    out = torch.zeros(b, len(VGG_LAYERS), dtype=torch.float64)
    for e in range(b):
        counts = torch.zeros(len(VGG_LAYERS), dtype=torch.float64)
        for part in realizations[:, e].split(max(1, frame_batch), dim=1):  # (n, frames, 3, H, W)
            x = part.to(device, torch.float32).clamp(-1, 1).flatten(0, 1)
            if size is not None and x.shape[-2:] != (size, size):
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            x = ((x + 1.0) / 2.0 - mean) / std
            for k, feat in enumerate(vgg(x)):
                feat = feat.view(n, -1, *feat.shape[1:])
                out[e, k] += pairwise_sq_diff_sum(feat).sum().cpu()
                counts[k] += n * (n - 1) * feat[0].numel()
        out[e] /= counts
    return out


@torch.no_grad()
def vgg_diversity(realizations: torch.Tensor | Iterable[torch.Tensor], vgg: nn.Module,
                  device: torch.device | str = "cpu", frame_batch: int = 8, size: int | None = 224,
                  per_layer: bool = False) -> float | dict[str, float]:
    """VGG16 diversity (mean over the five layers, or a dict per layer with ``per_layer=True``).

    ``vgg`` maps ImageNet-normalised frames to the five feature maps
    (:func:`metrics.lpips_metric.load_vgg16_features`). ``size=None`` skips resizing (tests).
    Every start frame has the same number of terms, so this is the mean of :func:`vgg_layer_diversity`.
    """
    per_example = [vgg_layer_diversity(chunk, vgg, device, frame_batch, size)
                   for chunk in tqdm(_chunks(realizations, max(1, frame_batch)), desc="VGG diversity", leave=False)]
    if not per_example:
        raise ValueError("no realisations given")
    layer_means = torch.cat(per_example).mean(0).tolist()
    for name, value in zip(VGG_LAYERS, layer_means):
        logger.info("VGG diversity %s: %.6g", name, value)
    if per_layer:
        return dict(zip(VGG_LAYERS, layer_means))
    return float(sum(layer_means) / len(layer_means))


def diversity_from_embeddings(embeddings: torch.Tensor, scale: float = 1.0) -> float:
    """``scale`` x the mean over ordered pairs of different realisations of the mean squared difference of
    their embeddings; ``embeddings`` (B, n_realiz, D)."""
    e = torch.as_tensor(embeddings).double().transpose(0, 1)  # (n, B, D)
    n = e.shape[0]
    if n < 2 or e.shape[1] == 0:
        raise ValueError(f"need at least 2 realisations of at least 1 start frame, got {tuple(embeddings.shape)}")
    return scale * float(pairwise_sq_diff_sum(e).sum()) / (n * (n - 1) * e[0].numel())


@torch.no_grad()
def embedding_diversity(realizations: torch.Tensor | Iterable[torch.Tensor],
                        embed: Callable[[torch.Tensor], torch.Tensor], batch_size: int = 8,
                        scale: float = 1.0, desc: str = "embedding diversity") -> float:
    """``scale`` x mean squared difference between the embeddings (B, D) of different realisations."""
    embeddings = []
    for chunk in tqdm(_chunks(realizations, batch_size), desc=desc, leave=False):
        n, b = chunk.shape[:2]
        embeddings.append(embed(chunk.flatten(0, 1)).view(n, b, -1).transpose(0, 1).cpu())  # (b, n, D)
    if not embeddings:
        raise ValueError("no realisations given")
    return diversity_from_embeddings(torch.cat(embeddings), scale)


def dti3d_diversity(realizations: torch.Tensor | Iterable[torch.Tensor], extractor: FVDFeatureExtractor,
                    batch_size: int = 8) -> float:
    """DTI3D diversity x1000: embeddings of the DTDB I3D (``extractor`` with protocol 'dtfvd')."""
    if extractor.protocol != "dtfvd":
        raise ValueError("DTI3D diversity needs an extractor with protocol 'dtfvd'")
    return embedding_diversity(realizations, extractor, batch_size, scale=DTI3D_SCALE, desc="DTI3D diversity")
