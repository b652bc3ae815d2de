"""Training-clip loading speed (clips/s) from video files and from folders of frames, on the 12 real sky clips of
``assets/GT_samples/landscape/transfer`` (640x360 JPEG frames, 33-34 per clip), for README "Your own videos":
when does ``python -m data.prepare_videos`` pay off?

    python benchmarks/video_loading.py [--workers 0 2] [--epochs 3] [--img 64] [--json out.json]

Each source is a ``folder`` dataset (``Data.dataset: folder``) of the same 12 clips, read by the training loader
(``data.make_loader``, shuffled, random 16-frame clips, resized to ``--img``, no colour jitter):

- ``jpg frames 640x360``: the clips' own JPEG frames;
- ``mp4 640x360``: the clips encoded with ``utils.media.save_mp4`` (H.264, CRF 10, one key frame per clip: x264's
  default interval of 250 frames is longer than a clip), read by seeking;
- ``mp4 640x360, key frame every 4``: the same with a key frame every 4 frames (shorter seeks, larger files);
- ``mp4 128x72``: downscaled videos (what a video at about the training size costs);
- ``jpg frames, prepared``: the frames ``python -m data.prepare_videos --size 64`` writes (64 px shorter side).

Per source and worker count: one warm-up epoch, then ``--epochs`` timed epochs of ``--repeat`` x 12 clips;
clips/s is clips over wall time (median over the epochs), also per worker, and (without workers) clips per second of
the process's CPU time, which other load on the machine changes less. Encoding and preparing times, and the
bytes on disk, are reported too.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from data.dataset import get_dataset  # noqa: E402
from data.loader import make_loader  # noqa: E402
from data.prepare_videos import prepare  # noqa: E402
from data.videos import read_video  # noqa: E402
from utils.allocator import tune_cpu_allocator  # noqa: E402
from utils.media import save_mp4, to_uint8  # noqa: E402
from utils.paths import ASSETS_DIR  # noqa: E402

CLIPS = ASSETS_DIR / "GT_samples" / "landscape" / "transfer"


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _encode_gop(video: torch.Tensor, path: Path, gop: int) -> None:
    """H.264 with a key frame every ``gop`` frames (PyAV), at the quality ``save_mp4`` writes (CRF 10)."""
    frames = to_uint8(video)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"g": str(gop), "keyint_min": str(gop), "crf": "10"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def build_sources(root: Path) -> tuple[dict[str, Path], dict[str, float]]:
    """The datasets (each ``<root>/<name>/train/...``) and how long each took to write."""
    clips = sorted(p for p in CLIPS.iterdir() if p.is_dir())
    sources = {"jpg frames 640x360": root / "jpg", "mp4 640x360": root / "mp4",
               "mp4 640x360, key frame every 4": root / "mp4_gop4", "mp4 128x72": root / "mp4_small",
               "jpg frames, prepared": root / "prepared"}
    took = {}
    for clip in clips:
        shutil.copytree(clip, sources["jpg frames 640x360"] / "train" / clip.name)
    for name, write in (("mp4 640x360", lambda v, p: save_mp4(v, p, fps=25)),
                        ("mp4 640x360, key frame every 4", lambda v, p: _encode_gop(v, p, 4)),
                        ("mp4 128x72", lambda v, p: save_mp4(F.interpolate(v, size=(72, 128), mode="area"), p,
                                                             fps=25))):
        start = time.perf_counter()
        for clip in clips:
            (sources[name] / "train").mkdir(parents=True, exist_ok=True)
            write(read_video(clip), sources[name] / "train" / f"{clip.name}.mp4")
        took[name] = time.perf_counter() - start
    start = time.perf_counter()
    prepare(sources["mp4 640x360"] / "train", sources["jpg frames, prepared"], size=64, split=(1.0, 0.0, 0.0))
    took["jpg frames, prepared"] = time.perf_counter() - start
    return sources, took


def clips_per_second(root: Path, workers: int, epochs: int, repeat: int, img: int,
                     bs: int) -> tuple[float, float | None, int]:
    """(median clips/s over ``epochs`` timed epochs after a warm-up one, clips per CPU second of this process
    (``workers`` 0 only: then it does all the work; less sensitive to other load than wall time), clips per epoch)."""
    config = {"Data": {"dataset": "folder", "data_path": str(root), "sequence_length": 16, "img_size": img,
                       "aug": True, "iter_train": repeat, "crop_margin": 0, "Augmentation": {"prob_hflip": 0.5}},
              "Training": {}}
    loader = make_loader(get_dataset(config, "train"), bs, shuffle=True, workers=workers, drop_last=True)
    rates, cpu_rates = [], []
    for epoch in range(epochs + 1):
        start, cpu, n = time.perf_counter(), time.process_time(), 0
        for batch in loader:
            n += batch["seq"].shape[0]
        if epoch:  # epoch 0 warms up (worker start, file caches, the per-file frame index)
            rates.append(n / (time.perf_counter() - start))
            cpu_rates.append(n / (time.process_time() - cpu))
    return statistics.median(rates), statistics.median(cpu_rates) if workers == 0 else None, n


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="loader worker counts to measure")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per measurement (after one warm-up)")
    p.add_argument("--repeat", type=int, default=4, help="clips per video and epoch (Data.iter_train)")
    p.add_argument("--img", type=int, default=64, help="Data.img_size")
    p.add_argument("--bs", type=int, default=8, help="batch size")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the main process")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    tune_cpu_allocator()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="video_loading_") as tmp:
        sources, took = build_sources(Path(tmp))
        print(f"{'source':34s} {'disk':>9s} {'written in':>10s} " +
              " ".join(f"{f'workers={w}':>22s}" for w in args.workers) + "  clips per CPU s (workers=0)")
        for name, root in sources.items():
            cells, cpu_cell = [], ""
            for workers in args.workers:
                rate, cpu_rate, n = clips_per_second(root, workers, args.epochs, args.repeat, args.img, args.bs)
                per = rate / max(workers, 1)
                rows.append({"source": name, "workers": workers, "clips_per_s": rate, "per_worker": per,
                             "clips_per_cpu_s": cpu_rate, "clips_per_epoch": n, "bytes": _bytes(root),
                             "written_s": took.get(name)})
                cells.append(f"{rate:7.1f} ({per:6.1f}/worker)")
                cpu_cell = f"{cpu_rate:8.1f}" if cpu_rate is not None else cpu_cell
            written = f"{took[name]:.1f} s" if name in took else "-"
            print(f"{name:34s} {_bytes(root) / 1e6:7.1f}MB {written:>10s} " + " ".join(f"{c:>22s}" for c in cells)
                  + f"  {cpu_cell}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": rows}, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
