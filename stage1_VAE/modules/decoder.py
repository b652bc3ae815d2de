"""Stage-1 generator ``p(x_{1:16} | x0, z)``: a 3D SPADE + AdaIN generator (the original's
stage1_VAE/modules/decoder.py, ``Generator``).

The start frame ``x0`` enters every block through SPADE. Its modulation maps ``(gamma, beta)`` do not depend
on ``z`` or on time, so they are computed once per block as 2D maps ``(B, C, H, W)`` and broadcast over
time (the reference computes them per frame; the numbers are the same). :meth:`Generator.condition`
returns them as a cache that can be reused for many ``z`` (also with a batch of 1 broadcast over ``z``).

Work the reference does that the numbers do not need (all equal to float32 rounding, see
``tests/test_perf_equivalence.py``):

* temporal nearest upsampling is never materialised: a block gets its input at the lower frame rate
  (``t_rep``); GroupNorm statistics, the SPADE modulation, the LReLU and the 1x1 shortcut are the same per
  repeated frame, and ``conv_0`` uses :func:`~stage1_VAE.modules.time_conv.repeated_time_conv3d` (1.5x fewer
  FLOPs); the shortcut is added to the upsampled residual by broadcasting;
* a one-frame input (``head_0``) only meets the centre temporal tap of a 3x3x3 kernel;
* AdaIN's instance norm and its per-sample affine map are one ``batch_norm`` call over ``(1, B*C, ...)``,
  SPADE's modulation one ``addcmul``, the LReLUs run in place.
"""
from __future__ import annotations

import logging
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from blocks.spectral_norm import maybe_sn
from utils.config import ConfigError

from .time_conv import TimeRepeatConv3d

logger = logging.getLogger(__name__)

LRELU_SLOPE = 0.2
SPADE_HIDDEN = 128
CondCache = list[tuple[Tensor, Tensor]]  # per block: SPADE (gamma, beta), each (B or 1, C, H, W)


def largest_group_count(channels: int, max_groups: int = 16) -> int:
    """Largest number of groups <= ``max_groups`` that divides ``channels``."""
    return max(g for g in range(1, max_groups + 1) if channels % g == 0)


class SPADE(nn.Module):
    """GroupNorm (no affine) modulated by ``1 + gamma`` and ``beta`` predicted from the start frame."""

    def __init__(self, n_channels: int, label_nc: int = 3, hidden: int = SPADE_HIDDEN) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(largest_group_count(n_channels), n_channels, affine=False)
        self.conv = nn.Conv2d(label_nc, hidden, kernel_size=3, padding=1)
        self.conv_gamma = nn.Conv2d(hidden, n_channels, kernel_size=3, padding=1)
        self.conv_beta = nn.Conv2d(hidden, n_channels, kernel_size=3, padding=1)

    def modulation(self, x0: Tensor) -> tuple[Tensor, Tensor]:
        """``x0`` (B, 3, H, W), already at the block's resolution -> (gamma, beta), each (B, C, H, W)."""
        h = F.leaky_relu(self.conv(x0), LRELU_SLOPE)  # (B, 128, H, W)
        return self.conv_gamma(h), self.conv_beta(h)  # (B, C, H, W) x 2

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        """``x`` (B, C, T, H, W) modulated by 2D maps (B|1, C, H, W) broadcast over time."""
        # norm(x) * (1 + gamma) + beta in one pass
        return torch.addcmul(beta.unsqueeze(2), self.norm(x), (1 + gamma).unsqueeze(2))  # (B, C, T, H, W)


