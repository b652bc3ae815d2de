"""The metric networks of an evaluation (:class:`Backbones`), all loaded before any video is generated (so every
weights file is checked, missing ones reported together), with their weights' SHA-256.

Random-weight backbones (meaningless numbers) are only used when the environment variable
``I2V_ALLOW_RANDOM_BACKBONES=1`` is set and a FID/LPIPS/VGG weights file is missing; the I3D networks never
fall back to random weights (tests save random-weight files in the released layouts, see ``-weights_dir``).
"""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

from metrics.dti3d import load_dtdb_i3d
from metrics.fid import FIDFeatureExtractor, load_fid_inception
from metrics.fvd import FVDFeatureExtractor
from metrics.i3d import load_kinetics_i3d, load_torchscript_i3d
from metrics.lpips_metric import load_lpips, load_vgg16_features
from metrics.scoring import METRIC_BACKBONES
from metrics.weights import default_weights_path, weights_path
from utils.checkpoint import file_sha256
from utils.choices import I3D_KINDS
from utils.errors import MissingFileError

logger = logging.getLogger(__name__)

RANDOM_BACKBONES_ENV = "I2V_ALLOW_RANDOM_BACKBONES"

VideoEmbedder = Callable[[torch.Tensor], torch.Tensor]  # (B, T, 3, H, W) in [-1, 1] -> (B, D)
FrameEmbedder = Callable[[torch.Tensor], torch.Tensor]  # (N, 3, H, W) in [-1, 1] -> (N, D)


