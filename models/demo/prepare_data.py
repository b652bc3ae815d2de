"""Demo helpers: lay out the sample clips as a 'folder' dataset, and export trained runs as a model folder.

``python -m models.demo.prepare_data --out runs/demo/data`` links assets/GT_samples/landscape/transfer/*
into ``<out>/{train,eval,test}`` (sample11, sample12 held out for eval/test).
``python -m models.demo.prepare_data --export runs/demo --to models/demo`` copies the released-layout
files of the three runs (configs and the inference checkpoints, weights stored as float16 to keep the
repository small; they load into float32 modules) and points config_stage2.yaml at models/demo/.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

import yaml

from utils import command
from utils.checkpoint import atomic_save, load_checkpoint

REPO = Path(__file__).resolve().parents[2]
CLIPS = REPO / "assets" / "GT_samples" / "landscape" / "transfer"
HELD_OUT = ("sample11", "sample12")


def make_dataset(out: Path, size: int = 96) -> None:
    """Write each clip's frames, resized to ``size`` x ``size`` (the loader resizes to a square anyway;
    small files keep CPU data loading cheap), into train/ or eval/ + test/."""
    import cv2
    from natsort import natsorted

    for clip in sorted(p for p in CLIPS.iterdir() if p.is_dir()):
        splits = ("eval", "test") if clip.name in HELD_OUT else ("train",)
        frames = natsorted(p.name for p in clip.iterdir() if p.suffix.lower() == ".jpg")
        for split in splits:
            dst = out / split / clip.name
            dst.mkdir(parents=True, exist_ok=True)
            for k, name in enumerate(frames):
                img = cv2.imread(str(clip / name), cv2.IMREAD_COLOR)
                small = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
                cv2.imwrite(str(dst / f"frame{k}.png"), small)
    print(f"demo data in {out}: {len(list((out / 'train').iterdir()))} train clips, held out {HELD_OUT}")


def _half(sd: dict) -> dict:
    return {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}


def export(runs: Path, dest: Path) -> None:
    """Copy the inference files of the three runs into ``dest/{stage1,stage2_AE,stage2}``."""
    files = {"stage1": ["config_stage1.yaml", "best_PFVD_GEN.pth", "best_PFVD_ENC.pth"],
             "stage2_AE": ["config_stage2_AE.yaml", "Encoder_stage2.pth"],
             "stage2": ["config_stage2.yaml", "cINN.pth"]}
    for folder, names in files.items():
        (dest / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            src = runs / folder / name
            if name.endswith(".yaml"):
                shutil.copy(src, dest / folder / name)
            else:
                ckpt = load_checkpoint(src)
                atomic_save({"epoch": ckpt.get("epoch"), "state_dict": _half(ckpt["state_dict"])}
                            if "epoch" in ckpt else {"state_dict": _half(ckpt["state_dict"])}, dest / folder / name)
    cfg_path = dest / "stage2" / "config_stage2.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    rel = dest.resolve().relative_to(REPO).as_posix()
    cfg["First_stage_model"]["model_path"] = rel
    cfg["Conditioning_Model"]["model_path"] = rel
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    print(f"exported {runs} -> {dest}")


def main(argv: Sequence[str] | None = None) -> None:
    p = command.parser(__doc__)
    p.add_argument("--out", type=Path, help="where to lay out the demo dataset")
    p.add_argument("--export", type=command.existing_folder, help="runs folder holding stage1/, stage2_AE/, stage2/")
    p.add_argument("--to", type=Path, default=REPO / "models" / "demo")
    args = p.parse_args(argv)
    if args.out:
        make_dataset(args.out)
    if args.export:
        export(args.export, args.to)


if __name__ == "__main__":
    command.run(main)
