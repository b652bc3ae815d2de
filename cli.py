"""Command-line helpers shared by every entry point: the error path, argument types, dataset defaults.

It sits above the packages (``utils``, ``data``, ``metrics``, ``stage1_VAE``, ``stage2_cINN``) and imports
them only inside functions, so that it loads without torch: arguments are checked, and ``--help`` answers,
before any heavy import. Every script ends with ``cli.run(main)``:

- the project's own errors (:class:`utils.errors.I2VError`: config, missing files, bad data, bad argument
  values) print one ``error: <message>`` and exit with status 2, without a traceback; any other exception
  keeps its traceback;
- argument values are checked by the parser (argparse prints ``error: argument -bs: ...``, status 2).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from utils.errors import ArgumentError, I2VError

REPO_ROOT = Path(__file__).resolve().parent
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# canonical dataset names (the -dataset flag is case-insensitive) and their asset / model folders
DATASETS = {"bair": "bair", "landscape": "landscape", "iper": "iPER", "dtdb": "DTDB", "demo": "demo"}
TEXTURES = ("fire", "clouds", "vegetation", "waterfall")


# ----------------------------------------------------------------------------- the error path

def error_message(exc: BaseException) -> str:
    """The message of a project error; an error re-raised from a DataLoader worker loses the worker's traceback."""
    text = str(exc).strip()
    if "Original Traceback" in text:  # torch.utils.data re-raises worker errors with the traceback as text
        text = text.splitlines()[-1].split(": ", 1)[-1]
    return text


