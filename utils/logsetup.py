"""Console and file logging of every entry point: rank 0 logs INFO to stderr (other ranks warnings only), a run
also to ``<run folder>/log.txt``."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path


class _StderrHandler(logging.StreamHandler):
    """A handler that writes to the current ``sys.stderr`` (which test runners and notebooks replace)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # the base class sets it once; the current sys.stderr is used instead
        pass


def setup_logging(run_dir: str | Path | None = None, rank: int = 0, level: int = logging.INFO) -> None:
    """Log to stderr (rank 0 only; other ranks log warnings) and to ``run_dir/log.txt``."""
    root = logging.getLogger()
    root.setLevel(level if rank == 0 else logging.WARNING)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    if not any(getattr(h, "_i2v", False) for h in root.handlers):
        h = _StderrHandler()
        h.setFormatter(fmt)
        h._i2v = True
        root.addHandler(h)
    if run_dir is not None and rank == 0:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        path = str(Path(run_dir) / "log.txt")
        if not any(getattr(h, "baseFilename", None) == os.path.abspath(path) for h in root.handlers):
            fh = logging.FileHandler(path)
            fh.setFormatter(fmt)
            root.addHandler(fh)
