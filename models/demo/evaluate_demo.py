"""Numbers of the demo model on the held-out clips (sample11, sample12), with the project's metrics.

``python -m models.demo.evaluate_demo [--data runs/demo/data]`` prints and writes
``models/demo/metrics.json``:
- stage-1 reconstruction of every 17-frame window of the held-out clips (posterior mean): L1 and LPIPS;
- diversity of samples: for each held-out start frame, ``--n_realiz`` videos; the mean L1 and LPIPS between
  every pair of different realisations, and the VGG feature diversity of SPEC 6;
- as a reference point, the same distances between each real clip and its reconstruction.
LPIPS and VGG use a RANDOMLY INITIALISED VGG16 when the ImageNet weights are absent (as here): such values
are only comparable with each other, not with published LPIPS numbers.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Sequence

import torch

import cli
from data import get_dataset
from metrics.diversity import vgg_diversity
from metrics.lpips_metric import load_lpips, load_vgg16_features, lpips_per_video
from stage2_cINN.pipeline import load_model
from utils.config import validate_config
from utils.distributed import seed_everything

REPO = Path(__file__).resolve().parents[2]


def held_out_windows(pipe, data_root: Path, stride: int = 4) -> torch.Tensor:
    """Every 17-frame window (start stride ``stride``) of the held-out clips: (N, 17, 3, S, S) in [-1, 1]."""
    from data.frame_io import read_clip

    cfg = validate_config({**pipe.config_stage1, "Data": {**pipe.config_stage1["Data"], "data_path": str(data_root),
                                                          "aug": False}}, "stage1")
    ds = get_dataset(cfg, "test")  # the held-out clips, eval transform (resize + normalise)
    n = ds.sequence_length
    return torch.stack([ds.transform(read_clip([video.path / f for f in video.frames[s:s + n]]))
                        for video in ds.videos for s in range(0, len(video) - n + 1, stride)])


@torch.no_grad()
def main(argv: Sequence[str] | None = None) -> dict:
    p = cli.parser(__doc__)
    p.add_argument("--model", type=cli.existing_folder, default=REPO / "models" / "demo" / "stage2")
    p.add_argument("--data", type=cli.existing_folder, default=REPO / "runs" / "demo" / "data")
    p.add_argument("--n_realiz", type=cli.int_at_least(2), default=5)
    p.add_argument("--out", type=Path, default=REPO / "models" / "demo" / "metrics.json")
    args = p.parse_args(argv)
    seed_everything(249)
    pipe = load_model(args.model)
    lp = load_lpips(allow_random_backbone=True)
    seqs = held_out_windows(pipe, args.data)
    x0, x = seqs[:, 0], seqs[:, 1:]
    _, mu, _ = pipe.encoder(x)
    rec = pipe.decoder(x0, mu)
    out = {"held_out_windows": int(len(seqs)),
           "recon_L1": float((rec - x).abs().mean()),
           "recon_LPIPS_randomVGG": float(lpips_per_video(x, rec, lp).mean())}
    starts = torch.stack([seqs[0, 0], seqs[-1, 0]])  # the first frame of each held-out clip
    reals = pipe.sample(starts.repeat_interleave(args.n_realiz, 0), 16).unflatten(0, (len(starts), args.n_realiz))
    l1, lps = [], []
    for i, j in itertools.combinations(range(args.n_realiz), 2):
        a, b = reals[:, i], reals[:, j]
        l1.append(float((a - b).abs().mean()))
        lps.append(float(lpips_per_video(a, b, lp).mean()))
    out["diversity_L1"] = sum(l1) / len(l1)
    out["diversity_LPIPS_randomVGG"] = sum(lps) / len(lps)
    vgg = load_vgg16_features(allow_random_backbone=True)
    out["diversity_VGG_randomVGG"] = float(vgg_diversity(reals.transpose(0, 1), vgg, size=None))
    out["n_realiz"] = args.n_realiz
    out["note"] = "LPIPS/VGG with a randomly initialised VGG16 (no ImageNet weights available)"
    args.out.write_text(json.dumps(out, indent=2))
    for k, v in out.items():
        print(f"{k:28s} {v}")
    return out


if __name__ == "__main__":
    cli.run(main)
