"""A cache of the real videos' feature statistics: ``--save-real-stats F.npz`` writes them, ``--real-stats
F.npz`` reads them instead of extracting the real features again.

The file (numpy ``.npz``, no pickles) holds per Frechet metric ``<M>.mu`` (D,), ``<M>.sigma`` (D, D), both
float64, and ``<M>.count`` (how many videos or frames they summarise), plus ``meta``: JSON with
``identity`` (what must match the run that reads it: protocol, dataset or folder, frames, image size, and
per metric the feature network's name, its weights' SHA-256, the count and the clip length) and ``info``
(where it came from). A file whose identity differs from the current run is refused, naming each
difference.
"""
from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from evaluation.backbones import CALLER_WEIGHTS, Backbones
from metrics.frechet import RealStats
from metrics.scoring import METRIC_BACKBONES
from utils.atomic import atomic_write_with
from utils.errors import I2VError

logger = logging.getLogger(__name__)

FORMAT = 1


class RealStatsError(I2VError, ValueError):
    """A real-statistics file is missing, unreadable or does not match the current evaluation."""


def save_real_stats(path: str | Path, stats: Mapping[str, RealStats], identity: Mapping[str, Any],
                    info: Mapping[str, Any]) -> Path:
    """Write ``stats`` (per metric) with their ``identity`` and ``info`` to ``path`` atomically."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps({"format": FORMAT, "identity": identity,
                                                                  "info": info}, default=str))}
    for metric, s in stats.items():
        arrays[f"{metric}.mu"] = np.asarray(s.mu, np.float64)
        arrays[f"{metric}.sigma"] = np.asarray(s.sigma, np.float64)
        arrays[f"{metric}.count"] = np.asarray(int(s.count), np.int64)
    atomic_write_with(lambda f: np.savez(f, **arrays), path)
    logger.info("real statistics of %s written to %s", ", ".join(stats), path)
    return path


def _differences(cached: Mapping[str, Any], current: Mapping[str, Any], metrics: Sequence[str]) -> list[str]:
    out = []
    for key, value in current.items():
        if key == "metrics":
            continue
        if cached.get(key) != value:
            out.append(f"{key}: {cached.get(key)!r} in the file, {value!r} in this run")
    for metric in metrics:
        have = (cached.get("metrics") or {}).get(metric)
        if have is None:
            out.append(f"{metric}: the file holds no {metric} statistics (it has: "
                       f"{', '.join(cached.get('metrics') or {}) or 'none'})")
            continue
        for key, value in current["metrics"][metric].items():
            if have.get(key) != value:
                out.append(f"{metric} {key}: {have.get(key)!r} in the file, {value!r} in this run")
    return out


def load_real_stats(path: str | Path, identity: Mapping[str, Any]) -> dict[str, RealStats]:
    """The statistics of the metrics in ``identity['metrics']`` from ``path``; :class:`RealStatsError` when the
    file is missing or unreadable or its identity differs from ``identity`` (every difference is listed)."""
    path = Path(path)
    if not path.is_file():
        raise RealStatsError(f"--real-stats {path}: no such file (write one with --save-real-stats)")
    metrics = list(identity["metrics"])
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {k: data[k] for k in data.files if k != "meta"}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise RealStatsError(f"--real-stats {path}: not a real-statistics file ({exc})") from None
    if meta.get("format") != FORMAT:
        raise RealStatsError(f"--real-stats {path}: format {meta.get('format')!r}, expected {FORMAT}")
    problems = _differences(meta.get("identity") or {}, identity, metrics)
    if problems:
        raise RealStatsError(f"--real-stats {path} does not match this evaluation:\n  " + "\n  ".join(problems))
    return {m: RealStats(arrays[f"{m}.mu"], arrays[f"{m}.sigma"], int(arrays[f"{m}.count"])) for m in metrics}

def stats_identity(protocol: str, data: Mapping[str, Any], backbones: Backbones,
                   counts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What a real-statistics file must share with a run: protocol, ``data`` and per Frechet metric the
    network, weights SHA-256, count and clip length."""
    metrics = {}
    for m, c in counts.items():
        if "real" not in c:
            continue
        record = backbones.weights.get(METRIC_BACKBONES[m], CALLER_WEIGHTS)
        metrics[m] = {"network": record["network"], "sha256": record["sha256"], "count": c["real"],
                      "frames_per_video": c["frames_per_video"], "network_frames": c.get("network_frames")}
    return {"protocol": protocol, **data, "metrics": metrics}


def read_real_stats(path: str | Path | None, identity: Mapping[str, Any]) -> dict[str, RealStats] | None:
    """:func:`load_real_stats` (None without a path or without Frechet metrics)."""
    if not path or not identity["metrics"]:
        return None
    return load_real_stats(path, identity)


def write_real_stats(path: str | Path | None, stats: Mapping[str, RealStats], identity: Mapping[str, Any],
                     info: Mapping[str, Any]) -> str | None:
    """Save the real statistics when ``path`` is given; the path written, or None."""
    if not path or not stats:
        return None
    save_real_stats(path, stats, identity, info)
    return str(Path(path).resolve())