def random_backbones_allowed() -> bool:
    """True when ``I2V_ALLOW_RANDOM_BACKBONES`` is set to 1/true/yes (tests only)."""
    return os.environ.get(RANDOM_BACKBONES_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclasses.dataclass
class Backbones:
    """The metric networks of one evaluation. Any field may be given in advance (tests inject tiny ones).

    ``fvd``: Kinetics I3D embedder (FVD and I3D diversity); ``dtfvd``: DTDB I3D embedder (DTFVD, DTI3D
    diversity); ``fid``: frame embedder (pool3 of pytorch-fid's Inception); ``lpips``: ``lpips.LPIPS``;
    ``vgg``: VGG16 returning the five relu feature maps (VGG diversity), fed frames resized to
    ``vgg_size`` (``None``: no resizing). ``notes`` says what each one is, ``weights`` which file it was
    read from (``{'network', 'file', 'sha256'}``), both recorded in result files.
    """

    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    fvd: VideoEmbedder | None = None
    dtfvd: VideoEmbedder | None = None
    fid: FrameEmbedder | None = None
    lpips: nn.Module | None = None
    vgg: nn.Module | None = None
    vgg_size: int | None = 224
    notes: dict[str, str] = dataclasses.field(default_factory=dict)
    weights: dict[str, dict[str, str | None]] = dataclasses.field(default_factory=dict)


BACKBONE_FIELDS = ("fvd", "dtfvd", "fid", "lpips", "vgg")
KINETICS_METRICS = ("FVD", "I3D")  # embedded by ``fvd``, the Kinetics I3D


def min_frames(backbones: Backbones, metric: str) -> int:
    """The fewest frames per video ``metric``'s network takes (its ``min_frames``; 1 for frame metrics and for
    embedders that do not say)."""
    return int(getattr(backbones.fvd, "min_frames", 1)) if metric in KINETICS_METRICS else 1
CALLER_WEIGHTS = {"network": "given by the caller", "file": None, "sha256": None}


def weights_name(field: str, i3d: str = "hassony2", dtfvd_frames: int = 16) -> str:
    """The :data:`metrics.weights.WEIGHTS` entry a backbone field is read from."""
    names = {"fvd": "i3d_torchscript" if i3d == "torchscript" else "kinetics_i3d",
             "dtfvd": f"dtdb_i3d_{dtfvd_frames}", "fid": "fid_inception", "lpips": "vgg16", "vgg": "vgg16"}
    if field not in names:
        raise KeyError(f"unknown backbone {field!r}; known: {BACKBONE_FIELDS}")
    return names[field]


def _weights_record(name: str, path: Path) -> dict[str, str | None]:
    if not path.is_file():  # a random fallback (tests only)
        return {"network": name, "file": None, "sha256": "RANDOM WEIGHTS"}
    return {"network": name, "file": str(path.resolve()), "sha256": file_sha256(path)}


def _load_one(field: str, device: torch.device, i3d: str, dtfvd_frames: int, allow_random: bool,
              weights_dir: str | Path | None) -> tuple[Any, str, dict[str, str | None]]:
    """(backbone, note, weights record) for one field of :class:`Backbones`; the loaders raise
    FileNotFoundError naming the file and its source."""
    name = weights_name(field, i3d, dtfvd_frames)
    path = default_weights_path(name, weights_dir)
    if field in ("fvd", "dtfvd") or not allow_random:  # no random fallback: a missing file is named with its source
        path = weights_path(name, weights_dir=weights_dir)
    random_note = f" (RANDOM WEIGHTS, {RANDOM_BACKBONES_ENV}=1: meaningless values)" if not path.is_file() else ""
    if field == "fvd":
        if i3d == "torchscript":
            model = load_torchscript_i3d(device, path)
            note = "StyleGAN-V TorchScript Kinetics-400 I3D, TF-Hub FVD protocol"
        else:
            model = load_kinetics_i3d(device, path)
            note = "hassony2 Kinetics-400 I3D (model_rgb.pth), TF-Hub FVD protocol"
        backbone = FVDFeatureExtractor(model, "fvd", device)
    elif field == "dtfvd":
        model = load_dtdb_i3d(dtfvd_frames, device, path)
        backbone, note = FVDFeatureExtractor(model, "dtfvd", device), f"DTDB I3D, {dtfvd_frames} frames"
    elif field == "fid":
        backbone = FIDFeatureExtractor(load_fid_inception(device, path, allow_random), device)
        note = "pytorch-fid InceptionV3 pool3" + random_note
    elif field == "lpips":
        backbone, note = load_lpips(device, path, allow_random), "lpips VGG v0.1" + random_note
    else:
        backbone = load_vgg16_features(device, path, allow_random)
        note = "torchvision ImageNet VGG16, 224x224" + random_note
    return backbone, note, _weights_record(name, path)


def load_backbones(metrics: Iterable[str], device: torch.device | str, i3d: str = "hassony2",
                   dtfvd_frames: int = 16, provided: Backbones | None = None, allow_random: bool | None = None,
                   weights_dir: str | Path | None = None) -> Backbones:
    """Load the backbones ``metrics`` (names of ``SYNTHESIS_METRICS``/``DIVERSITY_METRICS``) need, except
    those already in ``provided``, from ``weights_dir`` (laid out like ``models/``) or the default
    locations. Every missing weights file is reported in one ``FileNotFoundError``.

    ``allow_random`` defaults to :func:`random_backbones_allowed`.
    """
    if i3d not in I3D_KINDS:
        raise ValueError(f"unknown I3D {i3d!r}; choose from {I3D_KINDS}")
    device = torch.device(device)
    allow_random = random_backbones_allowed() if allow_random is None else allow_random
    if allow_random:
        logger.warning("%s is set: FID/LPIPS/VGG backbones whose weights are missing get RANDOM WEIGHTS; "
                       "the resulting numbers are meaningless (for tests only)", RANDOM_BACKBONES_ENV)
    out = (dataclasses.replace(provided, device=device, notes=dict(provided.notes), weights=dict(provided.weights))
           if provided is not None else Backbones(device))
    errors: list[str] = []
    for field in dict.fromkeys(METRIC_BACKBONES[m] for m in metrics):
        if getattr(out, field) is not None:
            out.notes.setdefault(field, "given by the caller")
            out.weights.setdefault(field, dict(CALLER_WEIGHTS))
            continue
        try:
            backbone, note, record = _load_one(field, device, i3d, dtfvd_frames, allow_random, weights_dir)
        except FileNotFoundError as exc:
            errors.append(str(exc))
            continue
        setattr(out, field, backbone)
        out.notes[field], out.weights[field] = note, record
    if errors:
        raise MissingFileError("\n".join(errors))
    return out


def backbone_notes(backbones: Backbones, metrics: Iterable[str]) -> dict[str, str]:
    """What each metric's backbone is (for result files)."""
    return {m: backbones.notes.get(METRIC_BACKBONES[m], "") for m in metrics}


def backbone_weights(backbones: Backbones, metrics: Iterable[str]) -> dict[str, dict[str, str | None]]:
    """Network name, file and SHA-256 of each metric's backbone weights (for result files)."""
    return {m: dict(backbones.weights.get(METRIC_BACKBONES[m], CALLER_WEIGHTS)) for m in metrics}


def absent_weights(metrics: Iterable[str], i3d: str = "hassony2", dtfvd_frames: Iterable[int] = (16,),
                   weights_dir: str | Path | None = None, provided: Backbones | None = None,
                   allow_random: bool | None = None) -> dict[str, list[str]]:
    """``{backbone field: its weights names}`` for each network of ``metrics`` none of whose weights files is in its
    place (DTFVD: one DTDB I3D of ``dtfvd_frames`` suffices); nothing is loaded. Networks in ``provided`` need no
    file, FID/LPIPS/VGG none where random backbones are allowed (tests), as :func:`load_backbones` allows."""
    allow_random = random_backbones_allowed() if allow_random is None else allow_random
    absent = {}
    for field in dict.fromkeys(METRIC_BACKBONES[m] for m in metrics):
        if (provided is not None and getattr(provided, field) is not None) or (
                allow_random and field not in ("fvd", "dtfvd")):
            continue
        names = [weights_name(field, i3d, n) for n in (dtfvd_frames if field == "dtfvd" else (16,))]
        if not any(default_weights_path(name, weights_dir).is_file() for name in names):
            absent[field] = names
    return absent


def check_weights_files(metrics: Iterable[str], i3d: str = "hassony2", dtfvd_frames: Iterable[int] = (16,),
                        weights_dir: str | Path | None = None, provided: Backbones | None = None,
                        allow_random: bool | None = None) -> None:
    """Check, without loading anything, that the weights file of every metric in ``metrics`` exists
    (:func:`absent_weights`); every missing file is named in one :class:`MissingFileError` (the message of
    :func:`load_backbones_or_exit`). For checks before any video is read."""
    errors: list[str] = []
    for names in absent_weights(metrics, i3d, dtfvd_frames, weights_dir, provided, allow_random).values():
        for name in names:
            try:
                weights_path(name, weights_dir=weights_dir)
            except FileNotFoundError as exc:
                errors.append(str(exc))
    if errors:
        raise MissingFileError("missing metric weights:\n" + "\n".join(errors))


def load_backbones_or_exit(metrics: Iterable[str], device: torch.device | str, **kwargs: Any) -> Backbones:
    """:func:`load_backbones`; missing weights files are one error listing them (printed by
    :func:`utils.command.run`)."""
    try:
        return load_backbones(metrics, device, **kwargs)
    except FileNotFoundError as exc:
        raise MissingFileError(f"missing metric weights:\n{exc}") from None
