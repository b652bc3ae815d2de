"""Checkpoint sets: the files of one epoch (stage 1's GEN/ENC/DISC_t/DISC_s) written and resumed as one unit.

Writing the set of epoch E (:func:`write_set`):

1. each file is written atomically under a staged name ``.<file>.epoch<E>.staged`` beside its final name;
2. the manifest ``<set>.set.json`` (epoch, files, sizes, BLAKE2b checksums) is written atomically: the set is now
   committed;
3. each staged file is renamed over its final, released name (``latest_checkpoint_GEN.pth`` ...).

A kill during 1 leaves the previous set untouched; its staged files are an incomplete set, skipped with a
warning and removed when the folder's next run starts. A kill during 3 is completed ("rolled forward") from
the staged files. A folder without a manifest (older runs, released weights) is read as it is; resuming
checks that its files agree on the epoch.

Reading a file of a committed set (resume: :func:`set_files`; ``load_model``: :func:`committed_path`) checks its
size and checksum against the manifest and refuses a file whose bytes changed since it was written
(:class:`~utils.errors.ChecksumMismatchError`, naming the file). A manifest written before checksums were recorded
(format 1) is still read, with a warning that its files are not verified.
"""
from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from utils.atomic import TEMP_SUFFIX, atomic_write_text, fsync_dir, human_bytes
from utils.checkpoint import atomic_save, file_digest, find_checkpoint
from utils.errors import CheckpointError, ChecksumMismatchError, MissingFileError

logger = logging.getLogger(__name__)

MANIFEST_SUFFIX = ".set.json"
CHECKSUM = "blake2b"  # hashlib algorithm of the manifest's per-file checksums (fast; corruption, not tampering)
_VERIFIED: set[tuple] = set()  # (file, size, mtime, checksum) whose bytes matched the manifest in this process
_STAGED = re.compile(r"^\.(?P<name>.+)\.epoch(?P<epoch>\d+)\.staged$")


def manifest_path(folder: str | Path, set_name: str) -> Path:
    """``folder/<set_name>.set.json``."""
    return Path(folder) / f"{set_name}{MANIFEST_SUFFIX}"


def _staged(folder: Path, name: str, epoch: int) -> Path:
    return folder / f".{name}.epoch{epoch}.staged"


