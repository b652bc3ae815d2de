"""The results of an evaluation: where they are written, what their JSON holds, and the printed table."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from data.registry import dataset_info
from metrics.scoring import mean_and_std
from utils.atomic import atomic_write_text

logger = logging.getLogger(__name__)

PER_VIDEO_SEEDS = "torch.Generator seeded from numpy SeedSequence([seed, trial, clip index])"


def default_result_path(model_dir: str | Path, kind: str, dataset: str, texture: str | None) -> Path:
    """``<model_dir>/eval_<kind>_<dataset>[_<texture>].json`` (the texture only for DTDB)."""
    name = f"eval_{kind}_{dataset}" + (f"_{texture}" if dataset_info(dataset).textures and texture else "")
    return Path(model_dir) / f"{name}.json"


def result_path(args: argparse.Namespace, model_dir: Path, kind: str, dataset: str) -> Path:
    """``-out`` or :func:`default_result_path`."""
    return Path(args.out) if args.out else default_result_path(model_dir, kind, dataset, args.texture)


def run_info(script: str, args: argparse.Namespace, dataset: str, model_dir: Path) -> dict[str, Any]:
    """The settings of an evaluation run, the head of its result file."""
    return {
        "script": script,
        "dataset": dataset,
        "texture": args.texture if dataset_info(dataset).textures else None,
        "ckpt_path": str(Path(model_dir).resolve()),
        "data_path": str(Path(args.data_path).resolve()),
        "seq_length": args.seq_length,
        "seed": args.seed,
        "protocol": args.protocol,
        "precision": getattr(args, "precision", "fp32"),
    }


def trial_results(trials: Sequence[dict[str, float]], seed: int) -> dict[str, Any]:
    """The result fields of K trials: ``metrics`` (means), ``std``, every trial's values and its seeds."""
    mean, std = mean_and_std(trials)
    return {"n_trials": len(trials), "metrics": mean, "std": std, "trials": [dict(t) for t in trials],
            "seeds": {"seed": seed, "per_video": PER_VIDEO_SEEDS, "trials": [[seed, k] for k in range(len(trials))]}}


def format_table(results: Mapping[str, float], title: str = "", std: Mapping[str, float] | None = None) -> str:
    """A two-column text table of metric values (``mean +- std`` when ``std`` is given)."""
    width = max([len(k) for k in results] + [len("metric")])
    lines = [title] if title else []
    lines += [f"{'metric':<{width}}  value", f"{'-' * width}  {'-' * 12}"]
    lines += [f"{k:<{width}}  {v:.6g}" + (f" +- {std[k]:.3g}" if std else "") for k, v in results.items()]
    return "\n".join(lines)


def write_json(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as indented JSON atomically (parent folders created)."""
    path = Path(path)
    atomic_write_text(json.dumps(payload, indent=2) + "\n", path)
    logger.debug("results written to %s", path)
    return path


def report(payload: dict[str, Any], path: Path, title: str) -> dict[str, Any]:
    """Write the result JSON and print the metric table (titled ``title`` + texture) and where it went."""
    write_json(path, payload)
    texture = f" {payload['texture']}" if payload.get("texture") else ""
    std = payload["std"] if payload.get("n_trials", 1) > 1 else None
    print(format_table(payload["metrics"], title.format(texture=texture), std))
    print(f"results written to {path}")
    return payload
