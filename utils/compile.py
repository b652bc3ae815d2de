"""``torch.compile`` behind a flag, falling back to eager execution where the platform has no compiler backend."""
from __future__ import annotations

import logging

import torch
from torch import nn

logger = logging.getLogger(__name__)


def maybe_compile(model: nn.Module, enabled: bool, **kwargs) -> nn.Module:
    """``torch.compile(model, **kwargs)`` when ``enabled`` (and the platform supports it), else ``model``."""
    if not enabled:
        return model
    try:
        return torch.compile(model, **kwargs)  # type: ignore[return-value]
    except Exception as exc:  # noqa: BLE001 - no compiler backend on this platform: run eagerly
        logger.warning("torch.compile unavailable (%s): running eagerly", exc)
        return model
