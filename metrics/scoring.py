"""Per-video features of the evaluation metrics, and the scores computed from all of them.

:class:`SynthesisFeatures`: per video its FVD / DTFVD embedding, the FID features of each frame and the
LPIPS of each frame pair; :meth:`SynthesisFeatures.score` turns the records of every video into FVD, DTFVD,
FID and LPIPS per trial under a counting protocol (:mod:`metrics.protocol`).
:class:`DiversityFeatures`: per start frame and trial the VGG per-layer diversity and the I3D / DTI3D
embeddings of every realisation; :meth:`DiversityFeatures.score` gives the three scores per trial.

Records (:data:`Records`, gathered by :mod:`evaluation.sharded`) are ``{key: (indices, values)}``; real-side keys
``<M>.real`` hold
``(n, ...)``, generated-side keys ``<M>.fake`` and ``LPIPS`` ``(n, n_trials, ...)``. Features are kept
in float32 (what the networks output) and every statistic is computed in float64.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from metrics.diversity import DTI3D_SCALE, VGG_LAYERS, diversity_from_embeddings, vgg_layer_diversity
from metrics.frechet import RealStats, frechet_distance_to_features, statistics
from metrics.lpips_metric import lpips_per_frame
from metrics.protocol import dtfvd_clip, realisations_used, used_count

SYNTHESIS_METRICS = ("FVD", "DTFVD", "FID", "LPIPS")
DIVERSITY_METRICS = ("VGG", "I3D", "DTI3D")
FRECHET_METRICS = ("FVD", "DTFVD", "FID")
# which field of evaluation.backbones.Backbones each metric needs
METRIC_BACKBONES = {"FVD": "fvd", "DTFVD": "dtfvd", "FID": "fid", "LPIPS": "lpips",
                    "VGG": "vgg", "I3D": "fvd", "DTI3D": "dtfvd"}
UNITS = {"FVD": "videos", "DTFVD": "videos", "FID": "frames"}
Records = dict[str, tuple[torch.Tensor, torch.Tensor]]  # key -> (item indices (n,), values (n, ...))


def checked_metrics(backbones: Any, metrics: Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    """``metrics`` in the order of ``known``; errors for unknown names and missing backbones."""
    unknown = set(metrics) - set(known)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {tuple(known)}")
    for m in metrics:
        if getattr(backbones, METRIC_BACKBONES[m]) is None:
            raise ValueError(f"{m} needs the '{METRIC_BACKBONES[m]}' backbone (see load_backbones)")
    return tuple(m for m in known if m in metrics)


def _embed(fn: Any, x: torch.Tensor, batch: int) -> torch.Tensor:
    """``fn`` over ``x`` in batches of ``batch`` along dim 0, concatenated on the CPU in float32."""
    return torch.cat([fn(part).float().cpu() for part in x.split(max(1, batch))])


def mean_and_std(trials: Sequence[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and sample standard deviation (ddof=1; 0 for one trial) of every metric over trials."""
    keys = list(trials[0])
    values = {k: np.array([t[k] for t in trials], np.float64) for k in keys}
    mean = {k: float(v.mean()) for k, v in values.items()}
    std = {k: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for k, v in values.items()}
    return mean, std


