"""Train the cINN: ``python -m stage2_cINN.main -cf stage2_cINN/configs/<ds>_config.yaml -gpu 0 [Section.key=value ...]``.

The config's ``First_stage_model`` and ``Conditioning_Model`` point at the frozen stage-1 and AE folders.
Multi-GPU with torchrun as for stage 1.
"""
from __future__ import annotations

import sys
from typing import Sequence

from utils.run import run_training


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, train, and return the last validation metrics."""
    from stage2_cINN.trainer import CINNTrainer

    return run_training(argv, "cinn", "Stage 2: train the conditional INN", CINNTrainer)


if __name__ == "__main__":
    main(sys.argv[1:])
