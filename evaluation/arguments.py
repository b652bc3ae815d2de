"""The command-line arguments of the evaluation entry points (``eval_synthesis_quality.py``, ``eval_diversity.py``,
``python -m metrics.compare``), in one place, and their checks."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Sequence

from data.registry import dataset_info, evaluated_datasets, protocol_datasets
from evaluation.backbones import I3D_KINDS, Backbones, min_frames
from evaluation.report import result_path
from metrics.protocol import COUNTING_PROTOCOLS, FITVID, FITVID_TRIALS, default_trials, length_problem
from stage2_cINN.arguments import add_model_arguments, canonical_dataset, data_root, finish_model_arguments, model_dir
from utils.atomic import check_writable_file, check_writable_folder
from utils.command import existing_file, existing_folder, non_negative_int, positive_float, positive_int, str2bool
from utils.errors import ArgumentError

logger = logging.getLogger(__name__)

DEFAULT_DIST_TIMEOUT = 1800.0


def add_scale_arguments(parser: argparse.ArgumentParser, default_protocol: str | None = "paper", trials: bool = True,
                        real_stats: bool = True, protocols: Sequence[str] = COUNTING_PROTOCOLS) -> None:
    """Protocol (one of ``protocols``), trials, weights folder, real-statistics cache, part files and the torchrun
    timeout (every evaluation entry point; each flag also in the other dash style). ``default_protocol`` None:
    ``paper`` for the paper's datasets, ``all`` for your own (:func:`check_common_args`)."""
    add = parser.add_argument
    fitvid = (f"; {FITVID}: the FVD protocol of later BAIR papers, the start frame + 15 generated frames, every "
              f"video, {FITVID_TRIALS} trials" if FITVID in protocols else "")
    default = default_protocol or "paper for the paper's datasets, all for -dataset folder"
    add("-protocol", "--protocol", choices=tuple(protocols), default=default_protocol,
        help=f"paper: count videos and frames as the original code did; all: every video and frame{fitvid} "
             f"(default: {default}; see README: Evaluation)")
    if trials:
        add("-n_trials", "--n_trials", type=positive_int, default=None,
            help="independent sets of samples; the result is their mean and standard deviation (default: 1"
                 + (f"; {FITVID_TRIALS} under -protocol {FITVID})" if FITVID in protocols else ")"))
    add("-weights_dir", "--weights_dir", type=existing_folder, default=None,
        help="folder of metric weights laid out like models/ (PI3D/model_rgb.pth, DTI3D/length16/I3D_16.pth.tar, "
             "... and the Inception / VGG16 files under their released names)")
    if real_stats:
        add("--save-real-stats", "-save_real_stats", dest="save_real_stats", default=None, metavar="F.npz",
            help="write the real videos' feature statistics (FVD/DTFVD/FID) to this file")
        add("--real-stats", "-real_stats", dest="real_stats", type=existing_file, default=None, metavar="F.npz",
            help="read the real videos' feature statistics from this file instead of computing them")
    add("-work_dir", "--work_dir", default=None,
        help="folder of the resumable per-chunk feature files (default: beside the result file)")
    add("-dist_timeout", "--dist_timeout", type=positive_float, default=DEFAULT_DIST_TIMEOUT,
        help="torchrun: seconds a rank waits for the others before it stops with an error")


def add_common_arguments(parser: argparse.ArgumentParser, seed: int, real_stats: bool = True,
                         protocols: Sequence[str] = COUNTING_PROTOCOLS) -> None:
    """Arguments shared by eval_synthesis_quality.py and eval_diversity.py (``real_stats``: the cache flags;
    ``protocols``: the choices of ``-protocol``)."""
    add_model_arguments(parser, "model folder with config_stage2.yaml and cINN.pth (default: models/<dataset>/stage2)",
                        " | ".join(evaluated_datasets()), seq_help="frames generated per video")
    parser.add_argument("-data_path", default=None, type=existing_folder,
                        help="root of the dataset (see README: Data preparation); default: the model config's "
                             "Data.data_path when that folder exists")
    parser.add_argument("-bs", type=positive_int, default=6, help="start frames per batch (and per resumable chunk)")
    parser.add_argument("-seed", type=int, default=seed, help="random seed (per-video seeds derive from it)")
    parser.add_argument("-n_videos", type=positive_int, default=None,
                        help="evaluate at most this many test clips (default: all)")
    parser.add_argument("-i3d", choices=I3D_KINDS, default="hassony2",
                        help="Kinetics I3D for FVD / I3D: hassony2 (models/PI3D/model_rgb.pth) or torchscript "
                             "(models/PI3D/i3d_torchscript.pt)")
    parser.add_argument("-workers", type=non_negative_int, default=4, help="data loading processes")
    parser.add_argument("-out", default=None, help="result JSON (default: beside the model)")
    add_scale_arguments(parser, default_protocol=None, real_stats=real_stats, protocols=protocols)


