"""Spectral normalisation of the discriminators' and generators' layers, and its cached weights for frozen
networks."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn
from torch.nn.utils import spectral_norm as _spectral_norm
from torch.nn.utils.spectral_norm import SpectralNorm


def maybe_sn(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap ``module`` with ``torch.nn.utils.spectral_norm`` (keys weight_orig/u/v) when ``enabled``."""
    return _spectral_norm(module) if enabled else module


def _spectral_hooks(module: nn.Module) -> Iterator[tuple[nn.Module, int, SpectralNorm]]:
    for m in module.modules():
        for key, hook in list(m._forward_pre_hooks.items()):
            if isinstance(hook, SpectralNorm):
                yield m, key, hook


@contextlib.contextmanager
def freeze_spectral_norm(module: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every ``torch.nn.utils.spectral_norm`` weight of the (eval-mode, frozen)
    ``module`` is computed once (as the eval-mode hook computes it: no power iteration) and the hooks are
    suspended; they are restored on exit. Parameters and state dict are untouched. Raises for a module in
    training mode, where the hook's power iteration must run every forward."""
    if module.training:
        raise RuntimeError("freeze_spectral_norm is for eval-mode (frozen) networks; call .eval() first")
    suspended = []
    try:
        with torch.no_grad():
            for m, key, hook in _spectral_hooks(module):
                setattr(m, hook.name, hook.compute_weight(m, do_power_iteration=False))
                suspended.append((m, key, hook))
                del m._forward_pre_hooks[key]
        yield module
    finally:
        for m, key, hook in suspended:
            m._forward_pre_hooks[key] = hook
