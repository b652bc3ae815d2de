"""The adversarial part both VAE-GAN objectives share (stage 1 and the conditioning AE): the hinge loss and one
interface for a loss module that owns its discriminators (the taming-transformers style).

A loss module derived from :class:`AdversarialLoss` has two methods, each returning ``(loss, logs)`` with logs
as detached 0-d tensors::

    d_loss, d_logs = loss.discriminator_loss(real, fake, epoch, ...)   # the discriminators' objective
    g_loss, g_logs = loss.generator_loss(real, fake, ..., epoch, ...)  # the encoder/decoder objective

Both run, and log every term, in every epoch, as the original's training code does; the adversarial terms
count in ``g_loss`` and the trainer updates the discriminators only from epoch ``Training.pretrain`` on
(:meth:`AdversarialLoss.gan_active`).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """``0.5 * (mean relu(1 - D(real)) + mean relu(1 + D(fake)))``."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


class AdversarialLoss(nn.Module):
    """Base of the GAN objectives: owns the discriminator(s) and the warm-up of ``pretrain`` epochs."""

    def __init__(self, pretrain: int) -> None:
        super().__init__()
        self.pretrain = int(pretrain)

    def gan_active(self, epoch: int) -> bool:
        """Whether the adversarial terms count, and the discriminators are updated, in ``epoch``."""
        return epoch >= self.pretrain

    def discriminator_loss(self, *args, **kwargs) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def generator_loss(self, *args, **kwargs) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError
