"""Stage 2b networks: the conditional INN, its blocks, the BAIR control code and the NLL objective."""
from .blocks import ActNorm, BasicFullyConnectedNet, ConditionalDoubleVectorCoupling, InvertibleModule, InvLeakyReLU, Shuffle
from .control import CONTROL_DIM, endpoint_to_onehot
from .flow import ConditionalFlow, ConditionalFlowBlock, build_cinn
from .nll import NonFiniteGuard, nll_loss

__all__ = [
    "ActNorm", "BasicFullyConnectedNet", "ConditionalDoubleVectorCoupling", "InvertibleModule", "InvLeakyReLU",
    "Shuffle", "CONTROL_DIM", "endpoint_to_onehot", "ConditionalFlow", "ConditionalFlowBlock", "build_cinn",
    "NonFiniteGuard", "nll_loss",
]
