"""Train the conditioning AE:
``python -m stage2_cINN.AE.main -cf stage2_cINN/AE/configs/<ds>_config.yaml -gpu 0 [Section.key=value ...]``.
"""
from __future__ import annotations

from typing import Sequence

from stage2_cINN.AE.config import AE_SCHEMA
from training.config import training_config
from utils.command import run


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, check every input, train, and return the last validation metrics."""
    config, gpu = training_config(argv, __doc__, AE_SCHEMA)  # read and checked before torch is imported
    from stage2_cINN.AE.trainer import AETrainer  # torch: once the config is checked
    from training.run import run_training

    return run_training(config, gpu, AETrainer)


if __name__ == "__main__":
    run(main)
