"""Frame-quality metrics of reconstructions, logged in stage-1 validation: PSNR and SSIM (the original logged
pytorch-lightning's ``psnr`` and ``ssim``)."""
from __future__ import annotations

import kornia
import torch


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean PSNR over frames of videos in [-1, 1] (computed on [0, 1])."""
    mse = ((x.float() - y.float()) / 2).pow(2).flatten(-3).mean(-1).clamp_min(1e-10)
    return (10 * torch.log10(1.0 / mse)).mean()


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM (11x11 Gaussian window) over frames of videos in [-1, 1]."""
    a = ((x.float() + 1) / 2).flatten(0, -4)
    b = ((y.float() + 1) / 2).flatten(0, -4)
    return kornia.metrics.ssim(a, b, window_size=11).mean()
