"""Stage 2b networks: the conditional INN, its blocks, the BAIR control code and the NLL objective."""
from .blocks import (
    BasicFullyConnectedNet,
    ConditionalDoubleVectorCoupling,
    InvertibleActNorm,
    InvertibleModule,
    InvLeakyReLU,
    Shuffle,
)
from .control import CONTROL_DIM, endpoint_to_onehot
from .flow import ConditionalFlow, ConditionalFlowBlock, build_cinn
from .nll import nll_loss

__all__ = [
    "BasicFullyConnectedNet", "InvertibleActNorm", "ConditionalDoubleVectorCoupling", "InvertibleModule",
    "InvLeakyReLU",
    "Shuffle", "CONTROL_DIM", "endpoint_to_onehot", "ConditionalFlow", "ConditionalFlowBlock", "build_cinn",
    "nll_loss",
]
