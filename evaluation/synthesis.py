"""Synthesis quality of a model on a test split (``eval_synthesis_quality.py``): FVD, DTFVD, FID and LPIPS of the
videos generated from each test clip's start frame against the real clips, under a counting protocol
(:mod:`metrics.protocol`), sharded over torchrun ranks with resumable part files (:mod:`evaluation.sharded`)."""
from __future__ import annotations

import argparse
import logging
import os
from typing import Any, Callable, Iterator, Sequence

import torch

from data.dataset import DataLayoutError
from data.registry import dataset_info
from evaluation.arguments import check_common_args, check_lengths
from evaluation.backbones import Backbones, backbone_notes, backbone_weights
from evaluation.real_stats import read_real_stats, stats_identity, write_real_stats
from evaluation.report import report, result_path, run_info, trial_results
from evaluation.runner import EvalContext, chunk_batches, model_stamp, prepare_run, residuals, shard_plan
from evaluation.sharded import Chunk, remove_parts, run_chunks
from metrics.protocol import check_fitvid_length, dtfvd_network_frames, protocol_length, protocol_slices
from metrics.scoring import SYNTHESIS_METRICS, Records, SynthesisFeatures

logger = logging.getLogger(__name__)


def check_args(args: argparse.Namespace) -> tuple[str, list[str]]:
    """(canonical dataset, requested metrics); an error for unusable arguments."""
    dataset, metrics = check_common_args(args, SYNTHESIS_METRICS, "synthesis")
    check_fitvid_length(args.protocol, args.seq_length)
    length = protocol_length(dataset, args.seq_length, args.protocol)
    checked = metrics if args.protocol != "paper" else [m for m in metrics if m != "DTFVD"]  # paper: DTFVD cuts to 32
    check_lengths(checked, length, f"-seq_length {args.seq_length} ({length} frames per compared video)")
    return dataset, metrics


def chunk_features(ev: EvalContext, args: argparse.Namespace, dataset: str, feats: SynthesisFeatures,
                   real_features: bool) -> Callable[[Sequence[Chunk]], Iterator[Records]]:
    """The records of chunks of test clips: real features and, per trial, generated videos' features."""
    def compute(chunks: Sequence[Chunk]) -> Iterator[Records]:
        for (_, idx), seq in zip(chunks, chunk_batches(ev.dataset, chunks, args.workers, ev.device)):
            real, fakes = None, []
            for trial in range(args.n_trials):
                noise = residuals(args.seed, trial, idx, (ev.pipe.z_dim,))
                fake = ev.pipe.sample(seq[:, 0], args.seq_length, residual=noise)
                real, fake = protocol_slices(dataset, seq, fake, args.protocol)
                fakes.append(fake)
            yield feats.chunk_records(idx, real, fakes, real_features)
    return compute


@torch.no_grad()
def evaluate_synthesis(args: argparse.Namespace, backbones: Backbones | None = None) -> dict[str, Any] | None:
    """Evaluate (on rank 0 the result payload, None on other ranks); ``backbones`` may hold metric networks
    to use instead of loading them (tests)."""
    dataset, metrics = check_args(args)
    length = protocol_length(dataset, args.seq_length, args.protocol)
    dt_frames = dtfvd_network_frames(args.protocol, args.seq_length, length)
    ev = prepare_run(args, dataset, metrics, args.seq_length + 1, dt_frames, backbones, compared_frames=length)
    feats = SynthesisFeatures(ev.backbones, metrics, args.protocol, dt_frames, batch_size=args.bs)
    if ev.clips < 2 and feats.frechet:
        raise DataLayoutError(f"FVD/DTFVD/FID need at least 2 test clips; the test split of {args.data_path} gives "
                              f"{ev.clips}")
    counts = feats.used_counts(ev.clips, ev.clips, length)  # a ProtocolError before any generation
    data = {"dataset": dataset, "texture": args.texture if dataset_info(dataset).textures else None, "split": "test",
            "n_clips": ev.clips, "seq_length": args.seq_length, "img_size": int(ev.pipe.img_size)}
    identity = stats_identity(args.protocol, data, ev.backbones, counts)
    cached = read_real_stats(args.real_stats, identity)
    out = result_path(args, ev.model_dir, "synthesis", dataset)
    fingerprint = {"script": "eval_synthesis_quality", **identity, "data_path": str(os.path.abspath(args.data_path)),
                   "model": str(ev.model_dir.resolve()), "model_files": model_stamp(ev.model_dir), "seed": args.seed,
                   "n_trials": args.n_trials, "requested": metrics, "real_features": cached is None,
                   "weights": backbone_weights(ev.backbones, metrics)}
    plan = shard_plan(args, ev.info, ev.clips, out, fingerprint)
    logger.info("evaluating %s on %d test clips of %s (%d generated frames, %d compared per video, %d trial(s), "
                "protocol %s, %d rank(s))", ", ".join(metrics), ev.clips, dataset, args.seq_length, length,
                args.n_trials, args.protocol, ev.info.world_size)
    records = run_chunks(plan, chunk_features(ev, args, dataset, feats, cached is None), "evaluating")
    if records is None:
        return None
    trials, counts, stats = feats.score(records, ev.clips, ev.clips, length, cached)
    written = write_real_stats(args.save_real_stats, stats, identity, {"script": "eval_synthesis_quality",
                                                                        "data_path": fingerprint["data_path"]})
    payload = run_info("eval_synthesis_quality", args, dataset, ev.model_dir)
    payload.update(frames_per_video=length, n_videos=ev.clips, world_size=ev.info.world_size, counts=counts,
                   backbones=backbone_notes(ev.backbones, metrics), weights=backbone_weights(ev.backbones, metrics),
                   real_stats={"read": str(args.real_stats) if args.real_stats else None, "written": written},
                   **trial_results(trials, args.seed))
    report(payload, out, f"synthesis quality: {dataset}{{texture}}, {ev.clips} videos, protocol {args.protocol}")
    remove_parts(plan.work_dir)
    return payload
