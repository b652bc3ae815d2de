"""Channels-last-3D memory format for a network's Conv3d weights and activations (a CUDA/cuDNN speed option; the
same convolution numerically)."""
from __future__ import annotations

import torch
from torch import nn


def set_channels_last(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Put 5D parameters of ``module`` (Conv3d weights, incl. spectral-norm ``weight_orig``) in the
    channels-last-3D format and tell the stage-1 networks to convert their activations (a CUDA/cuDNN
    option; numerically the same convolution). ``enabled=False`` goes back to contiguous tensors."""
    fmt = torch.channels_last_3d if enabled else torch.contiguous_format
    with torch.no_grad():
        for p in module.parameters():
            if p.dim() == 5:
                p.data = p.data.contiguous(memory_format=fmt)
    for m in module.modules():
        if hasattr(m, "memory_format"):
            m.memory_format = fmt
    return module
