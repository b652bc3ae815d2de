"""Convolutions of the stage-1 generator that skip work without changing the numbers (to float32 rounding).

* :func:`repeated_time_conv3d`: a 3D convolution (temporal kernel 3, padding 1, stride 1) of an input that
  is nearest-upsampled in time, computed on the input *before* upsampling. Each output phase only sees two
  distinct input frames, so the temporal taps can be summed first: 4 instead of 6 frame-products per pair of
  output frames (1.5x fewer FLOPs, forward and backward), and the upsampled tensor is never materialised.
* :func:`single_frame_conv3d`: a 3D convolution of a one-frame input only sees the centre temporal tap.
* :class:`TimeRepeatConv3d`: ``nn.Conv3d`` (same state-dict keys) that takes these fast paths.
"""
from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _spatial_padding(padding: tuple[int, ...]) -> tuple[int, int]:
    return int(padding[1]), int(padding[2])


def single_frame_conv3d(x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, ...]) -> Tensor:
    """``conv3d(x, weight, padding=(1, ph, pw))`` for ``x`` (B, C, 1, H, W) and a temporal kernel of 3.

    The two outer temporal taps only meet the zero padding, so only the centre one is applied.
    """
    return F.conv3d(x, weight[:, :, 1:2], bias, padding=(0, *_spatial_padding(padding)))  # (B, Co, 1, H', W')


def time_repeat_weights(weight: Tensor, bias: Tensor | None, repeat: int,
                        shifted: bool) -> tuple[Tensor, Tensor | None]:
    """Kernel (n*Co, Ci, 1, kh, kw) and bias of :func:`repeated_time_conv3d`: the tap sums
    ``W1+W2`` (phase 0), ``W0+W1`` (last phase), then ``W0``, ``W2`` (the shifted terms, when the input has
    more than one frame) and ``W0+W1+W2`` (middle phases, ``repeat > 2``). The bias goes once into each
    phase, not into the shifted terms."""
    if weight.shape[2] != 3:
        raise ValueError(f"repeated_time_conv3d needs a temporal kernel of 3, got {tuple(weight.shape)}")
    w0, w1, w2 = weight[:, :, 0:1], weight[:, :, 1:2], weight[:, :, 2:3]  # (Co, Ci, 1, kh, kw) each
    combos = [w1 + w2, w0 + w1] + ([w0, w2] if shifted else []) + ([w0 + w1 + w2] if repeat > 2 else [])
    if bias is None:
        return torch.cat(combos), None
    zero = bias.new_zeros(bias.shape)
    biases = [bias, bias] + ([zero, zero] if shifted else []) + ([bias] if repeat > 2 else [])
    return torch.cat(combos), torch.cat(biases)


def repeated_time_conv3d(x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, ...],
                         repeat: int, combined: tuple[Tensor, Tensor | None] | None = None) -> Tensor:
    """``conv3d(x.repeat_interleave(repeat, dim=2), weight, bias, padding=(1, ph, pw))`` without the repeat.

    ``x`` (B, Ci, S, H, W), ``weight`` (Co, Ci, 3, kh, kw) -> (B, Co, S * repeat, H', W'). With
    ``u = repeat_interleave(x)``, output frame ``t = s * repeat + r`` is ``W0 u[t-1] + W1 u[t] + W2 u[t+1]``:
    phase 0 is ``W0 x[s-1] + (W1 + W2) x[s]``, phase ``repeat - 1`` is ``(W0 + W1) x[s] + W2 x[s+1]`` and the
    phases in between are ``(W0 + W1 + W2) x[s]``. All tap combinations are applied in one convolution with
    temporal kernel 1 (``combined``: precomputed :func:`time_repeat_weights`); the shifted terms are then
    added in place.
    """
    if repeat < 2:
        raise ValueError(f"repeated_time_conv3d needs repeat >= 2, got {repeat}")
    s = x.shape[2]
    co = weight.shape[0]
    shifted = s > 1  # with a single input frame the x[s-1] / x[s+1] terms only meet the zero padding
    w, b = combined if combined is not None else time_repeat_weights(weight, bias, repeat, shifted)
    y = F.conv3d(x, w, b, padding=(0, *_spatial_padding(padding)))  # (B, n*Co, S, H', W')
    parts = y.split(co, dim=1)  # each (B, Co, S, H', W')
    out = torch.stack([parts[0]] + [parts[-1]] * (repeat - 2) + [parts[1]], dim=3)  # (B, Co, S, R, H', W')
    if shifted:
        out[:, :, 1:, 0] += parts[2][:, :, :-1]  # W0 x[s-1] into phase 0
        out[:, :, :-1, repeat - 1] += parts[3][:, :, 1:]  # W2 x[s+1] into the last phase
    return out.flatten(2, 3)  # (B, Co, S*repeat, H', W')


class TimeRepeatConv3d(nn.Conv3d):
    """``nn.Conv3d`` (same parameters and state-dict keys) whose forward can take its input at
    ``1 / t_rep`` temporal resolution and behaves as if it had been nearest-upsampled in time.

    Fast paths (same numbers up to float32 rounding) apply to kernel-3, padding-1, stride-1, dilation-1,
    ungrouped convolutions: :func:`repeated_time_conv3d` for ``t_rep > 1`` and :func:`single_frame_conv3d`
    for one-frame inputs; anything else runs the plain convolution (after materialising the repeat).
    Without autograd, the tap sums of a weight that does not change are cached (keyed on the weight
    tensor, its storage and version counter).
    """

    _tap_cache: tuple | None = None

    def _fast_ok(self) -> bool:
        return (self.kernel_size[0] == 3 and self.padding[0] == 1 and self.stride == (1, 1, 1)
                and self.dilation == (1, 1, 1) and self.groups == 1 and self.padding_mode == "zeros")

    def _combined(self, repeat: int, shifted: bool) -> tuple[Tensor, Tensor | None]:
        w, b = self.weight, self.bias
        tensors = [t for t in (w, b) if t is not None]
        if torch.is_grad_enabled() or any(t.is_inference() for t in tensors):  # training / per-call weights
            return time_repeat_weights(w, b, repeat, shifted)
        key = (repeat, shifted) + tuple((t.data_ptr(), t._version, t.device, t.dtype) for t in tensors)
        cache = self._tap_cache
        if cache is not None and cache[0]() is w and cache[1] == key:
            return cache[2]
        combined = time_repeat_weights(w, b, repeat, shifted)
        self._tap_cache = (weakref.ref(w), key, combined)
        return combined

    def forward(self, x: Tensor, t_rep: int = 1) -> Tensor:  # type: ignore[override]
        """``x`` (B, Ci, S, H, W) -> (B, Co, S * t_rep, H', W')."""
        if not self._fast_ok():
            if t_rep > 1:
                x = x.repeat_interleave(t_rep, dim=2)
            return super().forward(x)
        if t_rep > 1:
            combined = self._combined(t_rep, x.shape[2] > 1)
            return repeated_time_conv3d(x, self.weight, self.bias, self.padding, t_rep, combined)
        if x.shape[2] == 1:
            return single_frame_conv3d(x, self.weight, self.bias, self.padding)
        return super().forward(x)
