"""Download the weights files of the metric networks to where their loaders read them:
``python -m models.fetch_weights [NAME ...] [--dest DIR]`` (no NAME: every file; ``--list`` shows them).

Names: ``kinetics_i3d`` (FVD, hassony2 ``model_rgb.pth``), ``i3d_torchscript`` (FVD with ``-i3d torchscript``),
``dtdb_i3d_16`` / ``dtdb_i3d_32`` (DTFVD, DTI3D), ``fid_inception`` (FID), ``vgg16`` (LPIPS, VGG diversity, the
training losses) and ``paper`` (the paper's checkpoints). Files go to the place their loader reads
(:func:`metrics.weights.default_weights_path`: ``models/PI3D``, ``models/DTI3D`` and the torch hub cache), or with
``--dest DIR`` (also ``-weights_dir``) into one folder laid out as the evaluation scripts' ``-weights_dir``.

Each download is checked against its published SHA-256 (``model_rgb.pth`` has none: its SHA-256 is printed),
written to ``<file>.part`` (an interrupted download continues from there, with an HTTP Range request) and renamed
when complete. A file that is already there is checked, not fetched again. On any network failure every URL
and target path that is still missing is printed and the command stops with status 2. The DTI3D weights and the
paper's checkpoints are on Google Drive only (no direct link): their place and source are printed.
"""
from __future__ import annotations

import argparse
import http.client
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from data.registry import DATASETS
from metrics.weights import RELEASED_FOLDER_URL, WEIGHTS, default_weights_path, hub_hash_prefix
from utils.atomic import check_writable_folder
from utils.checkpoint import file_digest
from utils.command import parser, positive_float, run
from utils.errors import ArgumentError, I2VError, MissingFileError

logger = logging.getLogger("models.fetch_weights")

PAPER = "paper"  # the paper's checkpoints (Google Drive only)
CHUNK = 1 << 20
USER_AGENT = "i2v-cinn fetch_weights (python urllib)"


class NetworkError(I2VError, OSError):
    """A download failed on the network (offline, refused, cut, an HTTP error)."""


class DownloadChecksumError(I2VError, ValueError):
    """A downloaded (or present) file's SHA-256 is not the published one."""


@dataclass
class Outcome:
    """What happened to one file: ``status`` is ok | downloaded | by hand | failed."""

    name: str
    status: str
    target: Path
    detail: str = ""


def expected_hash(name: str) -> str | None:
    """The full published SHA-256 of ``name``, else the prefix its torch-hub style name carries, else None."""
    return WEIGHTS[name].sha256 or hub_hash_prefix(name)


def _check_hash(name: str, path: Path) -> str:
    """SHA-256 of ``path``; :class:`DownloadChecksumError` if it is not the expected one."""
    digest = file_digest(path)
    want = expected_hash(name)
    if want is not None and not digest.startswith(want):
        raise DownloadChecksumError(f"{path} ({name}): SHA-256 {digest}, expected {want}: not the published file")
    return digest


def _verified(name: str, digest: str) -> str:
    if WEIGHTS[name].sha256:
        return "SHA-256 verified"
    if hub_hash_prefix(name):
        return f"SHA-256 prefix {hub_hash_prefix(name)} verified"
    return f"SHA-256 {digest} (no published checksum to verify)"


class _PastTheEnd(Exception):
    """HTTP 416: the requested range starts at or past the file's end; ``total`` is its size (None if not given)."""

    def __init__(self, total: int | None):
        super().__init__(total)
        self.total = total


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    """The response for ``url`` from byte ``offset`` on; :class:`_PastTheEnd` when the server says the range is
    past the end (a complete ``.part``, or one longer than the file)."""
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            total = (exc.headers.get("Content-Range") or "").rpartition("/")[2]  # "bytes */<size>"
            raise _PastTheEnd(int(total) if total.isdigit() else None) from None
        raise NetworkError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise NetworkError(f"{url}: {getattr(exc, 'reason', None) or exc}") from None


