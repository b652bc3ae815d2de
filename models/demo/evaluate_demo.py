"""Numbers of the demo model: the goals of issue #17 (sharp start, real motion, different futures) and the
held-out reconstruction / diversity figures, with the project's metrics.

``python -m models.demo.evaluate_demo [--data runs/demo/data]`` prints and writes ``models/demo/metrics.json``:

- motion figures (0-255 scale, 64 px, mean absolute differences), for ``--n_samples`` videos per start frame
  (fixed seed) from the two held-out start frames (sample11, sample12) and from start frames never seen in
  training (DTDB clouds): the first generated frame vs the start frame; the frame-to-frame change at every
  step, its median and max/median; the drift from frame 0 to frame 15; the difference between samples of the
  same start frame at frame 15 (mean over pairs), raw and after removing each frame's mean colour; the same
  motion figures of the real clips for reference; and each goal with its target and whether it is met;
- stage-1 reconstruction of every 17-frame window of the held-out clips (posterior mean): L1 and LPIPS;
- diversity of the held-out samples: mean L1 and LPIPS between pairs of realisations (LPIPS over the first
  ``--n_lpips`` realisations, as before), and the VGG feature diversity of the paper's protocol (``eval_diversity.py``).
LPIPS and VGG use a RANDOMLY INITIALISED VGG16 when the ImageNet weights are absent (as here): such values
are only comparable with each other, not with published LPIPS numbers.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from natsort import natsorted

from data.augment import resize_clip
from data.dataset import get_dataset
from data.frame_io import read_clip
from data.images import read_images
from metrics.diversity import vgg_diversity
from metrics.lpips_metric import load_lpips, load_vgg16_features, lpips_per_video
from stage1_VAE.config import STAGE1_SCHEMA
from stage2_cINN.arguments import add_precision_argument
from stage2_cINN.pipeline import load_model
from utils.atomic import atomic_write_text
from utils.command import existing_folder, int_at_least, parser, run
from utils.config import validate_config
from utils.distributed import seed_everything

REPO = Path(__file__).resolve().parents[2]
SEED = 249
HELD_OUT_STARTS = ("assets/GT_samples/demo/heldout_sample11.jpg", "assets/GT_samples/demo/heldout_sample12.jpg")
UNSEEN_STARTS = ("assets/GT_samples/DTDB/clouds/sample1.png", "assets/GT_samples/DTDB/clouds/sample8.png")
REAL_CLIPS = REPO / "assets" / "GT_samples" / "landscape" / "transfer"
LAST = 15  # the drift and the between-sample difference are measured at frame 15 (the 16th generated frame)


@dataclass(frozen=True)
class Goal:
    """One measured goal of issue #17: ``low <= figures[key] <= high`` (either bound may be open)."""

    text: str
    key: str
    low: float | None = None
    high: float | None = None

    def met(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    @property
    def target(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.low:g} .. {self.high:g}"
        return f">= {self.low:g}" if self.low is not None else f"<= {self.high:g}"


GOALS = (
    Goal("first generated frame vs start frame", "first", high=4.0),
    Goal("frame-to-frame change, smallest step", "step_min", low=1.1),
    Goal("frame-to-frame change, largest step", "step_max", high=4.4),
    Goal("largest step / median step", "step_max_over_median", high=2.0),
    Goal("drift frame 0 -> 15", "drift", low=6.4),
    Goal("between-sample difference at frame 15", "spread", low=3.0),
    Goal("  same, each frame's mean colour removed", "spread_no_colour", low=3.0),
)


def to_255(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 255] (float)."""
    return (x.float() + 1.0) * 127.5


def _pairwise_mean_abs(frames: torch.Tensor) -> float:
    """Mean |a - b| over every pair of different samples: frames (B, N, ...) -> float."""
    i, j = torch.triu_indices(frames.shape[1], frames.shape[1], 1)
    return float((frames[:, i] - frames[:, j]).abs().mean())


def motion_figures(videos: torch.Tensor, x0: torch.Tensor | None = None) -> dict:
    """Figures on the 0-255 scale of videos (B, N, T, 3, H, W) in [-1, 1], N samples of each of B start frames
    x0 (B, 3, H, W): ``first`` (frame 0 vs x0), ``steps`` (mean |frame t - frame t-1|, t = 1..T-1) with their
    median, min, max and max/median, ``drift`` (|frame 15 - frame 0|), ``spread`` (|frame 15 of sample i -
    frame 15 of sample j| over pairs i < j) and ``spread_no_colour`` (the same after subtracting each frame's
    mean colour). ``first`` needs x0; the spreads need N >= 2."""
    v = to_255(videos)
    steps = (v[:, :, 1:] - v[:, :, :-1]).abs().mean(dim=(0, 1, 3, 4, 5))  # (T-1,)
    median = float(steps.median())
    out = {"steps": [round(float(s), 4) for s in steps], "step_median": median, "step_min": float(steps.min()),
           "step_max": float(steps.max()), "step_max_over_median": float(steps.max()) / max(median, 1e-8),
           "drift": float((v[:, :, LAST] - v[:, :, 0]).abs().mean())}
    if x0 is not None:
        out = {"first": float((v[:, :, 0] - to_255(x0)[:, None]).abs().mean()), **out}
    if v.shape[1] >= 2:
        last = v[:, :, LAST]  # (B, N, 3, H, W)
        out["spread"] = _pairwise_mean_abs(last)
        out["spread_no_colour"] = _pairwise_mean_abs(last - last.mean(dim=(-2, -1), keepdim=True))
    return out


def real_clip_figures(size: int, root: Path = REAL_CLIPS, n_frames: int = LAST + 1) -> dict:
    """:func:`motion_figures` of the first ``n_frames`` frames of every real clip under ``root`` (one sample each)."""
    clips = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        frames = natsorted((p for p in folder.iterdir() if p.suffix.lower() == ".jpg"), key=lambda p: p.name)
        clips.append(resize_clip(read_clip(frames[:n_frames]).float() / 255.0, size) * 2 - 1)  # (T, 3, S, S)
    figures = motion_figures(torch.stack(clips)[:, None])
    figures["clips"] = len(clips)
    return figures


def check_goals(groups: dict[str, dict]) -> list[dict]:
    """Each goal with its target, the value of every group and whether every group meets it."""
    rows = []
    for goal in GOALS:
        values = {name: figures[goal.key] for name, figures in groups.items()}
        rows.append({"goal": goal.text.strip(), "key": goal.key, "target": goal.target, **values,
                     "met": all(goal.met(v) for v in values.values())})
    return rows


def held_out_windows(pipe, data_root: Path, stride: int = 4) -> torch.Tensor:
    """Every 17-frame window (start stride ``stride``) of the held-out clips: (N, 17, 3, S, S) in [-1, 1]."""
    cfg = validate_config({**pipe.config_stage1, "Data": {**pipe.config_stage1["Data"], "data_path": str(data_root),
                                                          "aug": False}}, STAGE1_SCHEMA)
    ds = get_dataset(cfg, "test")  # the held-out clips, eval transform (resize + normalise)
    n = ds.sequence_length
    return torch.stack([ds.transform(read_clip([video.path / f for f in video.frames[s:s + n]]))
                        for video in ds.videos for s in range(0, len(video) - n + 1, stride)])


def _print_report(out: dict) -> None:
    groups = [g for g in out["motion"] if g in out["goals"][0]]
    print(f"{'goal (0-255, 64 px)':42s} {'target':>10s} " + " ".join(f"{g:>10s}" for g in groups) + "   met")
    for row in out["goals"]:
        print(f"{row['goal']:42s} {row['target']:>10s} "
              + " ".join(f"{row[g]:10.2f}" for g in groups)
              + f"   {'yes' if row['met'] else 'NO'}")
    for g, fig in out["motion"].items():
        print(f"steps {g:10s} " + " ".join(f"{s:.2f}" for s in fig["steps"]))
    for k, v in out.items():
        if not isinstance(v, (dict, list)):
            print(f"{k:28s} {v}")


def _files(names: Sequence[str]) -> list[Path]:
    return [p if p.is_absolute() else REPO / p for p in map(Path, names)]


@torch.no_grad()
def main(argv: Sequence[str] | None = None) -> dict:
    p = parser(__doc__)
    p.add_argument("--model", type=existing_folder, default=REPO / "models" / "demo" / "stage2")
    p.add_argument("--data", type=existing_folder, default=REPO / "runs" / "demo" / "data")
    p.add_argument("--n_samples", type=int_at_least(2), default=8, help="videos per start frame")
    p.add_argument("--n_lpips", type=int_at_least(2), default=5,
                   help="realisations per start frame in the LPIPS diversity")
    p.add_argument("--held_out", nargs="+", default=list(HELD_OUT_STARTS), help="held-out start frames")
    p.add_argument("--unseen", nargs="+", default=list(UNSEEN_STARTS), help="start frames never seen in training")
    add_precision_argument(p)
    p.add_argument("--out", type=Path, default=REPO / "models" / "demo" / "metrics.json")
    args = p.parse_args(argv)
    seed_everything(SEED)
    pipe = load_model(args.model, precision=args.precision)
    starts = {"held_out": _files(args.held_out), "unseen": _files(args.unseen)}
    x0 = read_images(starts["held_out"] + starts["unseen"], pipe.img_size)  # as generate_samples reads them
    videos = pipe.sample_many(x0, args.n_samples, generator=torch.Generator().manual_seed(SEED))  # (B, N, T, ..)
    n_held = len(starts["held_out"])
    motion = {"held_out": motion_figures(videos[:n_held], x0[:n_held]),
              "unseen": motion_figures(videos[n_held:], x0[n_held:])}
    out = {"seed": SEED, "n_samples": args.n_samples,
           "start_frames": {k: [f.relative_to(REPO).as_posix() if f.is_relative_to(REPO) else str(f) for f in v]
                            for k, v in starts.items()},
           "goals": check_goals(motion),
           "motion": {**motion, "real_clips": real_clip_figures(pipe.img_size)}}

    lp = load_lpips(allow_random_backbone=True)
    seqs = held_out_windows(pipe, args.data)
    x0w, x = seqs[:, 0], seqs[:, 1:]
    _, mu, _ = pipe.encoder(x)
    rec = pipe.decoder(x0w, mu)
    out.update({"held_out_windows": int(len(seqs)), "recon_L1": float((rec - x).abs().mean()),
                "recon_LPIPS_randomVGG": float(lpips_per_video(x, rec, lp).mean())})
    reals = videos[:n_held]  # (B, N, T, 3, H, W)
    out["diversity_L1"] = _pairwise_mean_abs(reals)  # [-1, 1] scale, as before
    n_lp = min(args.n_lpips, args.n_samples)
    lps = [float(lpips_per_video(reals[:, i], reals[:, j], lp).mean())
           for i, j in itertools.combinations(range(n_lp), 2)]
    out["diversity_LPIPS_randomVGG"] = sum(lps) / len(lps)
    vgg = load_vgg16_features(allow_random_backbone=True)
    out["diversity_VGG_randomVGG"] = float(vgg_diversity(reals.transpose(0, 1), vgg, size=None))
    out["note"] = ("motion figures: 0-255 scale at 64 px, mean absolute differences; recon/diversity L1 on the "
                   "[-1, 1] scale; LPIPS/VGG with a randomly initialised VGG16 (no ImageNet weights available)")
    atomic_write_text(json.dumps(out, indent=2), args.out)
    _print_report(out)
    return out


if __name__ == "__main__":
    run(main)
