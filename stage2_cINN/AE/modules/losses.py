"""Objective of the conditioning autoencoder (the original's stage2_cINN/AE/modules/loss.py, taming-transformers
style), with the interface of :class:`blocks.gan.AdversarialLoss`.

Generator (:meth:`AELoss.generator_loss`)::

    rec  = |x - x_hat| + LPIPS(x, x_hat)          per pixel, LPIPS (B,1,1,1) broadcast
    nll  = sum(rec) / B
    kl   = sum(KL(q(z|x) || N(0, I))) / B
    g    = -mean D(x_hat)
    loss = nll + w_kl * kl + d_weight * disc_factor * g

with ``d_weight = clamp(||d nll / dW|| / (||d g / dW|| + 1e-4), 0, 1e4)`` (detached), ``W`` the decoder's
last layer weight, computed in every training step (also in warm-up, where it is logged), 0 without gradients
(validation), and ``disc_factor = 1`` from epoch ``pretrain`` on, else 0. The original divides ``rec`` by
``exp(logvar)`` of a learned scalar that no optimiser ever updates (it stays 0), so that division is a
constant 1 and is omitted here.

Discriminator (:meth:`AELoss.discriminator_loss`)::

    d_loss = disc_factor * 0.5 * (mean relu(1 - D(x)) + mean relu(1 + D(x_hat.detach())))
"""
from __future__ import annotations

import logging
from typing import Callable

import torch
from torch import nn

from blocks.gan import AdversarialLoss, hinge_d_loss
from blocks.lpips import make_lpips
from stage2_cINN.AE.modules.encoder import DiagonalGaussian

logger = logging.getLogger(__name__)

PerceptualFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def adopt_weight(epoch: int, pretrain: int, value: float = 1.0) -> float:
    """``value`` from epoch ``pretrain`` on, 0 before."""
    return value if epoch >= pretrain else 0.0


def adaptive_disc_weight(nll: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor,
                         max_weight: float = 1e4) -> torch.Tensor:
    """``clamp(||grad nll|| / (||grad g|| + 1e-4), 0, max_weight)`` at ``last_layer``, detached."""
    nll_grads = torch.autograd.grad(nll, last_layer, retain_graph=True)[0]
    g_grads = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    weight = torch.norm(nll_grads) / (torch.norm(g_grads) + 1e-4)
    return torch.clamp(weight, 0.0, max_weight).detach()


class AELoss(AdversarialLoss):
    """Reconstruction (L1 + LPIPS) + KL + adaptive-weighted hinge-GAN loss; owns the patch discriminator."""

    def __init__(self, discriminator: nn.Module, perceptual: PerceptualFn, w_kl: float, pretrain: int,
                 disc_weight: float = 1.0) -> None:
        super().__init__(pretrain)
        self.discriminator = discriminator
        self.perceptual = perceptual
        self.w_kl = float(w_kl)
        self.disc_weight = float(disc_weight)

    @classmethod
    def from_config(cls, config: dict, discriminator: nn.Module, perceptual: PerceptualFn | None = None) -> "AELoss":
        """Build from a parsed AE config (``Training.w_kl``, ``Training.pretrain``).

        Without ``perceptual``, LPIPS (VGG) is built by :func:`blocks.lpips.make_lpips` from ``Training.lpips_weights``
        (``Training.allow_random_lpips`` permits a random backbone, tests/demo only; ``Training.lpips_dropout``
        keeps its dropout active, as the original).
        """
        training = config["Training"]
        if perceptual is None:
            perceptual = make_lpips(training.get("lpips_weights"), bool(training.get("allow_random_lpips", False)),
                                    bool(training.get("lpips_dropout", True)))
        return cls(discriminator, perceptual, w_kl=training["w_kl"], pretrain=training["pretrain"])

    def reconstruction(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """Per-pixel ``|x - x_hat| + LPIPS(x, x_hat)``: (B, 3, H, W)."""
        p = self.perceptual(x.contiguous(), x_hat.contiguous())  # (B, 1, 1, 1)
        return torch.abs(x - x_hat) + p  # (B, 3, H, W)

    def generator_loss(self, x: torch.Tensor, x_hat: torch.Tensor, posterior: DiagonalGaussian, epoch: int,
                       last_layer: torch.Tensor | None = None,
                       split: str = "train") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Encoder/decoder loss and a dict of detached scalars to log (keys ``<split>/...``)."""
        disc_factor = adopt_weight(epoch, self.pretrain)
        rec = self.reconstruction(x, x_hat)  # (B, 3, H, W)
        nll = rec.sum() / rec.shape[0]
        kl = posterior.kl()  # (B,)
        kl = kl.sum() / kl.shape[0]
        g_loss = -self.discriminator(x_hat.contiguous()).mean()
        if last_layer is not None and torch.is_grad_enabled() and nll.requires_grad:  # every training step
            d_weight = adaptive_disc_weight(nll, g_loss, last_layer) * self.disc_weight
        else:  # without gradients (validation) the original's adaptive weight fails and it logs 0
            d_weight = torch.zeros((), device=x.device)
        loss = nll + self.w_kl * kl + d_weight * disc_factor * g_loss
        log = {
            f"{split}/total_loss": loss.detach(),
            f"{split}/nll_loss": nll.detach(),
            f"{split}/rec_loss": rec.detach().mean(),
            f"{split}/kl_loss": kl.detach(),
            f"{split}/g_loss": g_loss.detach(),
            f"{split}/d_weight": d_weight.detach(),
            f"{split}/disc_factor": torch.tensor(disc_factor, device=x.device),
        }
        return loss, log

    def discriminator_loss(self, x: torch.Tensor, x_hat: torch.Tensor, epoch: int,
                           split: str = "train") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The discriminator's hinge loss (0 before ``pretrain``) on real and detached reconstructed frames."""
        logits_real = self.discriminator(x.detach().contiguous())
        logits_fake = self.discriminator(x_hat.detach().contiguous())
        d_loss = adopt_weight(epoch, self.pretrain) * hinge_d_loss(logits_real, logits_fake)
        log = {
            f"{split}/disc_loss": d_loss.detach(),
            f"{split}/logits_real": logits_real.detach().mean(),
            f"{split}/logits_fake": logits_fake.detach().mean(),
        }
        return d_loss, log