def download(url: str, target: Path, name: str, timeout: float = 30.0) -> str:
    """Download ``url`` to ``target`` through ``target.part`` (resumed with an HTTP Range request when present),
    check its SHA-256 and rename it into place; returns the SHA-256. A cut connection keeps the ``.part``
    (:class:`NetworkError`); a wrong checksum removes it (:class:`DownloadChecksumError`)."""
    part = target.with_name(target.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    try:
        response = _open(url, offset, timeout)
    except _PastTheEnd as end:
        if end.total == offset:  # the .part is the whole file: only its checksum is left to check
            response = None
        else:  # a .part longer than the file (or a server that does not say its size): start over
            part.unlink()
            offset, response = 0, _open(url, 0, timeout)
    if response is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with response:
            if offset and (response.status != 206 or
                           not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-")):
                offset = 0  # the server sent the whole file: start over
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            with part.open("ab" if offset else "wb") as f, tqdm(
                    total=total, initial=offset, unit="B", unit_scale=True, desc=target.name, leave=False) as bar:
                while True:
                    try:
                        chunk = response.read(CHUNK)
                    except (http.client.HTTPException, OSError) as exc:
                        raise NetworkError(f"{url}: the connection broke ({exc})") from None
                    if not chunk:
                        break
                    f.write(chunk)
                    bar.update(len(chunk))
        got = part.stat().st_size
        if total is not None and got < total:
            raise NetworkError(f"{url}: the connection closed after {got} of {total} bytes")
    try:
        digest = _check_hash(name, part)
    except DownloadChecksumError as exc:
        part.unlink(missing_ok=True)
        raise DownloadChecksumError(f"{url} gave a file whose {str(exc).split(': ', 1)[1]}; removed {part}") from None
    os.replace(part, target)
    return digest


def _fetch(name: str, target: Path, args: argparse.Namespace) -> Outcome:
    spec = WEIGHTS[name]
    if target.is_file() and not args.force:
        try:
            return Outcome(name, "ok", target, "present, " + _verified(name, _check_hash(name, target)))
        except DownloadChecksumError as exc:
            raise DownloadChecksumError(f"{exc}; --force downloads it again") from None
    if spec.url is None:
        return Outcome(name, "by hand", target, f"from {spec.source}")
    return Outcome(name, "downloaded", target, _verified(name, download(spec.url, target, name, args.timeout)))


def paper_checkpoints() -> list[Outcome]:
    """The paper's model folders (``models/<dataset>[/<texture>]/stage2`` ...) and whether each holds its cINN."""
    out = []
    for info in DATASETS.values():
        if not info.has_models or info.name == "demo":
            continue
        folders = [info.model_dir(t) for t in info.textures] if info.textures else [info.model_dir()]
        if info.name == "bair":
            folders.append(info.model_dir(control=True))
        for folder in folders:
            present = (folder / "cINN.pth").is_file()
            out.append(Outcome(PAPER, "ok" if present else "by hand", folder.parent,
                               f"{folder.name}/cINN.pth present" if present else
                               f"stage1/, stage2_AE/, {folder.name}/ from {RELEASED_FOLDER_URL}"))
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__, prog="python -m models.fetch_weights")
    p.add_argument("names", nargs="*", metavar="NAME", help=f"files to get (default: all): {', '.join(WEIGHTS)}, "
                                                            f"{PAPER}")
    p.add_argument("--dest", "-weights_dir", "--weights_dir", dest="dest", type=Path, default=None,
                   help="one folder laid out as -weights_dir (default: where each loader reads)")
    p.add_argument("--list", action="store_true", help="show each file's source, target and checksum; fetch nothing")
    p.add_argument("--force", action="store_true", help="download again a present file whose checksum differs")
    p.add_argument("--timeout", type=positive_float, default=30.0, help="seconds without an answer before giving up")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in WEIGHTS and n != PAPER]
    if unknown:
        raise ArgumentError(f"unknown weights {', '.join(unknown)}; choose from {', '.join(WEIGHTS)}, {PAPER}")
    return args


def _list(names: Sequence[str], dest: Path | None) -> None:
    for name in names:
        if name == PAPER:
            print(f"{PAPER}: the paper's checkpoints (by hand): {RELEASED_FOLDER_URL} -> models/<dataset>/... "
                  "(models/README.md)")
            continue
        spec, want = WEIGHTS[name], expected_hash(name)
        check = f"SHA-256 {want}" if spec.sha256 else (f"SHA-256 prefix {want}" if want else "no published SHA-256")
        print(f"{name}: {spec.url or 'by hand: ' + spec.source} -> {default_weights_path(name, dest)} ({check})")


def main(argv: Sequence[str] | None = None) -> list[Outcome]:
    args = parse_args(argv)
    names = list(dict.fromkeys(args.names)) or [*WEIGHTS, PAPER]
    dest = check_writable_folder(args.dest, "--dest") if args.dest is not None else None
    if args.list:
        _list(names, dest)
        return []
    outcomes, failed, refused = [], [], []
    for name in names:
        if name == PAPER:
            outcomes += paper_checkpoints()
            continue
        target = default_weights_path(name, dest)
        needs_download = WEIGHTS[name].url is not None and (args.force or not target.is_file())
        if needs_download and failed:  # offline: the remaining downloads are listed, not tried
            failed.append(Outcome(name, "failed", target, "not tried after the failure above"))
            continue
        if needs_download:
            check_writable_folder(target.parent, f"the folder of {name}")  # before its download
        try:
            outcomes.append(_fetch(name, target, args))
        except NetworkError as exc:
            failed.append(Outcome(name, "failed", target, str(exc)))
        except DownloadChecksumError as exc:  # reported below, after the other files were fetched
            refused.append(exc)
    for o in outcomes:
        print(f"{o.name:<16} {o.status:<10} {o.target}  ({o.detail})")
    for exc in refused if failed else refused[:-1]:  # the last one is the error line unless a download failed
        print(f"checksum: {exc}")
    if failed:
        print("could not download (offline, or the server did not answer); get these by hand, or run the command "
              "again to continue (partial downloads are kept as .part):")
        for o in failed:
            print(f"  {o.name}: {WEIGHTS[o.name].url} -> {o.target}")
        raise NetworkError(f"could not download {', '.join(o.name for o in failed)}: {failed[0].detail}")
    if refused:
        raise refused[-1]
    by_hand = [o for o in outcomes if o.status == "by hand" and o.name in args.names]
    if by_hand:
        raise MissingFileError(f"{', '.join(dict.fromkeys(o.name for o in by_hand))}: no direct download link; get "
                               f"the file(s) listed above by hand from {RELEASED_FOLDER_URL}")
    return outcomes


if __name__ == "__main__":
    run(main)
