"""Invertible building blocks of the conditional INN (the original's stage2_cINN/modules/flow_blocks.py and
modules.py).

Every piece derives from :class:`InvertibleModule` and shares one interface (FrEIA style)::

    out, logdet = module(x, cond=None, reverse=False)

* ``x`` is a batch of latent vectors ``(B, C)``.
* ``reverse=False`` applies the forward map ``y = f(x | cond)`` and returns ``(y, log|det df/dx|)``.
* ``reverse=True`` applies the inverse ``x = f^-1(y | cond)`` and returns
  ``(x, log|det df^-1/dy|)``, i.e. the log-det of the map actually applied (the negative of the forward
  log-det at the matching point).
* ``logdet`` always has shape ``(B,)``, dtype and device of ``x``.

Parameter and buffer names follow the reference so released state dicts load unchanged
(ActNorm ``loc``/``scale`` are stored as ``(1, C, 1, 1)`` although the flow works on ``(B, C)``).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from blocks.actnorm import DataDependentInit

LEAKY_RELU_SLOPE = 0.9


class InvertibleModule(nn.Module):
    """Base class: ``forward(x, cond=None, reverse=False) -> (out, logdet)`` in both directions."""

    def forward(self, x: Tensor, cond: Optional[Tensor] = None, reverse: bool = False) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


def _check_vectors(x: Tensor, name: str) -> None:
    if x.dim() != 2:
        raise ValueError(f"{name} expects latent vectors of shape (B, C), got {tuple(x.shape)}")


class InvertibleActNorm(InvertibleModule, DataDependentInit):
    """Per-channel affine ``y = scale * (x + loc)`` with data-dependent init on the first training forward."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features
        self.loc = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        self.scale = nn.Parameter(torch.ones(1, num_features, 1, 1))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set ``loc = -mean`` and ``scale = 1 / (std + 1e-6)`` per channel from the batch ``x`` (B, C)."""
        if x.shape[0] < 2:
            raise ValueError("ActNorm data-dependent initialisation needs a batch of at least 2 samples")
        mean = x.mean(dim=0)  # (C,)
        std = x.std(dim=0)  # (C,) unbiased, as the reference
        self.loc.copy_(-mean.view_as(self.loc))
        self.scale.copy_((1.0 / (std + 1e-6)).view_as(self.scale))
        self._mark_initialized()

    def _log_abs_scale(self, x: Tensor) -> Tensor:
        ld = torch.log(torch.abs(self.scale)).sum()  # scalar
        return ld.expand(x.shape[0])  # (B,)

    def forward(self, x: Tensor, cond: Optional[Tensor] = None, reverse: bool = False) -> tuple[Tensor, Tensor]:
        _check_vectors(x, "InvertibleActNorm")
        loc = self.loc.view(1, -1)  # (1, C)
        scale = self.scale.view(1, -1)  # (1, C)
        if reverse:
            return x / scale - loc, -self._log_abs_scale(x)  # (B, C), (B,)
        self._maybe_initialize(x)  # first training batch only; no device sync afterwards
        return scale * (x + loc), self._log_abs_scale(x)  # (B, C), (B,)


class InvLeakyReLU(InvertibleModule):
    """Invertible leaky ReLU (slope ``alpha`` on negatives) with the exact log-det.

    The reference returned 0 as its log-det; here the term ``log(alpha) * #(negative entries)`` is kept.
    """

    def __init__(self, alpha: float = LEAKY_RELU_SLOPE) -> None:
        super().__init__()
        if not 0.0 < alpha:
            raise ValueError(f"InvLeakyReLU slope must be positive, got {alpha}")
        self.alpha = alpha

    def forward(self, x: Tensor, cond: Optional[Tensor] = None, reverse: bool = False) -> tuple[Tensor, Tensor]:
        _check_vectors(x, "InvLeakyReLU")
        negative = x < 0  # (B, C); the sign is preserved, so the same mask serves both directions
        factor = 1.0 / self.alpha if reverse else self.alpha
        out = torch.where(negative, x * factor, x)  # (B, C)
        logdet = negative.to(x.dtype).sum(dim=1) * math.log(factor)  # (B,)
        return out, logdet


class BasicFullyConnectedNet(nn.Module):
    """MLP ``Linear -> LeakyReLU -> depth x [Linear -> LeakyReLU] -> Linear`` (LeakyReLU slope 0.01)."""

    def __init__(self, dim: int, depth: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(dim, hidden_dim), nn.LeakyReLU()]
        for _ in range(depth):
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.LeakyReLU()]
        layers.append(nn.Linear(hidden_dim, out_dim))
        self.main = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x)  # (B, dim) -> (B, out_dim)


class ConditionalDoubleVectorCoupling(InvertibleModule):
    """Two conditional affine couplings, halves swapped before the second.

    Forward, with ``x = (a, b)``: ``b' = b * exp(s0(h(a))) + t0(h(a))``, then
    ``a' = a * exp(s1(h(b'))) + t1(h(b'))``; output ``(b', a')`` (the swap is kept).
    ``h(u) = concat(u, cond)``, or ``cond`` alone when ``cond_only`` (the control variant).
    ``s`` is unbounded (no tanh on the scale): the golden fixture of the reference matches only without one.
    """

    def __init__(self, in_channels: int, cond_channels: int, hidden_dim: int, depth: int,
                 cond_only: bool = False) -> None:
        super().__init__()
        if in_channels % 2 != 0:
            raise ValueError(f"coupling needs an even number of channels, got {in_channels}")
        half = in_channels // 2
        self.cond_only = cond_only
        net_in = cond_channels if cond_only else half + cond_channels
        self.s = nn.ModuleList(
            [BasicFullyConnectedNet(net_in, depth, hidden_dim, half) for _ in range(2)])
        self.t = nn.ModuleList(
            [BasicFullyConnectedNet(net_in, depth, hidden_dim, half) for _ in range(2)])

    def _conditioner_input(self, x_a: Tensor, cond: Tensor) -> Tensor:
        return cond if self.cond_only else torch.cat((x_a, cond), dim=1)  # (B, C/2 + D) or (B, D)

    def forward(self, x: Tensor, cond: Optional[Tensor] = None, reverse: bool = False) -> tuple[Tensor, Tensor]:
        _check_vectors(x, "ConditionalDoubleVectorCoupling")
        if cond is None:
            raise ValueError("ConditionalDoubleVectorCoupling needs a condition")
        cond = cond.reshape(cond.shape[0], -1)  # (B, D)
        logdet = x.new_zeros(x.shape[0])  # (B,)
        steps = reversed(range(len(self.s))) if reverse else range(len(self.s))
        for i in steps:
            if not reverse and i % 2 == 1:
                x = torch.cat(torch.chunk(x, 2, dim=1)[::-1], dim=1)  # swap halves (B, C)
            x_a, x_b = torch.chunk(x, 2, dim=1)  # (B, C/2) each
            h = self._conditioner_input(x_a, cond)
            s = self.s[i](h)  # (B, C/2)
            t = self.t[i](h)  # (B, C/2)
            if reverse:
                x_b = (x_b - t) * torch.exp(-s)
                logdet = logdet - s.sum(dim=1)
            else:
                x_b = x_b * torch.exp(s) + t
                logdet = logdet + s.sum(dim=1)
            x = torch.cat((x_a, x_b), dim=1)  # (B, C)
            if reverse and i % 2 == 1:
                x = torch.cat(torch.chunk(x, 2, dim=1)[::-1], dim=1)  # undo the swap (B, C)
        return x, logdet


class Shuffle(InvertibleModule):
    """Fixed random channel permutation (buffers ``forward_shuffle_idx``, ``backward_shuffle_idx``)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        idx = torch.randperm(in_channels)
        self.register_buffer("forward_shuffle_idx", idx)
        self.register_buffer("backward_shuffle_idx", torch.argsort(idx))

    def forward(self, x: Tensor, cond: Optional[Tensor] = None, reverse: bool = False) -> tuple[Tensor, Tensor]:
        _check_vectors(x, "Shuffle")
        idx = self.backward_shuffle_idx if reverse else self.forward_shuffle_idx
        return x[:, idx], x.new_zeros(x.shape[0])  # (B, C), (B,)
