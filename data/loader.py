"""DataLoader construction with reproducible, distinct per-worker seeds, and skipping of unreadable clips."""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate
from torch.utils.data.distributed import DistributedSampler

from data.dataset import DataLayoutError
from data.frame_io import BadClipsError, FrameReadError

__all__ = ["BAD_CLIPS_KEY", "BadClipCounter", "SkipBadClips", "check_batches", "make_loader", "seed_worker"]

logger = logging.getLogger(__name__)

BAD_CLIPS_KEY = "_bad_clips"  # batch key: messages of the clips of this batch that were skipped
TRAINING_BAD_CLIP_LIMIT = 0.01  # the trainers stop when more than 1 % of an epoch's clips are unreadable


@dataclass(frozen=True)
class _BadClip:
    index: int
    message: str


class SkipBadClips(Dataset):
    """A dataset whose items that raise :class:`FrameReadError` become markers that the collate function drops."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except FrameReadError as exc:
            return _BadClip(index, str(exc))

    def __getattr__(self, name: str) -> Any:  # videos, mode, ... of the wrapped dataset
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def collate_skipping_bad(items: Sequence[Any]) -> dict:
    """Collate the good items; the messages of skipped ones go under :data:`BAD_CLIPS_KEY` (no 'seq' when
    every item was bad)."""
    good = [it for it in items if not isinstance(it, _BadClip)]
    batch = default_collate(good) if good else {}
    bad = [it.message for it in items if isinstance(it, _BadClip)]
    if bad:
        batch[BAD_CLIPS_KEY] = bad
    return batch


class BadClipCounter:
    """Counts (and logs, naming the file) the clips an epoch skipped; raises :class:`BadClipsError` once they
    exceed the loader's allowed fraction of the epoch's planned clips."""

    def __init__(self, loader: Any, planned: int, epoch: int) -> None:
        self.loader, self.planned = loader, max(int(planned), 1)
        mode = getattr(getattr(loader, "dataset", None), "mode", "train")
        self.label = f"epoch {epoch}" if mode == "train" else f"this pass over the {mode} split"
        self.limit = getattr(loader, "max_bad_fraction", None)
        self.count = 0

    def add(self, messages: Sequence[str]) -> None:
        for message in messages:
            logger.warning("%s: skipping a clip: %s", self.label, message)
        self.count += len(messages)
        if self.limit is not None and self.count > self.limit * self.planned:
            raise BadClipsError(
                f"{self.count} of the {self.planned} clips of {self.label} had unreadable frames, more than "
                f"{self.limit:.0%}: stopping (the last one: {messages[-1]}). `python -m data.check -cf <config>` "
                "lists every unreadable file")

    def finish(self) -> None:
        self.loader.bad_clips = self.count
        if self.count:
            logger.warning("%s: skipped %d of %d clips with unreadable frames", self.label, self.count, self.planned)


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` from the worker's torch seed (``base_seed + worker_id``, set by the loader)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    cv2.setNumThreads(0)  # one decoding thread per worker; the workers are the parallelism


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, workers: int, distributed: bool = False,
                seed: int = 0, drop_last: Optional[bool] = None, skip_bad_clips: Optional[float] = None) -> DataLoader:
    """A DataLoader over ``dataset``.

    Pinned memory only when CUDA is available; persistent workers when ``workers > 0``; a
    ``DistributedSampler`` (call ``loader.sampler.set_epoch(epoch)`` each epoch) when ``distributed``.
    Shuffling and the workers' seeds come from ``seed`` (and the rank), so a run is reproducible and each
    worker's augmentation stream is distinct. With ``workers == 0`` augmentation uses the global torch RNG.
    ``drop_last`` defaults to ``shuffle`` (drop the ragged batch in training, keep every clip in evaluation).
    A loader that would yield no batch at all (fewer clips per rank than ``batch_size`` with ``drop_last``)
    is a :class:`~data.dataset.DataLayoutError` saying how many clips and what batch size.
    ``skip_bad_clips`` (a fraction, e.g. 0.01) skips clips with unreadable frames instead of raising; iterate
    with :func:`training.loop.epoch_iter`, which logs them and stops once more than that fraction is bad.
    """
    drop_last = shuffle if drop_last is None else drop_last
    if skip_bad_clips is not None:
        dataset = SkipBadClips(dataset)
    sampler, rank, world = None, 0, 1
    if distributed:
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
        rank, world = sampler.rank, sampler.num_replicas
    check_batches(dataset, batch_size, world, drop_last)
    generator = torch.Generator()
    generator.manual_seed(seed * 1009 + rank)
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
        num_workers=workers, pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0,
        worker_init_fn=seed_worker, generator=generator, drop_last=drop_last,
        collate_fn=collate_skipping_bad if skip_bad_clips is not None else None,
    )
    loader.max_bad_fraction = skip_bad_clips
    loader.base_seed = seed * 1009 + rank  # training.loop.epoch_iter reseeds the shuffle per epoch
    return loader


def check_batches(dataset: Dataset, batch_size: int, world_size: int = 1, drop_last: bool = True) -> None:
    """Raise :class:`~data.dataset.DataLayoutError` unless every rank gets at least one batch per epoch."""
    n = len(dataset)
    per_rank = n // world_size if drop_last else -(-n // world_size)
    if per_rank >= (batch_size if drop_last else 1):
        return
    split = getattr(dataset, "mode", "data")
    ranks = f" over {world_size} ranks ({per_rank} per rank)" if world_size > 1 else ""
    videos = getattr(dataset, "videos", None)
    root = f" (videos under {videos[0].path.parent})" if videos else ""
    raise DataLayoutError(
        f"the {split} split has {n} clip(s){ranks}{root}: not one full batch of batch size {batch_size}, so an "
        f"epoch would run 0 steps; lower the batch size (Training.bs / Training.bs_eval) or add clips")
