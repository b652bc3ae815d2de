"""One rank of a two-rank run (gloo on the CPU) started by tests/test_eval.py: the three evaluation entry
points on the random-weight backbones of ``tests.eval_helpers``, then a rank that dies.

``torchrun --nproc_per_node 2 tests/eval_dist_worker.py <config.json>`` (the test sets torchrun's
environment variables itself); the config
holds ``weights`` (a -weights_dir), the argument lists ``synthesis``, ``diversity``, ``compare`` and
``dead`` (a compare run during which rank 1 exits: rank 0 must end with an error).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, as pytest.ini does

import torch  # noqa: E402

ALL_METRICS = ("FVD", "DTFVD", "FID", "LPIPS", "VGG", "I3D", "DTI3D")


def main(config_path: str) -> None:
    import eval_diversity
    import eval_synthesis_quality
    from metrics import compare
    from tests.eval_helpers import small_backbones
    from utils.distributed import init_distributed

    torch.set_num_threads(1)
    cfg = json.loads(Path(config_path).read_text())
    info = init_distributed(torch.device("cpu"), timeout=cfg.get("timeout", 120))
    backbones = small_backbones(Path(cfg["weights"]), ALL_METRICS)
    eval_synthesis_quality.main(cfg["synthesis"], backbones=backbones)
    eval_diversity.main(cfg["diversity"], backbones=backbones)
    compare.main(cfg["compare"], backbones=backbones)
    if info.rank == 1:
        os._exit(0)  # dies without a word to rank 0
    compare.main(cfg["dead"], backbones=backbones)  # rank 0 must stop with "error: ..." and status 1
    print("rank 0 finished although rank 1 died")


if __name__ == "__main__":
    main(sys.argv[1])
