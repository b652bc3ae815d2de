"""Sample videos from start frames: ``python generate_samples.py -dataset landscape -gpu 0 -seq_length 16``.

Reads every image in ``assets/GT_samples/<dataset>[/<texture>]`` (or ``-images``: an image, a video or a folder of
them; a video gives its first frame) and writes ``results.gif`` (per row: the start frame, then ``-n_samples``
realisations), ``results.mp4`` and ``results.png`` (the frames of each video as a strip) to
``assets/results/<dataset>/`` (or ``-out DIR``). With ``-ckpt_path`` the dataset may be left out (the model's config
names it); a model trained on your own videos (``Data.dataset: folder``) takes the first frames of its test split's
videos by default. ``-per_sample mp4|frames|both`` also writes every sample on its own, named
``<start frame>_<k>`` (k = 0 .. n_samples-1): ``<out>/videos/<name>.mp4`` and/or ``<out>/frames/<name>/frame<t>.png``
(lossless), each a folder that ``python -m metrics.compare --fake`` reads.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from data.formats import unique_names
from data.registry import DatasetInfo, dataset_info
from stage2_cINN.arguments import add_model_arguments, data_root, finish_model_arguments, image_source, model_dir
from utils.atomic import check_writable_folder
from utils.command import parser, positive_float, positive_int, run
from utils.errors import ArgumentError

if TYPE_CHECKING:  # torch is imported once the arguments are checked
    import torch

logger = logging.getLogger("generate_samples")

PER_SAMPLE = {"none": (), "mp4": ("mp4",), "frames": ("frames",), "both": ("mp4", "frames")}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__)
    add_model_arguments(p, "model folder with config_stage2.yaml and cINN.pth")
    p.add_argument("-bs", type=positive_int, default=6, help="start frames per batch (each with -n_samples videos)")
    p.add_argument("-images", default=None, type=image_source,
                   help="a start frame, a video (its first frame), or a folder of them (default: "
                        "assets/GT_samples/<dataset>; for a 'folder' model its test split)")
    p.add_argument("-out", default=None, type=Path, help="output folder (default: assets/results/<dataset>)")
    p.add_argument("-n_samples", type=positive_int, default=4, help="realisations per start frame")
    p.add_argument("-seed", type=int, default=42, help="random seed of the sampled residuals")
    p.add_argument("-fps", type=positive_float, default=3.0, help="frames per second of the GIF/MP4")
    p.add_argument("-per_sample", choices=tuple(PER_SAMPLE), default="none",
                   help="also write each sample on its own: <out>/videos/<start>_<k>.mp4 (mp4), "
                        "<out>/frames/<start>_<k>/frame<t>.png (frames) or both; ready for metrics.compare")
    return finish_model_arguments(p, p.parse_args(argv))


def generate(pipe, x0: "torch.Tensor", n_samples: int, seq_length: int, bs: int, seed: int,
             cond: "torch.Tensor | None" = None) -> "torch.Tensor":
    """(N, K, T, 3, H, W): K realisations for each of N start frames, reproducible from ``seed``.

    Each start frame is embedded and its SPADE conditioning computed once for all of its samples
    (``Pipeline.sample_many``); ``bs`` start frames are processed per call. ``cond`` (N, 3): the BAIR
    end-effector positions of a control model.
    """
    import torch
    from tqdm import tqdm

    gen = torch.Generator().manual_seed(seed)
    residual = torch.randn(x0.shape[0], n_samples, pipe.z_dim, generator=gen)
    out = []
    with torch.no_grad():
        for i in tqdm(range(0, x0.shape[0], bs), desc="sampling", leave=False):
            c = None if cond is None else cond[i:i + bs]
            out.append(pipe.sample_many(x0[i:i + bs], n_samples, seq_length, residual=residual[i:i + bs],
                                        cond=c).cpu())
    return torch.cat(out)


def write_results(x0: "torch.Tensor", videos: "torch.Tensor", out: Path, fps: float) -> Path:
    """results.gif / .mp4 (rows: start frame + samples) and results.png (each video's frames as a strip)."""
    import torch

    from utils.media import frame_strip, grid, save_gif, save_mp4, save_png, side_by_side

    rows = [side_by_side([x, *vs]) for x, vs in zip(x0, videos)]
    video = grid(rows)  # (T, 3, rows*H, cols*W)
    gif = save_gif(video, out / "results.gif", fps=fps)
    save_mp4(video, out / "results.mp4", fps=fps)
    strips = [frame_strip(v) for vs in videos for v in vs]  # each (3, H, T*W)
    save_png(torch.cat(strips, dim=-2), out / "results.png")
    return gif


def write_per_sample(names: Sequence[str], videos: "torch.Tensor", out: Path, kinds: Sequence[str],
                     fps: float) -> list[Path]:
    """Each sample (videos: (N, K, T, 3, H, W)) on its own, named ``<name>_<k>``: ``out/videos/<name>_<k>.mp4`` and/or
    ``out/frames/<name>_<k>/frame<t>.png`` (the generated frames, not the start frame); the files written."""
    from tqdm import tqdm

    from utils.media import save_mp4, save_png

    written = []
    for name, samples in tqdm(list(zip(names, videos)), desc="writing samples", leave=False):
        for k, video in enumerate(samples):
            if "mp4" in kinds:
                mp4 = save_mp4(video, out / "videos" / f"{name}_{k}.mp4", fps=fps)
                if mp4 is None:
                    raise ArgumentError("-per_sample mp4: no MP4 writer (imageio-ffmpeg); use -per_sample frames")
                written.append(mp4)
            if "frames" in kinds:
                folder = out / "frames" / f"{name}_{k}"
                written += [save_png(frame, folder / f"frame{t}.png") for t, frame in enumerate(video)]
    return written


def start_frame_source(args: argparse.Namespace, info: DatasetInfo, folder: Path) -> Path:
    """``-images``; else the dataset's sample frames; for a model trained on your own videos (``folder``) the first
    frames of its test split's videos (``Data.data_path`` of its config)."""
    if args.images:
        return args.images
    if info.has_models or info.layout is None:
        return info.image_dir(args.texture)
    root = data_root(folder)
    if root is None:
        raise ArgumentError(f"-dataset {info.name}: give -images (an image, a video or a folder of them): the model's "
                            f"data folder (Data.data_path of {folder}/config_stage2.yaml) was not found")
    return root / "test" if (root / "test").is_dir() else root


def main(argv: Sequence[str] | None = None) -> Path:
    args = parse_args(argv)
    info = dataset_info(args.dataset)
    folder = model_dir(args)
    files_from = start_frame_source(args, info, folder)
    out = check_writable_folder(args.out or info.results_dir(args.texture), "-out")  # before any work
    # torch and the model's code are imported once the arguments are checked (fast --help and argument errors)
    from data.images import check_start_frames, list_start_frames, read_images
    from stage2_cINN.pipeline import load_model
    from utils.device import get_device

    files = check_start_frames(list_start_frames(files_from))  # a damaged video stops here, before the model loads
    pipe = load_model(folder, get_device(args.gpu), args.precision)
    if pipe.control:
        raise ArgumentError(f"-ckpt_path {folder} is an end-effector control model: use visualize_endpoint.py")
    x0 = read_images(files, pipe.img_size)
    videos = generate(pipe, x0, args.n_samples, args.seq_length, args.bs, args.seed)
    gif = write_results(x0, videos, out, args.fps)
    kinds = PER_SAMPLE[args.per_sample]
    if kinds:
        write_per_sample(unique_names(files), videos, out, kinds, args.fps)
        logger.info("each sample on its own in %s", ", ".join(str(out / k.replace("mp4", "videos")) for k in kinds))
    logger.info("%d start frames x %d samples x %d frames -> %s", len(files), args.n_samples, args.seq_length, gif)
    return gif


if __name__ == "__main__":
    run(main)
