"""Train stage 1: ``python -m stage1_VAE.main -cf stage1_VAE/configs/<ds>_config.yaml -gpu 0 [Section.key=value ...]``.

Multi-GPU: ``torchrun --nproc_per_node N -m stage1_VAE.main -cf ... -gpu 0,1,...`` (CPU: gloo, ``-gpu -1``).
"""
from __future__ import annotations

from typing import Sequence

from stage1_VAE.config import STAGE1_SCHEMA
from training.config import training_config
from utils.command import run


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, check every input, train, and return the last validation metrics."""
    config, gpu = training_config(argv, __doc__, STAGE1_SCHEMA)  # read and checked before torch is imported
    from stage1_VAE.trainer import Stage1Trainer  # torch: once the config is checked
    from training.run import run_training

    return run_training(config, gpu, Stage1Trainer)


if __name__ == "__main__":
    run(main)
