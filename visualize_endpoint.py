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
from pathlib import Path
from typing import Sequence

from data.registry import dataset_info
from stage2_cINN.arguments import add_model_arguments, model_dir
from utils.atomic import check_writable_folder
from utils.command import existing_folder, parser, positive_float, positive_int, run
from utils.errors import ArgumentError

logger = logging.getLogger("visualize_endpoint")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__)
    add_model_arguments(p, "control model folder (default models/bair/stage2_control)",
                        "bair (only bair has an end-effector control model)", dataset_default="bair")
    p.add_argument("-data_path", required=True, type=existing_folder,
                   help="BAIR root with train/eval/test folders (data/bair/convert_bair.py)")
    p.add_argument("-n_examples", type=positive_int, default=8, help="test clips to use")
    p.add_argument("-n_samples", type=positive_int, default=4, help="videos per clip and endpoint")
    p.add_argument("-seed", type=int, default=42, help="random seed of the sampled residuals")
    p.add_argument("-out", default=None, type=Path, help="output folder (default assets/results/bair/endpoint)")
    p.add_argument("-fps", type=positive_float, default=3.0, help="frames per second of the GIF")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[Path]:
    args = parse_args(argv)
    if args.dataset != "bair":
        raise ArgumentError(f"-dataset {args.dataset}: endpoint control exists for BAIR only (-dataset bair)")
    folder = model_dir(args, control=True)
    out = check_writable_folder(args.out or dataset_info("bair").results_dir(None, "endpoint"), "-out")
    # torch and the model's code are imported once the arguments are checked (fast --help and argument errors)
    import torch

    from data.dataset import get_dataset
    from stage2_cINN.pipeline import load_model
    from utils.device import get_device
    from utils.media import save_gif, save_png, side_by_side

    pipe = load_model(folder, get_device(args.gpu), args.precision)
    if not pipe.control:
        raise ArgumentError(f"-ckpt_path {folder} was not trained with Training.control: True")
    cfg = copy.deepcopy(pipe.config)
    cfg["Data"]["data_path"] = str(args.data_path)
    cfg["Data"]["sequence_length"] = args.seq_length + 1
    dataset = get_dataset(cfg, "test")
    gen = torch.Generator().manual_seed(args.seed)
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
    run(main)