class AdaIN(nn.Module):
    """InstanceNorm3d (no affine) followed by ``gamma(z) * x + beta(z)``."""

    def __init__(self, n_channels: int, z_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm3d(n_channels, affine=False)
        self.linear = nn.Linear(z_dim, 2 * n_channels)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        """``x`` (B, C, T, H, W), ``z`` (B, z_dim) -> (B, C, T, H, W)."""
        gamma, beta = self.linear(z).chunk(2, dim=1)  # (B, C) x 2
        b, c = x.shape[:2]
        if not x.is_contiguous():  # e.g. channels-last: the (1, B*C, ...) view below needs contiguous memory
            return torch.addcmul(beta[:, :, None, None, None], self.norm(x), gamma[:, :, None, None, None])
        # instance norm = batch norm of (1, B*C, ...) in training mode; its affine weights are per (b, c)
        out = F.batch_norm(x.view(1, b * c, *x.shape[2:]), None, None, gamma.reshape(-1), beta.reshape(-1),
                           training=True, momentum=0.0, eps=self.norm.eps)  # (1, B*C, T, H, W)
        return out.view_as(x)  # (B, C, T, H, W)


class ShortcutNorm(nn.Module):
    """Affine GroupNorm(16) of the learned shortcut, kept under ``.bn`` as in the reference state dict."""

    def __init__(self, n_channels: int) -> None:
        super().__init__()
        self.bn = nn.GroupNorm(16, n_channels, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(x)  # (B, C, T, H, W)


class GeneratorBlock(nn.Module):
    """Residual block: SPADE(x0) -> LReLU -> conv_0 -> AdaIN(z) -> LReLU -> conv_1, plus (learned) shortcut."""

    def __init__(self, n_in: int, n_out: int, z_dim: int, spectral_norm: bool = True) -> None:
        super().__init__()
        n_mid = min(n_in, n_out)
        self.learned_shortcut = n_in != n_out
        # registration order = reference state-dict order
        self.conv_0 = maybe_sn(TimeRepeatConv3d(n_in, n_mid, 3, 1, 1), spectral_norm)
        self.conv_1 = maybe_sn(TimeRepeatConv3d(n_mid, n_out, 3, 1, 1), spectral_norm)
        if self.learned_shortcut:
            self.conv_s = maybe_sn(nn.Conv3d(n_in, n_out, 1, bias=False), spectral_norm)
        self.norm_0 = SPADE(n_in)
        self.norm_1 = AdaIN(n_mid, z_dim)
        if self.learned_shortcut:
            self.norm_s = ShortcutNorm(n_in)

    def forward(self, x: Tensor, z: Tensor, gamma: Tensor, beta: Tensor, t_rep: int = 1) -> Tensor:
        """``x`` (B, n_in, S, H, W), ``z`` (B, z_dim), SPADE maps (B|1, n_in, H, W) -> (B, n_out, S*t_rep, H, W).

        With ``t_rep > 1`` the block computes what it computes on ``x`` nearest-upsampled in time by
        ``t_rep`` (``x.repeat_interleave(t_rep, dim=2)``) without building that tensor.
        """
        x_s = self.conv_s(self.norm_s(x)) if self.learned_shortcut else x  # (B, n_out, S, H, W)
        h = F.leaky_relu_(self.norm_0(x, gamma, beta), LRELU_SLOPE)  # (B, n_in, S, H, W)
        dx = self.conv_0(h, t_rep)  # (B, n_mid, S*t_rep, H, W)
        dx = self.conv_1(F.leaky_relu_(self.norm_1(dx, z), LRELU_SLOPE))  # (B, n_out, S*t_rep, H, W)
        if t_rep > 1:  # the shortcut of the repeated frames, by broadcasting
            return (dx.unflatten(2, (x.shape[2], t_rep)) + x_s.unsqueeze(3)).flatten(2, 3)
        return x_s + dx  # (B, n_out, S, H, W)


class Generator(nn.Module):
    """SPADE/AdaIN 3D generator ``G(x0, z) -> (B, T, 3, H, W)`` (T = 8*prod(upsample_t), H = 32*prod(upsample_s))."""

    BLOCK_NAMES = ("head_0", "g_0", "g_1", "g_2", "g_3", "g_4")

    def __init__(
        self,
        z_dim: int,
        channel_factor: int,
        upsample_s: Sequence[int] = (2, 1),
        upsample_t: Sequence[int] = (2, 1),
        spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        if len(upsample_s) != 2 or len(upsample_t) != 2:
            raise ConfigError(f"Decoder.upsample_s/upsample_t need 2 entries, got {list(upsample_s)}, "
                              f"{list(upsample_t)}")
        nf = channel_factor
        self.z_dim = z_dim
        self.nf = nf
        self.fc = nn.Linear(z_dim, 4 * 4 * 16 * nf)
        widths = [16 * nf, 16 * nf, 16 * nf, 8 * nf, 4 * nf, 2 * nf, nf]  # in/out channels along the blocks
        for name, n_in, n_out in zip(self.BLOCK_NAMES, widths[:-1], widths[1:]):
            self.add_module(name, GeneratorBlock(n_in, n_out, z_dim, spectral_norm))
        self.conv_img = nn.Conv3d(nf, 3, 3, padding=1)
        us, ut = [int(s) for s in upsample_s], [int(t) for t in upsample_t]
        # (t, s) scale applied before each block
        self.block_scales = [(1, 1), (2, 2), (2, 2), (2, 2), (ut[0], us[0]), (ut[1], us[1])]
        self.memory_format = torch.contiguous_format  # see utils.memory_format.set_channels_last
        self.block_sizes = []  # (T, H) at each block
        t, s = 1, 4
        for st, ss in self.block_scales:
            t, s = t * st, s * ss
            self.block_sizes.append((t, s))
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # the SPADE convs only
                nn.init.xavier_uniform_(m.weight, gain=0.02)
                nn.init.zeros_(m.bias)

    @classmethod
    def from_config(cls, cfg: dict) -> "Generator":
        """Build from the ``Decoder`` section of a stage-1 config."""
        return cls(
            z_dim=int(cfg["z_dim"]),
            channel_factor=int(cfg["channel_factor"]),
            upsample_s=cfg["upsample_s"],
            upsample_t=cfg["upsample_t"],
            spectral_norm=bool(cfg.get("spectral_norm", True)),
        )

    @property
    def video_length(self) -> int:
        """Number of generated frames."""
        return self.block_sizes[-1][0]

    @property
    def image_size(self) -> int:
        """Height and width of the generated frames."""
        return self.block_sizes[-1][1]

    def blocks(self) -> list[GeneratorBlock]:
        """The six generator blocks in order."""
        return [getattr(self, name) for name in self.BLOCK_NAMES]

    def condition(self, x0: Tensor) -> CondCache:
        """SPADE maps of the start frame ``x0`` (B, 3, H, W) for every block; reusable for many ``z``."""
        resized: dict[int, Tensor] = {}
        cache = []
        for block, (_, s) in zip(self.blocks(), self.block_sizes):
            if s not in resized:
                resized[s] = F.interpolate(x0, size=(s, s), mode="bilinear", align_corners=True)  # (B, 3, s, s)
            cache.append(block.norm_0.modulation(resized[s]))  # (B, C, s, s) x 2
        return cache

    def forward(self, x0: Tensor | None, z: Tensor, cond_cache: CondCache | None = None) -> Tensor:
        """``x0`` (B, 3, H, W) in [-1, 1], ``z`` (B, z_dim) -> video (B, T, 3, H, W) in [-1, 1].

        ``cond_cache`` (from :meth:`condition`) replaces ``x0``; a cache of batch 1 is broadcast over ``z``.
        """
        if cond_cache is None:
            if x0 is None:
                raise ValueError("Generator needs x0 or a cond_cache from Generator.condition(x0)")
            cond_cache = self.condition(x0)
        x = self.fc(z).view(z.shape[0], 16 * self.nf, 1, 4, 4)  # (B, 16nf, 1, 4, 4)
        for block, (st, ss), (gamma, beta) in zip(self.blocks(), self.block_scales, cond_cache):
            if ss != 1:  # nearest x ss in space; the x st in time happens inside the block (t_rep)
                x = F.interpolate(x, scale_factor=(1, ss, ss), mode="nearest")  # (B, C, T, H*ss, W*ss)
            x = block(x.contiguous(memory_format=self.memory_format), z, gamma, beta, t_rep=st)  # (B, C', T*st, ..)
        x = self.conv_img(F.leaky_relu(x, LRELU_SLOPE))  # (B, 3, T, H, W)
        return torch.tanh(x).transpose(1, 2)  # (B, T, 3, H, W)
