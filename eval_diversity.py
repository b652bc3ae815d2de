"""Diversity of the realisations sampled for each test start frame: VGG, I3D and DTI3D scores.

``python eval_diversity.py -gpu 0 -dataset bair -data_path <path> -n_realiz 5 -VGG True -I3D True -DTI3D True``
(DTDB: add ``-texture fire``). For every test clip (the clips of eval_synthesis_quality.py: ``seq_length + 1``
frames, seed 249) ``-n_realiz`` videos of ``seq_length`` frames are sampled from its start frame; the
scores of :mod:`metrics.diversity` compare the generated frames of different realisations (the shared
start frame is not part of them): VGG16 feature differences per frame, Kinetics-I3D embedding
differences (``-i3d hassony2|torchscript``) and DTDB-I3D embedding differences x1000 (16- or 32-frame
network matching ``seq_length``). Every requested weights file is checked before the model is loaded.
The results are printed and written to ``<ckpt_path>/eval_diversity_<dataset>[_<texture>].json`` (or ``-out``).
"""
from __future__ import annotations

import argparse
import logging
from typing import Any, Sequence

import torch

import cli
from metrics.evaluation import (
    DIVERSITY_METRICS, Backbones, DiversityMetrics, add_common_arguments, add_metric_flags, backbone_notes,
    check_common_args, check_dtfvd_length, prepare_run, report, run_info,
)
from utils.logging import setup_logging

logger = logging.getLogger("eval_diversity")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = cli.parser(__doc__)
    add_common_arguments(p, seed=249)
    p.add_argument("-n_realiz", type=cli.int_at_least(2), default=5, help="realisations per start frame (at least 2)")
    add_metric_flags(p, DIVERSITY_METRICS)
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> tuple[str, list[str]]:
    """(canonical dataset, requested scores); an error for unusable arguments."""
    dataset, metrics = check_common_args(args, DIVERSITY_METRICS)
    if "DTI3D" in metrics:
        check_dtfvd_length(args.seq_length)
    return dataset, metrics


@torch.no_grad()
def run(args: argparse.Namespace, backbones: Backbones | None = None) -> dict[str, Any]:
    """Evaluate; ``backbones`` may hold metric networks to use instead of loading them (tests)."""
    dataset, metrics = check_args(args)
    ev = prepare_run(args, dataset, metrics, args.seq_length, backbones)
    logger.info("diversity (%s) of %d realisations for each of %d test start frames of %s",
                ", ".join(metrics), args.n_realiz, ev.clips, dataset)
    scores = DiversityMetrics(ev.backbones, metrics, batch_size=args.bs)
    for seq in ev.batches(args.n_videos):
        x0 = seq[:, 0]
        scores.add(ev.pipe.sample_many(x0, args.n_realiz, args.seq_length).transpose(0, 1))  # (n_realiz, B, T, ...)
    results = scores.results()

    payload = run_info("eval_diversity", args, dataset, ev.model_dir)
    payload.update(n_realiz=args.n_realiz, n_videos=scores.n_examples,
                   backbones=backbone_notes(ev.backbones, metrics), metrics=results)
    return report(payload, args.out, "diversity",
                  f"diversity: {dataset}{{texture}}, {ev.clips} start frames x {args.n_realiz} realisations")


def main(argv: Sequence[str] | None = None, backbones: Backbones | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    setup_logging()
    return run(args, backbones)


if __name__ == "__main__":
    cli.run(main)
