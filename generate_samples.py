"""Sample videos from start frames: ``python generate_samples.py -dataset landscape -gpu 0 -seq_length 16``.

Reads every jpg/png/jpeg in ``assets/GT_samples/<dataset>[/<texture>]`` (or ``-images DIR``) and writes
``results.gif`` (per row: the start frame, then ``-n_samples`` realisations), ``results.mp4`` and
``results.png`` (the frames of each video as a strip) to ``assets/results/<dataset>/`` (or ``-out DIR``).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

import torch
from tqdm import tqdm

from utils.device import add_gpu_argument, get_device
from utils.inference import (
    REPO_ROOT, canonical_dataset, default_image_dir, default_model_dir, list_images, load_pipeline_or_exit,
    read_images,
)
from utils.logging import setup_logging
from utils.video import frame_strip, grid, save_gif, save_mp4, save_png, side_by_side

logger = logging.getLogger("generate_samples")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-dataset", required=True, help="bair | landscape | iPER | DTDB | demo (case-insensitive)")
    add_gpu_argument(p)
    p.add_argument("-seq_length", type=int, default=16, help="frames per generated video")
    p.add_argument("-texture", default=None, help="DTDB texture: fire | clouds | vegetation | waterfall")
    p.add_argument("-ckpt_path", "-chkpt", default=None, help="model folder with config_stage2.yaml and cINN.pth")
    p.add_argument("-bs", type=int, default=6, help="start frames per batch (each with -n_samples videos)")
    p.add_argument("-images", default=None, help="folder of start frames (default: assets/GT_samples/<dataset>)")
    p.add_argument("-out", default=None, help="output folder (default: assets/results/<dataset>)")
    p.add_argument("-n_samples", type=int, default=4, help="realisations per start frame")
    p.add_argument("-seed", type=int, default=42, help="random seed of the sampled residuals")
    p.add_argument("-fps", type=float, default=3.0, help="frames per second of the GIF/MP4")
    return p.parse_args(argv)


@torch.no_grad()
def generate(pipe, x0: torch.Tensor, n_samples: int, seq_length: int, bs: int, seed: int,
             cond: torch.Tensor | None = None) -> torch.Tensor:
    """(N, K, T, 3, H, W): K realisations for each of N start frames, reproducible from ``seed``.

    Each start frame is embedded and its SPADE conditioning computed once for all of its samples
    (``Pipeline.sample_many``); ``bs`` start frames are processed per call. ``cond`` (N, 3): the BAIR
    end-effector positions of a control model.
    """
    gen = torch.Generator().manual_seed(seed)
    residual = torch.randn(x0.shape[0], n_samples, pipe.z_dim, generator=gen)
    out = []
    for i in tqdm(range(0, x0.shape[0], bs), desc="sampling", leave=False):
        c = None if cond is None else cond[i:i + bs]
        out.append(pipe.sample_many(x0[i:i + bs], n_samples, seq_length, residual=residual[i:i + bs], cond=c).cpu())
    return torch.cat(out)


def write_results(x0: torch.Tensor, videos: torch.Tensor, out: Path, fps: float) -> Path:
    """results.gif / .mp4 (rows: start frame + samples) and results.png (each video's frames as a strip)."""
    rows = [side_by_side([x, *vs]) for x, vs in zip(x0, videos)]
    video = grid(rows)  # (T, 3, rows*H, cols*W)
    gif = save_gif(video, out / "results.gif", fps=fps)
    save_mp4(video, out / "results.mp4", fps=fps)
    strips = [frame_strip(v) for vs in videos for v in vs]  # each (3, H, T*W)
    save_png(torch.cat(strips, dim=-2), out / "results.png")
    return gif


def main(argv: Sequence[str] | None = None) -> Path:
    args = parse_args(argv)
    setup_logging()
    dataset = canonical_dataset(args.dataset)
    device = get_device(args.gpu)
    model_dir = Path(args.ckpt_path) if args.ckpt_path else default_model_dir(dataset, args.texture)
    image_dir = Path(args.images) if args.images else default_image_dir(dataset, args.texture)
    files = list_images(image_dir)
    pipe = load_pipeline_or_exit(model_dir, device)
    if pipe.control:
        raise SystemExit(f"{model_dir} is an end-effector control model: use visualize_endpoint.py")
    x0 = read_images(files, pipe.img_size)
    videos = generate(pipe, x0, args.n_samples, args.seq_length, args.bs, args.seed)
    out = Path(args.out) if args.out else REPO_ROOT / "assets" / "results" / (
        dataset if dataset != "DTDB" else f"DTDB_{args.texture}")
    gif = write_results(x0, videos, out, args.fps)
    logger.info("%d start frames x %d samples x %d frames -> %s", len(files), args.n_samples, args.seq_length, gif)
    return gif


if __name__ == "__main__":
    main(sys.argv[1:])
