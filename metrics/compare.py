"""``python -m metrics.compare --real DIR --fake DIR [--fvd] [--fid] [--lpips] [--dtfvd] ...``: the command of
:mod:`evaluation.compare` under the name users type (metrics between two folders of videos).

This module is an entry point kept at its original place; the one import from a higher layer (``pyproject.toml``,
``[tool.importlinter]``) is this one.
"""
from __future__ import annotations

from evaluation.compare import compare_folders, main
from utils.command import run

__all__ = ["compare_folders", "main"]

if __name__ == "__main__":
    run(main)
