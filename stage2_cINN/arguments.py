"""The command-line flags of every script that loads a stage-2 model folder (sampling, transfer, endpoint, the
evaluation scripts, the app) and the folder they name. No torch here: arguments are checked, and ``--help``
answers, before torch is imported.

``-dataset`` may be left out when ``-ckpt_path`` names a model folder: its ``config_stage2.yaml`` says which
dataset (``Data.dataset``, ``Data.texture``) the model was trained on (:func:`finish_model_arguments`).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from data.formats import IMAGE_SUFFIXES, VIDEO_SUFFIXES, is_image, is_video_file, suffix_list
from data.registry import DATASETS, all_textures, dataset_info, model_datasets
from stage2_cINN.config import CONFIG_FILE
from utils.choices import PRECISIONS
from utils.command import add_gpu_argument, arg_type, existing_folder, positive_int
from utils.config import yaml_load
from utils.errors import ArgumentError
from utils.paths import REPO_ROOT

logger = logging.getLogger(__name__)

DEMO_DIR = dataset_info("demo").model_dir().parent  # models/demo: the bundled model, trained on 'folder' data


def canonical_dataset(name: str) -> str:
    """'BAIR' -> 'bair', 'iper' -> 'iPER', ...: a dataset ``-dataset`` accepts; else an error listing them."""
    try:
        return dataset_info(name).name
    except ValueError:
        raise ArgumentError(f"unknown dataset '{name}'; choose one of {', '.join(DATASETS)}") from None


def _known_dataset(text: str) -> str:
    try:
        return canonical_dataset(text)
    except ArgumentError:
        raise ValueError(f"unknown dataset {text!r}; expected one of {', '.join(DATASETS)} "
                         "(case-insensitive)") from None


def _known_texture(text: str) -> str:
    if text.strip().lower() not in all_textures():
        raise ValueError(f"unknown texture {text!r}; expected a DTDB texture: one of {', '.join(all_textures())}")
    return text.strip().lower()


def _image_source(text: str) -> Path:
    path = Path(text).expanduser()
    if path.is_file() and not (is_image(path) or is_video_file(path)):
        raise ValueError(f"{path.resolve()} is not a {suffix_list(IMAGE_SUFFIXES)} image or a "
                         f"{suffix_list(VIDEO_SUFFIXES)} video; expected an image, a video (its first frame) or a "
                         "folder of them")
    if not path.exists():
        raise ValueError(f"not found: {path.resolve()}; expected an image, a video or a folder of them")
    return path


def _video_source(text: str) -> Path:
    path = Path(text).expanduser()
    if path.is_file() and not is_video_file(path):
        raise ValueError(f"{path.resolve()} is not a {suffix_list(VIDEO_SUFFIXES)} video; expected a video file or a "
                         "folder of videos")
    if not path.exists():
        raise ValueError(f"folder not found: {path.resolve()} (expected a folder of videos or a video file)")
    return path


known_dataset = arg_type("dataset", _known_dataset)
known_texture = arg_type("texture", _known_texture)
image_source = arg_type("image_source", _image_source)
video_source = arg_type("video_source", _video_source)


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
    parser.add_argument("-dataset", default=dataset_default, type=known_dataset,
                        help=f"{datasets or ' | '.join(model_datasets())} (case-insensitive); optional with "
                             "-ckpt_path (the model's config_stage2.yaml names its dataset)")
    add_gpu_argument(parser)
    add_precision_argument(parser)
    parser.add_argument("-texture", default=None, type=known_texture,
                        help=f"DTDB texture: {' | '.join(all_textures())}")
    parser.add_argument("-ckpt_path", "-chkpt", default=None, type=existing_folder, help=ckpt_help)
    parser.add_argument("-seq_length", type=positive_int, default=16, help=seq_help)


def model_data(folder: str | Path) -> dict[str, Any]:
    """The ``Data`` section of a model folder's ``config_stage2.yaml`` ({} when there is none or it is unreadable:
    loading the model reports that)."""
    try:
        config = yaml_load((Path(folder) / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return {}
    data = config.get("Data") if isinstance(config, dict) else None
    return data if isinstance(data, dict) else {}


def is_demo_model(folder: str | Path) -> bool:
    """Whether ``folder`` is (inside) the bundled demo model's folder ``models/demo``."""
    return Path(folder).resolve().is_relative_to(DEMO_DIR.resolve())


def dataset_of_model(folder: str | Path) -> tuple[str | None, str | None]:
    """(dataset, texture) a model folder was trained on: ``demo`` for the bundled demo, else its config's
    ``Data.dataset`` and ``Data.texture`` (None, None when the config names no known dataset)."""
    if is_demo_model(folder):
        return "demo", None
    data = model_data(folder)
    try:
        info = dataset_info(str(data.get("dataset", "")))
    except ValueError:
        return None, None
    texture = data.get("texture") if info.textures else None
    return info.name, str(texture).lower() if texture else None


def finish_model_arguments(parser: argparse.ArgumentParser | None, args: argparse.Namespace) -> argparse.Namespace:
    """Fill ``-dataset`` (and ``-texture``) from ``-ckpt_path``'s config when left out; a usage error (an
    :class:`ArgumentError` without ``parser``) when neither is given or the config names no dataset."""
    def fail(message: str) -> None:
        if parser is not None:
            parser.error(message)
        raise ArgumentError(message)

    if args.dataset is not None:
        return args
    if not args.ckpt_path:
        fail(f"-dataset is required without -ckpt_path: one of {', '.join(model_datasets())}, or give "
             "-ckpt_path <model folder> (its config_stage2.yaml names the dataset)")
    dataset, texture = dataset_of_model(args.ckpt_path)
    if dataset is None:
        fail(f"-ckpt_path {args.ckpt_path}: {CONFIG_FILE} there names no known dataset (Data.dataset); "
             f"give -dataset ({', '.join(DATASETS)})")
    args.dataset = dataset
    if args.texture is None and texture:
        args.texture = texture
    logger.info("-dataset %s%s from %s", dataset, f" -texture {texture}" if texture else "",
                Path(args.ckpt_path) / CONFIG_FILE)
    return args


def model_dir(args: argparse.Namespace, control: bool = False) -> Path:
    """``-ckpt_path``, else the dataset's released (or bundled) model folder (``models/<dataset>/stage2``)."""
    if args.ckpt_path:
        return Path(args.ckpt_path)
    info = dataset_info(args.dataset)
    if not info.has_models:
        raise ArgumentError(f"-dataset {info.name} has no released or bundled model: give -ckpt_path <your model "
                            "folder> (with config_stage2.yaml and cINN.pth)")
    return info.model_dir(args.texture, control=control)


def data_root(folder: str | Path) -> Path | None:
    """The data folder (``Data.data_path``) a model folder's config names, if it exists: as written (relative to
    the working folder), else relative to the repository (where the training commands run)."""
    path = model_data(folder).get("data_path")
    if not path:
        return None
    candidates = [Path(str(path)).expanduser()]
    if not candidates[0].is_absolute():
        candidates.append(REPO_ROOT / candidates[0])
    return next((c for c in candidates if c.is_dir()), None)
