"""The conditional INN ``z <-> eps | x0`` (the original's stage2_cINN/modules/flow_blocks.py,
``ConditionalFlow``) and its construction from a stage-2 config.

State-dict keys equal the reference's (``sub_layers.<i>.norm_layer|coupling|shuffle...``), so a released
``cINN.pth`` (``{'state_dict': flow.state_dict()}``) loads with a plain ``load_state_dict``.
Difference to the reference: the leaky ReLU's log-det term is included (the reference dropped it), so
``logdet`` here is the exact ``log|det dz->eps|``.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping, Optional

from torch import Tensor, nn

from .blocks import ConditionalDoubleVectorCoupling, InvertibleActNorm, InvertibleModule, InvLeakyReLU, Shuffle
from .control import CONTROL_DIM

logger = logging.getLogger(__name__)


class ConditionalFlowBlock(InvertibleModule):
    """One flow block: ActNorm -> invertible leaky ReLU -> double affine coupling -> fixed shuffle."""

    def __init__(self, in_channels: int, cond_channels: int, hidden_dim: int, hidden_depth: int,
                 cond_only: bool = False) -> None:
        super().__init__()
        self.norm_layer = InvertibleActNorm(in_channels)
        self.activation = InvLeakyReLU()
        self.coupling = ConditionalDoubleVectorCoupling(in_channels, cond_channels, hidden_dim, hidden_depth,
                                                        cond_only=cond_only)
        self.shuffle = Shuffle(in_channels)

    def forward(self, x: Tensor, cond: Optional[Tensor] = None, reverse: bool = False) -> tuple[Tensor, Tensor]:
        order = (self.norm_layer, self.activation, self.coupling, self.shuffle)
        logdet = x.new_zeros(x.shape[0])  # (B,)
        for layer in (reversed(order) if reverse else order):
            x, ld = layer(x, cond, reverse=reverse)  # (B, C), (B,)
            logdet = logdet + ld
        return x, logdet


class ConditionalFlow(InvertibleModule):
    """Stack of ``n_flows`` :class:`ConditionalFlowBlock`; every block sees the same condition.

    With ``control=True`` the condition is ``concat(embedding, 30-d end-effector one-hot)`` and the
    couplings of blocks whose index % 4 != 0 use the condition only (not the passive half of ``x``).
    """

    def __init__(self, in_channels: int, embedding_dim: int, hidden_dim: int, hidden_depth: int,
                 n_flows: int, control: bool = False) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.cond_channels = embedding_dim
        self.control = control
        self.sub_layers = nn.ModuleList([
            ConditionalFlowBlock(in_channels, embedding_dim, hidden_dim, hidden_depth,
                                 cond_only=control and i % 4 != 0)
            for i in range(n_flows)
        ])

    def forward(self, x: Tensor, cond: Optional[Tensor] = None, reverse: bool = False) -> tuple[Tensor, Tensor]:
        """``(B, C)`` (or ``(B, C, 1, 1)``) -> same shape, plus the log-det ``(B,)`` of the applied map."""
        if cond is None:
            raise ValueError("ConditionalFlow needs a condition (the x0 embedding)")
        shape = x.shape
        h = x.reshape(shape[0], -1)  # (B, C)
        if h.shape[1] != self.in_channels:
            raise ValueError(f"flow expects {self.in_channels} channels, got input of shape {tuple(shape)}")
        c = cond.reshape(cond.shape[0], -1)  # (B, D)
        if c.shape[1] != self.cond_channels:
            raise ValueError(f"flow expects a {self.cond_channels}-d condition, got {tuple(cond.shape)}")
        logdet = h.new_zeros(shape[0])  # (B,)
        layers = reversed(self.sub_layers) if reverse else self.sub_layers
        for layer in layers:
            h, ld = layer(h, c, reverse=reverse)  # (B, C), (B,)
            logdet = logdet + ld
        return h.reshape(shape), logdet

    def reverse(self, eps: Tensor, cond: Tensor) -> Tensor:
        """Convenience inverse: ``z = INN^-1(eps | cond)`` (the log-det is dropped)."""
        return self(eps, cond, reverse=True)[0]


def build_cinn(stage2_config: Mapping[str, Any], z_dim: int) -> ConditionalFlow:
    """Build the cINN from a stage-2 config (original schema) for stage-1 latents of size ``z_dim``.

    Uses ``Flow.{n_flows, flow_hidden_depth, flow_mid_channels_factor}``, the embedding size
    ``Conditioning_Model.z_dim`` and ``Training.control`` (missing means False; True adds 30 condition dims).
    """
    flow_cfg = stage2_config["Flow"]
    embedding_dim = int(stage2_config["Conditioning_Model"]["z_dim"])
    control = bool((stage2_config.get("Training") or {}).get("control", False))
    if control:
        embedding_dim += CONTROL_DIM
    hidden_dim = int(z_dim) * int(flow_cfg["flow_mid_channels_factor"])
    logger.debug("cINN: z_dim=%d cond=%d hidden=%d depth=%d n_flows=%d control=%s", z_dim, embedding_dim,
                 hidden_dim, flow_cfg["flow_hidden_depth"], flow_cfg["n_flows"], control)
    return ConditionalFlow(
        in_channels=int(z_dim),
        embedding_dim=embedding_dim,
        hidden_dim=hidden_dim,
        hidden_depth=int(flow_cfg["flow_hidden_depth"]),
        n_flows=int(flow_cfg["n_flows"]),
        control=control,
    )
