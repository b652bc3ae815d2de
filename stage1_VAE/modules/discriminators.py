"""Stage-1 discriminators: temporal 3D-ResNet (SPEC 1.3) and PatchGAN spatial discriminator (SPEC 1.4)."""
from __future__ import annotations

import logging
from typing import Sequence

from torch import Tensor, nn

from .actnorm import ActNorm
from .resnet3d import ResNet3dTrunk, init_conv3d_weights, maybe_sn

logger = logging.getLogger(__name__)


class TemporalDiscriminator(ResNet3dTrunk):
    """3D-ResNet video discriminator returning ``(logit (B, 1), [feature map of each of the 4 stages])``."""

    def __init__(
        self,
        channels: Sequence[int],
        stride_t: Sequence[int],
        stride_s: Sequence[int],
        res_type_encoder: str = "resnet18",
        use_max_pool: bool = True,
        spectral_norm: bool = True,
    ) -> None:
        super().__init__(
            res_type_encoder,
            channels,
            stride_t,
            stride_s,
            stem_stride_t=1,
            use_max_pool=use_max_pool,
            downsample_on_temporal=True,
            spectral_first_block=spectral_norm,
            spectral_downsample=True,  # the reference always spectral-normalises the downsample convs
        )
        self.avgpool = nn.AvgPool3d((1, 4, 4), stride=1)
        self.fc = nn.Linear(self.out_channels, 1, bias=False)
        init_conv3d_weights(self, nn.init.orthogonal_)

    @classmethod
    def from_config(cls, cfg: dict) -> "TemporalDiscriminator":
        """Build from the ``Discriminator_Temporal`` section of a stage-1 config."""
        return cls(
            channels=cfg["channels"],
            stride_t=cfg["stride_t"],
            stride_s=cfg["stride_s"],
            res_type_encoder=cfg.get("res_type_encoder", "resnet18"),
            use_max_pool=bool(cfg.get("use_max_pool", True)),
            spectral_norm=bool(cfg.get("spectral_norm", True)),
        )

    def forward(self, video: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``video`` (B, T, 3, H, W) -> ``(logit (B, 1), fmaps)``, fmaps[i] (B, C_i, T_i, H_i, W_i)."""
        h, fmaps = self.features(video.transpose(1, 2))  # (B, C, 1, 4, 4)
        if h.shape[2] != 1 or h.shape[3] != 4 or h.shape[4] != 4:
            raise ValueError(
                f"temporal discriminator input {tuple(video.shape)} ends at T x H x W = {tuple(h.shape[2:])}, "
                "but the head needs 1 x 4 x 4 (check Discriminator_Temporal strides and the clip length)"
            )
        logit = self.fc(self.avgpool(h).flatten(1))  # (B, 1)
        return logit, fmaps


class PatchDiscriminator(nn.Module):
    """PatchGAN frame discriminator (kernel 4) with ActNorm or BatchNorm, optional spectral norm."""

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        use_actnorm: bool = True,
        spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        norm_layer = ActNorm if use_actnorm else nn.BatchNorm2d
        use_bias = use_actnorm  # BatchNorm has its own shift, so the normed convs drop their bias

        def conv(c_in: int, c_out: int, stride: int, bias: bool = True) -> nn.Module:
            layer = nn.Conv2d(c_in, c_out, kernel_size=4, stride=stride, padding=1, bias=bias)
            nn.init.normal_(layer.weight, 0.0, 0.02)
            return maybe_sn(layer, spectral_norm)

        def norm(c: int) -> nn.Module:
            layer = norm_layer(c)
            if isinstance(layer, nn.BatchNorm2d):
                nn.init.normal_(layer.weight, 1.0, 0.02)
                nn.init.zeros_(layer.bias)
            return layer

        seq: list[nn.Module] = [conv(in_channels, ndf, 2), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            seq += [conv(ndf * prev, ndf * mult, 2, use_bias), norm(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2**n_layers, 8)
        seq += [conv(ndf * prev, ndf * mult, 1, use_bias), norm(ndf * mult), nn.LeakyReLU(0.2, True)]
        seq += [conv(ndf * mult, 1, 1)]
        self.main = nn.Sequential(*seq)

    @classmethod
    def from_config(cls, cfg: dict) -> "PatchDiscriminator":
        """Build from a ``Discriminator_Patch`` config section."""
        return cls(
            in_channels=int(cfg.get("in_channels", 3)),
            ndf=int(cfg.get("ndf", 64)),
            n_layers=int(cfg.get("n_layers", 3)),
            use_actnorm=bool(cfg.get("use_actnorm", True)),
            spectral_norm=bool(cfg.get("spectral_norm", True)),
        )

    def forward(self, frames: Tensor) -> Tensor:
        """``frames`` (N, 3, H, W) -> patch logits (N, 1, H', W')."""
        return self.main(frames)  # (N, 1, H', W')
