"""What ``eval_synthesis_quality.py``, ``eval_diversity.py`` and ``python -m metrics.compare`` share.

- :class:`Backbones` / :func:`load_backbones`: the metric networks, all loaded (so every weights file is
  checked, missing ones reported together) before any video is generated, with their weights' SHA-256;
- the command-line arguments (one place: :func:`add_common_arguments`, :func:`add_scale_arguments`) and
  their checks;
- :func:`prepare_run`: device, torchrun process group, backbones, model and test split;
  :func:`chunk_batches` and :func:`residuals` (per-video seeds) for the sharded work of :mod:`metrics.sharded`;
- the real-statistics cache around :mod:`metrics.real_stats`, result tables and JSON.

Random-weight backbones (meaningless numbers) are only used when the environment variable
``I2V_ALLOW_RANDOM_BACKBONES=1`` is set and a FID/LPIPS/VGG weights file is missing; the I3D networks never
fall back to random weights (tests save random-weight files in the released layouts, see ``-weights_dir``).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from metrics.protocol import PROTOCOL_DATASETS, PROTOCOLS
from metrics.real_stats import RealStats, load_real_stats, save_real_stats
from metrics.scoring import METRIC_BACKBONES, mean_and_std
from metrics.sharded import Chunk, RankFailure, ShardPlan, part_folder
from utils.distributed import DistInfo
from utils.errors import ArgumentError, I2VError, MissingFileError

logger = logging.getLogger(__name__)

I3D_KINDS = ("hassony2", "torchscript")
RANDOM_BACKBONES_ENV = "I2V_ALLOW_RANDOM_BACKBONES"
DEFAULT_DIST_TIMEOUT = 1800.0
PER_VIDEO_SEEDS = "torch.Generator seeded from numpy SeedSequence([seed, trial, clip index])"

VideoEmbedder = Callable[[torch.Tensor], torch.Tensor]  # (B, T, 3, H, W) in [-1, 1] -> (B, D)
FrameEmbedder = Callable[[torch.Tensor], torch.Tensor]  # (N, 3, H, W) in [-1, 1] -> (N, D)


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
CALLER_WEIGHTS = {"network": "given by the caller", "file": None, "sha256": None}


def weights_name(field: str, i3d: str = "hassony2", dtfvd_frames: int = 16) -> str:
    """The :data:`metrics.weights.WEIGHTS` entry a backbone field is read from."""
    names = {"fvd": "i3d_torchscript" if i3d == "torchscript" else "kinetics_i3d",
             "dtfvd": f"dtdb_i3d_{dtfvd_frames}", "fid": "fid_inception", "lpips": "vgg16", "vgg": "vgg16"}
    if field not in names:
        raise KeyError(f"unknown backbone {field!r}; known: {BACKBONE_FIELDS}")
    return names[field]


def _weights_record(name: str, path: Path) -> dict[str, str | None]:
    from metrics.weights import file_sha256

    if not path.is_file():  # a random fallback (tests only)
        return {"network": name, "file": None, "sha256": "RANDOM WEIGHTS"}
    return {"network": name, "file": str(path.resolve()), "sha256": file_sha256(path)}


def _load_one(field: str, device: torch.device, i3d: str, dtfvd_frames: int, allow_random: bool,
              weights_dir: str | Path | None) -> tuple[Any, str, dict[str, str | None]]:
    """(backbone, note, weights record) for one field of :class:`Backbones`; the loaders raise
    FileNotFoundError naming the file and its source."""
    from metrics.fvd import FVDFeatureExtractor
    from metrics.weights import default_weights_path, weights_path

    name = weights_name(field, i3d, dtfvd_frames)
    path = default_weights_path(name, weights_dir)
    if field in ("fvd", "dtfvd") or not allow_random:  # no random fallback: a missing file is named with its source
        path = weights_path(name, weights_dir=weights_dir)
    random_note = f" (RANDOM WEIGHTS, {RANDOM_BACKBONES_ENV}=1: meaningless values)" if not path.is_file() else ""
    if field == "fvd":
        from metrics.i3d import load_kinetics_i3d, load_torchscript_i3d

        if i3d == "torchscript":
            model, note = load_torchscript_i3d(device, path), "StyleGAN-V TorchScript Kinetics-400 I3D, TF-Hub FVD protocol"
        else:
            model, note = load_kinetics_i3d(device, path), "hassony2 Kinetics-400 I3D (model_rgb.pth), TF-Hub FVD protocol"
        backbone = FVDFeatureExtractor(model, "fvd", device)
    elif field == "dtfvd":
        from metrics.dti3d import load_dtdb_i3d

        model = load_dtdb_i3d(dtfvd_frames, device, path)
        backbone, note = FVDFeatureExtractor(model, "dtfvd", device), f"DTDB I3D, {dtfvd_frames} frames"
    elif field == "fid":
        from metrics.fid import FIDFeatureExtractor, load_fid_inception

        backbone = FIDFeatureExtractor(load_fid_inception(device, path, allow_random), device)
        note = "pytorch-fid InceptionV3 pool3" + random_note
    elif field == "lpips":
        from metrics.lpips_metric import load_lpips

        backbone, note = load_lpips(device, path, allow_random), "lpips VGG v0.1" + random_note
    else:
        from metrics.lpips_metric import load_vgg16_features

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


def load_backbones_or_exit(metrics: Iterable[str], device: torch.device | str, **kwargs: Any) -> Backbones:
    """:func:`load_backbones`; missing weights files are one error listing them (printed by :func:`cli.run`)."""
    try:
        return load_backbones(metrics, device, **kwargs)
    except FileNotFoundError as exc:
        raise MissingFileError(f"missing metric weights:\n{exc}") from None


# ----------------------------------------------------------------------------- arguments

def add_scale_arguments(parser: argparse.ArgumentParser, default_protocol: str = "paper", trials: bool = True,
                        real_stats: bool = True) -> None:
    """Protocol, trials, weights folder, real-statistics cache, part files and the torchrun timeout (every
    evaluation entry point; each flag also in the other dash style; types from :mod:`cli`)."""
    import cli

    add = parser.add_argument
    add("-protocol", "--protocol", choices=PROTOCOLS, default=default_protocol,
        help=f"paper: count videos and frames as the original code did; all: every video and frame "
             f"(default: {default_protocol}; see README: Evaluation)")
    if trials:
        add("-n_trials", "--n_trials", type=cli.positive_int, default=1,
            help="independent sets of samples; the result is their mean and standard deviation")
    add("-weights_dir", "--weights_dir", type=cli.existing_folder, default=None,
        help="folder of metric weights laid out like models/ (PI3D/model_rgb.pth, DTI3D/length16/I3D_16.pth.tar, "
             "... and the Inception / VGG16 files under their released names)")
    if real_stats:
        add("--save-real-stats", "-save_real_stats", dest="save_real_stats", default=None, metavar="F.npz",
            help="write the real videos' feature statistics (FVD/DTFVD/FID) to this file")
        add("--real-stats", "-real_stats", dest="real_stats", type=cli.existing_file, default=None, metavar="F.npz",
            help="read the real videos' feature statistics from this file instead of computing them")
    add("-work_dir", "--work_dir", default=None,
        help="folder of the resumable per-chunk feature files (default: beside the result file)")
    add("-dist_timeout", "--dist_timeout", type=cli.positive_float, default=DEFAULT_DIST_TIMEOUT,
        help="torchrun: seconds a rank waits for the others before it stops with an error")


def add_common_arguments(parser: argparse.ArgumentParser, seed: int, real_stats: bool = True) -> None:
    """Arguments shared by eval_synthesis_quality.py and eval_diversity.py (types from :mod:`cli`;
    ``real_stats``: the cache flags)."""
    import cli

    cli.add_model_arguments(parser, "bair | landscape | iPER | DTDB", "model folder with config_stage2.yaml and "
                            "cINN.pth (default: models/<dataset>/stage2)", seq_help="frames generated per video")
    parser.add_argument("-data_path", required=True, type=cli.existing_folder,
                        help="root of the dataset (see README: Data preparation)")
    parser.add_argument("-bs", type=cli.positive_int, default=6, help="start frames per batch (and per resumable chunk)")
    parser.add_argument("-seed", type=int, default=seed, help="random seed (per-video seeds derive from it)")
    parser.add_argument("-n_videos", type=cli.positive_int, default=None,
                        help="evaluate at most this many test clips (default: all)")
    parser.add_argument("-i3d", choices=I3D_KINDS, default="hassony2",
                        help="Kinetics I3D for FVD / I3D: hassony2 (models/PI3D/model_rgb.pth) or torchscript "
                             "(models/PI3D/i3d_torchscript.pt)")
    parser.add_argument("-workers", type=cli.non_negative_int, default=4, help="data loading processes")
    parser.add_argument("-out", default=None, help="result JSON (default: beside the model)")
    add_scale_arguments(parser, real_stats=real_stats)


def add_metric_flags(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """``-<NAME> True|False`` per metric (default True); other values are an argparse error."""
    from cli import str2bool

    for name in names:
        parser.add_argument(f"-{name}", type=str2bool, default=True, metavar="True|False",
                            help=f"compute {name} (default: True)")


def check_scale_args(args: argparse.Namespace) -> None:
    """An :class:`ArgumentError` for scale arguments that cannot go together (the parser checks each value)."""
    if getattr(args, "real_stats", None) and getattr(args, "save_real_stats", None):
        raise ArgumentError("--real-stats reads the real statistics and --save-real-stats writes them: give one")


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
    check_scale_args(args)
    return dataset, metrics


def check_dtfvd_length(video_length: int) -> None:
    """An :class:`ArgumentError` (:func:`metrics.protocol.dtfvd_frames`' message) when no DTDB I3D covers
    ``video_length`` frames."""
    from metrics.protocol import dtfvd_frames

    try:
        dtfvd_frames(video_length)
    except ValueError as exc:
        raise ArgumentError(f"DTFVD / DTI3D: {exc}") from None


# ----------------------------------------------------------------------------- run set-up

@dataclasses.dataclass
class EvalContext:
    """What an evaluation script works with once its arguments are checked."""

    device: torch.device
    info: DistInfo
    backbones: Backbones
    pipe: Any
    model_dir: Path
    dataset: torch.utils.data.Dataset
    clips: int


def load_eval_pipeline(args: argparse.Namespace, dataset: str, device: torch.device) -> tuple[Any, Path]:
    """(pipeline, model folder) of ``-ckpt_path`` or the dataset's default folder; control models are refused."""
    from cli import default_model_dir, load_pipeline

    model_dir = Path(args.ckpt_path) if args.ckpt_path else default_model_dir(dataset, args.texture)
    pipe = load_pipeline(model_dir, device, args.precision)
    if pipe.control:
        raise ArgumentError(f"-ckpt_path {model_dir} is an end-effector control model; evaluate the unconditional "
                            "model")
    return pipe, model_dir


def start_distributed(args: argparse.Namespace) -> tuple[torch.device, DistInfo]:
    """The device of ``-gpu`` and, under torchrun, the process group with ``-dist_timeout``."""
    from utils.device import get_device
    from utils.distributed import init_distributed

    device = get_device(args.gpu)
    return device, init_distributed(device, timeout=args.dist_timeout)


def prepare_run(args: argparse.Namespace, dataset: str, metrics: Sequence[str], clip_frames: int,
                dtfvd_frames: int = 16, backbones: Backbones | None = None) -> EvalContext:
    """Load the metric backbones (missing weights exit before anything else), the model and the test
    split (clips of ``clip_frames`` frames), seeding everything with ``args.seed``."""
    from utils.distributed import seed_everything

    device, info = start_distributed(args)
    backbones = load_backbones_or_exit(metrics, device, i3d=args.i3d, dtfvd_frames=dtfvd_frames,
                                       provided=backbones, weights_dir=args.weights_dir)
    pipe, model_dir = load_eval_pipeline(args, dataset, device)
    seed_everything(args.seed)
    ds = make_test_dataset(pipe, dataset, args.data_path, args.texture, clip_frames)
    clips = len(ds) if args.n_videos is None else min(len(ds), args.n_videos)
    return EvalContext(device, info, backbones, pipe, model_dir, ds, clips)


def make_test_dataset(pipe: Any, dataset: str, data_path: str | Path, texture: str | None,
                      n_frames: int) -> torch.utils.data.Dataset:
    """The test split as clips of ``n_frames`` frames at the model's resolution (fixed per index).

    The config is the model's stage-2 config with ``Data.dataset``, ``data_path``, ``texture``,
    ``sequence_length`` and ``img_size`` (the generator's resolution) replaced. Data errors name the split.
    """
    from data import get_dataset

    cfg = copy.deepcopy(pipe.config)
    data = cfg.setdefault("Data", {})
    if data.get("dataset") and str(data["dataset"]).lower() != dataset.lower():
        logger.warning("the model was trained on '%s' but is evaluated on '%s'", data["dataset"], dataset)
    data.update(dataset=dataset, data_path=str(data_path), sequence_length=int(n_frames), img_size=int(pipe.img_size))
    if texture:
        data["texture"] = texture
    try:
        return get_dataset(cfg, "test", control=False)
    except I2VError as exc:
        raise type(exc)(f"cannot read the test split: {exc}") from None


def chunk_batches(dataset: torch.utils.data.Dataset, chunks: Sequence[Chunk], workers: int,
                  device: torch.device) -> Iterator[torch.Tensor]:
    """The clips (B, T, 3, H, W) of each chunk, in order, on ``device`` in float32."""
    from data import seed_worker

    if not chunks:
        return
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=[idx for _, idx in chunks], num_workers=workers,
                                         worker_init_fn=seed_worker, pin_memory=torch.cuda.is_available())
    for batch in loader:
        yield batch["seq"].to(device, torch.float32)


