"""DataLoader construction with reproducible, distinct per-worker seeds."""
from __future__ import annotations

import random
from typing import Optional

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

__all__ = ["check_batches", "make_loader", "seed_worker"]


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` from the worker's torch seed (``base_seed + worker_id``, set by the loader)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    cv2.setNumThreads(0)  # one decoding thread per worker; the workers are the parallelism


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, workers: int, distributed: bool = False,
                seed: int = 0, drop_last: Optional[bool] = None) -> DataLoader:
    """A DataLoader over ``dataset``.

    Pinned memory only when CUDA is available; persistent workers when ``workers > 0``; a
    ``DistributedSampler`` (call ``loader.sampler.set_epoch(epoch)`` each epoch) when ``distributed``.
    Shuffling and the workers' seeds come from ``seed`` (and the rank), so a run is reproducible and each
    worker's augmentation stream is distinct. With ``workers == 0`` augmentation uses the global torch RNG.
    ``drop_last`` defaults to ``shuffle`` (drop the ragged batch in training, keep every clip in evaluation).
    A loader that would yield no batch at all (fewer clips per rank than ``batch_size`` with ``drop_last``)
    is a :class:`~data.dataset.DataLayoutError` saying how many clips and what batch size.
    """
    drop_last = shuffle if drop_last is None else drop_last
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
    )
    loader.base_seed = seed * 1009 + rank  # utils.trainer.epoch_iter reseeds the shuffle per epoch
    return loader


def check_batches(dataset: Dataset, batch_size: int, world_size: int = 1, drop_last: bool = True) -> None:
    """Raise :class:`~data.dataset.DataLayoutError` unless every rank gets at least one batch per epoch."""
    from .dataset import DataLayoutError

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
