"""Train the conditioning AE: ``python -m stage2_cINN.AE.main -cf stage2_cINN/AE/configs/<ds>_config.yaml -gpu 0 [Section.key=value ...]``.
"""
from __future__ import annotations

from typing import Sequence

import cli


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, check every input, train, and return the last validation metrics."""
    return cli.train_main(argv, "ae", __doc__, "stage2_cINN.AE.trainer:AETrainer")


if __name__ == "__main__":
    cli.run(main)
