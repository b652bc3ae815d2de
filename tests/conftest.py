"""Shared pytest fixtures: paths to the repository and to the reference fixtures; ``cuda`` tests skipped without
a GPU."""
import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = Path(os.environ.get("I2V_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` are skipped, with the reason, where no CUDA device is usable."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False); "
                                   "benchmarks/gpu_check.py runs these on a GPU machine")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES_DIR.is_dir():
        pytest.skip(f"reference fixtures not found at {FIXTURES_DIR} (set $I2V_FIXTURES)")
    return FIXTURES_DIR


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="module")
def single_thread():
    """One intra-op thread for modules of tiny tensor ops: on a busy 2-core machine OpenMP barriers make
    them several times slower (measured 3-10x). Opt in with ``pytestmark = pytest.mark.usefixtures(...)``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def real_mp4s(tmp_path_factory) -> dict[str, Path]:
    """Eight of the real sky clips (33-34 frames) encoded once as 64x36 H.264 .mp4 files: ``{'sample1': path, ...}``."""
    from tests.helpers import write_real_mp4s

    folder = tmp_path_factory.mktemp("real_mp4")
    return {p.stem: p for p in write_real_mp4s(folder, [f"sample{i}" for i in (1, 2, 3, 4, 5, 6, 11, 12)])}
