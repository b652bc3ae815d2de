"""Kinetics-400 I3D in the layout of hassony2's PyTorch port (``model_rgb.pth``).

The network is DeepMind's Inception-I3D. This module reproduces the hassony2 port, whose weights
are a conversion of DeepMind's released RGB checkpoint:

- TF "SAME" padding is computed once from kernel and stride (``max(k - s, 0)`` split as
  ``floor/ceil``), which equals TF's size-dependent rule for the even sizes of the protocol;
- convolutions use bias-free Conv3d + BatchNorm3d (eps 1e-3, as in the TF original) + ReLU;
- max-pools zero-pad and use ``ceil_mode=True``;
- the head is a (2, 7, 7) average pool, a 1x1x1 conv with bias, logits averaged over time.

``forward`` returns ``(softmax, logits)`` with 400-d logits. The port expects inputs in
``[-1, 1]`` (DeepMind's preprocessing); see :mod:`metrics.fvd` for the protocols that feed it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from metrics.weights import build_with_weights, load_state_dict_file, weights_path

Triple = tuple[int, int, int]

# Output channels of the Inception blocks: (branch0, branch1 reduce, branch1, branch2 reduce,
# branch2, branch3 after pooling), in network order. Shared with the DTDB I3D.
INCEPTION_BLOCKS: tuple[tuple[str, Sequence[int]], ...] = (
    ("3b", (64, 96, 128, 16, 32, 32)),
    ("3c", (128, 128, 192, 32, 96, 64)),
    ("4b", (192, 96, 208, 16, 48, 64)),
    ("4c", (160, 112, 224, 24, 64, 64)),
    ("4d", (128, 128, 256, 24, 64, 64)),
    ("4e", (112, 144, 288, 32, 64, 64)),
    ("4f", (256, 160, 320, 32, 128, 128)),
    ("5b", (256, 160, 320, 32, 128, 128)),
    ("5c", (384, 192, 384, 48, 128, 128)),
)
# Blocks followed by a max-pool: (kernel, stride) of that pool.
POOL_AFTER: dict[str, tuple[Triple, Triple]] = {
    "3c": ((3, 3, 3), (2, 2, 2)),
    "4f": ((2, 2, 2), (2, 2, 2)),
}
FEATURE_DIM = 1024


def block_out_channels(channels: Sequence[int]) -> int:
    """Channels an Inception block outputs (concatenation of its four branches)."""
    return channels[0] + channels[2] + channels[4] + channels[5]


def static_same_padding(kernel: Triple, stride: Triple) -> tuple[int, ...]:
    """``F.pad`` tuple (w, w, h, h, t, t) for TF "SAME" padding assuming sizes divisible by the stride."""
    pads: list[int] = []
    for k, s in zip(reversed(kernel), reversed(stride)):
        total = max(k - s, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


class Unit3d(nn.Module):
    """Conv3d (+ BatchNorm3d) (+ ReLU) after zero TF-SAME padding (static rule, hassony2 names).

    Subclasses change the BatchNorm attribute name and eps (``bn_name``, ``bn_eps``) and the
    padding rule (:meth:`padding`).
    """

    bn_name = "batch3d"
    bn_eps = 1e-3

    def __init__(self, in_channels: int, out_channels: int, kernel: Triple = (1, 1, 1),
                 stride: Triple = (1, 1, 1), use_bn: bool = True, use_bias: bool = False,
                 relu: bool = True) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = kernel, stride, relu
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, bias=use_bias)
        setattr(self, self.bn_name, nn.BatchNorm3d(out_channels, eps=self.bn_eps) if use_bn else None)

    def padding(self, x: torch.Tensor) -> tuple[int, ...]:
        return static_same_padding(self.kernel, self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.padding(x)
        x = self.conv3d(F.pad(x, pad) if any(pad) else x)
        norm = getattr(self, self.bn_name)
        if norm is not None:
            x = norm(x)
        return F.relu(x) if self.relu else x


class MaxPool3dSame(nn.Module):
    """Max-pool after zero TF-SAME padding (static rule, ceil mode, as hassony2)."""

    ceil_mode = True

    def __init__(self, kernel: Triple, stride: Triple) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def padding(self, x: torch.Tensor) -> tuple[int, ...]:
        return static_same_padding(self.kernel, self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(F.pad(x, self.padding(x)), self.kernel, self.stride, ceil_mode=self.ceil_mode)


class Mixed(nn.Module):
    """Inception block with branches ``branch_0`` .. ``branch_3`` (hassony2 naming)."""

    def __init__(self, in_channels: int, channels: Sequence[int]) -> None:
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3 = channels
        self.branch_0 = Unit3d(in_channels, c0)
        self.branch_1 = nn.Sequential(Unit3d(in_channels, c1a), Unit3d(c1a, c1b, (3, 3, 3)))
        self.branch_2 = nn.Sequential(Unit3d(in_channels, c2a), Unit3d(c2a, c2b, (3, 3, 3)))
        self.branch_3 = nn.Sequential(MaxPool3dSame((3, 3, 3), (1, 1, 1)), Unit3d(in_channels, c3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch_0(x), self.branch_1(x), self.branch_2(x), self.branch_3(x)], 1)


class InceptionI3dTrunk(nn.Module):
    """Inception-I3D up to the final average pool; layer names in hassony2 (``conv3d_1a_7x7``,
    ``mixed_3b``) or, with ``capitalized``, piergiaj style (``Conv3d_1a_7x7``, ``Mixed_3b``)."""

    unit: type[Unit3d] = Unit3d
    pool: type[MaxPool3dSame] = MaxPool3dSame
    block: type[nn.Module] = Mixed
    capitalized = False

    def __init__(self, avg_pool_kernel: Triple) -> None:
        super().__init__()
        layers: list[tuple[str, nn.Module]] = [
            ("conv3d_1a_7x7", self.unit(3, 64, (7, 7, 7), (2, 2, 2))),
            ("maxPool3d_2a_3x3", self.pool((1, 3, 3), (1, 2, 2))),
            ("conv3d_2b_1x1", self.unit(64, 64)),
            ("conv3d_2c_3x3", self.unit(64, 192, (3, 3, 3))),
            ("maxPool3d_3a_3x3", self.pool((1, 3, 3), (1, 2, 2))),
        ]
        in_ch = 192
        for name, channels in INCEPTION_BLOCKS:
            layers.append((f"mixed_{name}", self.block(in_ch, channels)))
            in_ch = block_out_channels(channels)
            if name in POOL_AFTER:
                pool_name = {"3c": "maxPool3d_4a_3x3", "4f": "maxPool3d_5a_2x2"}[name]
                layers.append((pool_name, self.pool(*POOL_AFTER[name])))
        self._layer_names = []
        for name, layer in layers:
            name = name[0].upper() + name[1:] if self.capitalized else name
            self.add_module(name, layer)
            self._layer_names.append(name)
        self.avg_pool = nn.AvgPool3d(avg_pool_kernel, (1, 1, 1))

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the final average pool, (B, 1024, T', H', W')."""
        for name in self._layer_names:
            x = self._modules[name](x)
        return self.avg_pool(x)


