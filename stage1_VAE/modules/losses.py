"""The stage-1 objective (the original's stage1_VAE/modules/loss.py, ``Backward``): reconstruction + LPIPS + KL
for the VAE, hinge GAN losses for the temporal (D_t) and patch (D_s) discriminators.

:class:`Stage1Loss` owns the two discriminators and the perceptual network, not the optimisers; it has the
interface of :class:`blocks.gan.AdversarialLoss`. One iteration of a training loop::

    idx = loss_module.sample_indices(B, T, device)       # temporal window + 20 patch frames, shared
    d_loss, d_log = loss_module.discriminator_loss(x, x_hat, epoch, idx)
    if loss_module.gan_active(epoch): ...                # update D_t and D_s (from Training.pretrain on)
    g_loss, g_log = loss_module.generator_loss(x, x_hat, mu, logvar, epoch, idx)

``discriminator_loss`` detaches ``x_hat``; ``generator_loss`` runs the discriminators with their parameters
frozen, so its backward leaves no gradient on them (except under DDP, see :func:`frozen`). The
discriminators run in the original's order, in every epoch: ``discriminator_loss`` feeds each of them the
fake input, then the real one, and ``generator_loss`` the fake (and, for D_t's feature targets, the real)
input. Before ``Training.pretrain`` these forwards still run and every term is logged, as in the original,
but nothing adversarial is optimised: their spectral-norm vectors advance with each training-mode forward,
and the patch discriminator's ActNorm initialises itself on the fake frames of the first batch. Log values
are detached 0-d tensors (no device sync).
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from blocks.gan import AdversarialLoss, hinge_d_loss
from stage1_VAE.modules import temporal_crop_length

logger = logging.getLogger(__name__)

N_PATCH_FRAMES = 20


# ----------------------------------------------------------------------------------------------- pure terms
def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over latent dims and averaged over the batch."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).flatten(1).sum(dim=1).mean()


def r1_penalty(logits: Tensor, inputs: Tensor, create_graph: bool = True) -> Tensor:
    """R1: gradient of ``mean(logits)`` w.r.t. ``inputs`` (which must require grad), squared, summed per
    sample, averaged over the batch; differentiable w.r.t. the discriminator's parameters (``create_graph``)."""
    (grad,) = torch.autograd.grad(logits.mean(), inputs, create_graph=create_graph)  # like inputs
    return grad.pow(2).flatten(1).sum(dim=1).mean()


def feature_matching(fmaps_fake: Sequence[Tensor], fmaps_real: Sequence[Tensor]) -> Tensor:
    """Mean over stages of ``mean |fmap(fake) - fmap(real)|``."""
    if len(fmaps_fake) != len(fmaps_real) or not fmaps_fake:
        raise ValueError(f"feature matching needs equally many maps, got {len(fmaps_fake)} and {len(fmaps_real)}")
    return torch.stack([(f - r).abs().mean() for f, r in zip(fmaps_fake, fmaps_real)]).mean()


