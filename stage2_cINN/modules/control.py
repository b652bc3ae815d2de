"""BAIR end-effector control code (the original's stage2_cINN/modules/INN.py, ``embed_pos``, with the
normalisation of data/dataloader_bair_endpoint.py): 3-d position -> 30-d one-hot."""
from __future__ import annotations

import torch
from torch import Tensor

# Normalisation constants as the reference uses them: (pos - POS_MIN) / POS_MAX (a division by "max", not
# by max - min).
POS_MIN = (0.42638585, -0.3080245, 0.19146784)
POS_MAX = (0.42850533, 0.54029283, 0.12564658)
N_BINS = 10
CONTROL_DIM = 3 * N_BINS


def endpoint_to_onehot(pos: Tensor) -> Tensor:
    """Encode end-effector positions (B, 3) as concatenated per-coordinate one-hots (B, 30).

    Each normalised coordinate ``p`` goes to bin ``int(p * 10 - 1e-4)`` (truncation toward zero), clamped
    into [0, 9]: the reference indexed out of range for positions outside [0, 1) after normalisation.
    """
    if pos.dim() != 2 or pos.shape[1] != 3:
        raise ValueError(f"endpoint_to_onehot expects positions of shape (B, 3), got {tuple(pos.shape)}")
    dtype = pos.dtype if pos.is_floating_point() else torch.float32
    lo = torch.tensor(POS_MIN, dtype=dtype, device=pos.device)
    hi = torch.tensor(POS_MAX, dtype=dtype, device=pos.device)
    p = (pos.to(dtype) - lo) / hi  # (B, 3)
    idx = torch.trunc(p * N_BINS - 1e-4).long().clamp_(0, N_BINS - 1)  # (B, 3)
    onehot = torch.nn.functional.one_hot(idx, N_BINS).to(dtype)  # (B, 3, 10)
    return onehot.reshape(pos.shape[0], CONTROL_DIM)  # (B, 30)
