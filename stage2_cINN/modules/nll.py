"""cINN training objective and a guard against non-finite losses (SPEC section 3, "Loss")."""
from __future__ import annotations

import logging
import math

from torch import Tensor

from utils.errors import NonFiniteLossError

logger = logging.getLogger(__name__)


def nll_loss(eps: Tensor, logdet: Tensor) -> Tensor:
    """Negative log-likelihood (up to a constant): ``mean_b(0.5 * ||eps_b||^2) - mean_b(logdet_b)``.

    ``eps`` is (B, ...) (squared norm over all non-batch dims), ``logdet`` is (B,); returns a scalar.
    """
    sq = 0.5 * eps.pow(2).reshape(eps.shape[0], -1).sum(dim=1)  # (B,)
    return sq.mean() - logdet.mean()


class NonFiniteGuard:
    """Skips optimisation steps whose loss is NaN/inf and stops training after too many in a row, or after an
    epoch whose every step was skipped."""

    def __init__(self, max_consecutive: int = 10) -> None:
        if max_consecutive < 1:
            raise ValueError(f"max_consecutive must be >= 1, got {max_consecutive}")
        self.max_consecutive = max_consecutive
        self.consecutive = 0
        self.total_skipped = 0
        self.epoch_taken = 0
        self.epoch_skipped = 0

    def end_epoch(self, epoch: int) -> None:
        """Raise when no step of the epoch was taken because every loss was non-finite; reset the counts."""
        taken, skipped = self.epoch_taken, self.epoch_skipped
        self.epoch_taken = self.epoch_skipped = 0
        if skipped and not taken:
            raise NonFiniteLossError(
                f"every one of the {skipped} steps of cINN epoch {epoch} had a non-finite loss and was skipped: the "
                "model was not trained and no cINN.pth was written. Try a lower learning rate, enable gradient "
                "clipping, or check the data and the frozen models (NaN/inf latents or embeddings)")

    def check(self, loss: Tensor | float) -> bool:
        """True if ``loss`` is finite (take the step); False to skip it. Raises after too many in a row."""
        value = float(loss.detach().item()) if isinstance(loss, Tensor) else float(loss)
        if math.isfinite(value):
            self.consecutive = 0
            self.epoch_taken += 1
            return True
        self.consecutive += 1
        self.total_skipped += 1
        self.epoch_skipped += 1
        logger.warning("non-finite loss (%s): skipping this step (%d in a row, %d skipped in total)",
                       value, self.consecutive, self.total_skipped)
        if self.consecutive >= self.max_consecutive:
            raise NonFiniteLossError(
                f"loss was non-finite ({value}) for {self.consecutive} consecutive steps "
                f"({self.total_skipped} skipped in total); stopping. Try a lower learning rate, enable "
                "gradient clipping, or check the data (NaN/inf inputs, latents, embeddings).")
        return False
