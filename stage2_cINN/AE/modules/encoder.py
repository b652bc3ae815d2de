"""ResNet encoder of the stage-2 conditioning autoencoder and its diagonal Gaussian posterior (the
original's stage2_cINN/AE/modules/AE.py, ``ResnetEncoder``, and distributions.py).

A torchvision ResNet (no pretrained weights) whose ``fc`` is replaced by a Conv2d applied to the
``(B, C, 1, 1)`` output of the adaptive average pool (kernel = that spatial size, i.e. 1), stored as
``model.fc.sub_layers.0``. The conv returns ``(B, 2*z_dim, 1, 1)`` = (mean, logvar). The input is used
as is (frames in [-1, 1]); no ImageNet normalisation is applied.
"""
from __future__ import annotations

import logging
from typing import Callable

import torch
import torchvision
from torch import nn

from blocks.actnorm import ActNorm2d
from utils.config import ConfigError

logger = logging.getLogger(__name__)

LOGVAR_MIN, LOGVAR_MAX = -30.0, 10.0
NORM_LAYERS: dict[str, Callable[[int], nn.Module]] = {
    "in": nn.InstanceNorm2d,  # affine=False, no running stats: no state-dict entries (as the manifest)
    "bn": nn.BatchNorm2d,
    "an": ActNorm2d,
}
ENCODER_TYPES = ("resnet18", "resnet34", "resnet50", "resnet101")


class DiagonalGaussian:
    """Diagonal Gaussian from ``(B, 2*z_dim, ...)`` parameters; logvar clamped to [-30, 10]."""

    def __init__(self, parameters: torch.Tensor, deterministic: bool = False) -> None:
        self.mean, logvar = torch.chunk(parameters, 2, dim=1)  # (B, z_dim, 1, 1) each
        self.logvar = torch.clamp(logvar, LOGVAR_MIN, LOGVAR_MAX)
        self.deterministic = deterministic
        if deterministic:
            self.var = self.std = torch.zeros_like(self.mean)
        else:
            self.std = torch.exp(0.5 * self.logvar)
            self.var = torch.exp(self.logvar)

    def sample(self) -> torch.Tensor:
        """Reparametrised sample ``mean + std * eps`` (the mean itself when deterministic)."""
        if self.deterministic:
            return self.mean
        return self.mean + self.std * torch.randn_like(self.mean)  # (B, z_dim, 1, 1)

    def mode(self) -> torch.Tensor:
        """The mean."""
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) per sample, summed over all non-batch dims -> (B,); zero when deterministic."""
        if self.deterministic:
            return torch.zeros(self.mean.shape[0], device=self.mean.device, dtype=self.mean.dtype)
        dims = list(range(1, self.mean.dim()))
        return 0.5 * torch.sum(self.mean.pow(2) + self.var - 1.0 - self.logvar, dim=dims)  # (B,)


class DenseEncoderLayer(nn.Module):
    """The ResNet head: one Conv2d(C, out, kernel=spatial size) kept in a ``sub_layers`` list (reference keys)."""

    def __init__(self, in_channels: int, out_channels: int, spatial_size: int) -> None:
        super().__init__()
        self.sub_layers = nn.ModuleList([nn.Conv2d(in_channels, out_channels, spatial_size, 1, 0, bias=True)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.sub_layers:
            x = layer(x)  # (B, out, 1, 1)
        return x


class ResnetEncoder(nn.Module):
    """Image -> diagonal Gaussian over the ``z_dim`` conditioning embedding."""

    def __init__(self, z_dim: int, encoder_type: str = "resnet50", norm: str = "in",
                 deterministic: bool = False) -> None:
        super().__init__()
        if encoder_type not in ENCODER_TYPES:
            raise ConfigError(f"AE.encoder_type must be one of {ENCODER_TYPES}, got {encoder_type!r}")
        if norm not in NORM_LAYERS:
            raise ConfigError(f"AE.norm must be one of {sorted(NORM_LAYERS)}, got {norm!r}")
        self.z_dim = z_dim
        self.deterministic = deterministic
        self.model = getattr(torchvision.models, encoder_type)(weights=None, norm_layer=NORM_LAYERS[norm])
        channels = self.model.fc.in_features
        pooled = self.model.avgpool.output_size
        spatial = pooled if isinstance(pooled, int) else pooled[0]
        self.model.fc = DenseEncoderLayer(channels, 2 * z_dim, spatial)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """ResNet trunk and average pool: (B, 3, H, W) -> (B, C, 1, 1)."""
        m = self.model
        h = m.maxpool(m.relu(m.bn1(m.conv1(x))))  # (B, 64, H/4, W/4)
        h = m.layer4(m.layer3(m.layer2(m.layer1(h))))  # (B, C, H/32, W/32)
        return m.avgpool(h)  # (B, C, 1, 1)

    def forward(self, x: torch.Tensor) -> DiagonalGaussian:
        params = self.model.fc(self.features(x))  # (B, 2*z_dim, 1, 1)
        return DiagonalGaussian(params, deterministic=self.deterministic)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean as a flat condition vector for the cINN: (B, 3, H, W) -> (B, z_dim)."""
        return self(x).mode().flatten(1)  # (B, z_dim)
