"""Activation normalisation (Glow / taming-transformers style) and the data-dependent initialisation it shares with
the cINN's ActNorm (:class:`stage2_cINN.modules.blocks.InvertibleActNorm`).

``y = scale * (x + loc)`` per channel. ``loc`` and ``scale`` are initialised from the first batch seen in
training mode (``loc = -mean``, ``scale = 1 / (std + 1e-6)``, unbiased std over batch and space), after which
the ``initialized`` buffer (uint8 scalar) is 1. :class:`ActNorm2d` normalises image feature maps in the patch
discriminator and in the conditioning AE's encoder (``AE.norm: an``), as the original's ``ActNorm``.
"""
from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)


class DataDependentInit(nn.Module):
    """Holds the ``initialized`` buffer (uint8 scalar) of a layer initialised from its first training batch,
    with a Python-side copy so that training forwards do not read the buffer (a device sync) every call; the
    copy is reset whenever a state dict is loaded. Subclasses implement ``initialize(x)``."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))
        self._known_initialized = False

    def initialize(self, x: Tensor) -> None:
        raise NotImplementedError

    def _mark_initialized(self) -> None:
        self.initialized.fill_(1)
        self._known_initialized = True

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 (torch signature)
        super()._load_from_state_dict(*args, **kwargs)
        self._known_initialized = False

    def _maybe_initialize(self, x: Tensor) -> None:
        """``initialize(x)`` on the first training forward of an uninitialised layer (one buffer read)."""
        if not self.training or self._known_initialized:
            return
        if int(self.initialized.item()) == 0:
            self.initialize(x)
        self._known_initialized = True


class ActNorm2d(DataDependentInit):
    """Per-channel affine normalisation with data-dependent initialisation on the first training batch."""

    def __init__(self, num_features: int, logdet: bool = False, affine: bool = True) -> None:
        super().__init__()
        if not affine:
            raise ValueError("ActNorm is affine by construction; affine=False is not supported")
        self.num_features = num_features
        self.logdet = logdet
        self.loc = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        self.scale = nn.Parameter(torch.ones(1, num_features, 1, 1))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set ``loc``/``scale`` so that ``x`` (B, C, H, W) has zero mean and unit std per channel."""
        flat = x.transpose(0, 1).reshape(self.num_features, -1)  # (C, B*H*W)
        if flat.shape[1] < 2:
            raise ValueError(
                f"ActNorm data-dependent init needs >= 2 values per channel, got input {tuple(x.shape)}"
            )
        mean = flat.mean(dim=1)  # (C,)
        std = flat.std(dim=1)  # (C,) unbiased
        self.loc.copy_(-mean.view_as(self.loc))
        self.scale.copy_((1.0 / (std + 1e-6)).view_as(self.scale))
        self._mark_initialized()

    def forward(self, x: Tensor, reverse: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Normalise ``x`` (B, C, H, W) or (B, C); with ``logdet=True`` also return log|det| per sample."""
        if reverse:
            return self.reverse(x)
        squeeze = x.dim() == 2
        if squeeze:
            x = x[:, :, None, None]  # (B, C, 1, 1)
        self._maybe_initialize(x)
        h = self.scale * (x + self.loc)  # (B, C, H, W)
        if squeeze:
            h = h[:, :, 0, 0]  # (B, C)
        if not self.logdet:
            return h
        pixels = x.shape[2] * x.shape[3]
        logdet = pixels * torch.log(torch.abs(self.scale)).sum()  # scalar
        return h, logdet.expand(x.shape[0])  # (B, ...), (B,)

    def reverse(self, y: Tensor) -> Tensor:
        """Inverse map ``x = y / scale - loc``."""
        squeeze = y.dim() == 2
        if squeeze:
            y = y[:, :, None, None]  # (B, C, 1, 1)
        x = y / self.scale - self.loc  # (B, C, H, W)
        return x[:, :, 0, 0] if squeeze else x
