"""Train the cINN:
``python -m stage2_cINN.main -cf stage2_cINN/configs/<ds>_config.yaml -gpu 0 [Section.key=value ...]``.

The config's ``First_stage_model`` and ``Conditioning_Model`` point at the frozen stage-1 and AE folders.
Multi-GPU with torchrun as for stage 1.
"""
from __future__ import annotations

from typing import Sequence

from stage2_cINN.config import CINN_SCHEMA
from training.config import training_config
from utils.command import run


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, check every input, train, and return the last validation metrics."""
    config, gpu = training_config(argv, __doc__, CINN_SCHEMA)  # read and checked before torch is imported
    from stage2_cINN.trainer import CINNTrainer  # torch: once the config is checked
    from training.run import run_training

    return run_training(config, gpu, CINNTrainer)


if __name__ == "__main__":
    run(main)
