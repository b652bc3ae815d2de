"""The stage-1 temporal discriminator: a 3D ResNet over clips (the original's stage1_VAE/modules/resnet3D.py,
``Discriminator``); the spatial one is the shared :class:`blocks.discriminators.PatchDiscriminator`."""
from __future__ import annotations

import logging
from typing import Sequence

from torch import Tensor, nn

from .resnet3d import ResNet3dTrunk, init_conv3d_weights

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
