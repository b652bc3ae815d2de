"""Synthesis quality on the test split: FVD, DTFVD, FID, LPIPS.

``python eval_synthesis_quality.py -gpu 0 -dataset bair -data_path <path> -FVD True -LPIPS True -FID True -DTFVD True``
(DTDB: add ``-texture fire``; several GPUs: ``torchrun --nproc_per_node 4 eval_synthesis_quality.py -gpu 0,1,2,3 ...``).
Protocol (the original's eval_synthesis_quality.py): seed 249; test clips of ``seq_length + 1`` frames;
x0 = frame 0; ``seq_length`` frames
are generated from x0 with each clip's own seed; the real and generated frames that are compared per
dataset are those of :func:`metrics.protocol.protocol_slices`. FVD uses the Kinetics I3D (TF-Hub
protocol; ``-i3d hassony2|torchscript``), DTFVD the DTDB I3D, FID every frame, LPIPS every frame pair;
``-protocol paper`` (default) counts videos and frames as the original code did, ``-protocol all`` uses
them all, ``-protocol fitvid`` is the FVD protocol of later BAIR papers (the start frame + 15 generated frames,
every video, 100 trials; :mod:`metrics.protocol`). ``-n_trials K`` repeats the sampling K times (mean and std).
Every requested weights file is checked before the model is loaded. The results are printed and written
to ``<ckpt_path>/eval_synthesis_<dataset>[_<texture>].json`` (or ``-out``).
"""
from __future__ import annotations

import argparse
from typing import Any, Sequence

from evaluation.arguments import add_common_arguments, add_metric_flags
from evaluation.backbones import Backbones
from evaluation.runner import entry_point
from evaluation.synthesis import evaluate_synthesis
from metrics.protocol import PROTOCOLS
from metrics.scoring import SYNTHESIS_METRICS
from utils.command import parser, run


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__)
    add_common_arguments(p, seed=249, protocols=PROTOCOLS)
    add_metric_flags(p, SYNTHESIS_METRICS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None, backbones: Backbones | None = None) -> dict[str, Any] | None:
    """Evaluate (the result on rank 0, None on the other ranks); ``backbones`` may hold metric networks to use
    instead of loading them (tests)."""
    return entry_point(parse_args, evaluate_synthesis, argv, backbones)


if __name__ == "__main__":
    run(main)