def add_metric_flags(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """``-<NAME> True|False`` per metric (default True); other values are an argparse error."""
    for name in names:
        parser.add_argument(f"-{name}", type=str2bool, default=True, metavar="True|False",
                            help=f"compute {name} (default: True)")


def check_scale_args(args: argparse.Namespace) -> None:
    """An :class:`ArgumentError` for scale arguments that cannot go together (the parser checks each value)."""
    if getattr(args, "real_stats", None) and getattr(args, "save_real_stats", None):
        raise ArgumentError("--real-stats reads the real statistics and --save-real-stats writes them: give one")


def check_outputs(args: argparse.Namespace, result: str | Path | None, what: str = "-out") -> None:
    """Every place an evaluation writes, checked before any work: the result file ``result`` (named ``what``),
    ``-work_dir`` and ``--save-real-stats`` (an :class:`~utils.errors.OutputPathError` each)."""
    if result is not None:
        check_writable_file(result, what)
    if getattr(args, "work_dir", None):
        check_writable_folder(args.work_dir, "-work_dir")
    if getattr(args, "save_real_stats", None):
        check_writable_file(args.save_real_stats, "--save-real-stats")


def _data_path(args: argparse.Namespace) -> str:
    """``-data_path``, else the model config's ``Data.data_path`` when that folder exists."""
    if args.data_path:
        return args.data_path
    folder = model_dir(args)
    root = data_root(folder)
    if root is None:
        raise ArgumentError(f"-data_path is required: the model's config ({folder}/config_stage2.yaml) names no "
                            "existing data folder (Data.data_path)")
    logger.info("-data_path %s (Data.data_path of %s/config_stage2.yaml)", root, folder)
    return str(root)


def check_common_args(args: argparse.Namespace, names: Sequence[str],
                      kind: str | None = None) -> tuple[str, list[str]]:
    """(canonical dataset, metrics of ``names`` switched on); an :class:`ArgumentError` for unusable arguments.
    Fills what was left out: ``-dataset`` (from ``-ckpt_path``'s config), ``-data_path`` (the config's
    ``Data.data_path``) and ``-protocol`` (``paper`` for the paper's datasets, ``all`` for your own). With ``kind``
    (``synthesis`` / ``diversity``) the result file (``-out`` or its default beside the model) and the other
    outputs are checked too (:func:`check_outputs`)."""
    finish_model_arguments(None, args)
    dataset = canonical_dataset(args.dataset)
    if dataset not in evaluated_datasets():
        raise ArgumentError(f"-dataset {dataset}: no evaluation protocol; choose one of "
                            f"{', '.join(evaluated_datasets())}")
    if args.protocol is None:
        args.protocol = "paper" if dataset in protocol_datasets() else "all"
    if args.protocol == "paper" and dataset not in protocol_datasets():
        raise ArgumentError(f"-protocol paper: the paper has no evaluation protocol for -dataset {dataset} (your own "
                            f"videos; it has one for {', '.join(protocol_datasets())}); use -protocol all (every test "
                            "clip and frame)")
    textures = dataset_info(dataset).textures
    if textures and not args.texture:
        raise ArgumentError(f"-dataset {dataset} needs -texture ({' | '.join(textures)})")
    args.data_path = _data_path(args)
    metrics = [m for m in names if getattr(args, m)]
    if not metrics:
        raise ArgumentError(f"nothing to evaluate: all of {', '.join('-' + m for m in names)} are False")
    check_scale_args(args)
    if getattr(args, "n_trials", 0) is None:
        args.n_trials = default_trials(args.protocol)
    if kind is not None:
        check_outputs(args, result_path(args, model_dir(args), kind, dataset),
                      "-out" if args.out else "the result file (default of -out, beside the model)")
    return dataset, metrics


def check_lengths(metrics: Sequence[str], length: int, what: str, backbones: Backbones | None = None) -> None:
    """An :class:`ArgumentError` naming ``what`` (e.g. '-seq_length 8') when a metric of ``metrics`` cannot compare
    videos of ``length`` frames: DTFVD/DTI3D more than 32; with ``backbones`` (loaded), fewer than a network takes."""
    problems = [p for m in metrics
                if (p := length_problem(m, length, min_frames(backbones, m) if backbones is not None else 1))]
    if problems:
        raise ArgumentError(f"{what}: {'; '.join(problems)}")