# -------------------------------------------------------------------------------------------- the module
@dataclass
class Stage1Indices:
    """Random choices of one iteration, shared by the discriminator and generator steps."""

    t_start: int  # first frame of the temporal-discriminator window
    t_len: int  # window length (the whole clip when it has fewer than 16 frames)
    frames: Tensor  # (n_patch_frames,) long: indices into the flattened B*T frames, with replacement


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Temporarily set ``requires_grad=False`` on the parameters of ``modules`` (restored afterwards).

    Modules wrapped in DistributedDataParallel are left alone: DDP's reducer expects a gradient for every
    parameter in each backward, so there the generator's backward also fills the discriminators' (unused)
    gradients, which the training loop clears before the next discriminator update.
    """
    ddp = nn.parallel.DistributedDataParallel
    params = [
        p for m in modules if not any(isinstance(sub, ddp) for sub in m.modules()) for p in m.parameters()
    ]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


class Stage1Loss(AdversarialLoss):
    """Stage-1 VAE-GAN losses; owns D_t, D_s and the perceptual metric (the training loop owns optimisers)."""

    def __init__(
        self,
        disc_t: nn.Module,
        disc_s: nn.Module,
        perceptual: Callable[[Tensor, Tensor], Tensor],
        training: Mapping,
        n_patch_frames: int = N_PATCH_FRAMES,
    ) -> None:
        """``training``: the stage-1 config's ``Training`` section (w_recon, w_percep, w_kl, w_coup_t,
        w_fmap_t, w_GP, subsample_length, pretrain); ``w_coup_s`` is unused, as in the original."""
        super().__init__(int(training.get("pretrain", 0)))
        self.disc_t = disc_t
        self.disc_s = disc_s
        self.perceptual = perceptual
        self.w_recon, self.w_percep, self.w_kl = (float(training[k]) for k in ("w_recon", "w_percep", "w_kl"))
        self.w_coup_t, self.w_fmap_t, self.w_GP = (float(training[k]) for k in ("w_coup_t", "w_fmap_t", "w_GP"))
        self.subsample_length = int(training.get("subsample_length", 12))
        self.n_patch_frames = int(n_patch_frames)

    def sample_indices(self, batch: int, n_frames: int, device: torch.device | str) -> Stage1Indices:
        """Draw the temporal window and the patch frames of one iteration from numpy's global generator, as
        the original does (the window start only for clips of 16+ frames), so torch's stream is untouched."""
        t_len = temporal_crop_length(n_frames, self.subsample_length)
        t_start = int(np.random.randint(0, n_frames - t_len + 1)) if n_frames >= 16 else 0
        frames = torch.from_numpy(np.random.randint(0, batch * n_frames, self.n_patch_frames)).long()
        return Stage1Indices(t_start, t_len, frames.to(device, non_blocking=True))

    @staticmethod
    def temporal_crop(video: Tensor, idx: Stage1Indices) -> Tensor:
        """(B, T, C, H, W) -> (B, t_len, C, H, W)."""
        return video[:, idx.t_start : idx.t_start + idx.t_len]

    @staticmethod
    def select_frames(video: Tensor, idx: Stage1Indices) -> Tensor:
        """(B, T, C, H, W) -> (n_patch_frames, C, H, W)."""
        return video.flatten(0, 1)[idx.frames]

    def _indices(self, video: Tensor, idx: Stage1Indices | None) -> Stage1Indices:
        return idx if idx is not None else self.sample_indices(video.shape[0], video.shape[1], video.device)

    def discriminator_loss(
        self, real: Tensor, fake: Tensor, epoch: int, indices: Stage1Indices | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss of D_t (hinge + w_GP * R1) plus D_s (hinge) on real / detached fake videos (B, T, 3, H, W).

        Each discriminator sees the fake input first, then the real one (the original's order). Before
        ``pretrain`` the same forwards and terms are computed and logged, as the original does, but the R1
        gradient carries no graph (the trainer does not update the discriminators then)."""
        idx = self._indices(real, indices)
        fake = fake.detach()
        active = self.gan_active(epoch)
        real_crop = self.temporal_crop(real, idx).detach().requires_grad_(self.w_GP > 0)  # (B, L, 3, H, W)
        with torch.set_grad_enabled(active or self.w_GP > 0):
            logit_fake, _ = self.disc_t(self.temporal_crop(fake, idx))  # (B, 1)
            logit_real, _ = self.disc_t(real_crop)  # (B, 1)
            loss_t = hinge_d_loss(logit_real, logit_fake)
            r1 = (r1_penalty(logit_real, real_crop, create_graph=active) if self.w_GP > 0
                  else torch.zeros((), device=real.device))
        with torch.set_grad_enabled(active):
            patch_fake = self.disc_s(self.select_frames(fake, idx))  # (N, 1, h, w)
            patch_real = self.disc_s(self.select_frames(real, idx))  # (N, 1, h, w)
            loss_s = hinge_d_loss(patch_real, patch_fake)
            total = loss_t + self.w_GP * r1 + loss_s
        log = {
            "disc_t/loss": loss_t,
            "disc_t/r1": r1,
            "disc_t/logit_real": logit_real.mean(),
            "disc_t/logit_fake": logit_fake.mean(),
            "disc_s/loss": loss_s,
            "disc_s/logit_real": patch_real.mean(),
            "disc_s/logit_fake": patch_fake.mean(),
            "disc/total": total,
        }
        return total, {k: v.detach() for k, v in log.items()}

    def generator_loss(
        self,
        x: Tensor,
        x_hat: Tensor,
        mu: Tensor,
        logvar: Tensor,
        epoch: int,
        indices: Stage1Indices | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Encoder/generator loss for real ``x`` and reconstruction ``x_hat`` (B, T, 3, H, W), latents (B, z).

        Before ``pretrain`` the adversarial terms are computed (without gradients) and logged, as in the
        original, but not added to the loss."""
        recon = (x_hat - x).abs().mean()
        if self.w_percep:
            percep = self.perceptual(x.flatten(0, 1), x_hat.flatten(0, 1)).mean()  # frames (B*T, 3, H, W)
        else:  # the term is off: skip the VGG forward/backward
            percep = torch.zeros((), device=x.device)
        kl = kl_divergence(mu, logvar)
        loss = self.w_recon * recon + self.w_percep * percep + self.w_kl * kl
        idx = self._indices(x, indices)
        active = self.gan_active(epoch)
        with frozen(self.disc_t, self.disc_s), torch.set_grad_enabled(active and torch.is_grad_enabled()):
            logit_fake, fmaps_fake = self.disc_t(self.temporal_crop(x_hat, idx))  # (B, 1), 4 maps
            with torch.no_grad():
                _, fmaps_real = self.disc_t(self.temporal_crop(x, idx))  # 4 maps (targets)
            gan_t = -logit_fake.mean()
            fmap = feature_matching(fmaps_fake, fmaps_real)
            gan_s = -self.disc_s(self.select_frames(x_hat, idx)).mean()
        if active:
            loss = loss + gan_s + self.w_coup_t * gan_t + self.w_fmap_t * fmap
        log = {"gen/recon_l1": recon, "gen/lpips": percep, "gen/kl": kl, "gen/gan_s": gan_s, "gen/gan_t": gan_t,
               "gen/fmap_t": fmap, "gen/total": loss}
        return loss, {k: v.detach() for k, v in log.items()}
