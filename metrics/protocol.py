"""Which real and generated videos and frames each metric compares: the per-dataset slicing (the original's
eval_synthesis_quality.py; each dataset's kind in :mod:`data.registry`) and the two counting protocols.

``paper`` (the default) counts as the original evaluation code did, so that its numbers are reproduced:
every metric there fed its network fixed-size batches and dropped what did not fill the last one
(:data:`PAPER_BATCHING`), the DTDB I3D was chosen by the generated length (16 frames unless
``-seq_length`` > 16, fed the first 16 frames of the clip tiled in time: iPER's 17-frame videos lose
their last frame), and DTI3D diversity compared the first 5 realisations. ``all`` uses every test
video and frame, and the DTDB I3D that covers the whole evaluated clip (16 or 32 frames, shorter clips
tiled in time). ``fitvid`` is the FVD protocol of later BAIR papers (FitVid, MAGVIT, RaMViD): 16 frames per
video, the start frame and the first 15 generated ones against real frames 0..15, for every dataset (for BAIR
these are the frames of ``paper``), every test video (BAIR: 256) and :data:`FITVID_TRIALS` independent
trials by default (the score is their mean and standard deviation; ``paper`` is one pass).
"""
from __future__ import annotations

import dataclasses

import torch

from data.registry import ALL_FRAMES, START_FRAME_IN, dataset_info, evaluated_datasets
from metrics.fvd import tile_time
from utils.errors import ArgumentError

FITVID = "fitvid"
PROTOCOLS = ("paper", "all", FITVID)  # every protocol (eval_synthesis_quality.py)
COUNTING_PROTOCOLS = ("paper", "all")  # without a start frame to place: diversity, two folders of videos
PAPER_DTI3D_REALISATIONS = 5  # the original's DTI3D diversity loops over range(5)
FITVID_FRAMES = 16  # the start frame + 15 generated frames (FitVid, MAGVIT, RaMViD on BAIR)
FITVID_TRIALS = 100  # FVD is the mean (and std) of 100 trials over the 256 BAIR test videos
FITVID_VIDEOS = 256  # the BAIR test set


class ProtocolError(ArgumentError):
    """The protocol cannot be applied to this many videos or frames (printed as ``error: ...`` by
    :func:`utils.command.run`)."""


@dataclasses.dataclass(frozen=True)
class Batching:
    """How the original batched one metric: units are dropped beyond a multiple of ``multiple``.

    ``strict``: with fewer than ``multiple`` units the original failed (fixed-size TF graph, or a mean over
    zero batches); otherwise it used them all in one batch (pytorch-fid's ``get_activations`` rule).
    """

    multiple: int
    unit: str
    strict: bool
    how: str


PAPER_BATCHING: dict[str, Batching] = {
    "FVD": Batching(16, "videos", True, "the TF-Hub I3D graph takes batches of exactly 16 videos"),
    "DTFVD": Batching(40, "videos", False, "DTDB-I3D features in batches of 40 videos"),
    "FID": Batching(50, "frames", False, "Inception features in batches of 50 frames"),
    "LPIPS": Batching(10, "frame pairs", True, "the mean of batch means over batches of 10 frame pairs"),
    "I3D": Batching(16, "start frames", True, "the TF-Hub I3D graph takes batches of exactly 16 videos"),
    "DTI3D": Batching(20, "start frames", False, "DTDB-I3D features in batches of 20 videos"),
}


def check_protocol(protocol: str) -> str:
    """``protocol`` if it is one of :data:`PROTOCOLS`."""
    if protocol not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return protocol


def default_trials(protocol: str) -> int:
    """Trials of a protocol when ``-n_trials`` is not given: :data:`FITVID_TRIALS` under ``fitvid``, else 1."""
    return FITVID_TRIALS if check_protocol(protocol) == FITVID else 1


def check_fitvid_length(protocol: str, seq_length: int) -> None:
    """A :class:`ProtocolError` unless ``fitvid`` compares :data:`FITVID_FRAMES` frames (``-seq_length`` 16)."""
    if check_protocol(protocol) == FITVID and seq_length != FITVID_FRAMES:
        raise ProtocolError(f"-protocol fitvid compares {FITVID_FRAMES} frames (the start frame and the first 15 "
                            f"generated ones): -seq_length must be {FITVID_FRAMES}, got {seq_length}")


def used_count(metric: str, n: int, protocol: str) -> int:
    """How many of ``n`` units (videos, frames or start frames, see :data:`PAPER_BATCHING`) ``metric`` uses
    (``all`` and ``fitvid``: every one)."""
    if check_protocol(protocol) != "paper" or metric not in PAPER_BATCHING:
        return n
    rule = PAPER_BATCHING[metric]
    if n >= rule.multiple:
        return n // rule.multiple * rule.multiple
    if rule.strict:
        raise ProtocolError(f"-protocol paper computes {metric} as the original did ({rule.how}), which needs at "
                            f"least {rule.multiple} {rule.unit}; this run has {n}. Use -protocol all for every video")
    return n


def realisations_used(metric: str, n_realiz: int, protocol: str) -> int:
    """Realisations per start frame that ``metric`` compares (DTI3D under ``paper``: the first 5)."""
    if metric == "DTI3D" and check_protocol(protocol) == "paper":
        return min(n_realiz, PAPER_DTI3D_REALISATIONS)
    return n_realiz


# ----------------------------------------------------------------------------- slicing

def _protocol_kind(dataset: str) -> str:
    """The evaluation protocol of ``dataset`` (:data:`data.registry.START_FRAME_IN`, ...)."""
    try:
        kind = dataset_info(dataset).protocol
    except ValueError:
        kind = None
    if kind is None:
        raise ValueError(f"no evaluation protocol for dataset {dataset!r}; choose one of {evaluated_datasets()}")
    return kind


