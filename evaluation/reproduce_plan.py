"""What ``reproduce_paper.py`` finds before it evaluates anything: per dataset of the paper (DTDB: per texture)
its data, its released model and the metric weights, and what is missing (the layouts of :mod:`data.registry` and
``models/README.md``):

- data: ``<data_root>/<dataset>`` for bair, landscape, iPER and DTDB (the folder name in any case, or an alias
  such as ``sky``), in the dataset's own layout (DTDB: ``<data_root>/DTDB/<texture>/eval``); its test split is
  read as the evaluation reads it and must give enough clips for the paper's protocol;
- models: ``<models>/<dataset>/stage2`` (DTDB: ``<models>/DTDB/<texture>/stage2``) with the stage-1 and AE
  folders its ``config_stage2.yaml`` names (:func:`stage2_cINN.loading.model_files`);
- metric weights: ``-weights_dir`` or the default locations (:mod:`metrics.weights`).
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

from data.dataset import get_dataset
from data.registry import dataset_info
from evaluation.backbones import Backbones, absent_weights
from evaluation.runner import evaluation_data_config
from metrics.protocol import ProtocolError, dtfvd_network_frames, used_count
from metrics.scoring import FRECHET_METRICS, METRIC_BACKBONES
from metrics.weights import WEIGHTS, default_weights_path
from stage1_VAE.config import STAGE1_SCHEMA
from stage2_cINN.config import CINN_SCHEMA, CONFIG_FILE
from stage2_cINN.loading import model_files
from utils.config import load_config
from utils.errors import I2VError

SEQ_LENGTH = 16  # frames generated per video in every table of the paper
SEED = 249  # the original evaluation scripts' seed


@dataclasses.dataclass
class Item:
    """One dataset (or DTDB texture) of the paper: where its data and model are, and what is missing."""

    dataset: str
    texture: str | None
    data_dir: Path | None
    model_dir: Path
    missing: list[str] = dataclasses.field(default_factory=list)
    clips: int = 0  # test clips to evaluate
    img_size: int | None = None

    @property
    def key(self) -> str:
        """``bair``, ``DTDB_fire``: the stem of its result files."""
        return f"{self.dataset}_{self.texture}" if self.texture else self.dataset

    @property
    def label(self) -> str:
        """``bair``, ``DTDB fire``: its name in messages and tables."""
        return f"{self.dataset} {self.texture}" if self.texture else self.dataset


# ----------------------------------------------------------------------------- what is present

def find_data_dir(root: Path, dataset: str) -> Path | None:
    """``root/<dataset>``, the name matched case-insensitively (or one of the dataset's aliases); None if absent."""
    info = dataset_info(dataset)
    names = [info.name.lower(), *info.aliases]
    folders = {p.name.lower(): p for p in sorted(Path(root).iterdir()) if p.is_dir()} if Path(root).is_dir() else {}
    return next((folders[n] for n in names if n in folders), None)


def plan_items(args: argparse.Namespace) -> list[Item]:
    """The datasets (DTDB: one per texture) of ``-datasets`` / ``-textures``, in the registry's order."""
    items = []
    for name in args.datasets:
        info = dataset_info(name)
        for texture in [t for t in info.textures if t in args.textures] if info.textures else [None]:
            model_dir = Path(args.models).joinpath(info.name, *([texture] if texture else []), "stage2")
            items.append(Item(info.name, texture, find_data_dir(Path(args.data_root), info.name), model_dir))
    return items


def _check_model(item: Item) -> Mapping[str, Any] | None:
    """The model's stage-2 config (None when it cannot be read); what is missing goes to ``item.missing``."""
    path = item.model_dir / CONFIG_FILE
    if not path.is_file():
        item.missing.append(f"model: {path} not found (a released model folder, see models/README.md)")
        return None
    try:
        config = load_config(path, CINN_SCHEMA)
    except I2VError as exc:
        item.missing.append(f"model: {exc}")
        return None
    try:
        files = model_files(config, item.model_dir)
    except I2VError as exc:  # e.g. a weights file whose checksum differs from its run's record: this model only
        item.missing.append(f"model: {exc}")
        return None
    item.missing += [f"model: {m} not found" for m in files.missing]
    if (config.get("Training") or {}).get("control"):
        item.missing.append(f"model: {item.model_dir} is an end-effector control model; the paper's tables are of "
                            "the unconditional one")
    if files.stage1_config.is_file():
        try:
            item.img_size = int(load_config(files.stage1_config, STAGE1_SCHEMA)["Data"]["img_size"])
        except I2VError as exc:
            item.missing.append(f"model: {exc}")
    return config


def _needed(metrics: Sequence[str], clips: int) -> list[str]:
    """Why ``clips`` test clips are too few for ``metrics`` under the paper's protocol (empty: enough)."""
    units = {"FID": clips * SEQ_LENGTH, "LPIPS": clips * SEQ_LENGTH}
    problems = []
    for m in metrics:
        if m in FRECHET_METRICS and clips < 2:
            problems.append(f"{m} needs at least 2 test clips, the test split gives {clips}")
            continue
        try:
            used_count(m, units.get(m, clips), "paper")
        except ProtocolError as exc:
            problems.append(str(exc).split(". Use -protocol all")[0])
    return problems


def _tree(tree: str, root: Path) -> str:
    """The first clause of a layout's tree (:class:`data.registry.Layout`) with ``<root>`` filled in."""
    return tree.split(";")[0].replace("<root>", str(root))


def _check_data(item: Item, config: Mapping[str, Any] | None, args: argparse.Namespace) -> None:
    """The test split of ``item``: readable, and with enough clips for the requested metrics."""
    layout = dataset_info(item.dataset).layout
    if item.data_dir is None:
        folder = Path(args.data_root).resolve() / item.dataset
        item.missing.append(f"data: no folder {folder} (layout: {_tree(layout.tree, folder)})")
        return
    split = item.data_dir / layout.split_folders["test"].format(texture=item.texture)
    if not split.is_dir():
        item.missing.append(f"data: no test split {split} (layout: {_tree(layout.tree, item.data_dir)})")
        return
    if config is None or item.img_size is None:
        return  # the model is missing: the split is not read
    data_config = evaluation_data_config(config, item.dataset, item.data_dir, item.texture, SEQ_LENGTH + 1,
                                         item.img_size)
    try:
        clips = len(get_dataset(data_config, "test", control=False))
    except I2VError as exc:
        item.missing.append(f"data: cannot read the test split: {exc}")
        return
    item.clips = clips if args.n_videos is None else min(clips, args.n_videos)
    item.missing += [f"data: {p}" for p in _needed(args.metrics, item.clips)]


def missing_weights(metrics: Sequence[str], i3d: str, weights_dir: str | Path | None,
                    provided: Backbones | None = None) -> list[str]:
    """The metric weights files that the requested metrics need and that are absent (with where to get them)
    (:func:`evaluation.backbones.absent_weights`)."""
    dt_frames = dtfvd_network_frames("paper", SEQ_LENGTH, SEQ_LENGTH)
    out = []
    for field, names in absent_weights(metrics, i3d, (dt_frames,), weights_dir, provided).items():
        users = ", ".join(m for m in metrics if METRIC_BACKBONES[m] == field)
        out.append(f"metric weights ({users}): {default_weights_path(names[0], weights_dir)} "
                   f"(from {WEIGHTS[names[0]].source})")
    return out


def check_items(args: argparse.Namespace, provided: Backbones | None) -> list[Item]:
    """Every item of :func:`plan_items` with what it lacks (model, data, metric weights) and its clip count."""
    weights = missing_weights(args.metrics, args.i3d, args.weights_dir, provided)
    items = plan_items(args)
    for item in items:
        config = _check_model(item)
        _check_data(item, config, args)
        item.missing += weights
    return items


def run_path(args: argparse.Namespace, item: Item, kind: str) -> Path:
    """``<out>/runs/<key>_<kind>.json``: the result file of one evaluation."""
    return Path(args.out) / "runs" / f"{item.key}_{kind}.json"


def plan_text(items: Sequence[Item]) -> str:
    """What will run and what is skipped (with what is missing), printed before any work."""
    ready = [i for i in items if not i.missing]
    lines = [f"reproduce_paper: {len(ready)} of {len(items)} dataset(s) will be evaluated"]
    lines += [f"  run   {i.label}: {i.clips} test clips, data {i.data_dir}, model {i.model_dir}" for i in ready]
    for item in items:
        if item.missing:
            lines.append(f"  skip  {item.label}: missing")
            lines += [f"          {m}" for m in item.missing]
    return "\n".join(lines)