class KineticsI3D(InceptionI3dTrunk):
    """Kinetics-400 RGB I3D (hassony2 port): (B, 3, T, H, W) in [-1, 1] -> (softmax, logits)."""

    def __init__(self, num_classes: int = 400, avg_pool_kernel: Triple = (2, 7, 7)) -> None:
        """``avg_pool_kernel`` is (2, 7, 7) for the released network (224x224 inputs); tests on tiny
        inputs may pass a smaller kernel."""
        super().__init__(avg_pool_kernel)
        self.conv3d_0c_1x1 = Unit3d(FEATURE_DIM, num_classes, use_bn=False, use_bias=True, relu=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.conv3d_0c_1x1(self.extract_features(x))  # (B, classes, T', 1, 1)
        logits = out.squeeze(4).squeeze(3).mean(2)
        return torch.softmax(logits, 1), logits


def load_kinetics_i3d(device: torch.device | str = "cpu", path: str | Path | None = None) -> KineticsI3D:
    """The Kinetics-400 I3D with the released ``model_rgb.pth`` weights, in eval mode on ``device``."""
    model = build_with_weights(KineticsI3D, load_state_dict_file(weights_path("kinetics_i3d", path)))
    return model.eval().requires_grad_(False).to(device)


def load_torchscript_i3d(device: torch.device | str = "cpu", path: str | Path | None = None) -> torch.jit.ScriptModule:
    """StyleGAN-V's TorchScript Kinetics-400 I3D (``i3d_torchscript.pt``, TF-Hub weights), eval mode.

    Called as ``model(x, rescale=False, resize=False, return_features=True)`` with x of shape
    (B, 3, T, 224, 224) in [-1, 1]; returns the 400-d logits. StyleGAN-V itself passes [0, 255]
    videos with ``rescale=True, resize=True`` and lets the model resize; we resize outside (TF1
    bilinear, as the TF-Hub protocol does), see :class:`metrics.fvd.FVDFeatureExtractor`.
    """
    return torch.jit.load(str(weights_path("i3d_torchscript", path)), map_location=device).eval()
