"""Stage-1 video encoder ``q(z | x_{1:16})``: a 3D ResNet with Gaussian heads (the original's
stage1_VAE/modules/resnet3D.py, ``Encoder``)."""
from __future__ import annotations

import logging
from functools import partial
from typing import Sequence

import torch
from torch import Tensor, nn

from .resnet3d import ResNet3dTrunk, init_conv3d_weights

logger = logging.getLogger(__name__)


class Encoder(ResNet3dTrunk):
    """3D-ResNet video encoder returning ``(z, mu, logvar)``; the last stage must end at T=1 x 4x4."""

    def __init__(
        self,
        z_dim: int,
        channels: Sequence[int],
        stride_t: Sequence[int],
        stride_s: Sequence[int],
        res_type_encoder: str = "resnet18",
        use_max_pool: bool = False,
        deterministic: bool = False,
    ) -> None:
        super().__init__(
            res_type_encoder,
            channels,
            stride_t,
            stride_s,
            stem_stride_t=2,
            use_max_pool=use_max_pool,
            downsample_on_temporal=False,  # the reference's encoder ignores stride_t when adding a downsample
        )
        self.z_dim = z_dim
        self.deterministic = deterministic
        self.conv_mu = nn.Conv2d(self.out_channels, z_dim, kernel_size=4)
        self.conv_var = nn.Conv2d(self.out_channels, z_dim, kernel_size=4)
        init_conv3d_weights(self, partial(nn.init.kaiming_normal_, mode="fan_out", nonlinearity="relu"))

    @classmethod
    def from_config(cls, cfg: dict) -> "Encoder":
        """Build from the ``Encoder`` section of a stage-1 config."""
        return cls(
            z_dim=int(cfg["z_dim"]),
            channels=cfg["channels"],
            stride_t=cfg["stride_t"],
            stride_s=cfg["stride_s"],
            res_type_encoder=cfg.get("res_type_encoder", "resnet18"),
            use_max_pool=bool(cfg.get("use_max_pool", False)),
            deterministic=bool(cfg.get("deterministic", False)),
        )

    def encode(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """``video`` (B, T, 3, H, W) in [-1, 1] -> ``(mu, logvar)``, each (B, z_dim)."""
        h, _ = self.features(video.transpose(1, 2))  # (B, C, 1, 4, 4)
        if h.shape[2] != 1 or h.shape[3] != 4 or h.shape[4] != 4:
            raise ValueError(
                f"encoder input {tuple(video.shape)} ends at T x H x W = {tuple(h.shape[2:])}, "
                "but the Gaussian heads need 1 x 4 x 4 (check Encoder.stride_t/stride_s and the clip size)"
            )
        h = h.squeeze(2)  # (B, C, 4, 4)
        mu = self.conv_mu(h).flatten(1)  # (B, z_dim)
        logvar = self.conv_var(h).flatten(1)  # (B, z_dim)
        return mu, logvar

    def forward(self, video: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``video`` (B, T, 3, H, W) -> ``(z, mu, logvar)``; ``z = mu`` when ``deterministic``."""
        mu, logvar = self.encode(video)  # (B, z_dim) each
        if self.deterministic:
            return mu, mu, logvar
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # (B, z_dim)
        return z, mu, logvar
