"""The one NaN/Inf policy of the three trainers.

The original trained on after a NaN loss and overwrote its last good checkpoint with NaN weights; users
reported NaN cINN losses on new data. Here:

- every step's loss terms are watched (:meth:`FiniteMonitor.add`); a NaN/Inf term stops the run with a
  :class:`~utils.errors.NonFiniteLossError` naming the first bad step and its terms, before any checkpoint is
  written (the trainers call :meth:`FiniteMonitor.check` before each save). On CUDA the flag stays on the
  device (no host sync per step) until :meth:`check` reads it at logging steps and saves; elsewhere every
  step is checked at once;
- with ``max_skips > 0`` (the cINN's ``Training.max_nonfinite``) a step whose loss is NaN/Inf is skipped
  instead (:meth:`FiniteMonitor.allow`, before its update: one host sync per step; under DDP every rank skips
  when one rank's loss is NaN/Inf, as DDP's gradient all-reduce needs every rank's backward), and ``max_skips``
  skips in a row, or an epoch whose every step was skipped (:meth:`FiniteMonitor.end_epoch`), stop the run;
- NaN/Inf validation metrics stop it too (:meth:`FiniteMonitor.check_metrics`).
"""
from __future__ import annotations

import logging
import math
from typing import Mapping

import torch

from utils.distributed import DistInfo, all_true
from utils.errors import NonFiniteLossError

logger = logging.getLogger(__name__)

_ADVICE = "Lower Training.lr, set Training.grad_clip, or check the data for NaN/Inf values"


class FiniteMonitor:
    """Watches a trainer's losses for NaN/Inf (see the module docstring)."""

    def __init__(self, device: torch.device, what: str, max_skips: int = 0, dist: DistInfo | None = None) -> None:
        if max_skips < 0:
            raise ValueError(f"max_skips must be >= 0, got {max_skips}")
        self.eager = torch.device(device).type != "cuda"
        self.what = what
        self.max_skips = int(max_skips)
        self.dist = dist or DistInfo()  # the ranks that skip together
        self.consecutive = self.total_skipped = 0
        self._epoch_taken = self._epoch_skipped = 0
        self._names: tuple[str, ...] | None = None
        self._first: torch.Tensor | None = None
        self._values: torch.Tensor | None = None

    # ------------------------------------------------------------------ skipping (max_skips > 0)
    def allow(self, loss: torch.Tensor | float) -> bool:
        """Whether to take the update of ``loss``: always without skipping (``add`` watches it); with
        ``max_skips`` False for a NaN/Inf loss (logged), raising after ``max_skips`` in a row."""
        if not self.max_skips:
            return True
        value = float(loss.detach().item()) if isinstance(loss, torch.Tensor) else float(loss)
        if all_true(math.isfinite(value), self.dist):
            self.consecutive = 0
            self._epoch_taken += 1
            return True
        self.consecutive += 1
        self.total_skipped += 1
        self._epoch_skipped += 1
        where = "" if not math.isfinite(value) else f" on another rank (this rank's: {value:.4g})"
        logger.warning("non-finite %s loss%s: skipping this step (%d in a row, %d skipped in total)",
                       self.what, where or f" ({value})", self.consecutive, self.total_skipped)
        if self.consecutive >= self.max_skips:
            raise NonFiniteLossError(
                f"the {self.what} loss was non-finite ({value}) for {self.consecutive} consecutive steps "
                f"({self.total_skipped} skipped in total); stopping. Try a lower learning rate, enable gradient "
                "clipping, or check the data (NaN/inf inputs, latents, embeddings).")
        return False

    def end_epoch(self, epoch: int) -> None:
        """Raise when every step of the epoch was skipped (the model was not trained); reset the counts."""
        taken, skipped = self._epoch_taken, self._epoch_skipped
        self._epoch_taken = self._epoch_skipped = 0
        if skipped and not taken:
            raise NonFiniteLossError(
                f"every one of the {skipped} steps of {self.what} epoch {epoch} had a non-finite loss and was "
                "skipped: the model was not trained and no checkpoint was written. Try a lower learning rate, enable "
                "gradient clipping, or check the data and the frozen models (NaN/inf latents or embeddings)")

    # ------------------------------------------------------------------ watching (every trainer)
    def add(self, logs: Mapping[str, torch.Tensor | float], step: int) -> None:
        """Record a step's loss terms (checked at once on the CPU; on CUDA at the next :meth:`check`)."""
        names = tuple(logs)
        if names != self._names:  # e.g. discriminator terms from epoch ``pretrain`` on
            self.check()
            self._names, self._first = names, None
        device = next((v.device for v in logs.values() if isinstance(v, torch.Tensor)), torch.device("cpu"))
        values = torch.stack([torch.as_tensor(v, device=device).detach().float().reshape(()) for v in logs.values()])
        if self._first is None:
            self._first = torch.full((), -1, dtype=torch.long, device=values.device)
            self._values = values.clone()
        new = (~torch.isfinite(values).all()) & (self._first < 0)
        self._first = torch.where(new, step, self._first)
        self._values = torch.where(new, values, self._values)
        if self.eager:
            self.check()

    def check(self) -> None:
        """Raise :class:`NonFiniteLossError` if any step so far had a NaN/Inf loss term (one host sync)."""
        if self._first is None or int(self._first) < 0:
            return
        values = dict(zip(self._names, self._values.cpu().tolist()))
        bad = ", ".join(f"{k}={v}" for k, v in values.items() if not math.isfinite(v))
        good = ", ".join(f"{k}={v:.4g}" for k, v in values.items() if math.isfinite(v))
        raise NonFiniteLossError(
            f"non-finite {self.what} loss at step {int(self._first)}: {bad}" + (f" (finite: {good})" if good else "")
            + f"; stopped before writing a checkpoint, so the last good checkpoint set is kept. {_ADVICE}")

    def check_metrics(self, metrics: Mapping[str, float], epoch: int) -> None:
        """Also refuse to go on (and save) after a validation whose metrics are NaN/Inf."""
        self.check()
        bad = {k: v for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)}
        if bad:
            raise NonFiniteLossError(
                f"the {self.what} validation of epoch {epoch} gave non-finite "
                + ", ".join(f"{k}={v}" for k, v in bad.items())
                + ": the model's outputs are not finite; no checkpoint was written, the last good set is kept. "
                "Lower Training.lr or set Training.grad_clip")
