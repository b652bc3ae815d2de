"""LPIPS (``lpips`` package, VGG variant) between real and generated videos, mean over frames.

The ``lpips`` package ships its linear heads; the torchvision ImageNet VGG16 trunk is read from a
local file (``vgg16-397923af.pth`` in torch hub's checkpoint cache or a given path) instead of being
downloaded. The same trunk serves the VGG diversity score (:mod:`metrics.diversity`).
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Iterable
from unittest import mock

import lpips
import torch
from lpips import pretrained_networks
from tqdm import tqdm

from metrics.frechet import iter_batches
from metrics.weights import build_with_weights, load_backbone_weights

logger = logging.getLogger(__name__)

# torchvision ``features`` index ranges of the five slices of lpips' vgg16 (ending at relu1_2 .. relu5_3)
VGG_SLICES = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))


def vgg16_trunk_state_dict(torchvision_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a torchvision VGG16 state dict (``features.<i>.*``) to lpips' ``slice<k>.<i>.*`` keys."""
    out: dict[str, torch.Tensor] = {}
    for key, value in torchvision_state.items():
        parts = key.split(".")
        if parts[0] != "features":
            continue
        index = int(parts[1])
        for k, (start, stop) in enumerate(VGG_SLICES, start=1):
            if start <= index < stop:
                out[".".join([f"slice{k}", *parts[1:]])] = value
    return out


def _trunk_state(path: str | Path | None, allow_random_backbone: bool) -> dict[str, torch.Tensor] | None:
    """lpips-keyed VGG16 trunk weights from the local file, or None (random trunk) when allowed."""
    state = load_backbone_weights("vgg16", path, allow_random_backbone)
    return None if state is None else vgg16_trunk_state_dict(state)


def _vgg16_trunk(state: dict[str, torch.Tensor] | None) -> pretrained_networks.vgg16:
    """lpips' VGG16 trunk (five slices) with ``state`` (lpips keys), or random weights for ``None``.

    With weights the trunk is built on the meta device (:func:`metrics.weights.build_with_weights`):
    torchvision's constructor would otherwise initialise the whole 138M-parameter VGG16 (seconds on a CPU)
    only for lpips to keep its 15M-parameter ``features``.
    """
    def build() -> pretrained_networks.vgg16:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torchvision's deprecation notice for pretrained=
            return pretrained_networks.vgg16(requires_grad=False, pretrained=False)

    return build() if state is None else build_with_weights(build, state).requires_grad_(False)


def load_vgg16_features(device: torch.device | str = "cpu", path: str | Path | None = None,
                        allow_random_backbone: bool = False) -> pretrained_networks.vgg16:
    """ImageNet VGG16 returning (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3), eval mode, on ``device``."""
    return _vgg16_trunk(_trunk_state(path, allow_random_backbone)).eval().to(device)


def load_lpips(device: torch.device | str = "cpu", vgg_path: str | Path | None = None,
               allow_random_backbone: bool = False) -> lpips.LPIPS:
    """``lpips.LPIPS(net='vgg')`` (package heads, v0.1) with the VGG16 trunk from a local file.

    ``allow_random_backbone=True`` (tests only) keeps a random trunk when the file is missing.
    """
    trunk = _vgg16_trunk(_trunk_state(vgg_path, allow_random_backbone))
    with mock.patch.object(pretrained_networks, "vgg16", lambda **kwargs: trunk):
        model = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False)
    return model.eval().requires_grad_(False).to(device)


@torch.no_grad()
def lpips_per_frame(real: torch.Tensor, fake: torch.Tensor, model: lpips.LPIPS,
                    device: torch.device | str = "cpu", frame_batch: int = 64) -> torch.Tensor:
    """LPIPS of each frame pair (B, T); videos (B, T, 3, H, W) in [-1, 1]."""
    if real.shape != fake.shape:
        raise ValueError(f"real and fake videos differ in shape: {tuple(real.shape)} vs {tuple(fake.shape)}")
    b, t = real.shape[:2]
    pairs = torch.stack([real, fake], 2).flatten(0, 1)  # (B*T, 2, 3, H, W)
    values = [model(p[:, 0].to(device).clamp(-1, 1), p[:, 1].to(device).clamp(-1, 1)).flatten().cpu()
              for p in iter_batches(pairs, frame_batch)]
    return torch.cat(values).view(b, t)


def lpips_per_video(real: torch.Tensor, fake: torch.Tensor, model: lpips.LPIPS,
                    device: torch.device | str = "cpu", frame_batch: int = 64) -> torch.Tensor:
    """LPIPS of each video pair (B,), averaged over frames; videos (B, T, 3, H, W) in [-1, 1]."""
    return lpips_per_frame(real, fake, model, device, frame_batch).mean(1)


def compute_lpips(real: torch.Tensor | Iterable[torch.Tensor], fake: torch.Tensor | Iterable[torch.Tensor],
                  model: lpips.LPIPS, device: torch.device | str = "cpu", frame_batch: int = 64) -> float:
    """Mean LPIPS over all paired videos (mean over frames per video), from tensors or paired batch iterables."""
    real_it = [real] if isinstance(real, torch.Tensor) else real
    fake_it = [fake] if isinstance(fake, torch.Tensor) else fake
    per_video = [lpips_per_video(r, f, model, device, frame_batch)
                 for r, f in tqdm(zip(real_it, fake_it, strict=True), desc="LPIPS", leave=False)]
    return float(torch.cat(per_video).double().mean())
