"""Where the metric backbones' weights live, where they come from, and how a missing file is reported.

Weights are never downloaded at run time: ``python -m models.fetch_weights`` downloads them (from the
``url`` of each :data:`WEIGHTS` entry, checked against its ``sha256``) to the place the loaders read. Each
network has a default location; a function resolves an explicit path or that default, and raises
``FileNotFoundError`` naming the file and where to get it when it is absent.

Defaults: the I3D networks live under ``<repo>/models`` (``MODELS_DIR``); the pytorch-fid
Inception and the torchvision VGG16 in torch hub's checkpoint cache
(``torch.hub.get_dir()/checkpoints``), where those libraries put them. A ``weights_dir`` (the
evaluation scripts' ``-weights_dir``) replaces both roots: one folder laid out like ``models/``
(``PI3D/model_rgb.pth``, ``DTI3D/length16/I3D_16.pth.tar``, ...) with the Inception and VGG16 files
at its top level under their released names.

State dicts are read with ``weights_only=True`` and no fallback (see :mod:`utils.checkpoint`). The TorchScript
I3D (``i3d_torchscript.pt``) is different: a TorchScript file is a program, and loading it runs its code, so
it must come from a trusted source (the link below).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch

from utils.checkpoint import safe_load
from utils.errors import MissingFileError
from utils.paths import MODELS_DIR

logger = logging.getLogger(__name__)



# the authors' Google Drive folder (CompVis/image2video-synthesis-using-cINNs, README): the paper's checkpoints and
# the DTDB I3D weights (DTI3D); Google Drive offers no direct download link for them
RELEASED_FOLDER_URL = "https://drive.google.com/drive/folders/12-PccC8jKz4UGpaE9GS0aOi23PHjJLzW"


@dataclass(frozen=True)
class WeightsSpec:
    """A weights file: its location relative to its root, where users obtain it (``source``), its direct download
    link (``url``; None: by hand only) and its published SHA-256 (None: none is published)."""

    relative_path: str
    in_hub_cache: bool
    source: str
    url: str | None = None
    sha256: str | None = None


WEIGHTS: dict[str, WeightsSpec] = {
    "kinetics_i3d": WeightsSpec(
        "PI3D/model_rgb.pth", False,
        "https://github.com/hassony2/kinetics_i3d_pytorch/blob/master/model/model_rgb.pth",
        "https://github.com/hassony2/kinetics_i3d_pytorch/raw/master/model/model_rgb.pth"),
    "i3d_torchscript": WeightsSpec(
        "PI3D/i3d_torchscript.pt", False,
        "StyleGAN-V's FVD detector, https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1 "
        "(TorchScript is code: use only this trusted file)",
        "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
        "bec6519f66ea534e953026b4ae2c65553c17bf105611c746d904657e5860a5e2"),
    "dtdb_i3d_16": WeightsSpec(
        "DTI3D/length16/I3D_16.pth.tar", False, f"the authors' DTI3D folder, {RELEASED_FOLDER_URL}"),
    "dtdb_i3d_32": WeightsSpec(
        "DTI3D/length32/I3D_32.pth.tar", False, f"the authors' DTI3D folder, {RELEASED_FOLDER_URL}"),
    "fid_inception": WeightsSpec(
        "pt_inception-2015-12-05-6726825d.pth", True,
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
        "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"),
    "vgg16": WeightsSpec(
        "vgg16-397923af.pth", True,
        "https://download.pytorch.org/models/vgg16-397923af.pth",
        "https://download.pytorch.org/models/vgg16-397923af.pth",
        "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0"),
}


def hub_hash_prefix(name: str) -> str | None:
    """The SHA-256 prefix a torch-hub style file name carries (``vgg16-397923af.pth`` -> ``397923af``), else None."""
    match = re.search(r"-([0-9a-f]{8,})\.[A-Za-z.]+$", Path(WEIGHTS[name].relative_path).name)
    return match[1] if match else None


def fetch_hint(name: str, weights_dir: str | Path | None = None) -> str:
    """How ``models.fetch_weights`` gets the file ``name`` (the command, or that it is by hand only)."""
    if WEIGHTS[name].url is None:
        return f"(it has no direct download link: `python -m models.fetch_weights {name}` shows where to get it)"
    dest = f" --dest {weights_dir}" if weights_dir is not None else ""
    return f"or run `python -m models.fetch_weights {name}{dest}`"


def default_weights_path(name: str, weights_dir: str | Path | None = None) -> Path:
    """Default location of the weights file ``name`` (a key of ``WEIGHTS``), below ``weights_dir`` if given."""
    spec = WEIGHTS[name]
    if weights_dir is not None:
        return Path(weights_dir).expanduser() / spec.relative_path
    root = Path(torch.hub.get_dir()) / "checkpoints" if spec.in_hub_cache else MODELS_DIR
    return root / spec.relative_path


def weights_path(name: str, path: str | Path | None = None, weights_dir: str | Path | None = None) -> Path:
    """Resolve ``path`` (or the default location, below ``weights_dir`` if given) of the weights ``name``;
    raise if it is missing."""
    if name not in WEIGHTS:
        raise KeyError(f"unknown weights {name!r}; known: {sorted(WEIGHTS)}")
    resolved = Path(path).expanduser() if path is not None else default_weights_path(name, weights_dir)
    if not resolved.is_file():
        spec = WEIGHTS[name]
        raise MissingFileError(
            f"weights file for {name} not found: {resolved}. Download {Path(spec.relative_path).name} "
            f"from {spec.source} and place it at {default_weights_path(name, weights_dir)} (or pass its path"
            f"{'' if weights_dir is not None else ' or -weights_dir'}), {fetch_hint(name, weights_dir)}. Weights "
            "are never downloaded at run time.")
    return resolved


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """Load a state dict from ``path`` on the CPU: a plain dict, or ``{'state_dict': ...}``.

    A ``module.`` prefix (from ``nn.DataParallel``) is removed.
    """
    obj = safe_load(path)  # weights_only=True; a file with pickled objects is refused (utils.checkpoint)
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(obj).__name__})")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_backbone_weights(name: str, path: str | Path | None = None,
                          allow_random_backbone: bool = False) -> dict[str, torch.Tensor] | None:
    """State dict of the weights ``name``; ``None`` (random backbone, loud warning) when the file is
    missing and ``allow_random_backbone`` is set, which only tests should do."""
    try:
        return load_state_dict_file(weights_path(name, path))
    except FileNotFoundError:
        if not allow_random_backbone:
            raise
    logger.warning("%s HAS RANDOM WEIGHTS: its weights file is missing, so the metrics computed with "
                   "it are meaningless (allowed for tests only)", name.upper())
    return None


def build_with_weights(factory: Callable[[], torch.nn.Module],
                       state_dict: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """``factory()`` built on the meta device with ``state_dict``'s tensors assigned (floating ones as float32):
    the same module as ``factory().load_state_dict(state_dict)`` (strict) without the random initialisation."""
    with torch.device("meta"):
        model = factory()
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}, assign=True)
    return model
