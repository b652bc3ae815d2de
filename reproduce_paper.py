"""Reproduce the paper's tables in one command: ``python reproduce_paper.py -data_root DIR -models DIR -gpu 0``
(several GPUs: ``torchrun --nproc_per_node 4 reproduce_paper.py -gpu 0,1,2,3 ...``).

For every dataset of the paper (bair, landscape, iPER, DTDB per texture) whose data (``DIR/<dataset>`` in its
layout, see README: Data preparation), released model (``<models>/<dataset>[/<texture>]/stage2`` and the folders
its config names) and metric weights are present, it runs the synthesis-quality and diversity evaluations with the
paper's protocol (``-protocol paper``: seed 249, 16 generated frames, the original's counting) ``-n_trials``
times, and for BAIR FVD also under the protocol of later BAIR papers (``-protocol fitvid``: the start frame + 15
generated frames, every test video, ``-fitvid_trials`` trials). Datasets with something missing are listed as
skipped, with what is missing, before any work starts.

It prints one table per dataset, metric | protocol | paper | measured (mean +- std over trials, trial count) |
(measured - paper) / std, and writes ``reproduce_paper.md``, ``.json`` (with what the numbers depend on: the
networks and their weights' SHA-256, torch, device, precision, protocol, video and frame counts, seeds) and a
figure ``reproduce_paper.png`` to ``-out``; each evaluation's own result file goes to ``<out>/runs/``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from data.registry import dataset_info, protocol_datasets
from evaluation.paper_numbers import ALL_METRICS
from stage2_cINN.arguments import add_precision_argument
from utils.choices import I3D_KINDS
from utils.command import (
    add_gpu_argument,
    arg_type,
    existing_folder,
    int_at_least,
    non_negative_int,
    parser,
    positive_float,
    positive_int,
    run,
)
from utils.paths import ASSETS_DIR, MODELS_DIR

if TYPE_CHECKING:  # torch is imported once the arguments are checked
    from evaluation.backbones import Backbones

DEFAULT_OUT = ASSETS_DIR / "results" / "reproduce_paper"


def _dataset(text: str) -> str:
    try:
        name = dataset_info(text).name
    except ValueError:
        name = None
    if name not in protocol_datasets():
        raise ValueError(f"unknown dataset {text!r}; expected {', '.join(protocol_datasets())} (case-insensitive)")
    return name


def _texture(text: str) -> str:
    if text.strip().lower() not in dataset_info("DTDB").textures:
        raise ValueError(f"unknown texture {text!r}; expected {', '.join(dataset_info('DTDB').textures)}")
    return text.strip().lower()


def _metric(text: str) -> str:
    if text.strip().upper() not in ALL_METRICS:
        raise ValueError(f"unknown metric {text!r}; expected {', '.join(ALL_METRICS)}")
    return text.strip().upper()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__)
    add = p.add_argument
    add("-data_root", required=True, type=existing_folder,
        help="folder holding bair/, landscape/, iPER/ and DTDB/ (any of them; the names in any case)")
    add("-models", default=MODELS_DIR, type=existing_folder,
        help="folder laid out like models/: <dataset>/stage2 (DTDB/<texture>/stage2) with the stage-1 and AE "
             "folders the configs name (default: the repository's models/)")
    add_gpu_argument(p)
    add_precision_argument(p)
    add("-n_trials", type=positive_int, default=5,
        help="independent sets of samples per evaluation (the paper: one pass); the table gives mean +- std")
    add("-fitvid_trials", type=non_negative_int, default=100,
        help="trials of the BAIR FVD under -protocol fitvid (FitVid, MAGVIT, RaMViD: 100); 0: leave that line out")
    add("-datasets", nargs="+", type=arg_type("dataset", _dataset), default=list(protocol_datasets()),
        metavar="NAME", help=f"datasets to evaluate (default: all of {' '.join(protocol_datasets())})")
    add("-textures", nargs="+", type=arg_type("texture", _texture), default=list(dataset_info("DTDB").textures),
        metavar="TEXTURE", help="DTDB textures (default: all)")
    add("-metrics", nargs="+", type=arg_type("metric", _metric), default=list(ALL_METRICS), metavar="METRIC",
        help=f"metrics to measure (default: all of {' '.join(ALL_METRICS)})")
    add("-n_realiz", type=int_at_least(2), default=5, help="diversity: realisations per start frame")
    add("-n_videos", type=positive_int, default=None,
        help="evaluate at most this many test clips per dataset (quick looks; default: all, as the paper)")
    add("-i3d", choices=I3D_KINDS, default="hassony2",
        help="Kinetics I3D of FVD / I3D diversity: hassony2 (models/PI3D/model_rgb.pth) or torchscript (the "
             "TF-Hub weights, models/PI3D/i3d_torchscript.pt); they give different FVDs (README)")
    add("-weights_dir", type=existing_folder, default=None,
        help="folder of metric weights laid out like models/ (default: models/ and the torch hub cache)")
    add("-seed", type=int, default=249, help="random seed (per-video seeds derive from it)")
    add("-bs", type=positive_int, default=6, help="start frames per batch (and per resumable chunk)")
    add("-workers", type=non_negative_int, default=4, help="data loading processes")
    add("-out", type=Path, default=DEFAULT_OUT,
        help="output folder of reproduce_paper.{md,json,png} and runs/ (default: assets/results/reproduce_paper)")
    add("-dist_timeout", type=positive_float, default=1800.0,
        help="torchrun: seconds a rank waits for the others before it stops with an error")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.datasets = list(dict.fromkeys(n for n in protocol_datasets() if n in args.datasets))  # registry order
    args.metrics = [m for m in ALL_METRICS if m in args.metrics]
    return args


def main(argv: Sequence[str] | None = None, backbones: "Backbones | None" = None) -> dict[str, Any] | None:
    """Reproduce (the report on rank 0, None on the other ranks); ``backbones`` may hold metric networks to use
    instead of loading them (tests)."""
    args = parse_args(argv)
    # torch is imported once the arguments are checked
    from evaluation.reproduce import reproduce
    from evaluation.runner import entry_point

    return entry_point(lambda _: args, reproduce, argv, backbones)


if __name__ == "__main__":
    run(main)
