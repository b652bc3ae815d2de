"""Synthesis quality on the test split: FVD, DTFVD, FID, LPIPS.

``python eval_synthesis_quality.py -gpu 0 -dataset bair -data_path <path> -FVD True -LPIPS True -FID True -DTFVD True``
(DTDB: add ``-texture fire``). Protocol (SPEC 6): seed 249; test clips of ``seq_length + 1`` frames;
x0 = frame 0; ``seq_length`` frames are generated from x0; the real and generated frames that are
compared per dataset are those of :func:`metrics.evaluation.protocol_slices`. FVD uses the Kinetics I3D
(TF-Hub protocol; ``-i3d hassony2|torchscript``), DTFVD the DTDB I3D of 16 or 32 frames matching the
evaluated length, FID all frames, LPIPS the mean over frames. Every requested weights file is checked
before the model is loaded. The results are printed and written to
``<ckpt_path>/eval_synthesis_<dataset>[_<texture>].json`` (or ``-out``).
"""
from __future__ import annotations

import argparse
import logging
from typing import Any, Sequence

import torch

import cli
from data import DataLayoutError
from metrics.evaluation import (
    FRECHET_METRICS, SYNTHESIS_METRICS, Backbones, SynthesisMetrics, add_common_arguments, add_metric_flags,
    backbone_notes, check_common_args, check_dtfvd_length, prepare_run, protocol_length, protocol_slices, report,
    run_info,
)
from utils.logging import setup_logging

logger = logging.getLogger("eval_synthesis_quality")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = cli.parser(__doc__)
    add_common_arguments(p, seed=249)
    add_metric_flags(p, SYNTHESIS_METRICS)
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> tuple[str, list[str]]:
    """(canonical dataset, requested metrics); an error for unusable arguments."""
    dataset, metrics = check_common_args(args, SYNTHESIS_METRICS)
    if "DTFVD" in metrics:
        check_dtfvd_length(protocol_length(dataset, args.seq_length))
    return dataset, metrics


@torch.no_grad()
def run(args: argparse.Namespace, backbones: Backbones | None = None) -> dict[str, Any]:
    """Evaluate; ``backbones`` may hold metric networks to use instead of loading them (tests)."""
    dataset, metrics = check_args(args)
    length = protocol_length(dataset, args.seq_length)
    ev = prepare_run(args, dataset, metrics, length, backbones)
    if ev.clips < 2 and any(m in FRECHET_METRICS for m in metrics):
        raise DataLayoutError(f"FVD/DTFVD/FID need at least 2 test clips; the test split of {args.data_path} gives "
                               f"{ev.clips}")
    logger.info("evaluating %s on %d test clips of %s (%d generated frames, %d compared per video)",
                ", ".join(metrics), ev.clips, dataset, args.seq_length, length)
    scores = SynthesisMetrics(ev.backbones, metrics, batch_size=args.bs)
    for seq in ev.batches(args.n_videos):
        fake = ev.pipe.sample(seq[:, 0], args.seq_length)
        scores.add_pairs(*protocol_slices(dataset, seq, fake))
    results = scores.results()

    payload = run_info("eval_synthesis_quality", args, dataset, ev.model_dir)
    payload.update(frames_per_video=length, n_videos=scores.counts["real"],
                   backbones=backbone_notes(ev.backbones, metrics), metrics=results)
    return report(payload, args.out, "synthesis", f"synthesis quality: {dataset}{{texture}}, {ev.clips} videos")


def main(argv: Sequence[str] | None = None, backbones: Backbones | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    setup_logging()
    return run(args, backbones)


if __name__ == "__main__":
    cli.run(main)
