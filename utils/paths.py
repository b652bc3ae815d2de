"""Folders of the repository that code reads by default: the model folders, the sample assets and the results.

An editable install (``pip install -e .``) keeps them in the clone, so these paths work from any folder.
"""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO_ROOT / "models"  # released / bundled model folders and the metric networks' weights
ASSETS_DIR = REPO_ROOT / "assets"  # GT_samples/: start frames and clips per dataset; results/: script outputs
