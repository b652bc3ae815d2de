"""What the README promises a new user: the Python API snippet runs as written from any folder, the CPU smoke
recipe gives every stage training steps, and the package metadata (pyproject.toml, LICENSE) is complete."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import tomllib
import torch

from tests.smoke_recipe import recipe, substitute

pytestmark = pytest.mark.usefixtures("single_thread")  # small tensors: one intra-op thread

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _python_block(section: str) -> str:
    return README.split(section, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]


def test_api_snippet_runs_as_written_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the repository: relative model folders resolve against the repository
    scope: dict = {}
    exec(compile(_python_block("## Python API"), "README.md", "exec"), scope)
    assert scope["videos"].shape == (2, 16, 3, 64, 64) and scope["longer"].shape[1] == 32
    assert scope["many"].shape == (2, 3, 16, 3, 64, 64) and scope["moved"].shape == (2, 16, 3, 64, 64)
    assert torch.equal(scope["same"], scope["pipe"].sample(scope["x0"], residual=torch.zeros(2, scope["pipe"].z_dim)))


def test_smoke_recipe_gives_every_stage_training_steps(tmp_path):
    """Without training (``python -m tests.smoke_recipe`` runs it): each training line's config loads with its
    overrides, and the recipe's data gives each stage at least one full batch; the sampling line parses."""
    import generate_samples
    from data import get_dataset
    from data.synthetic import main as synthetic
    from stage1_VAE.config import STAGE1_SCHEMA
    from stage2_cINN.AE.config import AE_SCHEMA
    from stage2_cINN.config import CINN_SCHEMA
    from utils.config import load_config

    default, commands = recipe()
    assert default.startswith("runs/")  # ignored by git
    commands = [substitute(c, tmp_path) for c in commands]
    assert [c[:3] for c in commands] == [["python", "-m", "data.synthetic"], ["python", "-m", "stage1_VAE.main"],
                                         ["python", "-m", "stage2_cINN.AE.main"], ["python", "-m", "stage2_cINN.main"],
                                         ["python", "generate_samples.py", "-dataset"]]
    synthetic(commands[0][3:])
    for command, schema in zip(commands[1:4], (STAGE1_SCHEMA, AE_SCHEMA, CINN_SCHEMA)):
        assert command[3] == "-cf" and command[5:7] == ["-gpu", "-1"], shlex.join(command)
        cfg = load_config(ROOT / command[4], schema, command[7:])
        steps = len(get_dataset(cfg, "train")) // cfg["Training"]["bs"]
        assert steps >= 1 and cfg["Training"]["n_epochs"] >= 1, (command, steps)
    (tmp_path / "tiny_cinn").mkdir()  # what the cINN line writes
    assert generate_samples.parse_args(commands[4][2:]).ckpt_path == tmp_path / "tiny_cinn"


def test_pyproject_installs_every_package_module_and_command():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    tool = meta["tool"]["setuptools"]
    patterns = tool["packages"]["find"]["include"]
    packages = sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name != "tests")
    assert packages == sorted(pat.rstrip("*") for pat in patterns)
    scripts = sorted(p.stem for p in ROOT.glob("*.py") if p.stem != "setup")
    assert sorted(tool["py-modules"]) == scripts  # cli + the top-level scripts
    import cli

    for name, target in meta["project"]["scripts"].items():
        module, attr = target.split(":")
        assert module == "cli" and callable(getattr(cli, attr)), name
    assert meta["tool"]["setuptools"]["dynamic"]["dependencies"]["file"] == ["requirements.txt"]
    requirements = (ROOT / "requirements.txt").read_text().split()
    assert "torch==2.14.1" in requirements and "torchvision==0.29.1" in requirements


def test_license_is_mit_and_credits_the_original_authors():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "CompVis" in text and "Dorkenwald" in text
    assert "Permission is hereby granted, free of charge" in text
