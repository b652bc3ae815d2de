"""Train stage 1: ``python -m stage1_VAE.main -cf stage1_VAE/configs/<ds>_config.yaml -gpu 0 [Section.key=value ...]``.

Multi-GPU: ``torchrun --nproc_per_node N -m stage1_VAE.main -cf ... -gpu 0,1,...`` (CPU: gloo, ``-gpu -1``).
"""
from __future__ import annotations

from typing import Sequence

import cli


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, check every input, train, and return the last validation metrics."""
    return cli.train_main(argv, "stage1", __doc__, "stage1_VAE.trainer:Stage1Trainer")


if __name__ == "__main__":
    cli.run(main)
