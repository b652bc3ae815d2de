"""The conditioning-autoencoder config schema (``stage2_cINN/AE/configs/*.yaml``, ``config_stage2_AE.yaml``)."""
from __future__ import annotations

from typing import Literal

from blocks.config import PATCH_DISC_SCHEMA
from data.config import DATA_SCHEMA
from training.config import COMMON_TRAINING, LOGGING_SCHEMA
from utils.config import Key, NonNegFloat, NonNegInt, PosInt, req

CONFIG_FILE = "config_stage2_AE.yaml"

AE_SCHEMA: dict = {
    "AE": {
        "deterministic": False,
        "in_size": req(PosInt),
        "norm": "in",
        "encoder_type": "resnet50",
        "use_actnorm_in_dec": False,
        "z_dim": req(PosInt),
        "ch": Key(PosInt, 96),  # BigGAN channel base (96 in the paper; smaller for the demo)
    },
    "Discriminator_Patch": PATCH_DISC_SCHEMA,
    "Training": {
        **COMMON_TRAINING,
        "w_kl": req(NonNegFloat),
        "pretrain": req(NonNegInt),
        "lpips_dropout": True,  # True: LPIPS dropout (p=0.5) active in the loss and validation, as the original
        # both ReduceLROnPlateau (AE, discriminator) step on the last training batch's reconstruction loss
        # (the original) or on the validation reconstruction loss
        "plateau_metric": Key(Literal["last_batch", "validation"], "last_batch"),
    },
    "Data": DATA_SCHEMA,
    "Logging": LOGGING_SCHEMA,
}
