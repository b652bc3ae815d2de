"""3D-ResNet trunk shared by the stage-1 encoder and the temporal discriminator (the original's
stage1_VAE/modules/resnet3D.py).

State-dict layout (as the reference): ``conv1``, ``norm1`` (stem), ``layer.{stage}.{block}.{conv1,bn1,conv2,
bn2[,conv3,bn3],downsample.{0,1}}``. Every norm is GroupNorm with 16 groups. The encoder and the
discriminator differ only in the options of :class:`ResNet3dTrunk`: the stem's temporal stride, whether a
temporal stride alone triggers a downsample branch, and where spectral norm is applied.
"""
from __future__ import annotations

import logging
from typing import Callable, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from blocks.spectral_norm import maybe_sn
from utils.config import ConfigError

logger = logging.getLogger(__name__)

GN_GROUPS = 16
BLOCKS_PER_STAGE = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
}


def conv3x3x3(in_planes: int, out_planes: int, stride: tuple[int, int, int] = (1, 1, 1)) -> nn.Conv3d:
    """3x3x3 convolution, padding 1, no bias."""
    return nn.Conv3d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1x1(in_planes: int, out_planes: int) -> nn.Conv3d:
    """1x1x1 convolution, no bias."""
    return nn.Conv3d(in_planes, out_planes, kernel_size=1, bias=False)


class _ResBlock3d(nn.Module):
    """Residual block skeleton: ``relu(branch(x) + shortcut(x))``; subclasses build the branch."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: tuple[int, int, int] = (1, 1, 1),
        downsample: nn.Module | None = None,
        spectral: bool = False,
    ) -> None:
        super().__init__()
        self._build_branch(inplanes, planes, stride, spectral)  # registered first: reference key order
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def _build_branch(self, inplanes: int, planes: int, stride: tuple[int, int, int], spectral: bool) -> None:
        raise NotImplementedError

    def branch(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)  # (B, C', T', H', W')
        return self.relu(self.branch(x) + residual)  # (B, C', T', H', W')


class BasicBlock3d(_ResBlock3d):
    """conv3 -> GN -> ReLU -> conv3 -> GN, plus (optionally downsampled) identity, -> ReLU."""

    expansion = 1

    def _build_branch(self, inplanes: int, planes: int, stride: tuple[int, int, int], spectral: bool) -> None:
        self.conv1 = maybe_sn(conv3x3x3(inplanes, planes, stride), spectral)
        self.bn1 = nn.GroupNorm(GN_GROUPS, planes)
        self.conv2 = maybe_sn(conv3x3x3(planes, planes), spectral)
        self.bn2 = nn.GroupNorm(GN_GROUPS, planes)

    def branch(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)  # (B, C', T', H', W')
        return self.bn2(self.conv2(out))  # (B, C', T', H', W')


class Bottleneck3d(_ResBlock3d):
    """1x1x1 -> 3x3x3 (strided) -> 1x1x1 (x4 channels) bottleneck with GroupNorm."""

    expansion = 4

    def _build_branch(self, inplanes: int, planes: int, stride: tuple[int, int, int], spectral: bool) -> None:
        self.conv1 = maybe_sn(conv1x1x1(inplanes, planes), spectral)
        self.bn1 = nn.GroupNorm(GN_GROUPS, planes)
        self.conv2 = maybe_sn(conv3x3x3(planes, planes, stride), spectral)
        self.bn2 = nn.GroupNorm(GN_GROUPS, planes)
        self.conv3 = conv1x1x1(planes, planes * self.expansion)
        self.bn3 = nn.GroupNorm(GN_GROUPS, planes * self.expansion)

    def branch(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)  # (B, C', T, H, W)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)  # (B, C', T', H', W')
        return self.bn3(self.conv3(out))  # (B, 4C', T', H', W')


def block_class(res_type: str) -> tuple[type[_ResBlock3d], tuple[int, ...]]:
    """Block class and blocks per stage for ``res_type_encoder`` (resnet18/34/50/101)."""
    if res_type not in BLOCKS_PER_STAGE:
        raise ConfigError(f"res_type_encoder '{res_type}' unknown; choose from {sorted(BLOCKS_PER_STAGE)}")
    kind, layers = BLOCKS_PER_STAGE[res_type]
    return (BasicBlock3d if kind == "basic" else Bottleneck3d), layers


def conv_out(n: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution / pooling along one axis."""
    return (n + 2 * padding - kernel) // stride + 1


