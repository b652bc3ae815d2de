"""Evaluation protocols shared by ``eval_synthesis_quality.py``, ``eval_diversity.py`` and
``python -m metrics.compare``.

- :func:`protocol_slices`: which real and which generated frames enter the synthesis-quality metrics (SPEC 6);
- :class:`Backbones` / :func:`load_backbones`: the metric networks, all loaded (so every weights file is
  checked, missing ones reported together) before any video is generated;
- :class:`SynthesisMetrics`: FVD / DTFVD / FID features and per-video LPIPS, accumulated batch by batch;
- :class:`DiversityMetrics`: VGG / I3D / DTI3D diversity, accumulated batch by batch;
- the command-line arguments both evaluation scripts share, their test-split loader, result tables and JSON.

Random-weight backbones (meaningless numbers) are only used when the environment variable
``I2V_ALLOW_RANDOM_BACKBONES=1`` is set (tests do this) and a FID/LPIPS/VGG weights file is missing; the
I3D networks never fall back to random weights (tests inject their own extractors through ``Backbones``).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from metrics.frechet import extract_features, frechet_distance_from_features
from utils.errors import ArgumentError, I2VError, MissingFileError

logger = logging.getLogger(__name__)

SYNTHESIS_METRICS = ("FVD", "DTFVD", "FID", "LPIPS")
DIVERSITY_METRICS = ("VGG", "I3D", "DTI3D")
FRECHET_METRICS = ("FVD", "DTFVD", "FID")
I3D_KINDS = ("hassony2", "torchscript")
RANDOM_BACKBONES_ENV = "I2V_ALLOW_RANDOM_BACKBONES"
PROTOCOL_DATASETS = ("bair", "iPER", "landscape", "DTDB")

VideoEmbedder = Callable[[torch.Tensor], torch.Tensor]  # (B, T, 3, H, W) in [-1, 1] -> (B, D)
FrameEmbedder = Callable[[torch.Tensor], torch.Tensor]  # (N, 3, H, W) in [-1, 1] -> (N, D)


# ----------------------------------------------------------------------------- protocol

def _protocol_key(dataset: str) -> str:
    key = str(dataset).strip().lower()
    if key not in ("bair", "iper", "landscape", "dtdb"):
        raise ValueError(f"no evaluation protocol for dataset {dataset!r}; choose one of {PROTOCOL_DATASETS}")
    return key


def protocol_slices(dataset: str, seq: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(real, fake) videos compared by the synthesis metrics (SPEC 6), for T generated frames.

    ``seq`` (B, T+1, 3, H, W) is the real test clip (frame 0 is the start frame x0), ``fake``
    (B, T, 3, H, W) the T frames generated from x0 (they stand for times 1..T). With T = 16:

    - BAIR: fake = [x0, generated 1..15], real = real frames 0..15 (16-frame protocol of the FVD paper);
    - iPER: fake = [x0, generated 1..16], real = real frames 0..16 (all 17);
    - landscape / DTDB: fake = generated 1..16, real = real frames 0..15.

    For landscape/DTDB the spec says "real = first 16 real frames", the wording it also uses for BAIR,
    where it can only mean frames 0..15; we read it the same way (``seq[:, :T]``) rather than as the
    time-aligned frames 1..T. FVD/DTFVD/FID compare distributions, so the one-frame shift hardly
    matters there; the paired LPIPS does compare generated frame t+1 with real frame t under it.
    """
    if seq.dim() != 5 or fake.dim() != 5:
        raise ValueError(f"expected (B, T, 3, H, W) videos, got {tuple(seq.shape)} and {tuple(fake.shape)}")
    n = fake.shape[1]
    if seq.shape[1] != n + 1 or seq.shape[0] != fake.shape[0] or seq.shape[2:] != fake.shape[2:]:
        raise ValueError(f"real clips need one frame (the start frame) more than the generated videos, at the "
                         f"same size: got real {tuple(seq.shape)} for fake {tuple(fake.shape)}")
    fake = fake.to(seq.device, seq.dtype)
    x0 = seq[:, :1]
    key = _protocol_key(dataset)
    if key == "bair":
        return seq[:, :n], torch.cat([x0, fake[:, : n - 1]], dim=1)
    if key == "iper":
        return seq, torch.cat([x0, fake], dim=1)
    return seq[:, :n], fake  # landscape, DTDB: "first 16 real frames" = frames 0..15 (see docstring)


