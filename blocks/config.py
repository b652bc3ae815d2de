"""Config sections of the blocks both stages share (no torch here, so configs are checked before torch is imported)."""
from __future__ import annotations

from utils.config import Key, PosInt

# ``Discriminator_Patch``: the patch discriminator (the original's stage1_VAE/modules/patch_disc.py,
# ``NLayerDiscriminator``) of the stage-1 and the conditioning-AE configs
PATCH_DISC_SCHEMA: dict = {
    "in_channels": Key(PosInt, 3), "ndf": Key(PosInt, 64), "n_layers": Key(PosInt, 3), "use_actnorm": True,
    "spectral_norm": True,
}
