"""One rank of a two-rank run (gloo on the CPU) started by tests/test_eval.py: the three evaluation entry
points on the random-weight backbones of ``tests.eval_helpers``, then a rank that dies.

``torchrun --nproc_per_node 2 tests/eval_dist_worker.py <config.json>`` (the test sets torchrun's
environment variables itself); the config
holds ``weights`` (a -weights_dir), the argument lists ``synthesis``, ``diversity``, ``compare`` and
``dead`` (a compare run during which rank 1 exits: rank 0 must end with an error). With ``fake_gpu`` every run
uses the fake GPU of ``tests/fake_gpu.py`` (``-gpu 0``: networks, clips and features on ``fakegpu:0``, where a
tensor on the wrong device fails as on CUDA).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, as pytest.ini does

import torch  # noqa: E402

ALL_METRICS = ("FVD", "DTFVD", "FID", "LPIPS", "VGG", "I3D", "DTI3D")


def on_gpu_0(argv: list[str]) -> list[str]:
    """``argv`` with its ``-gpu``/``--gpu`` value set to 0 (the fake GPU)."""
    return [("0" if i and argv[i - 1] in ("-gpu", "--gpu") else a) for i, a in enumerate(argv)]


def main(config_path: str) -> None:
    from tests.fake_gpu import fake_gpu
    from utils.distributed import init_distributed

    torch.set_num_threads(1)
    cfg = json.loads(Path(config_path).read_text())
    info = init_distributed(torch.device("cpu"), timeout=cfg.get("timeout", 120))
    if not cfg.get("fake_gpu"):
        return run(cfg, info, torch.device("cpu"))
    with fake_gpu() as device:
        run({k: on_gpu_0(v) if isinstance(v, list) else v for k, v in cfg.items()}, info, device)


def run(cfg: dict, info, device: torch.device) -> None:
    import eval_diversity
    import eval_synthesis_quality
    from metrics import compare
    from tests.eval_helpers import small_backbones

    backbones = small_backbones(Path(cfg["weights"]), ALL_METRICS, device=device)
    eval_synthesis_quality.main(cfg["synthesis"], backbones=backbones)
    eval_diversity.main(cfg["diversity"], backbones=backbones)
    compare.main(cfg["compare"], backbones=backbones)
    if info.rank == 1:
        os._exit(0)  # dies without a word to rank 0
    compare.main(cfg["dead"], backbones=backbones)  # rank 0 must stop with "error: ..." and status 1
    print("rank 0 finished although rank 1 died")


if __name__ == "__main__":
    main(sys.argv[1])
