"""How an evaluation runs: device and torchrun process group, metric networks, the model and its test split, the
per-clip seeds and the chunks of clips each rank computes (:mod:`evaluation.sharded`), and the end of a run.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist

from data.dataset import get_dataset
from data.loader import seed_worker
from data.registry import dataset_info
from evaluation.arguments import check_lengths
from evaluation.backbones import KINETICS_METRICS, Backbones, load_backbones_or_exit
from evaluation.sharded import Chunk, RankFailure, ShardPlan, part_folder
from stage2_cINN.pipeline import Pipeline, load_model
from utils.device import get_device
from utils.distributed import DistInfo, cleanup_distributed, init_distributed, seed_everything
from utils.errors import ArgumentError, I2VError
from utils.logsetup import setup_logging

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class EvalContext:
    """What an evaluation script works with once its arguments are checked."""

    device: torch.device
    info: DistInfo
    backbones: Backbones
    pipe: Pipeline
    model_dir: Path
    dataset: torch.utils.data.Dataset
    clips: int


def load_eval_pipeline(args: argparse.Namespace, dataset: str, device: torch.device) -> tuple[Pipeline, Path]:
    """(pipeline, model folder) of ``-ckpt_path`` or the dataset's default folder; control models are refused."""
    model_dir = Path(args.ckpt_path) if args.ckpt_path else dataset_info(dataset).model_dir(args.texture)
    pipe = load_model(model_dir, device, args.precision)
    if pipe.control:
        raise ArgumentError(f"-ckpt_path {model_dir} is an end-effector control model; evaluate the unconditional "
                            "model")
    return pipe, model_dir


def start_distributed(args: argparse.Namespace) -> tuple[torch.device, DistInfo]:
    """The device of ``-gpu`` and, under torchrun, the process group with ``-dist_timeout``."""
    device = get_device(args.gpu)
    return device, init_distributed(device, timeout=args.dist_timeout)


def prepare_run(args: argparse.Namespace, dataset: str, metrics: Sequence[str], clip_frames: int,
                dtfvd_frames: int = 16, backbones: Backbones | None = None,
                compared_frames: int | None = None) -> EvalContext:
    """Load the metric backbones (missing weights exit before anything else; videos of ``compared_frames`` frames
    too short for one of them are an error), the model and the test split (clips of ``clip_frames`` frames),
    seeding everything with ``args.seed``."""
    device, info = start_distributed(args)
    backbones = load_backbones_or_exit(metrics, device, i3d=args.i3d, dtfvd_frames=dtfvd_frames,
                                       provided=backbones, weights_dir=args.weights_dir)
    if compared_frames is not None:
        check_lengths([m for m in metrics if m in KINETICS_METRICS], compared_frames,
                      f"-seq_length {args.seq_length} ({compared_frames} frames per compared video)", backbones)
    pipe, model_dir = load_eval_pipeline(args, dataset, device)
    seed_everything(args.seed)
    ds = make_test_dataset(pipe, dataset, args.data_path, args.texture, clip_frames)
    clips = len(ds) if args.n_videos is None else min(len(ds), args.n_videos)
    return EvalContext(device, info, backbones, pipe, model_dir, ds, clips)


def evaluation_data_config(config: Mapping[str, Any], dataset: str, data_path: str | Path, texture: str | None,
                     n_frames: int, img_size: int) -> dict[str, Any]:
    """A copy of a stage-2 ``config`` whose ``Data`` reads the test split of ``dataset`` at ``data_path`` as clips of
    ``n_frames`` frames at ``img_size`` pixels (the model's resolution)."""
    cfg = copy.deepcopy(dict(config))
    data = cfg.setdefault("Data", {})
    if data.get("dataset") and str(data["dataset"]).lower() != dataset.lower():
        logger.warning("the model was trained on '%s' but is evaluated on '%s'", data["dataset"], dataset)
    data.update(dataset=dataset, data_path=str(data_path), sequence_length=int(n_frames), img_size=int(img_size))
    if texture:
        data["texture"] = texture
    return cfg


def make_test_dataset(pipe: Pipeline, dataset: str, data_path: str | Path, texture: str | None,
                      n_frames: int) -> torch.utils.data.Dataset:
    """The test split as clips of ``n_frames`` frames at the model's resolution (fixed per index).

    The config is the model's stage-2 config with ``Data.dataset``, ``data_path``, ``texture``,
    ``sequence_length`` and ``img_size`` (the generator's resolution) replaced. Data errors name the split.
    """
    cfg = evaluation_data_config(pipe.config, dataset, data_path, texture, n_frames, pipe.img_size)
    try:
        return get_dataset(cfg, "test", control=False)
    except I2VError as exc:
        raise type(exc)(f"cannot read the test split: {exc}") from None


def chunk_batches(dataset: torch.utils.data.Dataset, chunks: Sequence[Chunk], workers: int,
                  device: torch.device) -> Iterator[torch.Tensor]:
    """The clips (B, T, 3, H, W) of each chunk, in order, on ``device`` in float32."""
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
    args = parse_args(argv)
    setup_logging(rank=int(os.environ.get("RANK", 0)))
    return exit_on_rank_failure(lambda: run(args, backbones))


def exit_on_rank_failure(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; on a :class:`evaluation.sharded.RankFailure` print ``error: ...`` and end the process at once
    with status 1 (a process group whose peer died or hung cannot be torn down: gloo aborts, nccl hangs).
    A process group that ``fn`` joined is left otherwise (one the caller had joined stays)."""
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