def video_seed(seed: int, trial: int, index: int) -> int:
    """The seed of clip ``index`` in trial ``trial``: the same whatever the number of ranks or the batch."""
    return int(np.random.SeedSequence([seed, trial, index]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def residuals(seed: int, trial: int, indices: Sequence[int], shape: Sequence[int]) -> torch.Tensor:
    """Standard-normal cINN residuals (len(indices), *shape), each clip's from its own :func:`video_seed`."""
    return torch.stack([torch.randn(*shape, generator=torch.Generator().manual_seed(video_seed(seed, trial, i)))
                        for i in indices])


def model_stamp(model_dir: Path) -> dict[str, list[int]]:
    """Size and modification time of the model folder's files (part of the resume fingerprint)."""
    return {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(Path(model_dir).glob("*")) if p.is_file()}


def shard_plan(args: argparse.Namespace, info: DistInfo, n_items: int, result_path: Path | None,
               fingerprint: Mapping[str, Any]) -> ShardPlan:
    """Chunks of ``-bs`` items; part files under ``-work_dir`` or ``<result file>.parts`` (none without either)."""
    root = Path(args.work_dir) if args.work_dir else (result_path.with_suffix(".parts") if result_path else None)
    work_dir = part_folder(root, {**fingerprint, "chunk_size": args.bs}) if root is not None else None
    return ShardPlan(n_items, args.bs, info, work_dir)


def entry_point(parse_args: Callable[[Sequence[str] | None], argparse.Namespace],
                run: Callable[[argparse.Namespace, Any], Any], argv: Sequence[str] | None,
                backbones: Backbones | None) -> Any:
    """What each evaluation ``main`` does: parse ``argv``, log (rank 0; warnings only elsewhere) and
    ``run(args, backbones)`` under :func:`exit_on_rank_failure`."""
    from utils.logging import setup_logging

    args = parse_args(argv)
    setup_logging(rank=int(os.environ.get("RANK", 0)))
    return exit_on_rank_failure(lambda: run(args, backbones))


def exit_on_rank_failure(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; on a :class:`metrics.sharded.RankFailure` print ``error: ...`` and end the process at once
    with status 1 (a process group whose peer died or hung cannot be torn down: gloo aborts, nccl hangs).
    A process group that ``fn`` joined is left otherwise (one the caller had joined stays)."""
    import sys

    import torch.distributed as dist

    from utils.distributed import cleanup_distributed

    joined_before = dist.is_available() and dist.is_initialized()
    try:
        result = fn()
    except RankFailure as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(1)
    if not joined_before:
        cleanup_distributed()
    return result


# ----------------------------------------------------------------------------- real statistics

def stats_identity(protocol: str, data: Mapping[str, Any], backbones: Backbones,
                   counts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What a real-statistics file must share with a run: protocol, ``data`` and per Frechet metric the
    network, weights SHA-256, count and clip length."""
    metrics = {}
    for m, c in counts.items():
        if "real" not in c:
            continue
        record = backbones.weights.get(METRIC_BACKBONES[m], CALLER_WEIGHTS)
        metrics[m] = {"network": record["network"], "sha256": record["sha256"], "count": c["real"],
                      "frames_per_video": c["frames_per_video"], "network_frames": c.get("network_frames")}
    return {"protocol": protocol, **data, "metrics": metrics}


def read_real_stats(path: str | Path | None, identity: Mapping[str, Any]) -> dict[str, RealStats] | None:
    """:func:`metrics.real_stats.load_real_stats` (None without a path or without Frechet metrics)."""
    if not path or not identity["metrics"]:
        return None
    return load_real_stats(path, identity)


def write_real_stats(path: str | Path | None, stats: Mapping[str, RealStats], identity: Mapping[str, Any],
                     info: Mapping[str, Any]) -> str | None:
    """Save the real statistics when ``path`` is given; the path written, or None."""
    if not path or not stats:
        return None
    save_real_stats(path, stats, identity, info)
    return str(Path(path).resolve())


# ----------------------------------------------------------------------------- results

def default_result_path(model_dir: str | Path, kind: str, dataset: str, texture: str | None) -> Path:
    """``<model_dir>/eval_<kind>_<dataset>[_<texture>].json`` (the texture only for DTDB)."""
    name = f"eval_{kind}_{dataset}" + (f"_{texture}" if dataset == "DTDB" and texture else "")
    return Path(model_dir) / f"{name}.json"


def result_path(args: argparse.Namespace, model_dir: Path, kind: str, dataset: str) -> Path:
    """``-out`` or :func:`default_result_path`."""
    return Path(args.out) if args.out else default_result_path(model_dir, kind, dataset, args.texture)


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
        "protocol": args.protocol,
        "precision": getattr(args, "precision", "fp32"),
    }


def trial_results(trials: Sequence[dict[str, float]], seed: int) -> dict[str, Any]:
    """The result fields of K trials: ``metrics`` (means), ``std``, every trial's values and its seeds."""
    mean, std = mean_and_std(trials)
    return {"n_trials": len(trials), "metrics": mean, "std": std, "trials": [dict(t) for t in trials],
            "seeds": {"seed": seed, "per_video": PER_VIDEO_SEEDS, "trials": [[seed, k] for k in range(len(trials))]}}


def format_table(results: Mapping[str, float], title: str = "", std: Mapping[str, float] | None = None) -> str:
    """A two-column text table of metric values (``mean +- std`` when ``std`` is given)."""
    width = max([len(k) for k in results] + [len("metric")])
    lines = [title] if title else []
    lines += [f"{'metric':<{width}}  value", f"{'-' * width}  {'-' * 12}"]
    lines += [f"{k:<{width}}  {v:.6g}" + (f" +- {std[k]:.3g}" if std else "") for k, v in results.items()]
    return "\n".join(lines)


def write_json(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as indented JSON atomically (parent folders created)."""
    from utils.checkpoint import atomic_write_text

    path = Path(path)
    atomic_write_text(json.dumps(payload, indent=2) + "\n", path)
    logger.debug("results written to %s", path)
    return path


def report(payload: dict[str, Any], path: Path, title: str) -> dict[str, Any]:
    """Write the result JSON and print the metric table (titled ``title`` + texture) and where it went."""
    write_json(path, payload)
    texture = f" {payload['texture']}" if payload.get("texture") else ""
    std = payload["std"] if payload.get("n_trials", 1) > 1 else None
    print(format_table(payload["metrics"], title.format(texture=texture), std))
    print(f"results written to {path}")
    return payload
