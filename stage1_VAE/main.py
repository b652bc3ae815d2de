"""Train stage 1: ``python -m stage1_VAE.main -cf stage1_VAE/configs/<ds>_config.yaml -gpu 0 [Section.key=value ...]``.

Multi-GPU: ``torchrun --nproc_per_node N -m stage1_VAE.main -cf ... -gpu 0,1,...`` (CPU: gloo, ``-gpu -1``).
"""
from __future__ import annotations

import sys
from typing import Sequence

from utils.run import run_training


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, train, and return the last validation metrics."""
    from stage1_VAE.trainer import Stage1Trainer

    return run_training(argv, "stage1", "Stage 1: train the video VAE-GAN", Stage1Trainer)


if __name__ == "__main__":
    main(sys.argv[1:])
