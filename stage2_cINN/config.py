"""The cINN config schema (``stage2_cINN/configs/*.yaml``, ``config_stage2.yaml`` of a model folder); its
``First_stage_model`` and ``Conditioning_Model`` point at the frozen stage-1 and AE folders."""
from __future__ import annotations

from data.config import DATA_SCHEMA
from training.config import COMMON_TRAINING, LOGGING_SCHEMA
from utils.config import Key, PosFloat, PosInt, Probability, Text, req

CONFIG_FILE = "config_stage2.yaml"

CINN_SCHEMA: dict = {
    "Flow": {"n_flows": req(PosInt), "flow_hidden_depth": req(PosInt), "flow_mid_channels_factor": req(PosInt)},
    "Conditioning_Model": {
        "z_dim": req(PosInt),
        "checkpoint_name": "Encoder_stage2",
        "model_name": req(Text),
        "model_path": req(Text),
    },
    "First_stage_model": {
        "checkpoint_encoder": "best_PFVD_ENC",
        "checkpoint_decoder": "best_PFVD_GEN",
        "model_name": req(Text),
        "model_path": req(Text),
    },
    "Training": {
        **COMMON_TRAINING,
        "control": False,  # released configs lack it; False is the original's behaviour
        "gamma": Key(PosFloat, 0.5),
        "step_size": Key(PosInt, 7),
        "beta1": Key(Probability, 0.9),
        "beta2": Key(Probability, 0.99),
        "amsgrad": True,
        "max_nonfinite": Key(PosInt, 10),  # consecutive NaN/Inf losses before the run stops
        "fvd_samples": True,  # FVD of prior samples each epoch (needs I3D weights)
        # True: the AE embedder in training mode while the cINN trains, as the original (BatchNorm encoders
        # then condition on batch statistics and their running statistics drift); False keeps it in eval mode
        "embedder_train_mode": False,
    },
    "Data": DATA_SCHEMA,
    "Logging": LOGGING_SCHEMA,
}
