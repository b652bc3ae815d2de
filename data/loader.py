"""DataLoader construction with reproducible, distinct per-worker seeds."""
from __future__ import annotations

import random
from typing import Optional

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

__all__ = ["make_loader", "seed_worker"]


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
    """
    drop_last = shuffle if drop_last is None else drop_last
    sampler, rank = None, 0
    if distributed:
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
        rank = sampler.rank
    generator = torch.Generator()
    generator.manual_seed(seed * 1009 + rank)
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
        num_workers=workers, pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0,
        worker_init_fn=seed_worker, generator=generator, drop_last=drop_last,
    )
    loader.base_seed = seed * 1009 + rank  # utils.trainer.epoch_iter reseeds the shuffle per epoch
    return loader
