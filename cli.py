"""The console commands of ``pip install -e .`` (``pyproject.toml``): each runs one entry point's ``main`` through
:func:`utils.command.run` (logging, allocator tuning, the ``error: ...`` path), with the script's flags.

Each command imports its script when it is called, not when this module is imported (a command loads only
its own script; the scripts keep ``--help`` free of torch).
"""
from __future__ import annotations

from utils.command import run


def sample() -> None:
    """``i2v-sample``: generate_samples.py."""
    import generate_samples

    run(generate_samples.main)


def transfer() -> None:
    """``i2v-transfer``: generate_transfer.py."""
    import generate_transfer

    run(generate_transfer.main)


def endpoint() -> None:
    """``i2v-endpoint``: visualize_endpoint.py."""
    import visualize_endpoint

    run(visualize_endpoint.main)


def eval_synthesis() -> None:
    """``i2v-eval-synthesis``: eval_synthesis_quality.py."""
    import eval_synthesis_quality

    run(eval_synthesis_quality.main)


def eval_diversity() -> None:
    """``i2v-eval-diversity``: eval_diversity.py."""
    import eval_diversity as script

    run(script.main)


def compare() -> None:
    """``i2v-compare``: python -m metrics.compare."""
    from evaluation import compare as script

    run(script.main)


def reproduce() -> None:
    """``i2v-reproduce``: reproduce_paper.py."""
    import reproduce_paper

    run(reproduce_paper.main)


def train_stage1() -> None:
    """``i2v-train-stage1``: python -m stage1_VAE.main."""
    from stage1_VAE import main as script

    run(script.main)


def train_ae() -> None:
    """``i2v-train-ae``: python -m stage2_cINN.AE.main."""
    from stage2_cINN.AE import main as script

    run(script.main)


def train_cinn() -> None:
    """``i2v-train-cinn``: python -m stage2_cINN.main."""
    from stage2_cINN import main as script

    run(script.main)


def app() -> None:
    """``i2v-app``: app.py."""
    import app as script

    run(script.main)


def plot() -> None:
    """``i2v-plot``: python -m training.plot."""
    from training import plot as script

    run(script.main)


def fetch_weights() -> None:
    """``i2v-fetch-weights``: python -m models.fetch_weights."""
    from models import fetch_weights as script

    run(script.main)


def prepare_videos() -> None:
    """``i2v-prepare-videos``: python -m data.prepare_videos."""
    from data import prepare_videos as script

    run(script.main)
