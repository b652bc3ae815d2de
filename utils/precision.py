"""Mixed precision: one autocast context for training (CPU and CUDA), a GradScaler only for fp16, and
the low-precision inference copies of frozen networks (``load_model(..., precision=...)``).

Training (``Training.amp``): ``bf16`` autocasts on the CPU and on CUDA; it has the float32 exponent range,
so it needs no loss scaling. ``fp16`` is CUDA only and comes with a :class:`torch.amp.GradScaler`.

Inference (``precision``): the networks that gain are cast to the low-precision dtype once (weights
included, so nothing is re-cast per call, unlike autocast) and wrapped so that they take and return
float32 tensors; see :func:`run_in_dtype`.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map_only

from utils.choices import AMP_MODES, PRECISIONS
from utils.errors import ArgumentError

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class PrecisionError(ArgumentError):
    """A precision or AMP mode that is unknown or not available on the device."""


def check_amp(device: torch.device, amp: str) -> None:
    """Raise :class:`PrecisionError` unless ``amp`` (none|bf16|fp16) can run on ``device``."""
    if amp not in AMP_MODES:
        raise PrecisionError(f"Training.amp must be one of none|bf16|fp16, got {amp!r}")
    if amp == "fp16" and torch.device(device).type != "cuda":
        raise PrecisionError(f"Training.amp=fp16 needs a CUDA device (got {torch.device(device)}); "
                             "use Training.amp=bf16 on the CPU")


def autocast(device: torch.device, amp: str = "none"):
    """The autocast context of ``amp`` in {none, bf16, fp16} on ``device`` (bf16: CPU or CUDA; fp16: CUDA);
    a null context for 'none'. On the CPU it also applies :class:`ShortClipConv3dFix`."""
    check_amp(device, amp)
    device = torch.device(device)
    if amp == "none":
        return contextlib.nullcontext()
    if device.type == "cpu":
        return _cpu_autocast(_DTYPES[amp])
    return torch.autocast(device_type=device.type, dtype=_DTYPES[amp])


@contextlib.contextmanager
def _cpu_autocast(dtype: torch.dtype):
    with torch.autocast(device_type="cpu", dtype=dtype), ShortClipConv3dFix():
        yield


class ShortClipConv3dFix(TorchFunctionMode):
    """Gives ``conv3d`` calls whose input has fewer frames than the temporal kernel (temporal stride 1,
    zero padding) their temporal padding explicitly (``F.pad``, then no temporal padding): the same numbers.

    Works around a oneDNN bug on the CPU (torch 2.14): the bfloat16 *weight gradient* of such a convolution
    is wrong, e.g. for the 3x3x3 convolutions of 2-frame maps in the stage-1 encoder and decoder (relative
    error ~1 on every call, sometimes inf/NaN; forward and input gradient are right; float32 is right;
    spatial sizes below the kernel are right). The explicitly padded input has enough frames.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.conv3d:
            padded = _pad_short_clip(*args, **(kwargs or {}))
            if padded is not None:
                return padded
        return func(*args, **(kwargs or {}))


def _triple(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * 3


def _pad_short_clip(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    if isinstance(padding, str) or input.dim() != 5 or input.device.type != "cpu":
        return None
    stride, padding, dilation = _triple(stride), _triple(padding), _triple(dilation)
    if not (padding[0] > 0 and stride[0] == 1 and dilation[0] == 1 and input.shape[2] < weight.shape[2]):
        return None
    x = F.pad(input, (0, 0, 0, 0, padding[0], padding[0]))  # (B, C, T + 2p, H, W)
    return torch.conv3d(x, weight, bias, stride, (0, *padding[1:]), dilation, groups)


def make_scaler(device: torch.device, amp: str = "none") -> torch.amp.GradScaler:
    """A GradScaler that is enabled only for fp16 (on CUDA); bf16 needs no loss scaling."""
    check_amp(device, amp)
    return torch.amp.GradScaler(torch.device(device).type, enabled=(amp == "fp16"))


# ------------------------------------------------------------------------------------------ inference
def precision_dtype(precision: str, device: torch.device | str) -> torch.dtype:
    """The dtype of ``precision`` (fp32|bf16|fp16) on ``device``; :class:`PrecisionError` for an unknown
    one and for fp16 outside CUDA."""
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise PrecisionError(f"precision must be one of {'|'.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise PrecisionError(f"precision fp16 needs a CUDA device (got {device}); use bf16 on the CPU")
    return _DTYPES.get(precision, torch.float32)


def _cast_floating(obj, dtype: torch.dtype):
    return tree_map_only(torch.Tensor, lambda t: t.to(dtype) if t.is_floating_point() else t, obj)


def cast_frozen_(module: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Cast every floating parameter, buffer and plain tensor attribute (e.g. the weights
    :func:`~blocks.spectral_norm.freeze_spectral_norm` computed) of a frozen ``module`` to ``dtype``,
    in place."""
    module.to(dtype)
    for m in module.modules():
        for name, value in list(vars(m).items()):
            if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != dtype:
                setattr(m, name, value.to(dtype))
    return module


def run_in_dtype(module: torch.nn.Module, dtype: torch.dtype) -> list:
    """Make ``module`` (already cast by :func:`cast_frozen_`) take float32 inputs and return float32:
    forward hooks cast every floating tensor of the arguments (nested too) to ``dtype`` and of the
    output to float32. Returns the hook handles."""
    pre = module.register_forward_pre_hook(
        lambda _m, args, kwargs: (_cast_floating(args, dtype), _cast_floating(kwargs, dtype)), with_kwargs=True)
    post = module.register_forward_hook(lambda _m, _args, out: _cast_floating(out, torch.float32))
    return [pre, post]

