"""Steer the robot arm's endpoint (BAIR, control model):
``python visualize_endpoint.py -dataset bair -gpu 0 -data_path <bair root>``.

For test clips of BAIR, the end-effector position at the clip's last frame is the condition; several
videos are sampled for the same start frame and endpoint. Writes ``endpoint_<i>.gif`` (real clip, then
the samples) and ``endpoint_<i>.png`` (the last frames, which should agree on the arm's position) to
``assets/results/bair/endpoint/`` (or ``-out DIR``). Uses ``models/bair/stage2_control/``.
"""
from __future__ import annotations

import argparse
import copy
import logging
import sys
from pathlib import Path
from typing import Sequence

import torch

from utils.device import add_gpu_argument, get_device
from utils.inference import REPO_ROOT, canonical_dataset, default_model_dir, load_pipeline_or_exit
from utils.logging import setup_logging
from utils.video import save_gif, save_png, side_by_side

logger = logging.getLogger("visualize_endpoint")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-dataset", default="bair", help="only bair has an end-effector control model")
    add_gpu_argument(p)
    p.add_argument("-data_path", required=True, help="BAIR root with train/eval/test folders (data/bair/convert_bair.py)")
    p.add_argument("-ckpt_path", "-chkpt", default=None, help="control model folder (default models/bair/stage2_control)")
    p.add_argument("-n_examples", type=int, default=8, help="test clips to use")
    p.add_argument("-n_samples", type=int, default=4, help="videos per clip and endpoint")
    p.add_argument("-seq_length", type=int, default=16)
    p.add_argument("-seed", type=int, default=42)
    p.add_argument("-out", default=None, help="output folder (default assets/results/bair/endpoint)")
    p.add_argument("-fps", type=float, default=3.0)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[Path]:
    from data import get_dataset

    args = parse_args(argv)
    setup_logging()
    if canonical_dataset(args.dataset) != "bair":
        raise SystemExit("endpoint control exists for BAIR only (-dataset bair)")
    device = get_device(args.gpu)
    model_dir = Path(args.ckpt_path) if args.ckpt_path else default_model_dir("bair", control=True)
    pipe = load_pipeline_or_exit(model_dir, device)
    if not pipe.control:
        raise SystemExit(f"{model_dir} was not trained with Training.control: True")
    cfg = copy.deepcopy(pipe.config)
    cfg["Data"]["data_path"] = args.data_path
    cfg["Data"]["sequence_length"] = args.seq_length + 1
    dataset = get_dataset(cfg, "test")
    gen = torch.Generator().manual_seed(args.seed)
    out = Path(args.out) if args.out else REPO_ROOT / "assets" / "results" / "bair" / "endpoint"
    written = []
    for i in range(min(args.n_examples, len(dataset))):
        item = dataset[i]
        seq, cond = item["seq"], item["cond"]  # (T, 3, H, W), (3,)
        x0 = seq[0].unsqueeze(0).expand(args.n_samples, -1, -1, -1)
        residual = torch.randn(args.n_samples, pipe.z_dim, generator=gen)
        videos = pipe.sample(x0, args.seq_length, residual=residual, cond=cond.expand(args.n_samples, 3)).cpu()
        written.append(save_gif(side_by_side([seq[1:], *videos]), out / f"endpoint_{i}.gif", fps=args.fps))
        save_png(side_by_side([seq[-1], *videos[:, -1]])[0], out / f"endpoint_{i}.png")
    logger.info("wrote %d endpoint GIFs/PNGs to %s", len(written), out)
    return written


if __name__ == "__main__":
    main(sys.argv[1:])
