"""The stage-1 config schema (``stage1_VAE/configs/*.yaml``, ``config_stage1.yaml`` of a run or release): every
key of the original with its type and default (section 3.1 of the paper, the original's stage1_VAE/main.py)."""
from __future__ import annotations

from typing import Literal

from blocks.config import PATCH_DISC_SCHEMA
from data.config import DATA_SCHEMA
from training.config import COMMON_TRAINING, LOGGING_SCHEMA
from utils.config import Key, NonNegFloat, NonNegInt, PosFloat, PosInt, req

CONFIG_FILE = "config_stage1.yaml"  # the name of the merged config beside a run's (and a release's) checkpoints

STAGE1_SCHEMA: dict = {
    "Decoder": {
        "channel_factor": req(PosInt),
        "z_dim": req(PosInt),
        "upsample_s": req(list[PosInt]),
        "upsample_t": req(list[PosInt]),
        "spectral_norm": True,
    },
    "Encoder": {
        "res_type_encoder": "resnet18",
        "deterministic": False,
        "use_max_pool": False,
        "z_dim": req(PosInt),
        "channels": req(list[PosInt]),
        "stride_t": req(list[PosInt]),
        "stride_s": req(list[PosInt]),
    },
    "Discriminator_Temporal": {
        "eval_seq_length": Key(PosInt, 16),
        "res_type_encoder": "resnet18",
        "deterministic": False,
        "use_max_pool": True,
        "channels": req(list[PosInt]),
        "stride_t": req(list[PosInt]),
        "stride_s": req(list[PosInt]),
        "spectral_norm": True,
    },
    "Discriminator_Patch": PATCH_DISC_SCHEMA,
    "Training": {
        **COMMON_TRAINING,
        "patch_GAN": "basic",
        "GAN_Loss": "hinge",
        "w_coup_s": Key(NonNegFloat, 1.0),  # unused by the objective (as in the original); kept for the schema
        "w_coup_t": req(NonNegFloat),
        "w_fmap_t": req(NonNegFloat),
        "w_percep": req(NonNegFloat),
        "w_recon": req(NonNegFloat),
        "w_GP": req(NonNegFloat),
        "w_kl": req(NonNegFloat),
        "subsample_length": Key(PosInt, 12),
        "pretrain": req(NonNegInt),
        "weight_decay": Key(NonNegFloat, 1e-5),
        "lr_gamma": Key(PosFloat, 0.98),
        "FVD": "FVD",  # FVD | DTFVD | none
        "lpips_dropout": True,  # True: LPIPS dropout (p=0.5) active in the loss and validation, as the original
        # validation and per-epoch FVD decode a posterior sample (the original) or mu
        "val_latent": Key(Literal["sample", "mean"], "sample"),
    },
    "Data": DATA_SCHEMA,
    "Logging": LOGGING_SCHEMA,
}