class SynthesisFeatures:
    """Per-video features of FVD / DTFVD / FID / LPIPS, and the scores from the records of all videos."""

    def __init__(self, backbones: Any, metrics: Sequence[str], protocol: str, dtfvd_frames: int = 16,
                 batch_size: int = 16, frame_batch: int = 64) -> None:
        self.backbones = backbones
        self.metrics = checked_metrics(backbones, metrics, SYNTHESIS_METRICS)
        self.frechet = tuple(m for m in self.metrics if m in FRECHET_METRICS)
        self.protocol, self.dtfvd_frames = protocol, dtfvd_frames
        self.batch_size, self.frame_batch = batch_size, frame_batch

    # ------------------------------------------------------------------ per chunk
    def features(self, videos: torch.Tensor) -> dict[str, torch.Tensor]:
        """{'FVD': (B, 400), 'DTFVD': (B, 1024), 'FID': (B, T, 2048)} of videos (B, T, 3, H, W) in [-1, 1]."""
        out = {}
        if "FVD" in self.frechet:
            out["FVD"] = _embed(self.backbones.fvd, videos, self.batch_size)
        if "DTFVD" in self.frechet:
            out["DTFVD"] = _embed(self.backbones.dtfvd, dtfvd_clip(videos, self.dtfvd_frames), self.batch_size)
        if "FID" in self.frechet:
            out["FID"] = _embed(self.backbones.fid, videos.flatten(0, 1), self.frame_batch).view(
                *videos.shape[:2], -1)
        return out

    def chunk_records(self, indices: Sequence[int], real: torch.Tensor | None, fakes: Sequence[torch.Tensor],
                      real_features: bool = True) -> Records:
        """Records of one chunk: real features (if ``real`` is given and ``real_features``), the features of
        the generated videos of every trial (``fakes``: one (B, T, 3, H, W) tensor per trial), and the LPIPS
        of every frame pair (B, trials, T) when both sides are given."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        records: Records = {}
        if real is not None and real_features:
            records.update({f"{m}.real": (idx, f) for m, f in self.features(real).items()})
        if fakes:
            per_trial = [self.features(f) for f in fakes]
            records.update({f"{m}.fake": (idx, torch.stack([t[m] for t in per_trial], 1)) for m in self.frechet})
            if "LPIPS" in self.metrics and real is not None:
                values = [lpips_per_frame(real, f, self.backbones.lpips, self.backbones.device, self.frame_batch)
                          for f in fakes]
                records["LPIPS"] = (idx, torch.stack(values, 1).double())
        return records

    # ------------------------------------------------------------------ counts and scores
    def used_counts(self, n_real: int, n_fake: int, frames: int) -> dict[str, dict[str, Any]]:
        """What each metric uses of ``n_real`` / ``n_fake`` videos of ``frames`` frames (raises
        :class:`metrics.protocol.ProtocolError` when the protocol cannot be applied)."""
        counts: dict[str, dict[str, Any]] = {}
        for m in self.frechet:
            per = frames if m == "FID" else 1
            counts[m] = {"unit": UNITS[m], "real": used_count(m, n_real * per, self.protocol),
                         "fake": used_count(m, n_fake * per, self.protocol),
                         "real_available": n_real * per, "fake_available": n_fake * per, "frames_per_video": frames}
            if m == "DTFVD":
                counts[m]["network_frames"] = self.dtfvd_frames
        if "LPIPS" in self.metrics:
            counts["LPIPS"] = {"unit": "frame pairs", "used": used_count("LPIPS", n_fake * frames, self.protocol),
                               "available": n_fake * frames}
        return counts

    def score(self, records: dict[str, torch.Tensor], n_real: int, n_fake: int, frames: int,
              real_stats: dict[str, RealStats] | None = None
              ) -> tuple[list[dict[str, float]], dict[str, dict[str, Any]], dict[str, RealStats]]:
        """(metric values per trial, counts of what was used, the real statistics used) from the records of
        every video; ``real_stats`` replaces the real features of the metrics it holds."""
        counts = self.used_counts(n_real, n_fake, frames)
        n_trials = next(v.shape[1] for k, v in records.items() if k.endswith(".fake") or k == "LPIPS")
        trials: list[dict[str, float]] = [{} for _ in range(n_trials)]
        used_stats: dict[str, RealStats] = {}
        for m in self.frechet:
            n_r, n_f = counts[m]["real"], counts[m]["fake"]
            fake = records[f"{m}.fake"].double()
            if m == "FID":
                fake = fake.transpose(1, 2).flatten(0, 1)  # (N * T, trials, D), frames in video order
            if real_stats is not None and m in real_stats:
                used_stats[m] = real_stats[m]
            else:
                real = records[f"{m}.real"].double()
                used_stats[m] = RealStats(*statistics((real.flatten(0, 1) if m == "FID" else real)[:n_r].numpy()), n_r)
            for k in range(n_trials):  # the same route with cached and with fresh real statistics
                trials[k][m] = frechet_distance_to_features(used_stats[m].mu, used_stats[m].sigma,
                                                            fake[:n_f, k].numpy())
        if "LPIPS" in self.metrics:
            values = records["LPIPS"].transpose(1, 2).flatten(0, 1)  # (N * T, trials)
            for k in range(n_trials):
                trials[k]["LPIPS"] = float(values[: counts["LPIPS"]["used"], k].mean())
        return trials, counts, used_stats


class DiversityFeatures:
    """Per start frame the VGG per-layer diversity and the I3D / DTI3D embeddings of its realisations."""

    def __init__(self, backbones: Any, metrics: Sequence[str], protocol: str, n_realiz: int,
                 dtfvd_frames: int = 16, batch_size: int = 8) -> None:
        self.backbones = backbones
        self.metrics = checked_metrics(backbones, metrics, DIVERSITY_METRICS)
        self.protocol, self.n_realiz, self.dtfvd_frames = protocol, n_realiz, dtfvd_frames
        self.batch_size = batch_size

    def _embeddings(self, fn: Any, realizations: torch.Tensor) -> torch.Tensor:
        n, b = realizations.shape[:2]
        return _embed(fn, realizations.flatten(0, 1), self.batch_size).view(n, b, -1).transpose(0, 1)  # (b, n, D)

    def chunk_records(self, indices: Sequence[int], trials: Sequence[torch.Tensor]) -> Records:
        """Records of one chunk; ``trials``: per trial the realisations (n_realiz, B, T, 3, H, W)."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        per_metric: dict[str, list[torch.Tensor]] = {m: [] for m in self.metrics}
        for r in trials:
            if "VGG" in self.metrics:
                per_metric["VGG"].append(vgg_layer_diversity(r, self.backbones.vgg, self.backbones.device,
                                                             self.batch_size, self.backbones.vgg_size))
            if "I3D" in self.metrics:
                per_metric["I3D"].append(self._embeddings(self.backbones.fvd, r))
            if "DTI3D" in self.metrics:
                used = realisations_used("DTI3D", r.shape[0], self.protocol)
                clips = dtfvd_clip(r[:used].flatten(0, 1), self.dtfvd_frames).unflatten(0, (used, r.shape[1]))
                per_metric["DTI3D"].append(self._embeddings(self.backbones.dtfvd, clips))
        return {m: (idx, torch.stack(v, 1)) for m, v in per_metric.items()}

    def used_counts(self, n: int) -> dict[str, dict[str, Any]]:
        """Start frames and realisations each score uses of ``n`` start frames."""
        return {m: {"start_frames": used_count(m, n, self.protocol), "available": n,
                    "realisations": realisations_used(m, self.n_realiz, self.protocol)} for m in self.metrics}

    def score(self, records: dict[str, torch.Tensor], n: int) -> tuple[list[dict[str, float]], dict[str, Any]]:
        """(scores per trial, counts): 'VGG' (mean of the five layers), 'VGG_<layer>', 'I3D', 'DTI3D' (x1000)."""
        counts = self.used_counts(n)
        n_trials = next(iter(records.values())).shape[1]
        trials: list[dict[str, float]] = [{} for _ in range(n_trials)]
        for k, out in enumerate(trials):
            if "VGG" in self.metrics:
                layers = records["VGG"][: counts["VGG"]["start_frames"], k].mean(0).tolist()
                out["VGG"] = float(np.mean(layers))
                out.update({f"VGG_{name}": v for name, v in zip(VGG_LAYERS, layers)})
            for m, scale in (("I3D", 1.0), ("DTI3D", DTI3D_SCALE)):
                if m in self.metrics:
                    out[m] = diversity_from_embeddings(records[m][: counts[m]["start_frames"], k], scale)
        return trials, counts
