"""Train the conditioning AE: ``python -m stage2_cINN.AE.main -cf stage2_cINN/AE/configs/<ds>_config.yaml -gpu 0 [Section.key=value ...]``.
"""
from __future__ import annotations

import sys
from typing import Sequence

from utils.run import run_training


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, train, and return the last validation metrics."""
    from stage2_cINN.AE.trainer import AETrainer

    return run_training(argv, "ae", "Stage 2a: train the conditioning autoencoder", AETrainer)


if __name__ == "__main__":
    main(sys.argv[1:])