def run(main: Callable[[list[str]], Any], argv: Sequence[str] | None = None) -> None:
    """Run an entry point's ``main(argv)`` with the project's error path (see the module docstring)."""
    from utils.logging import setup_logging

    setup_logging(rank=int(os.environ.get("RANK", 0)))
    try:
        main(list(sys.argv[1:] if argv is None else argv))
    except I2VError as exc:
        for handler in logging.getLogger().handlers:  # earlier log lines first
            handler.flush()
        print(f"error: {error_message(exc)}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def entry(module: str, function: str = "main") -> Callable[[], None]:
    """A console-script entry point (``pyproject.toml``) that runs ``module.function`` through :func:`run`."""

    def console_script() -> None:
        run(getattr(importlib.import_module(module), function))

    console_script.__doc__ = f"``{module}.{function}`` on the command line."
    return console_script


sample, transfer, endpoint = entry("generate_samples"), entry("generate_transfer"), entry("visualize_endpoint")
eval_synthesis, eval_diversity = entry("eval_synthesis_quality"), entry("eval_diversity")
compare, train_stage1 = entry("metrics.compare"), entry("stage1_VAE.main")
train_ae, train_cinn, app = entry("stage2_cINN.AE.main"), entry("stage2_cINN.main"), entry("app")


# ----------------------------------------------------------------------------- argument types

def _type(name: str, check: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from ``check``, whose ``ValueError`` message argparse prints after the flag's name."""

    def parse(text: str) -> Any:
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = name
    return parse


def int_at_least(low: int, what: str | None = None) -> Callable[[str], int]:
    """Integers ``>= low``."""
    what = what or {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low}")

    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise ValueError(f"expected {what}, got {text!r}")
        return value

    return _type(f"int>={low}", check)


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value > 0:
        raise ValueError(f"expected a positive number, got {text!r}")
    return value


positive_float = _type("positive_float", _positive_float)


def str2bool(v: str | bool) -> bool:
    """Parse 'True'/'False'/'1'/'0'/'yes'/'no' (the original treated any value as True)."""
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("true", "1", "yes", "y", "on"):
        return True
    if s in ("false", "0", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (True/False), got {v!r}")


boolean = str2bool


def _path(text: str) -> Path:
    return Path(text).expanduser()


def _existing(kind: str) -> Callable[[str], Path]:
    """An argparse type for an existing ``kind`` ('file' or 'folder'); the other kind is named as such."""
    right, other = (Path.is_file, "folder") if kind == "file" else (Path.is_dir, "file")

    def check(text: str) -> Path:
        path = _path(text)
        if not path.exists():
            raise ValueError(f"{kind} not found: {path.resolve()}")
        if not right(path):
            raise ValueError(f"{path.resolve()} is a {other}; expected a {kind}")
        return path

    return _type(f"existing_{kind}", check)


def _image_source(text: str) -> Path:
    path = _path(text)
    if path.is_file() and path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{path.resolve()} is not a {'/'.join(IMAGE_SUFFIXES)} image; expected an image or a "
                         "folder of images")
    if not path.exists():
        raise ValueError(f"not found: {path.resolve()}; expected an image or a folder of images")
    return path


existing_file, existing_folder = _existing("file"), _existing("folder")
image_source = _type("image_source", _image_source)


def canonical_dataset(name: str) -> str:
    """'BAIR' -> 'bair', 'iper' -> 'iPER', ...; unknown names are an error listing the known ones."""
    key = str(name).strip().lower()
    if key not in DATASETS:
        raise ArgumentError(f"unknown dataset '{name}'; choose one of {', '.join(DATASETS.values())}")
    return DATASETS[key]


def _known_dataset(text: str) -> str:
    try:
        return canonical_dataset(text)
    except ArgumentError:
        raise ValueError(f"unknown dataset {text!r}; expected one of {', '.join(DATASETS.values())} "
                         "(case-insensitive)") from None


def _known_texture(text: str) -> str:
    if text.strip().lower() not in TEXTURES:
        raise ValueError(f"unknown texture {text!r}; expected a DTDB texture: one of {', '.join(TEXTURES)}")
    return text.strip().lower()


def _gpu_spec(text: str) -> list[int]:
    """'0' -> [0]; '0,1' -> [0, 1]; '-1' -> [-1] (the CPU)."""
    try:
        ids = [int(g) for g in text.replace(" ", "").split(",") if g != ""]
    except ValueError:
        ids = []
    if not ids or (len(ids) > 1 and min(ids) < 0):
        raise ValueError(f"expected a GPU id, comma-separated ids (0,1) or -1 for the CPU, got {text!r}")
    return ids


known_dataset = _type("dataset", _known_dataset)
known_texture = _type("texture", _known_texture)
gpu_spec = _type("gpu", _gpu_spec)


def add_gpu_argument(parser: argparse.ArgumentParser) -> None:
    """The original's ``-gpu`` flag (optional here: absent means the first GPU if any, else the CPU)."""
    parser.add_argument(
        "-gpu", "--gpu", type=gpu_spec, default=None, metavar="ID[,ID...]",
        help="GPU id or comma-separated ids; -1 for the CPU; default: first GPU if any, else CPU. Without "
             "CUDA (or with fewer GPUs) the CPU is used, with a warning",
    )


PRECISIONS = ("fp32", "bf16", "fp16")


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    """The inference scripts' ``-precision fp32|bf16|fp16`` (:func:`stage2_cINN.pipeline.load_model`)."""
    parser.add_argument(
        "-precision", "--precision", choices=PRECISIONS, default="fp32",
        help="fp32 (default, exact) | bf16 (the stage-1 decoder in bfloat16: faster sampling on GPUs and on CPUs "
             "with AVX-512 BF16/AMX) | fp16 (CUDA only)")


def add_model_arguments(parser: argparse.ArgumentParser, datasets: str, ckpt_help: str, dataset_default: str | None = None,
                        seq_help: str = "frames per generated video") -> None:
    """``-dataset``, ``-gpu``, ``-precision``, ``-texture``, ``-ckpt_path`` and ``-seq_length``: the flags of
    every script that loads a stage-2 model folder."""
    parser.add_argument("-dataset", required=dataset_default is None, default=dataset_default, type=known_dataset,
                        help=f"{datasets} (case-insensitive)")
    add_gpu_argument(parser)
    add_precision_argument(parser)
    parser.add_argument("-texture", default=None, type=known_texture,
                        help="DTDB texture: fire | clouds | vegetation | waterfall")
    parser.add_argument("-ckpt_path", "-chkpt", default=None, type=existing_folder, help=ckpt_help)
    parser.add_argument("-seq_length", type=positive_int, default=16, help=seq_help)


def parser(description: str | None, prog: str | None = None) -> argparse.ArgumentParser:
    """An argument parser that shows ``description`` (a module docstring) as written."""
    return argparse.ArgumentParser(prog=prog, description=description,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


# ----------------------------------------------------------------------------- dataset defaults

def _texture_dir(dataset: str, texture: str | None) -> str:
    if not texture:
        raise ArgumentError(f"-dataset {dataset} needs -texture, one of {', '.join(TEXTURES)}")
    return texture


def default_model_dir(dataset: str, texture: str | None = None, control: bool = False) -> Path:
    """Where the released (or demo) stage-2 model folder of a dataset lives."""
    ds = canonical_dataset(dataset)
    if ds == "DTDB":
        return REPO_ROOT / "models" / "DTDB" / _texture_dir(ds, texture) / "stage2"
    return REPO_ROOT / "models" / ds / ("stage2_control" if control else "stage2")


def default_image_dir(dataset: str, texture: str | None = None) -> Path:
    """assets/GT_samples/<dataset>[/<texture>] (the demo uses its own start frames)."""
    ds = canonical_dataset(dataset)
    base = REPO_ROOT / "assets" / "GT_samples" / ds
    return base / _texture_dir(ds, texture) if ds == "DTDB" else base


def default_clip_dir(dataset: str, texture: str | None = None) -> Path:
    """assets/GT_samples/<dataset>[/<texture>]/transfer: the sample clips for motion transfer (the demo
    model uses landscape's)."""
    ds = canonical_dataset(dataset)
    return default_image_dir("landscape" if ds == "demo" else ds, texture) / "transfer"


def default_results_dir(dataset: str, texture: str | None = None, *sub: str) -> Path:
    """assets/results/<dataset>[_<texture>]/<sub...>: where the scripts write by default."""
    ds = canonical_dataset(dataset)
    return REPO_ROOT.joinpath("assets", "results", f"DTDB_{_texture_dir(ds, texture)}" if ds == "DTDB" else ds, *sub)


def load_pipeline(model_dir: Path, device: Any, precision: str = "fp32") -> Any:
    """:func:`stage2_cINN.pipeline.load_model`; a missing file is an error that says where to get the weights."""
    from stage2_cINN.loading import MissingFilesError
    from stage2_cINN.pipeline import load_model

    try:
        return load_model(model_dir, device, precision)
    except MissingFilesError as exc:
        raise MissingFilesError(
            f"{exc}\nDownload the released weights (see README: Pretrained models) or pass -ckpt_path.") from None


# ----------------------------------------------------------------------------- training entry points

def train_main(argv: Sequence[str] | None, schema: str, description: str, trainer: str) -> dict:
    """The three trainers' command line: ``-cf CONFIG -gpu IDS [Section.key=value ...]``; ``trainer`` is
    ``'module:Class'``. The config is read and type-checked before torch is imported."""
    p = parser(description)
    p.add_argument("-cf", "--config", required=True, type=existing_file, help="path to the YAML config")
    add_gpu_argument(p)
    p.add_argument("overrides", nargs="*", help="config overrides such as Training.bs=4 Data.data_path=/x")
    args = p.parse_args(argv)
    from utils.config import load_config
    from utils.run import check_ready, run_training

    config = check_ready(load_config(args.config, schema, args.overrides))  # placeholders, data path
    module, name = trainer.split(":")
    return run_training(config, args.gpu, schema, getattr(importlib.import_module(module), name))
