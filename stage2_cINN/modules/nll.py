"""The cINN training objective: the negative log-likelihood of the stage-1 latents under the flow (the original's
stage2_cINN/modules/loss.py)."""
from __future__ import annotations

from torch import Tensor


def nll_loss(eps: Tensor, logdet: Tensor) -> Tensor:
    """Negative log-likelihood (up to a constant): ``mean_b(0.5 * ||eps_b||^2) - mean_b(logdet_b)``.

    ``eps`` is (B, ...) (squared norm over all non-batch dims), ``logdet`` is (B,); returns a scalar.
    """
    sq = 0.5 * eps.pow(2).reshape(eps.shape[0], -1).sum(dim=1)  # (B,)
    return sq.mean() - logdet.mean()