def trunk_output_size(
    t: int, h: int, stem_stride_t: int, use_max_pool: bool, stride_t: Sequence[int], stride_s: Sequence[int]
) -> tuple[int, int]:
    """(time, spatial size) after the stem and the four stages for ``t`` frames of ``h`` x ``h`` pixels."""
    t, h = conv_out(t, 3, stem_stride_t, 1), conv_out(h, 7, 2, 3)
    if use_max_pool:
        t, h = conv_out(t, 3, 1, 1), conv_out(h, 3, 2, 1)
    for st, ss in zip(stride_t, stride_s):
        t, h = conv_out(t, 3, int(st), 1), conv_out(h, 3, int(ss), 1)
    return t, h


def init_conv3d_weights(module: nn.Module, init_fn: Callable[[Tensor], Tensor]) -> None:
    """Apply ``init_fn`` to every Conv3d weight below ``module`` (``weight_orig`` for spectral-normed ones)."""
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            init_fn(getattr(m, "weight_orig", m.weight).data)


class ResNet3dTrunk(nn.Module):
    """Stem + four 3D-ResNet stages; subclasses add a head and call :meth:`features`."""

    def __init__(
        self,
        res_type: str,
        channels: Sequence[int],
        stride_t: Sequence[int],
        stride_s: Sequence[int],
        stem_stride_t: int,
        use_max_pool: bool,
        downsample_on_temporal: bool,
        spectral_first_block: bool = False,
        spectral_downsample: bool = False,
    ) -> None:
        super().__init__()
        if len(channels) != 5 or len(stride_t) != 4 or len(stride_s) != 4:
            raise ValueError(
                f"expected 5 channels and 4 strides per axis, got channels={list(channels)}, "
                f"stride_t={list(stride_t)}, stride_s={list(stride_s)}"
            )
        block, layers = block_class(res_type)
        self.stem_stride_t = stem_stride_t
        self.use_max_pool = use_max_pool
        self.stride_t = [int(s) for s in stride_t]
        self.stride_s = [int(s) for s in stride_s]
        # The reference hard-codes the stem width bookkeeping to 64; every shipped config has channels[0] = 64,
        # so tracking channels[0] is identical there and correct elsewhere.
        self.conv1 = nn.Conv3d(
            3, channels[0], kernel_size=(3, 7, 7), stride=(stem_stride_t, 2, 2), padding=(1, 3, 3), bias=False
        )
        self.norm1 = nn.GroupNorm(GN_GROUPS, channels[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=(1, 2, 2), padding=1) if use_max_pool else None
        inplanes = channels[0]
        stages = []
        for i in range(4):
            planes = channels[i + 1]
            st, ss = self.stride_t[i], self.stride_s[i]
            needs_ds = ss != 1 or inplanes != planes * block.expansion
            if downsample_on_temporal:
                needs_ds = needs_ds or st != 1
            elif st != 1 and not needs_ds:
                raise ValueError(
                    f"stage {i}: stride_t={st} with stride_s=1 and unchanged width ({inplanes}) has no "
                    "downsample branch in the encoder, so the residual cannot be added"
                )
            downsample = None
            if needs_ds:
                downsample = nn.Sequential(
                    maybe_sn(
                        nn.Conv3d(inplanes, planes * block.expansion, 3, stride=(st, ss, ss), padding=1, bias=False),
                        spectral_downsample,
                    ),
                    nn.GroupNorm(GN_GROUPS, planes * block.expansion),
                )
            blocks = [block(inplanes, planes, (st, ss, ss), downsample, spectral=spectral_first_block)]
            inplanes = planes * block.expansion
            blocks += [block(inplanes, planes) for _ in range(1, layers[i])]
            stages.append(nn.Sequential(*blocks))
        self.layer = nn.ModuleList(stages)
        self.out_channels = inplanes

    def output_size(self, t: int, h: int) -> tuple[int, int]:
        """(time, spatial size) of the last stage for ``t`` frames of ``h`` x ``h`` pixels."""
        return trunk_output_size(t, h, self.stem_stride_t, self.use_max_pool, self.stride_t, self.stride_s)

    def features(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``x`` (B, C, T, H, W) -> (last feature map, [output of each of the 4 stages])."""
        x = self.relu(self.norm1(self.conv1(x)))  # (B, ch0, T', H/2, W/2)
        if self.maxpool is not None:
            x = self.maxpool(x)  # (B, ch0, T', H/4, W/4)
        fmaps = []
        for stage in self.layer:
            x = stage(x)  # (B, ch_i, T_i, H_i, W_i)
            fmaps.append(x)
        return x, fmaps
