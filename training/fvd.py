"""The FVD logged each epoch during training (the original's stage1_VAE/main.py with metrics/PyTorch_FVD/FVD_logging.py
or metrics/DTFVD/DTFVD_Score.py): of stage-1 reconstructions and of cINN samples."""
from __future__ import annotations

import logging

import torch

from metrics.dti3d import load_dtdb_i3d
from metrics.fvd import FVDFeatureExtractor, compute_fvd
from metrics.i3d import load_kinetics_i3d
from utils.config import ConfigError
from utils.errors import MissingFileError

logger = logging.getLogger(__name__)


class TrainingFVD:
    """The per-epoch FVD logged during training: the original's "PFVD" (hassony2 I3D, [0, 1] inputs,
    align_corners resize; not comparable to paper FVD) or DTFVD (16-frame DTDB I3D)."""

    def __init__(self, kind: str, device: torch.device | str = "cpu", weights: str | None = None) -> None:
        kind = kind.upper()
        if kind == "FVD":
            self.name, model, protocol = "PFVD", load_kinetics_i3d(device, weights), "pfvd"
        elif kind == "DTFVD":
            self.name, model, protocol = "DTFVD", load_dtdb_i3d(16, device, weights), "dtfvd"
        else:
            raise ConfigError(f"Training.FVD must be FVD, DTFVD or none, got {kind!r}")
        self.extractor = FVDFeatureExtractor(model, protocol, device)

    def features(self, videos: torch.Tensor) -> torch.Tensor:
        """Embeddings (B, D) of videos (B, T, 3, H, W) in [-1, 1], on the CPU in float64."""
        return self.extractor(videos).double().cpu()

    def distance(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        """Frechet distance between two sets of embeddings."""
        return compute_fvd(real.cpu().numpy(), fake.cpu().numpy())


def make_training_fvd(kind: str, device: torch.device, weights: str | None = None) -> TrainingFVD | None:
    """The per-epoch FVD of ``kind`` (a stage-1 config's ``Training.FVD``: FVD -> PFVD, DTFVD, or none); None when
    disabled or when the default weights are absent (a warning); a missing ``weights`` file
    (``Training.i3d_weights``) is an error."""
    kind = str(kind).upper()
    if kind in ("NONE", "FALSE", ""):
        return None
    try:
        return TrainingFVD(kind, device, weights)
    except (FileNotFoundError, ImportError) as exc:
        if weights and isinstance(exc, FileNotFoundError):
            raise MissingFileError(f"Training.i3d_weights: {exc}") from None
        logger.warning("per-epoch %s disabled: %s", kind, exc)
        return None