def protocol_slices(dataset: str, seq: torch.Tensor, fake: torch.Tensor,
                    protocol: str = "paper") -> tuple[torch.Tensor, torch.Tensor]:
    """(real, fake) videos compared by the synthesis metrics (the original's eval_synthesis_quality.py), for T
    generated frames.

    ``seq`` (B, T+1, 3, H, W) is the real test clip (frame 0 is the start frame x0), ``fake``
    (B, T, 3, H, W) the T frames generated from x0 (they stand for times 1..T). With T = 16:

    - BAIR: fake = [x0, generated 1..15], real = real frames 0..15 (16-frame protocol of the FVD paper);
    - iPER: fake = [x0, generated 1..16], real = real frames 0..16 (all 17);
    - landscape / DTDB: fake = generated 1..16, real = real frames 0..15.

    For landscape/DTDB "real = the first 16 real frames" is read as for BAIR, where it can only mean frames
    0..15 (``seq[:, :T]``, as the original code does), not as the time-aligned frames 1..T. FVD/DTFVD/FID
    compare distributions, so the one-frame shift hardly matters there; the paired LPIPS does compare generated
    frame t+1 with real frame t under it.
    """
    if seq.dim() != 5 or fake.dim() != 5:
        raise ValueError(f"expected (B, T, 3, H, W) videos, got {tuple(seq.shape)} and {tuple(fake.shape)}")
    n = fake.shape[1]
    if seq.shape[1] != n + 1 or seq.shape[0] != fake.shape[0] or seq.shape[2:] != fake.shape[2:]:
        raise ValueError(f"real clips need one frame (the start frame) more than the generated videos, at the "
                         f"same size: got real {tuple(seq.shape)} for fake {tuple(fake.shape)}")
    fake = fake.to(seq.device, seq.dtype)
    x0 = seq[:, :1]
    kind = START_FRAME_IN if check_protocol(protocol) == FITVID else _protocol_kind(dataset)
    if kind == START_FRAME_IN:  # BAIR (and every dataset under fitvid)
        return seq[:, :n], torch.cat([x0, fake[:, : n - 1]], dim=1)
    if kind == ALL_FRAMES:  # iPER
        return seq, torch.cat([x0, fake], dim=1)
    return seq[:, :n], fake  # landscape, DTDB: "first 16 real frames" = frames 0..15 (see docstring)


def protocol_length(dataset: str, seq_length: int, protocol: str = "paper") -> int:
    """Frames per evaluated video under :func:`protocol_slices` for ``seq_length`` generated frames."""
    if check_protocol(protocol) == FITVID:
        return seq_length
    return seq_length + 1 if _protocol_kind(dataset) == ALL_FRAMES else seq_length


DTDB_I3D_MAX_FRAMES = 32  # the DTDB I3D networks take 16 or 32 frames (shorter clips are tiled in time)
FRAME_METRICS = ("FID", "LPIPS", "VGG")  # they embed single frames: any length


def length_problem(metric: str, length: int, min_frames: int = 1) -> str | None:
    """Why ``metric`` cannot compare videos of ``length`` frames (``min_frames``: the shortest video its network
    takes, :attr:`metrics.fvd.FVDFeatureExtractor.min_frames`), or None when it can."""
    if length < max(min_frames, 1):
        network = "" if metric in FRAME_METRICS else " (the input of its network)"
        return f"{metric} needs videos of at least {max(min_frames, 1)} frames{network}"
    if metric in ("DTFVD", "DTI3D") and length > DTDB_I3D_MAX_FRAMES:
        return f"{metric} is defined for videos of at most {DTDB_I3D_MAX_FRAMES} frames (the DTDB I3D takes 16 or 32)"
    return None


def dtfvd_frames(video_length: int) -> int:
    """The DTDB I3D (16 or 32 frames) covering videos of ``video_length`` frames (shorter ones are tiled)."""
    if video_length <= 16:
        return 16
    if video_length <= 32:
        return 32
    raise ValueError(f"DTFVD is defined for videos of at most 32 frames, got {video_length}")


def dtfvd_network_frames(protocol: str, seq_length: int, video_length: int) -> int:
    """Length (16 or 32) of the DTDB I3D for videos of ``video_length`` frames, ``seq_length`` generated.

    ``paper``: chosen by the generated length, as the original (``-seq_length`` > 16: 32 frames);
    ``all``: the network that covers every frame (:func:`dtfvd_frames`).
    """
    if check_protocol(protocol) == "paper":
        return 16 if seq_length <= 16 else 32
    return dtfvd_frames(video_length)


def dtfvd_clip(videos: torch.Tensor, n_frames: int) -> torch.Tensor:
    """The first ``n_frames`` frames of (B, T, ...) videos tiled in time (the DTDB I3D's input length)."""
    return tile_time(videos, n_frames)[:, :n_frames]


def compared_frames(dataset: str, seq_length: int, protocol: str = "paper") -> str:
    """Which frames :func:`protocol_slices` compares, in words (for reports), for ``seq_length`` generated frames."""
    kind = START_FRAME_IN if check_protocol(protocol) == FITVID else _protocol_kind(dataset)
    n = seq_length
    if kind == START_FRAME_IN:
        return f"the start frame + generated frames 1-{n - 1} vs real frames 0-{n - 1} ({n} frames, start frame in)"
    if kind == ALL_FRAMES:
        return f"the start frame + generated frames 1-{n} vs real frames 0-{n} ({n + 1} frames, start frame in)"
    return f"generated frames 1-{n} vs real frames 0-{n - 1} ({n} frames, start frame out)"
