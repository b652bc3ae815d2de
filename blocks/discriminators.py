"""The PatchGAN frame discriminator of stage 1 and of the conditioning AE (the original's
stage1_VAE/modules/patch_disc.py, ``NLayerDiscriminator``: kernel 4, padding 1)."""
from __future__ import annotations

from torch import Tensor, nn

from blocks.actnorm import ActNorm2d
from blocks.spectral_norm import maybe_sn


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
        norm_layer = ActNorm2d if use_actnorm else nn.BatchNorm2d
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
