"""DDP helpers for torchrun: process-group set-up, per-rank seeds, rank-0 checks, loss averaging."""
from __future__ import annotations

import datetime
import os
import random
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    """Where this process stands in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device, timeout: float | None = None) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); nccl on CUDA, gloo on CPU.

    ``timeout`` (seconds; default torch's) bounds every collective: a rank that waits longer for a dead or
    stuck peer raises instead of hanging.
    """
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        kwargs = {} if timeout is None else {"timeout": datetime.timedelta(seconds=float(timeout))}
        dist.init_process_group(backend=backend, **kwargs)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def cleanup_distributed() -> None:
    """Leave the process group if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int, rank: int = 0) -> None:
    """Seed python, numpy and torch with ``seed + rank`` (distinct per rank, reproducible)."""
    s = int(seed) + int(rank)
    random.seed(s)
    np.random.seed(s % (2**32))
    torch.manual_seed(s)


def reduce_mean(logs: Mapping[str, torch.Tensor | float], info: DistInfo) -> dict[str, float]:
    """Average scalar logs over ranks (one all_reduce) and return python floats (one host sync)."""
    keys = list(logs)
    if not keys:
        return {}
    vals = torch.stack([torch.as_tensor(logs[k], dtype=torch.float32).detach().reshape(()).cpu() for k in keys])
    if info.enabled:
        vals = vals.to(collective_device())
        dist.all_reduce(vals, op=dist.ReduceOp.SUM)
        vals = vals.cpu() / info.world_size
    return dict(zip(keys, vals.tolist()))


def all_true(flag: bool, info: DistInfo) -> bool:
    """Whether ``flag`` holds on every rank (one all_reduce; ``flag`` itself without DDP)."""
    if not info.enabled:
        return bool(flag)
    value = torch.tensor(float(bool(flag)), device=collective_device())
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def collective_device() -> torch.device:
    """Where the tensors of a collective must live: the current CUDA device for nccl, else the CPU (gloo)."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier(info: DistInfo) -> None:
    """Synchronise ranks (no-op without DDP)."""
    if info.enabled:
        dist.barrier()


def rng_state() -> dict:
    """All RNG states, for exact resume, as tensors and plain types (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": list(random.getstate()),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _python_state(saved) -> tuple:
    version, internal, gauss = saved
    return int(version), tuple(int(v) for v in internal), gauss


def _numpy_state(saved) -> tuple:
    if isinstance(saved, Mapping):  # written by rng_state above
        return (saved["kind"], np.asarray(saved["keys"], dtype=np.int64).astype(np.uint32), int(saved["pos"]),
                int(saved["has_gauss"]), float(saved["cached_gaussian"]))
    return tuple(saved)  # older checkpoints: numpy's own tuple


def _on_host(obj: Any) -> Any:
    """``obj`` with every tensor (nested in dicts, lists, tuples) on the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, Mapping):
        return {k: _on_host(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_on_host(v) for v in obj)
    return obj


def set_rng_state(state: Mapping) -> None:
    """Restore what :func:`rng_state` saved (also the older format with numpy's tuple). The states may have been
    loaded onto the GPU with a checkpoint (``map_location=device``); generators take CPU tensors."""
    state = _on_host(state)
    random.setstate(_python_state(state["python"]))
    np.random.set_state(_numpy_state(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
