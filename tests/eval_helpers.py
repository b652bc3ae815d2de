"""Random-weight metric backbones saved in the released files' key layouts (a ``-weights_dir`` for tests),
and the changes that let those full-size networks run on the tests' 32-px frames."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from evaluation.backbones import Backbones, load_backbones
from metrics.weights import WEIGHTS

KINETICS_FILE = WEIGHTS["kinetics_i3d"].relative_path
DTDB16_FILE = WEIGHTS["dtdb_i3d_16"].relative_path
FID_FILE = WEIGHTS["fid_inception"].relative_path
VGG_FILE = WEIGHTS["vgg16"].relative_path
INCEPTION_MIN_SIZE = 75  # the smallest input torchvision's Inception v3 accepts


def activating_init(model: nn.Module, seed: int = 0) -> nn.Module:
    """He-normal conv weights and small biases, so that random deep nets keep their signal."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv3d)):
            fan_in = module.weight[0].numel()
            module.weight.data = torch.randn(module.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5
            if module.bias is not None:
                module.bias.data = torch.randn(module.bias.shape, generator=gen) * 0.1
    return model.eval()


def _save(state: dict[str, torch.Tensor], path: Path, wrap: bool = False) -> None:
    """fp16 copies of the floating tensors (half the bytes; the loaders copy them into fp32 modules)."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state} if wrap else state, path)


def write_random_weights(folder: Path, seed: int = 0, i3d_only: bool = False) -> Path:
    """``folder`` laid out like ``models/`` with random-weight files of the Kinetics I3D (``model_rgb.pth``,
    plain state dict), the 16-frame DTDB I3D (``{'state_dict': ...}``) and, unless ``i3d_only``, pytorch-fid's
    Inception and the torchvision VGG16 ``features`` (the released file also holds the classifier, which is never
    read)."""
    import torchvision

    from metrics.dti3d import DTDBI3D
    from metrics.fid import _build_fid_inception_v3
    from metrics.i3d import KineticsI3D

    folder = Path(folder)
    _save(activating_init(KineticsI3D(), seed).state_dict(), folder / KINETICS_FILE)
    _save(activating_init(DTDBI3D(16), seed + 1).state_dict(), folder / DTDB16_FILE, wrap=True)
    if i3d_only:
        return folder
    _save(activating_init(_build_fid_inception_v3(None), seed + 2).state_dict(), folder / FID_FILE)
    vgg = activating_init(torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"]), seed + 3)
    _save({f"features.{k}": v for k, v in vgg.state_dict().items()}, folder / VGG_FILE)
    return folder


class Upsampled:
    """Feeds a frame embedder frames upsampled to ``size`` and counts the frames it embedded."""

    def __init__(self, fn, size: int) -> None:
        self.fn, self.size, self.frames = fn, size, 0

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        self.frames += frames.shape[0]
        return self.fn(F.interpolate(frames, size=(self.size, self.size), mode="bilinear", align_corners=False))


def shrink(backbones: Backbones) -> Backbones:
    """Run file-loaded networks on small frames: I3Ds at the frames' own size with a global final pool,
    the Inception without its resize to 299 (frames upsampled to 75 instead), VGG diversity unresized."""
    for extractor in (backbones.fvd, backbones.dtfvd):
        if extractor is not None:
            extractor.resize = False
            extractor.model.avg_pool = nn.AdaptiveAvgPool3d(1)
    if backbones.fid is not None:
        backbones.fid.model.resize_input = False
        backbones.fid = Upsampled(backbones.fid, INCEPTION_MIN_SIZE)
    backbones.vgg_size = None
    return backbones


def small_backbones(weights_dir: Path, metrics, device: str = "cpu") -> Backbones:
    """:func:`evaluation.backbones.load_backbones` from ``weights_dir``, then :func:`shrink`."""
    return shrink(load_backbones(metrics, device, weights_dir=weights_dir, allow_random=False))
