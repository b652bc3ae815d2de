"""Diversity of a model's realisations (``eval_diversity.py``): VGG, I3D and DTI3D scores of ``-n_realiz`` videos
sampled from each test start frame, sharded over torchrun ranks with resumable part files
(:mod:`evaluation.sharded`)."""
from __future__ import annotations

import argparse
import logging
import os
from typing import Any, Callable, Iterator, Sequence

import torch

from evaluation.arguments import check_common_args, check_lengths
from evaluation.backbones import Backbones, backbone_notes, backbone_weights
from evaluation.report import report, result_path, run_info, trial_results
from evaluation.runner import EvalContext, chunk_batches, model_stamp, prepare_run, residuals, shard_plan
from evaluation.sharded import Chunk, remove_parts, run_chunks
from metrics.protocol import dtfvd_network_frames
from metrics.scoring import DIVERSITY_METRICS, DiversityFeatures, Records

logger = logging.getLogger(__name__)


def check_args(args: argparse.Namespace) -> tuple[str, list[str]]:
    """(canonical dataset, requested scores); an error for unusable arguments."""
    dataset, metrics = check_common_args(args, DIVERSITY_METRICS, "diversity")
    checked = metrics if args.protocol == "all" else [m for m in metrics if m != "DTI3D"]  # paper: DTI3D cuts to 32
    check_lengths(checked, args.seq_length, f"-seq_length {args.seq_length}")
    return dataset, metrics


def chunk_features(ev: EvalContext, args: argparse.Namespace,
                   feats: DiversityFeatures) -> Callable[[Sequence[Chunk]], Iterator[Records]]:
    """The records of chunks of start frames: per trial, ``-n_realiz`` realisations of each."""
    def compute(chunks: Sequence[Chunk]) -> Iterator[Records]:
        for (_, idx), seq in zip(chunks, chunk_batches(ev.dataset, chunks, args.workers, ev.device)):
            trials = []
            for trial in range(args.n_trials):
                noise = residuals(args.seed, trial, idx, (args.n_realiz, ev.pipe.z_dim))
                videos = ev.pipe.sample_many(seq[:, 0], args.n_realiz, args.seq_length, residual=noise)
                trials.append(videos.transpose(0, 1))  # (n_realiz, B, T, 3, H, W)
            yield feats.chunk_records(idx, trials)
    return compute


@torch.no_grad()
def evaluate_diversity(args: argparse.Namespace, backbones: Backbones | None = None) -> dict[str, Any] | None:
    """Evaluate (on rank 0 the result payload, None on other ranks); ``backbones`` may hold metric networks
    to use instead of loading them (tests)."""
    dataset, metrics = check_args(args)
    dt_frames = dtfvd_network_frames(args.protocol, args.seq_length, args.seq_length)
    # only the start frame is used: the original loaded clips of seq_length frames here, the synthesis script
    # seq_length + 1; "all" uses the synthesis script's clips, so both scripts see the same start frames
    clip_frames = args.seq_length if args.protocol == "paper" else args.seq_length + 1
    ev = prepare_run(args, dataset, metrics, clip_frames, dt_frames, backbones, compared_frames=args.seq_length)
    feats = DiversityFeatures(ev.backbones, metrics, args.protocol, args.n_realiz, dt_frames, batch_size=args.bs)
    feats.used_counts(ev.clips)  # a ProtocolError before any generation
    out = result_path(args, ev.model_dir, "diversity", dataset)
    fingerprint = {"script": "eval_diversity", "dataset": dataset, "texture": args.texture, "protocol": args.protocol,
                   "data_path": str(os.path.abspath(args.data_path)), "n_clips": ev.clips, "clip_frames": clip_frames,
                   "seq_length": args.seq_length, "model": str(ev.model_dir.resolve()),
                   "model_files": model_stamp(ev.model_dir), "seed": args.seed, "n_trials": args.n_trials,
                   "n_realiz": args.n_realiz, "requested": metrics, "weights": backbone_weights(ev.backbones, metrics),
                   "dtfvd_frames": dt_frames}
    plan = shard_plan(args, ev.info, ev.clips, out, fingerprint)
    logger.info("diversity (%s) of %d realisations for each of %d test start frames of %s (%d trial(s), protocol %s, "
                "%d rank(s))", ", ".join(metrics), args.n_realiz, ev.clips, dataset, args.n_trials, args.protocol,
                ev.info.world_size)
    records = run_chunks(plan, chunk_features(ev, args, feats), "sampling")
    if records is None:
        return None
    trials, counts = feats.score(records, ev.clips)
    payload = run_info("eval_diversity", args, dataset, ev.model_dir)
    payload.update(n_realiz=args.n_realiz, n_videos=ev.clips, world_size=ev.info.world_size, counts=counts,
                   backbones=backbone_notes(ev.backbones, metrics), weights=backbone_weights(ev.backbones, metrics),
                   **trial_results(trials, args.seed))
    report(payload, out, f"diversity: {dataset}{{texture}}, {ev.clips} start frames x {args.n_realiz} realisations, "
                         f"protocol {args.protocol}")
    remove_parts(plan.work_dir)
    return payload
