"""Quality of ``load_model(..., precision="bf16")``: bf16 samples against fp32 samples from the same start
frames and residuals (PSNR on the [-1, 1] scale, peak-to-peak 2; max and mean absolute error).

``python benchmarks/bf16_quality.py [--model models/demo/stage2] [--bair]`` (``--bair``: also a BAIR-size
model with random weights in the released layout, written to a temp folder as ``--against-original`` does).
For reference it also prints the PSNR between fp32 samples of two different residuals.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def psnr(a, b) -> float:
    """PSNR in dB of videos in [-1, 1] (peak-to-peak 2)."""
    import torch

    return float(10 * torch.log10(4 / (a.double() - b.double()).pow(2).mean()))


def compare(model_dir: Path, name: str, n: int, seed: int) -> dict:
    """fp32 vs bf16 samples of ``n`` start frames (random frames in [-1, 1]) from the same residuals."""
    import torch

    from stage2_cINN.pipeline import load_model
    from utils.device import get_device

    device = get_device(-1)
    pipes = {p: load_model(model_dir, device, precision=p) for p in ("fp32", "bf16")}
    g = torch.Generator().manual_seed(seed)
    size = pipes["fp32"].img_size
    x0 = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    res, other = (torch.randn(n, pipes["fp32"].z_dim, generator=g) for _ in range(2))
    ref = pipes["fp32"].sample(x0, 16, residual=res)
    low = pipes["bf16"].sample(x0, 16, residual=res)
    out = {"model": name, "psnr_db": psnr(ref, low), "max_abs": float((ref - low).abs().max()),
           "mean_abs": float((ref - low).abs().mean()),
           "psnr_other_residual_db": psnr(ref, pipes["fp32"].sample(x0, 16, residual=other))}
    print(f"{name:28s} bf16 vs fp32: PSNR {out['psnr_db']:6.2f} dB, max |diff| {out['max_abs']:.4f}, mean "
          f"|diff| {out['mean_abs']:.5f}  (fp32, another residual: {out['psnr_other_residual_db']:.2f} dB)",
          flush=True)
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=ROOT / "models" / "demo" / "stage2")
    p.add_argument("--bair", action="store_true", help="also a random-weight BAIR-size model")
    p.add_argument("--n", type=int, default=4, help="start frames")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rows = [compare(args.model, str(args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT) else args.model),
                    args.n, args.seed)]
    if args.bair:
        from against_original import write_released_model
        from bench import CONFIGS

        with tempfile.TemporaryDirectory() as tmp:
            rows.append(compare(write_released_model(Path(tmp), CONFIGS["bair"][:3]), "BAIR size, random weights",
                                args.n, args.seed))
    return rows


if __name__ == "__main__":
    main()
