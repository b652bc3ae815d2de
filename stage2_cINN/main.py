"""Train the cINN: ``python -m stage2_cINN.main -cf stage2_cINN/configs/<ds>_config.yaml -gpu 0 [Section.key=value ...]``.

The config's ``First_stage_model`` and ``Conditioning_Model`` point at the frozen stage-1 and AE folders.
Multi-GPU with torchrun as for stage 1.
"""
from __future__ import annotations

from typing import Sequence

import cli


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, check every input, train, and return the last validation metrics."""
    return cli.train_main(argv, "cinn", __doc__, "stage2_cINN.trainer:CINNTrainer")


if __name__ == "__main__":
    cli.run(main)
