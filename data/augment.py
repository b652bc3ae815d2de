"""Clip transforms: resize, and for training a crop, flip and colour jitter shared by every frame of a clip.

Input clips are ``(T, 3, H, W)`` tensors (uint8 in [0, 255] or float in [0, 1]); outputs are float
``(T, 3, img_size, img_size)`` in [-1, 1] (``x = (rgb / 255 - 0.5) / 0.5``). Random draws use the global
torch RNG, which :func:`data.make_loader` seeds per worker.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

import kornia.augmentation as K
import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

__all__ = ["ClipTransform", "resize_clip"]


def resize_clip(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a float clip ``(T, C, H, W)`` to ``size x size`` in one batched call.

    Bilinear, ``align_corners=False`` and **no antialiasing**, as the original's kornia 0.5 ``Resize``: every
    training, evaluation and start frame is resized this way, so downsampled frames match the original's.
    """
    if clip.shape[-2:] == (size, size):
        return clip
    return F.interpolate(clip, size=(size, size), mode="bilinear", align_corners=False, antialias=False)


class ClipTransform:
    """Resize + (train) random crop, horizontal flip and colour jitter with one parameter draw per clip."""

    def __init__(self, img_size: int, train: bool = False, crop_margin: int = 0, brightness: float = 0.0,
                 contrast: float = 0.0, saturation: float = 0.0, hue: float = 0.0, prob_hflip: float = 0.5) -> None:
        self.img_size = int(img_size)
        self.train = bool(train)
        self.crop_margin = int(crop_margin) if train else 0
        self.prob_hflip = float(prob_hflip)
        jitter = (float(brightness), float(contrast), float(saturation), float(hue))
        # same_on_batch=True: the T frames form the batch, so every frame gets the same factors and order.
        # ColorJiggle keeps the formulas of the original's kornia 0.5 ColorJitter (additive brightness,
        # contrast as a plain scaling); kornia >= 0.6's ColorJitter multiplies brightness and blends contrast.
        self.jitter = K.ColorJiggle(*jitter, same_on_batch=True, p=1.0) if train and any(jitter) else None

    @classmethod
    def from_config(cls, data: Mapping[str, Any], train: bool, crop_margin: int = 0) -> "ClipTransform":
        """Build from a config's ``Data`` section (``img_size``, ``aug``, ``Augmentation{...}``)."""
        aug = dict(data.get("Augmentation") or {})
        known = ("brightness", "contrast", "saturation", "hue", "prob_hflip")
        unknown = set(aug) - set(known)
        if unknown:
            logger.warning("ignoring unknown Data.Augmentation keys %s", sorted(unknown))
        train = train and bool(data.get("aug", True))
        return cls(int(data["img_size"]), train=train, crop_margin=crop_margin,
                   **{k: aug[k] for k in known if k in aug})

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        x = clip.float() / 255.0 if clip.dtype == torch.uint8 else clip.float()
        x = resize_clip(x, self.img_size + self.crop_margin)
        if self.train:
            if self.crop_margin:
                top, left = (int(v) for v in torch.randint(0, self.crop_margin + 1, (2,)))
                x = x[..., top:top + self.img_size, left:left + self.img_size]
            if float(torch.rand(())) < self.prob_hflip:
                x = x.flip(-1)
            if self.jitter is not None:
                x = self.jitter(x)
        return (x.clamp(0.0, 1.0) - 0.5) / 0.5