def protocol_length(dataset: str, seq_length: int) -> int:
    """Frames per evaluated video under :func:`protocol_slices` for ``seq_length`` generated frames."""
    return seq_length + 1 if _protocol_key(dataset) == "iper" else seq_length


def dtfvd_frames(video_length: int) -> int:
    """The DTDB I3D (16 or 32 frames) for videos of ``video_length`` frames (shorter ones are tiled in time)."""
    if video_length <= 16:
        return 16
    if video_length <= 32:
        return 32
    raise ValueError(f"DTFVD is defined for videos of at most 32 frames, got {video_length}")


# ----------------------------------------------------------------------------- backbones

def random_backbones_allowed() -> bool:
    """True when ``I2V_ALLOW_RANDOM_BACKBONES`` is set to 1/true/yes (tests only)."""
    return os.environ.get(RANDOM_BACKBONES_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclasses.dataclass
class Backbones:
    """The metric networks of one evaluation. Any field may be given in advance (tests inject tiny ones).

    ``fvd``: Kinetics I3D embedder (FVD and I3D diversity); ``dtfvd``: DTDB I3D embedder (DTFVD, DTI3D
    diversity); ``fid``: frame embedder (pool3 of pytorch-fid's Inception); ``lpips``: ``lpips.LPIPS``;
    ``vgg``: VGG16 returning the five relu feature maps (VGG diversity), fed frames resized to
    ``vgg_size`` (``None``: no resizing). ``notes`` says what each one is (recorded in result files).
    """

    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    fvd: VideoEmbedder | None = None
    dtfvd: VideoEmbedder | None = None
    fid: FrameEmbedder | None = None
    lpips: nn.Module | None = None
    vgg: nn.Module | None = None
    vgg_size: int | None = 224
    notes: dict[str, str] = dataclasses.field(default_factory=dict)


BACKBONE_FIELDS = ("fvd", "dtfvd", "fid", "lpips", "vgg")
# which backbone each metric needs
METRIC_BACKBONES = {"FVD": "fvd", "DTFVD": "dtfvd", "FID": "fid", "LPIPS": "lpips",
                    "VGG": "vgg", "I3D": "fvd", "DTI3D": "dtfvd"}


def _random_note(weights_name: str, allow_random: bool, description: str) -> str:
    from metrics.weights import default_weights_path

    if allow_random and not default_weights_path(weights_name).is_file():
        return f"{description}: RANDOM WEIGHTS ({RANDOM_BACKBONES_ENV}=1), meaningless values"
    return description


def _load_one(name: str, device: torch.device, i3d: str, video_length: int, allow_random: bool) -> tuple[Any, str]:
    """(backbone, note) for one field of :class:`Backbones`; the loaders raise FileNotFoundError naming the file."""
    from metrics.fvd import FVDFeatureExtractor

    if name == "fvd":
        if i3d == "torchscript":
            from metrics.i3d import load_torchscript_i3d

            model, note = load_torchscript_i3d(device), "StyleGAN-V TorchScript Kinetics-400 I3D, TF-Hub FVD protocol"
        else:
            from metrics.i3d import load_kinetics_i3d

            model, note = load_kinetics_i3d(device), "hassony2 Kinetics-400 I3D (model_rgb.pth), TF-Hub FVD protocol"
        return FVDFeatureExtractor(model, "fvd", device), note
    if name == "dtfvd":
        from metrics.dti3d import load_dtdb_i3d

        frames = dtfvd_frames(video_length)
        return FVDFeatureExtractor(load_dtdb_i3d(frames, device), "dtfvd", device), f"DTDB I3D, {frames} frames"
    if name == "fid":
        from metrics.fid import FIDFeatureExtractor, load_fid_inception

        model = load_fid_inception(device, allow_random_backbone=allow_random)
        note = _random_note("fid_inception", allow_random, "pytorch-fid InceptionV3 pool3")
        return FIDFeatureExtractor(model, device), note
    if name == "lpips":
        from metrics.lpips_metric import load_lpips

        model = load_lpips(device, allow_random_backbone=allow_random)
        return model, _random_note("vgg16", allow_random, "lpips VGG v0.1")
    if name == "vgg":
        from metrics.lpips_metric import load_vgg16_features

        model = load_vgg16_features(device, allow_random_backbone=allow_random)
        return model, _random_note("vgg16", allow_random, "torchvision ImageNet VGG16, 224x224")
    raise KeyError(f"unknown backbone {name!r}; known: {BACKBONE_FIELDS}")


def load_backbones(metrics: Iterable[str], device: torch.device | str, i3d: str = "hassony2",
                   video_length: int = 16, provided: Backbones | None = None,
                   allow_random: bool | None = None) -> Backbones:
    """Load the backbones ``metrics`` (names of ``SYNTHESIS_METRICS``/``DIVERSITY_METRICS``) need, except
    those already in ``provided``. Every missing weights file is reported in one ``FileNotFoundError``.

    ``allow_random`` defaults to :func:`random_backbones_allowed`.
    """
    if i3d not in I3D_KINDS:
        raise ValueError(f"unknown I3D {i3d!r}; choose from {I3D_KINDS}")
    device = torch.device(device)
    allow_random = random_backbones_allowed() if allow_random is None else allow_random
    if allow_random:
        logger.warning("%s is set: FID/LPIPS/VGG backbones whose weights are missing get RANDOM WEIGHTS; "
                       "the resulting numbers are meaningless (for tests only)", RANDOM_BACKBONES_ENV)
    out = (dataclasses.replace(provided, device=device, notes=dict(provided.notes)) if provided is not None
           else Backbones(device))
    errors: list[str] = []
    for name in dict.fromkeys(METRIC_BACKBONES[m] for m in metrics):
        if getattr(out, name) is not None:
            out.notes.setdefault(name, "given by the caller")
            continue
        try:
            backbone, note = _load_one(name, device, i3d, video_length, allow_random)
        except FileNotFoundError as exc:
            errors.append(str(exc))
            continue
        setattr(out, name, backbone)
        out.notes[name] = note
    if errors:
        raise MissingFileError("\n".join(errors))
    return out


def backbone_notes(backbones: Backbones, metrics: Iterable[str]) -> dict[str, str]:
    """What each metric's backbone is (for result files)."""
    return {m: backbones.notes.get(METRIC_BACKBONES[m], "") for m in metrics}


def load_backbones_or_exit(metrics: Iterable[str], device: torch.device | str, **kwargs: Any) -> Backbones:
    """:func:`load_backbones`; missing weights files are one error listing them (printed by :func:`cli.run`)."""
    try:
        return load_backbones(metrics, device, **kwargs)
    except FileNotFoundError as exc:
        raise MissingFileError(f"missing metric weights:\n{exc}") from None


# ----------------------------------------------------------------------------- accumulators

def _checked_metrics(backbones: Backbones, metrics: Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    """``metrics`` in the order of ``known``; errors for unknown names and missing backbones."""
    unknown = set(metrics) - set(known)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {tuple(known)}")
    for m in metrics:
        if getattr(backbones, METRIC_BACKBONES[m]) is None:
            raise ValueError(f"{m} needs the '{METRIC_BACKBONES[m]}' backbone (see load_backbones)")
    return tuple(m for m in known if m in metrics)


class SynthesisMetrics:
    """FVD / DTFVD / FID (Frechet distances of features of all real and all fake videos or frames) and
    LPIPS (per video pair, mean over frames, then over videos), fed batch by batch."""

    def __init__(self, backbones: Backbones, metrics: Sequence[str], batch_size: int = 16,
                 frame_batch: int = 64) -> None:
        self.backbones = backbones
        self.metrics = _checked_metrics(backbones, metrics, SYNTHESIS_METRICS)
        self.batch_size, self.frame_batch = batch_size, frame_batch
        self._features: dict[str, dict[str, list[np.ndarray]]] = {
            m: {"real": [], "fake": []} for m in self.metrics if m in FRECHET_METRICS}
        self._lpips: list[torch.Tensor] = []
        self.counts = {"real": 0, "fake": 0}

    def _add(self, side: str, videos: torch.Tensor) -> None:
        self.counts[side] += videos.shape[0]
        for m, store in self._features.items():
            if m == "FID":
                feats = extract_features(videos.flatten(0, 1), self.backbones.fid, self.frame_batch,
                                         desc="FID features")
            else:
                feats = extract_features(videos, getattr(self.backbones, METRIC_BACKBONES[m]), self.batch_size,
                                         desc=f"{m} features")
            store[side].append(feats)

    def add_real(self, videos: torch.Tensor) -> None:
        """Real videos (B, T, 3, H, W) in [-1, 1] for the Frechet metrics."""
        self._add("real", videos)

    def add_fake(self, videos: torch.Tensor) -> None:
        """Generated videos (B, T, 3, H, W) in [-1, 1] for the Frechet metrics."""
        self._add("fake", videos)

    def add_pairs(self, real: torch.Tensor, fake: torch.Tensor) -> None:
        """Paired real and generated videos of equal shape: all metrics, LPIPS pairwise."""
        if real.shape != fake.shape:
            raise ValueError(f"paired videos differ in shape: {tuple(real.shape)} vs {tuple(fake.shape)}")
        self.add_real(real)
        self.add_fake(fake)
        if "LPIPS" in self.metrics:
            from metrics.lpips_metric import lpips_per_video

            self._lpips.append(lpips_per_video(real, fake, self.backbones.lpips, self.backbones.device,
                                               self.frame_batch))

    def results(self) -> dict[str, float]:
        """The metric values over everything added."""
        out: dict[str, float] = {}
        for m in self.metrics:
            if m == "LPIPS":
                if not self._lpips:
                    raise ValueError("LPIPS needs paired videos (add_pairs)")
                out[m] = float(torch.cat(self._lpips).double().mean())
                continue
            real, fake = self._features[m]["real"], self._features[m]["fake"]
            if sum(map(len, real)) < 2 or sum(map(len, fake)) < 2:
                raise ValueError(f"{m} needs at least 2 real and 2 fake samples, got {self.counts}")
            out[m] = frechet_distance_from_features(np.concatenate(real), np.concatenate(fake))
        return out


@contextlib.contextmanager
def _quiet(name: str, level: int = logging.WARNING) -> Iterator[None]:
    """Raise the level of logger ``name`` for the duration of the block (per-batch chatter)."""
    log = logging.getLogger(name)
    old = log.level
    log.setLevel(level)
    try:
        yield
    finally:
        log.setLevel(old)


class DiversityMetrics:
    """VGG / I3D / DTI3D diversity (:mod:`metrics.diversity`) over batches of realisations.

    Each batch's score is a mean over its examples with the same number of terms per example, so the
    overall score is the example-weighted mean of the batch scores (identical to one call on all data).
    """

    def __init__(self, backbones: Backbones, metrics: Sequence[str], batch_size: int = 8) -> None:
        self.backbones = backbones
        self.metrics = _checked_metrics(backbones, metrics, DIVERSITY_METRICS)
        self.batch_size = batch_size
        self._sums: dict[str, float] = {}
        self.n_examples = 0

    def _accumulate(self, key: str, value: float, weight: int) -> None:
        self._sums[key] = self._sums.get(key, 0.0) + value * weight

    def add(self, realizations: torch.Tensor) -> None:
        """Realisations (n_realiz, B, T, 3, H, W) in [-1, 1]: ``realizations[i, b]`` is sample i of start frame b."""
        from metrics.diversity import dti3d_diversity, embedding_diversity, vgg_diversity

        if realizations.dim() != 6 or realizations.shape[0] < 2:
            raise ValueError(f"expected (n_realiz >= 2, B, T, 3, H, W), got {tuple(realizations.shape)}")
        b = realizations.shape[1]
        if "VGG" in self.metrics:
            with _quiet("metrics.diversity"):
                layers = vgg_diversity(realizations, self.backbones.vgg, self.backbones.device, self.batch_size,
                                       size=self.backbones.vgg_size, per_layer=True)
            for name, value in layers.items():
                self._accumulate(f"VGG_{name}", value, b)
        if "I3D" in self.metrics:
            self._accumulate("I3D", embedding_diversity(realizations, self.backbones.fvd, self.batch_size,
                                                        desc="I3D diversity"), b)
        if "DTI3D" in self.metrics:
            self._accumulate("DTI3D", dti3d_diversity(realizations, self.backbones.dtfvd, self.batch_size), b)
        self.n_examples += b

    def results(self) -> dict[str, float]:
        """{'VGG': mean over the five layers, 'VGG_relu1_2': ..., 'I3D': ..., 'DTI3D': ... (x1000)}."""
        if self.n_examples == 0:
            raise ValueError("no realisations were added")
        means = {k: v / self.n_examples for k, v in self._sums.items()}
        out: dict[str, float] = {}
        if "VGG" in self.metrics:
            layers = {k: v for k, v in means.items() if k.startswith("VGG_")}
            out["VGG"] = float(sum(layers.values()) / len(layers))
            out.update(layers)
        for m in ("I3D", "DTI3D"):
            if m in self.metrics:
                out[m] = means[m]
        return out


# ----------------------------------------------------------------------------- scripts: arguments and data

def add_common_arguments(parser: argparse.ArgumentParser, seed: int) -> None:
    """Arguments shared by eval_synthesis_quality.py and eval_diversity.py (types from :mod:`cli`)."""
    import cli

    cli.add_model_arguments(parser, "bair | landscape | iPER | DTDB", "model folder with config_stage2.yaml and "
                            "cINN.pth (default: models/<dataset>/stage2)", seq_help="frames generated per video")
    parser.add_argument("-data_path", required=True, type=cli.existing_folder,
                        help="root of the dataset (see README: Data preparation)")
    parser.add_argument("-bs", type=cli.positive_int, default=6, help="start frames per batch")
    parser.add_argument("-seed", type=int, default=seed, help="random seed")
    parser.add_argument("-n_videos", type=cli.positive_int, default=None,
                        help="evaluate at most this many test clips (default: all)")
    parser.add_argument("-i3d", choices=I3D_KINDS, default="hassony2",
                        help="Kinetics I3D for FVD / I3D: hassony2 (models/PI3D/model_rgb.pth) or torchscript "
                             "(models/PI3D/i3d_torchscript.pt)")
    parser.add_argument("-workers", type=cli.non_negative_int, default=4, help="data loading processes")
    parser.add_argument("-out", default=None, help="result JSON (default: beside the model)")


def add_metric_flags(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """``-<NAME> True|False`` per metric (default True); other values are an argparse error."""
    from cli import str2bool

    for name in names:
        parser.add_argument(f"-{name}", type=str2bool, default=True, metavar="True|False",
                            help=f"compute {name} (default: True)")


def check_common_args(args: argparse.Namespace, names: Sequence[str]) -> tuple[str, list[str]]:
    """(canonical dataset, metrics of ``names`` switched on); an :class:`ArgumentError` for unusable arguments."""
    from cli import canonical_dataset

    dataset = canonical_dataset(args.dataset)
    if dataset not in PROTOCOL_DATASETS:
        raise ArgumentError(f"-dataset {dataset}: no evaluation protocol; choose one of {', '.join(PROTOCOL_DATASETS)}")
    if dataset == "DTDB" and not args.texture:
        raise ArgumentError("-dataset DTDB needs -texture (fire | clouds | vegetation | waterfall)")
    metrics = [m for m in names if getattr(args, m)]
    if not metrics:
        raise ArgumentError(f"nothing to evaluate: all of {', '.join('-' + m for m in names)} are False")
    return dataset, metrics


def check_dtfvd_length(video_length: int) -> None:
    """An :class:`ArgumentError` (:func:`dtfvd_frames`' message) when the dynamic-texture I3D cannot take
    ``video_length`` frames."""
    try:
        dtfvd_frames(video_length)
    except ValueError as exc:
        raise ArgumentError(f"DTFVD / DTI3D: {exc}") from None


def load_eval_pipeline(args: argparse.Namespace, dataset: str, device: torch.device) -> tuple[Any, Path]:
    """(pipeline, model folder) of ``-ckpt_path`` or the dataset's default folder; control models are refused."""
    from cli import default_model_dir, load_pipeline

    model_dir = Path(args.ckpt_path) if args.ckpt_path else default_model_dir(dataset, args.texture)
    pipe = load_pipeline(model_dir, device)
    if pipe.control:
        raise ArgumentError(f"-ckpt_path {model_dir} is an end-effector control model; evaluate the unconditional "
                            "model")
    return pipe, model_dir


@dataclasses.dataclass
class EvalRun:
    """What an evaluation script works with once its arguments are checked."""

    device: torch.device
    backbones: Backbones
    pipe: Any
    model_dir: Path
    loader: torch.utils.data.DataLoader
    clips: int

    def batches(self, cap: int | None) -> Iterator[torch.Tensor]:
        """The test clips (B, T, 3, H, W) on the device, at most ``cap`` in all, with a progress bar."""
        from tqdm import tqdm

        total = math.ceil(self.clips / self.loader.batch_size)
        for seq in tqdm(capped_batches(self.loader, cap), total=total, desc="evaluating"):
            yield seq.to(self.device, torch.float32)


def prepare_run(args: argparse.Namespace, dataset: str, metrics: Sequence[str], video_length: int,
                backbones: Backbones | None = None) -> EvalRun:
    """Load the metric backbones (missing weights exit before anything else), the model and the test
    split (clips of ``seq_length + 1`` frames), seeding everything with ``args.seed``."""
    from utils.device import get_device
    from utils.distributed import seed_everything

    device = get_device(args.gpu)
    backbones = load_backbones_or_exit(metrics, device, i3d=args.i3d, video_length=video_length,
                                       provided=backbones)
    pipe, model_dir = load_eval_pipeline(args, dataset, device)
    seed_everything(args.seed)
    loader = make_test_loader(pipe, dataset, args.data_path, args.texture, args.seq_length + 1, args.bs,
                              args.workers, args.seed)
    clips = len(loader.dataset) if args.n_videos is None else min(len(loader.dataset), args.n_videos)
    return EvalRun(device, backbones, pipe, model_dir, loader, clips)


def make_test_loader(pipe: Any, dataset: str, data_path: str | Path, texture: str | None, n_frames: int,
                     batch_size: int, workers: int, seed: int) -> torch.utils.data.DataLoader:
    """The test split as clips of ``n_frames`` frames at the model's resolution, in a fixed order.

    The config is the model's stage-2 config with ``Data.dataset``, ``data_path``, ``texture``,
    ``sequence_length`` and ``img_size`` (the generator's resolution) replaced. Data errors name the split.
    """
    from data import get_dataset, make_loader

    cfg = copy.deepcopy(pipe.config)
    data = cfg.setdefault("Data", {})
    if data.get("dataset") and str(data["dataset"]).lower() != dataset.lower():
        logger.warning("the model was trained on '%s' but is evaluated on '%s'", data["dataset"], dataset)
    data.update(dataset=dataset, data_path=str(data_path), sequence_length=int(n_frames), img_size=int(pipe.img_size))
    if texture:
        data["texture"] = texture
    try:
        ds = get_dataset(cfg, "test", control=False)
    except I2VError as exc:
        raise type(exc)(f"cannot read the test split: {exc}") from None
    return make_loader(ds, batch_size, shuffle=False, workers=workers, seed=seed, drop_last=False)


def capped_batches(loader: Iterable[Mapping[str, torch.Tensor]], cap: int | None) -> Iterator[torch.Tensor]:
    """The ``'seq'`` tensors of the loader's batches, cut after ``cap`` clips in total (``None``: all)."""
    seen = 0
    for batch in loader:
        seq = batch["seq"]
        if cap is not None:
            seq = seq[: cap - seen]
        if seq.shape[0] == 0:
            break
        seen += seq.shape[0]
        yield seq
        if cap is not None and seen >= cap:
            break


# ----------------------------------------------------------------------------- results

def default_result_path(model_dir: str | Path, kind: str, dataset: str, texture: str | None) -> Path:
    """``<model_dir>/eval_<kind>_<dataset>[_<texture>].json`` (the texture only for DTDB)."""
    name = f"eval_{kind}_{dataset}" + (f"_{texture}" if dataset == "DTDB" and texture else "")
    return Path(model_dir) / f"{name}.json"


def run_info(script: str, args: argparse.Namespace, dataset: str, model_dir: Path) -> dict[str, Any]:
    """The settings of an evaluation run, the head of its result file."""
    return {
        "script": script,
        "dataset": dataset,
        "texture": args.texture if dataset == "DTDB" else None,
        "ckpt_path": str(Path(model_dir).resolve()),
        "data_path": str(Path(args.data_path).resolve()),
        "seq_length": args.seq_length,
        "seed": args.seed,
    }


def write_results(payload: Mapping[str, Any], out: str | Path | None, kind: str) -> Path:
    """Write the result JSON of an evaluation script to ``out`` or :func:`default_result_path`."""
    path = Path(out) if out else default_result_path(payload["ckpt_path"], kind, payload["dataset"],
                                                     payload["texture"])
    return write_json(path, payload)


def report(payload: dict[str, Any], out: str | Path | None, kind: str, title: str) -> dict[str, Any]:
    """Write the result JSON and print the metric table (titled ``title`` + texture) and where it went."""
    path = write_results(payload, out, kind)
    texture = f" {payload['texture']}" if payload.get("texture") else ""
    print(format_table(payload["metrics"], f"{title.format(texture=texture)}"))
    print(f"results written to {path}")
    return payload


def format_table(results: Mapping[str, float], title: str = "") -> str:
    """A two-column text table of metric values."""
    width = max([len(k) for k in results] + [len("metric")])
    lines = [title] if title else []
    lines += [f"{'metric':<{width}}  value", f"{'-' * width}  {'-' * 12}"]
    lines += [f"{k:<{width}}  {v:.6g}" for k, v in results.items()]
    return "\n".join(lines)


def write_json(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as indented JSON (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    logger.debug("results written to %s", path)
    return path
