"""The DTDB I3D behind DTFVD: piergiaj-style ``InceptionI3d`` with 18 dynamic-texture classes.

Differences from the Kinetics port in :mod:`metrics.i3d`:

- TF "SAME" padding is computed at run time from the input size (``max(k - s, 0)`` when the size
  is divisible by the stride, else ``max(k - size % s, 0)``, split as floor/ceil) for every
  convolution and max-pool; max-pools zero-pad and use floor mode;
- BatchNorm3d uses PyTorch's eps 1e-5 (what the reference's DTDB network runs with; the Kinetics
  port uses 1e-3); attribute names follow piergiaj (``Conv3d_1a_7x7.conv3d``, ``.bn``,
  ``Mixed_3b.b0``/``b1a``/``b1b``/``b2a``/``b2b``/``b3b``, ``logits``).

One state dict serves the 16- and 32-frame networks; they differ only in the final average pool,
(2, 7, 7) and (4, 7, 7). The DTFVD representation is the output of that pool (before the 1x1x1
logits layer), flattened to 1024 for 224x224 inputs of the network's length.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from metrics.i3d import FEATURE_DIM, InceptionI3dTrunk, MaxPool3dSame, Triple, Unit3d
from metrics.weights import build_with_weights, load_state_dict_file, weights_path

NUM_CLASSES = 18
POOL_KERNELS: dict[int, Triple] = {16: (2, 7, 7), 32: (4, 7, 7)}


def pool_kernel(n_frames: int) -> Triple:
    """Final average-pool kernel of the released network for ``n_frames`` (16 or 32)."""
    if n_frames not in POOL_KERNELS:
        raise ValueError(f"the DTDB I3D exists for 16 or 32 frames, not {n_frames}")
    return POOL_KERNELS[n_frames]


def dynamic_same_padding(size: Sequence[int], kernel: Triple, stride: Triple) -> tuple[int, ...]:
    """``F.pad`` tuple (w, w, h, h, t, t) of TF "SAME" padding for an input of size (T, H, W)."""
    pads: list[int] = []
    for n, k, s in zip(reversed(tuple(size)), reversed(kernel), reversed(stride)):
        total = max(k - s, 0) if n % s == 0 else max(k - n % s, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


class Unit3D(Unit3d):
    """Conv3d (+ BatchNorm3d) (+ ReLU) with TF-SAME padding computed from the input size."""

    bn_name = "bn"
    bn_eps = 1e-5

    def padding(self, x: torch.Tensor) -> tuple[int, ...]:
        return dynamic_same_padding(x.shape[2:], self.kernel, self.stride)


class MaxPool3dSamePadding(MaxPool3dSame):
    """Max-pool (floor mode) after zero TF-SAME padding computed from the input size."""

    ceil_mode = False

    def padding(self, x: torch.Tensor) -> tuple[int, ...]:
        return dynamic_same_padding(x.shape[2:], self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Inception block with branches b0, b1a->b1b, b2a->b2b, b3a (pool)->b3b."""

    def __init__(self, in_channels: int, channels: Sequence[int]) -> None:
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3 = channels
        self.b0 = Unit3D(in_channels, c0)
        self.b1a = Unit3D(in_channels, c1a)
        self.b1b = Unit3D(c1a, c1b, (3, 3, 3))
        self.b2a = Unit3D(in_channels, c2a)
        self.b2b = Unit3D(c2a, c2b, (3, 3, 3))
        self.b3a = MaxPool3dSamePadding((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, c3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)),
                          self.b3b(self.b3a(x))], 1)


class DTDBI3D(InceptionI3dTrunk):
    """DTDB I3D (18 classes) for ``n_frames`` 16 or 32: (B, 3, T, 224, 224) in [-1, 1] -> logits."""

    unit = Unit3D
    pool = MaxPool3dSamePadding
    block = InceptionModule
    capitalized = True

    def __init__(self, n_frames: int = 16, avg_pool_kernel: Triple | None = None) -> None:
        """``avg_pool_kernel`` overrides the pool of ``n_frames`` (only for tests on tiny inputs)."""
        super().__init__(pool_kernel(n_frames) if avg_pool_kernel is None else avg_pool_kernel)
        self.n_frames = n_frames
        self.logits = Unit3D(FEATURE_DIM, NUM_CLASSES, use_bn=False, use_bias=True, relu=False)

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """DTFVD embedding: the final pool's output flattened, (B, 1024) for inputs of the network's size."""
        return self.extract_features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.extract_features(x)).flatten(2).mean(2)


def load_dtdb_i3d(n_frames: int = 16, device: torch.device | str = "cpu",
                  path: str | Path | None = None) -> DTDBI3D:
    """The DTDB I3D for ``n_frames`` (16 or 32) with its released weights, eval mode, on ``device``."""
    pool_kernel(n_frames)
    state_dict = load_state_dict_file(weights_path(f"dtdb_i3d_{n_frames}", path))
    model = build_with_weights(lambda: DTDBI3D(n_frames), state_dict)
    return model.eval().requires_grad_(False).to(device)
