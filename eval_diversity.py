"""Diversity of the realisations sampled for each test start frame: VGG, I3D and DTI3D scores.

``python eval_diversity.py -gpu 0 -dataset bair -data_path <path> -n_realiz 5 -VGG True -I3D True -DTI3D True``
(DTDB: add ``-texture fire``; several GPUs: ``torchrun --nproc_per_node 4 eval_diversity.py -gpu 0,1,2,3 ...``).
For every test clip (seed 249) ``-n_realiz`` videos of ``seq_length`` frames are sampled from its start frame
with the clip's own seed; the scores of :mod:`metrics.diversity` compare the generated frames of different
realisations (the shared start frame is not part of them): VGG16 feature differences per frame,
Kinetics-I3D embedding differences (``-i3d hassony2|torchscript``) and DTDB-I3D embedding differences
x1000. ``-protocol paper`` (default) counts start frames and realisations as the original code did
(:mod:`metrics.protocol`), ``-protocol all`` uses them all. ``-n_trials K`` repeats the sampling K times.
Every requested weights file is checked before the model is loaded. The results are printed and written to
``<ckpt_path>/eval_diversity_<dataset>[_<texture>].json`` (or ``-out``).
"""
from __future__ import annotations

import argparse
from typing import Any, Sequence

from evaluation.arguments import add_common_arguments, add_metric_flags
from evaluation.backbones import Backbones
from evaluation.diversity import evaluate_diversity
from evaluation.runner import entry_point
from metrics.scoring import DIVERSITY_METRICS
from utils.command import int_at_least, parser, run


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__)
    add_common_arguments(p, seed=249, real_stats=False)
    p.add_argument("-n_realiz", type=int_at_least(2), default=5, help="realisations per start frame (at least 2)")
    add_metric_flags(p, DIVERSITY_METRICS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None, backbones: Backbones | None = None) -> dict[str, Any] | None:
    """Evaluate (the result on rank 0, None on the other ranks); ``backbones`` may hold metric networks to use
    instead of loading them (tests)."""
    return entry_point(parse_args, evaluate_diversity, argv, backbones)


if __name__ == "__main__":
    run(main)
