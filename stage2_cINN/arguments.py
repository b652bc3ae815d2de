"""The command-line flags of every script that loads a stage-2 model folder (sampling, transfer, endpoint, the
evaluation scripts, the app) and the folder they name. No torch here: arguments are checked, and ``--help``
answers, before torch is imported."""
from __future__ import annotations

import argparse
from pathlib import Path

from data.formats import IMAGE_SUFFIXES
from data.registry import all_textures, dataset_info, model_datasets
from utils.choices import PRECISIONS
from utils.command import add_gpu_argument, arg_type, existing_folder, positive_int
from utils.errors import ArgumentError


def canonical_dataset(name: str) -> str:
    """'BAIR' -> 'bair', 'iper' -> 'iPER', ...: a dataset ``-dataset`` accepts; else an error listing them."""
    try:
        info = dataset_info(name)
    except ValueError:
        info = None
    if info is None or not info.has_models:
        raise ArgumentError(f"unknown dataset '{name}'; choose one of {', '.join(model_datasets())}")
    return info.name


def _known_dataset(text: str) -> str:
    try:
        return canonical_dataset(text)
    except ArgumentError:
        raise ValueError(f"unknown dataset {text!r}; expected one of {', '.join(model_datasets())} "
                         "(case-insensitive)") from None


def _known_texture(text: str) -> str:
    if text.strip().lower() not in all_textures():
        raise ValueError(f"unknown texture {text!r}; expected a DTDB texture: one of {', '.join(all_textures())}")
    return text.strip().lower()


def _image_source(text: str) -> Path:
    path = Path(text).expanduser()
    if path.is_file() and path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{path.resolve()} is not a {'/'.join(IMAGE_SUFFIXES)} image; expected an image or a "
                         "folder of images")
    if not path.exists():
        raise ValueError(f"not found: {path.resolve()}; expected an image or a folder of images")
    return path


known_dataset = arg_type("dataset", _known_dataset)
known_texture = arg_type("texture", _known_texture)
image_source = arg_type("image_source", _image_source)


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    """``-precision fp32|bf16|fp16`` (:func:`stage2_cINN.pipeline.load_model`)."""
    parser.add_argument(
        "-precision", "--precision", choices=PRECISIONS, default="fp32",
        help="fp32 (default, exact) | bf16 (the stage-1 decoder in bfloat16: faster sampling on GPUs and on CPUs "
             "with AVX-512 BF16/AMX) | fp16 (CUDA only)")


def add_model_arguments(parser: argparse.ArgumentParser, ckpt_help: str, datasets: str | None = None,
                        dataset_default: str | None = None, seq_help: str = "frames per generated video") -> None:
    """``-dataset``, ``-gpu``, ``-precision``, ``-texture``, ``-ckpt_path`` and ``-seq_length``; ``datasets`` (the
    help text of ``-dataset``) defaults to every dataset with model folders."""
    parser.add_argument("-dataset", required=dataset_default is None, default=dataset_default, type=known_dataset,
                        help=f"{datasets or ' | '.join(model_datasets())} (case-insensitive)")
    add_gpu_argument(parser)
    add_precision_argument(parser)
    parser.add_argument("-texture", default=None, type=known_texture,
                        help=f"DTDB texture: {' | '.join(all_textures())}")
    parser.add_argument("-ckpt_path", "-chkpt", default=None, type=existing_folder, help=ckpt_help)
    parser.add_argument("-seq_length", type=positive_int, default=16, help=seq_help)


def model_dir(args: argparse.Namespace, control: bool = False) -> Path:
    """``-ckpt_path``, else the dataset's released (or bundled) model folder (``models/<dataset>/stage2``)."""
    if args.ckpt_path:
        return Path(args.ckpt_path)
    return dataset_info(args.dataset).model_dir(args.texture, control=control)