def read_manifest(folder: str | Path, set_name: str) -> dict | None:
    """The manifest of a set, or None when the folder has none (written before sets existed)."""
    path = manifest_path(folder, set_name)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
        int(manifest["epoch"]), dict(manifest["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} is not a checkpoint-set manifest ({type(exc).__name__}: {exc}); "
                              "delete it to read the checkpoint files without it") from None
    return manifest


def _roll_forward(folder: Path, manifest: Mapping) -> None:
    moved = False
    for name, info in manifest["files"].items():
        staged = folder / info["staged"]
        if staged.is_file():
            os.replace(staged, folder / name)
            moved = True
    if moved:
        fsync_dir(folder)


def write_set(folder: str | Path, set_name: str, files: Mapping[str, Any], epoch: int) -> None:
    """Write ``{file name: object}`` as the set of ``epoch`` (see the module docstring). On a failed write
    the staged files are removed and the previous set stays as it was."""
    folder = Path(folder)
    staged: dict[str, Path] = {}
    try:
        for name, obj in files.items():
            staged[name] = _staged(folder, name, epoch)
            atomic_save(obj, staged[name], shown=folder / name)  # a failed write names the checkpoint, not its stand-in
        files_info = {name: {"staged": p.name, "size": p.stat().st_size, CHECKSUM: file_digest(p, CHECKSUM)}
                      for name, p in staged.items()}
    except BaseException:
        for path in staged.values():
            path.unlink(missing_ok=True)
        raise
    manifest = {"format": 2, "epoch": int(epoch), "files": files_info}
    atomic_write_text(json.dumps(manifest, indent=1), manifest_path(folder, set_name))
    _roll_forward(folder, manifest)


def _warn_incomplete(folder: Path, names: Iterable[str], manifest: Mapping | None) -> None:
    referenced = {info["staged"] for info in manifest["files"].values()} if manifest else set()
    names = set(names)
    epochs = sorted({int(m["epoch"]) for p in folder.glob(".*.staged")
                     if (m := _STAGED.match(p.name)) and m["name"] in names and p.name not in referenced})
    if epochs:
        have = f"the complete set of epoch {manifest['epoch']}" if manifest else "the files as they are"
        logger.warning("%s: skipping the incomplete checkpoint set of epoch %s (the run stopped while writing it); "
                       "using %s", folder, ", ".join(map(str, epochs)), have)


def set_files(folder: str | Path, set_name: str, names: Iterable[str]) -> tuple[int | None, dict[str, Path]]:
    """``(epoch, {name: path})`` of the newest complete set in ``folder`` (read only). ``epoch`` is None for a
    folder without a manifest; a missing file raises :class:`MissingFileError`, a file that does not belong to the
    committed set :class:`CheckpointError`."""
    folder, names = Path(folder), list(names)
    manifest = read_manifest(folder, set_name)
    _warn_incomplete(folder, names, manifest)
    if manifest is None:
        logger.warning("%s has no checkpoint-set manifest (%s; written before sets existed): its files are used "
                       "without a checksum check", folder, manifest_path(folder, set_name).name)
    paths: dict[str, Path] = {}
    for name in names:
        if manifest is None:
            found = find_checkpoint(folder / name) or find_checkpoint(folder / Path(name).stem)
            if found is None:
                raise MissingFileError(f"cannot resume: {folder / name} is missing (Training.reload_path)")
            paths[name] = found
            continue
        info = manifest["files"].get(name)
        where = f"the checkpoint set of epoch {manifest['epoch']} ({manifest_path(folder, set_name).name})"
        if info is None:
            raise CheckpointError(f"{folder / name} is not part of {where}")
        staged, final = folder / info["staged"], folder / name
        path = staged if staged.is_file() else final
        if not path.is_file():
            raise MissingFileError(f"cannot resume: {final} of {where} is missing")
        if path.stat().st_size != info["size"]:
            raise CheckpointError(f"{path} does not belong to {where}: it has {path.stat().st_size} bytes, the set "
                                  f"recorded {info['size']} (was it replaced by hand?)")
        verify(path, final, info, manifest_path(folder, set_name), manifest)
        paths[name] = path
    return (int(manifest["epoch"]) if manifest else None), paths


def verify(path: Path, final: Path, info: Mapping, manifest_file: Path, manifest: Mapping) -> None:
    """Check the checksum of ``path`` (``final`` or its staged stand-in) against the manifest's entry ``info``;
    a mismatch raises :class:`ChecksumMismatchError` naming ``final``. An entry without a checksum (a manifest of
    format 1) is logged as unverified."""
    expected = info.get(CHECKSUM)
    if expected is None:
        logger.warning("%s: %s records no checksums (written before they were recorded): %s is used unverified",
                       final.parent, manifest_file.name, final.name)
        return
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, expected)
    if key in _VERIFIED:  # read once per process, not at every lookup of the same unchanged file
        return
    got = file_digest(path, CHECKSUM)
    if got == expected:
        _VERIFIED.add(key)
    else:
        staged = f" (read from its staged copy {path.name})" if path != final else ""
        raise ChecksumMismatchError(
            f"{final}{staged} is not the file written with epoch {manifest['epoch']}'s checkpoint set: its bytes "
            f"changed since ({CHECKSUM} {got[:16]}..., {manifest_file.name} recorded {expected[:16]}...), e.g. disk "
            f"corruption or an edit by hand; refusing to use it. Restore the file (or resume from another run); if "
            f"you replaced it on purpose, delete {manifest_file} to use the folder's files unchecked")


def committed_path(path: Path) -> Path:
    """The staged file standing in for ``path`` when a committed set's renames were interrupted, else ``path``;
    when a set's manifest lists the file, its checksum is verified (:func:`verify`)."""
    path = Path(path)
    for manifest_file in sorted(path.parent.glob(f"*{MANIFEST_SUFFIX}")):
        try:
            manifest = json.loads(manifest_file.read_text())
            info = manifest["files"].get(path.name)
            int(manifest["epoch"])
        except (OSError, ValueError, KeyError, AttributeError, TypeError):
            continue
        if not info:
            continue
        staged = path.parent / str(info.get("staged"))
        found = staged if staged.is_file() else path
        if found.is_file():
            verify(found, path, info, manifest_file, manifest)
        return found
    return path


def recover_folder(folder: str | Path) -> None:
    """Complete the renames of committed sets, then remove temp files and incomplete staged sets of
    interrupted writes (logged with their size). Only for a folder this process owns (the run folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for path in sorted(folder.glob(f"*{MANIFEST_SUFFIX}")):
        manifest = read_manifest(folder, path.name[: -len(MANIFEST_SUFFIX)])
        if manifest:
            _roll_forward(folder, manifest)
    stale = [p for p in folder.glob(f".*{TEMP_SUFFIX}")] + [p for p in folder.glob(".*.staged")]
    size = 0
    for path in stale:
        try:
            size += path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            pass
    if stale:
        logger.warning("%s: removed %d temporary file(s) of interrupted checkpoint writes (%s)", folder, len(stale),
                       human_bytes(size))
