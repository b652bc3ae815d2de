"""``reproduce_paper.py``: the paper's evaluations of every dataset whose data, released model and metric weights
are present (:mod:`evaluation.reproduce_plan`), with the paper's protocol, and their numbers beside the paper's
(:mod:`evaluation.paper_numbers`, :mod:`evaluation.reproduce_report`).

Every dataset (and DTDB texture) is checked first; those with something missing are listed as skipped, with
what is missing, before any evaluation starts. Each of the others gets the synthesis-quality run
(:func:`evaluation.synthesis.evaluate_synthesis`, ``-protocol paper``, ``-n_trials`` trials), for BAIR a second
FVD run under ``-protocol fitvid`` (``-fitvid_trials`` trials) and the diversity run
(:func:`evaluation.diversity.evaluate_diversity`, ``-protocol paper``), each through the evaluation scripts'
own argument parsing. Their result files go to ``<out>/runs/<dataset>[_<texture>]_<synthesis|fitvid|diversity>
.json`` (an interrupted run resumes from the part files beside them), the report to ``<out>``. Under torchrun
every rank takes part in each evaluation and rank 0 writes the report.
"""
from __future__ import annotations

import argparse
import logging
from typing import Any, Sequence

from evaluation.arguments import add_common_arguments, add_metric_flags
from evaluation.backbones import Backbones, load_backbones_or_exit
from evaluation.diversity import evaluate_diversity
from evaluation.paper_numbers import DIVERSITY, SYNTHESIS
from evaluation.reproduce_plan import SEED, SEQ_LENGTH, Item, check_items, plan_text, run_path
from evaluation.reproduce_report import write_report
from evaluation.runner import start_distributed
from evaluation.synthesis import evaluate_synthesis
from metrics.protocol import COUNTING_PROTOCOLS, FITVID, FITVID_VIDEOS, PROTOCOLS, dtfvd_network_frames
from metrics.scoring import DIVERSITY_METRICS, SYNTHESIS_METRICS
from utils.command import int_at_least
from utils.errors import I2VError, MissingFileError

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- the evaluations

def _eval_parser(kind: str) -> argparse.ArgumentParser:
    """The parser of ``eval_synthesis_quality.py`` (``kind`` synthesis) or ``eval_diversity.py`` (diversity)."""
    p = argparse.ArgumentParser(prog=f"reproduce_paper ({kind})")
    diversity = kind == "diversity"
    add_common_arguments(p, seed=SEED, real_stats=not diversity, protocols=COUNTING_PROTOCOLS if diversity
                         else PROTOCOLS)
    if diversity:
        p.add_argument("-n_realiz", type=int_at_least(2), default=5)
    add_metric_flags(p, DIVERSITY_METRICS if diversity else SYNTHESIS_METRICS)
    return p


def eval_argv(item: Item, args: argparse.Namespace, kind: str, metrics: Sequence[str], protocol: str,
              trials: int) -> list[str]:
    """The command line of one evaluation of ``item`` (``kind``: synthesis, fitvid or diversity)."""
    names = DIVERSITY_METRICS if kind == "diversity" else SYNTHESIS_METRICS
    argv = ["-dataset", item.dataset, "-data_path", str(item.data_dir), "-ckpt_path", str(item.model_dir),
            "-seq_length", str(SEQ_LENGTH), "-protocol", protocol, "-n_trials", str(trials), "-seed", str(args.seed),
            "-bs", str(args.bs), "-workers", str(args.workers), "-i3d", args.i3d, "-precision", args.precision,
            "-dist_timeout", str(args.dist_timeout), "-out", str(run_path(args, item, kind))]
    argv += ["-gpu", ",".join(str(g) for g in args.gpu)] if args.gpu is not None else []
    argv += ["-texture", item.texture] if item.texture else []
    argv += ["-n_videos", str(args.n_videos)] if args.n_videos is not None else []
    argv += ["-weights_dir", str(args.weights_dir)] if args.weights_dir is not None else []
    argv += ["-n_realiz", str(args.n_realiz)] if kind == "diversity" else []
    for m in names:
        argv += [f"-{m}", str(m in metrics)]
    return argv


def evaluations(item: Item, args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """``(kind, argv)`` of the evaluations of ``item``: synthesis (paper), BAIR's FVD under fitvid, diversity."""
    synthesis = [m for m in args.metrics if m in SYNTHESIS]
    diversity = [m for m in args.metrics if m in DIVERSITY]
    out = []
    if synthesis:
        out.append(("synthesis", eval_argv(item, args, "synthesis", synthesis, "paper", args.n_trials)))
    if item.dataset == "bair" and "FVD" in synthesis and args.fitvid_trials:
        if item.clips != FITVID_VIDEOS:
            logger.warning("reproduce_paper: BAIR's fitvid FVD on %d test videos; the protocol has %d", item.clips,
                           FITVID_VIDEOS)
        out.append(("fitvid", eval_argv(item, args, "fitvid", ["FVD"], FITVID, args.fitvid_trials)))
    if diversity:
        out.append(("diversity", eval_argv(item, args, "diversity", diversity, "paper", args.n_trials)))
    return out


def run_item(item: Item, args: argparse.Namespace, backbones: Backbones) -> dict[str, dict[str, Any] | None]:
    """The result payloads (rank 0; None elsewhere) of the evaluations of ``item`` that finished, by kind; one that
    fails (e.g. an unreadable clip) is logged and noted in ``item.missing``, the others still run."""
    runs = {}
    for kind, argv in evaluations(item, args):
        logger.info("reproduce_paper: %s, %s", item.label, kind)
        eval_args = _eval_parser("diversity" if kind == "diversity" else "synthesis").parse_args(argv)
        evaluate = evaluate_diversity if kind == "diversity" else evaluate_synthesis
        try:
            runs[kind] = evaluate(eval_args, backbones)
        except I2VError as exc:
            logger.error("reproduce_paper: %s, %s failed: %s", item.label, kind, exc)
            item.missing.append(f"failed ({kind}): {exc}")
    return runs


def reproduce(args: argparse.Namespace, backbones: Backbones | None = None) -> dict[str, Any] | None:
    """Check every dataset, list what is skipped, evaluate the others and write the report (rank 0: the report
    as a dict; other ranks: None). ``backbones`` may hold metric networks to use instead of loading them (tests)."""
    items = check_items(args, backbones)
    device, info = start_distributed(args)
    if info.is_main:
        print(plan_text(items), flush=True)
    ready = [i for i in items if not i.missing]
    if not ready:
        raise MissingFileError("nothing to reproduce: every dataset lacks its data, model or metric weights (listed "
                               "above); see README: Reproducing the paper")
    dt_frames = dtfvd_network_frames("paper", SEQ_LENGTH, SEQ_LENGTH)
    backbones = load_backbones_or_exit(args.metrics, device, i3d=args.i3d, dtfvd_frames=dt_frames,
                                       provided=backbones, weights_dir=args.weights_dir)
    results = []
    for item in ready:  # a failed evaluation costs only its own rows: the others keep their tables
        runs = run_item(item, args, backbones)
        if runs:
            results.append((item, runs))
    if not results:
        raise I2VError("every evaluation failed (the errors are above)")
    if not info.is_main:
        return None
    return write_report(args, results, [i for i in items if i.missing], device, info.world_size)
