"""Evaluation work split over torchrun ranks, kept in resumable part files and gathered on rank 0.

The items of an evaluation (test clips, or the videos of two folders) are cut into chunks of
consecutive indices; chunk ``c`` belongs to rank ``c % world_size``. Per item, the work is fixed by the
item's index alone (its clip, its per-video seed), so the gathered records, and the numbers computed from
them, do not depend on the number of ranks. Each finished chunk is written atomically to
``<work_dir>/chunk_<c>.pt``; a later run with the same fingerprint (:func:`part_folder`) loads those
files instead of computing the chunks again, so an interrupted evaluation continues where it stopped.

Records are ``{key: (indices (n,), values (n, ...))}``: one row of ``values`` per item index.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
import torch.distributed as dist
from tqdm import tqdm

from metrics.scoring import Records
from utils.atomic import atomic_write_text
from utils.checkpoint import atomic_save
from utils.distributed import DistInfo

logger = logging.getLogger(__name__)

Chunk = tuple[int, list[int]]  # (chunk number, item indices)
FINGERPRINT_FILE = "fingerprint.json"


class RankFailure(RuntimeError):
    """Another rank died or did not answer within the process group's timeout."""


@dataclasses.dataclass
class ShardPlan:
    """``n_items`` items in chunks of ``chunk_size``; ``work_dir`` holds the part files (None: none)."""

    n_items: int
    chunk_size: int
    info: DistInfo = dataclasses.field(default_factory=DistInfo)
    work_dir: Path | None = None

    def chunks(self) -> list[Chunk]:
        """Every chunk of the evaluation, in order."""
        size = max(1, int(self.chunk_size))
        return [(c, list(range(start, min(start + size, self.n_items))))
                for c, start in enumerate(range(0, self.n_items, size))]

    def my_chunks(self) -> list[Chunk]:
        """The chunks of this rank (chunk c goes to rank c % world_size)."""
        return [ch for ch in self.chunks() if ch[0] % self.info.world_size == self.info.rank]


def fingerprint_hash(fingerprint: Mapping[str, Any]) -> str:
    """A short hash of the JSON form of ``fingerprint`` (everything the records depend on)."""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:16]


def part_folder(work_root: str | Path, fingerprint: Mapping[str, Any]) -> Path:
    """``<work_root>/<hash of fingerprint>/``, with the fingerprint written beside the part files."""
    folder = Path(work_root) / fingerprint_hash(fingerprint)
    path = folder / FINGERPRINT_FILE
    if not path.is_file():
        atomic_write_text(json.dumps(fingerprint, indent=2, sort_keys=True, default=str) + "\n", path)
    return folder


def _part_path(work_dir: Path, chunk: int) -> Path:
    return work_dir / f"chunk_{chunk:06d}.pt"


def _load_part(work_dir: Path | None, chunk: Chunk) -> Records | None:
    """The records of a finished chunk, or None (absent, unreadable or for other indices)."""
    if work_dir is None:
        return None
    path = _part_path(work_dir, chunk[0])
    if not path.is_file():
        return None
    try:
        part = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated file cannot exist (atomic writes), but a damaged disk can
        logger.warning("ignoring unreadable part file %s (%s); computing that chunk again", path, exc)
        return None
    if part.get("indices") != chunk[1]:
        logger.warning("part file %s holds other items; computing that chunk again", path)
        return None
    return part["records"]


def run_chunks(plan: ShardPlan, compute: Callable[[Sequence[Chunk]], Iterator[Records]],
               desc: str = "evaluating") -> dict[str, torch.Tensor] | None:
    """Records of every item: this rank's chunks from part files or ``compute`` (which yields the records of
    the chunks it is given, in order), gathered on rank 0 and sorted by item index there.

    Returns ``{key: values}`` on rank 0 and None on the other ranks.
    """
    local: list[Records] = []
    pending: list[Chunk] = []
    for chunk in plan.my_chunks():
        part = _load_part(plan.work_dir, chunk)
        if part is None:
            pending.append(chunk)
        else:
            local.append(part)
    if local:
        logger.info("resuming: %d of this rank's %d chunks were already computed (%s)", len(local),
                    len(local) + len(pending), plan.work_dir)
    bar = tqdm(total=len(pending), desc=desc, disable=not plan.info.is_main)
    produced = compute(pending)
    for chunk in pending:
        records = next(produced)
        if plan.work_dir is not None:
            atomic_save({"indices": chunk[1], "records": records}, _part_path(plan.work_dir, chunk[0]))
        local.append(records)
        bar.update(1)
    bar.close()
    return gather_records(local, plan.info)


def _merge(parts: Sequence[Records]) -> Records:
    keys = dict.fromkeys(k for part in parts for k in part)
    return {k: (torch.cat([p[k][0] for p in parts if k in p]), torch.cat([p[k][1] for p in parts if k in p]))
            for k in keys}


def _collective(fn: Callable[[], Any], info: DistInfo, what: str) -> Any:
    try:
        return fn()
    except RuntimeError as exc:  # gloo/nccl errors (peer closed, timeout) are RuntimeError subclasses
        raise RankFailure(f"rank {info.rank}: {what} failed: another rank died or did not answer in time "
                          f"({type(exc).__name__}: {(str(exc).splitlines() or [''])[0]})") from exc


def all_gather(obj: Any, info: DistInfo) -> list[Any]:
    """``obj`` of every rank, in rank order (``[obj]`` without DDP)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    _collective(lambda: dist.all_gather_object(out, obj), info, "exchanging with the other ranks")
    return out


def gather_records(local: Sequence[Records], info: DistInfo) -> dict[str, torch.Tensor] | None:
    """Concatenate the records of all ranks on rank 0, each key sorted by item index (None elsewhere)."""
    merged = _merge(local) if local else {}
    if info.enabled:
        everyone: list[Records] | None = [{} for _ in range(info.world_size)] if info.is_main else None
        _collective(lambda: dist.gather_object(merged, everyone, dst=0), info, "gathering the features")
        if not info.is_main:
            return None
        merged = _merge([part for part in everyone if part])
    out: dict[str, torch.Tensor] = {}
    for key, (indices, values) in merged.items():
        order = torch.argsort(indices)
        if len(indices) > 1 and bool((indices[order][1:] == indices[order][:-1]).any()):
            raise RuntimeError(f"records of {key} hold an item twice")
        out[key] = values[order]
    return out


def remove_parts(work_dir: Path | None) -> None:
    """Delete a part folder after a finished evaluation (and its parent if that is then empty)."""
    if work_dir is None or not work_dir.is_dir():
        return
    shutil.rmtree(work_dir, ignore_errors=True)
    try:
        work_dir.parent.rmdir()
    except OSError:
        pass
