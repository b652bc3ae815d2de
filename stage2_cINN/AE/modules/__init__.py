"""Stage-2 conditioning autoencoder: ResNet encoder, BigGAN decoder, patch discriminator and loss."""
from __future__ import annotations

from torch import nn

from blocks.discriminators import PatchDiscriminator
from stage2_cINN.AE.modules.biggan import BigGANDecoder
from stage2_cINN.AE.modules.encoder import DiagonalGaussian, ResnetEncoder
from stage2_cINN.AE.modules.losses import AELoss

__all__ = ["AELoss", "BigGANDecoder", "DiagonalGaussian", "ResnetEncoder", "build_ae", "build_ae_encoder"]


def build_ae_encoder(ae_cfg: dict) -> ResnetEncoder:
    """The AE encoder from the ``AE`` section (what the cINN needs to embed x0)."""
    return ResnetEncoder(
        z_dim=int(ae_cfg["z_dim"]),
        encoder_type=ae_cfg.get("encoder_type", "resnet50"),
        norm=ae_cfg.get("norm", "in"),
        deterministic=bool(ae_cfg.get("deterministic", False)),
    )


def build_ae(config: dict) -> dict[str, nn.Module]:
    """``{'encoder', 'decoder', 'disc'}`` from a parsed AE config (sections ``AE``, ``Discriminator_Patch``).

    ``AE.ch`` (optional, default 96) is the BigGAN channel base; every released model uses 96.
    """
    ae_cfg = config["AE"]
    decoder = BigGANDecoder(
        z_dim=int(ae_cfg["z_dim"]),
        in_size=int(ae_cfg["in_size"]),
        ch=int(ae_cfg.get("ch", 96)),
        use_actnorm_in_dec=bool(ae_cfg.get("use_actnorm_in_dec", False)),
    )
    disc = PatchDiscriminator.from_config(config.get("Discriminator_Patch", {}))
    return {"encoder": build_ae_encoder(ae_cfg), "decoder": decoder, "disc": disc}
