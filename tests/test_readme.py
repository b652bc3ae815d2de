"""What the README promises a new user: the Python API snippet runs as written from any folder, the CPU smoke
recipe gives every stage training steps, and the package metadata (pyproject.toml, LICENSE) is complete."""
from __future__ import annotations

import json
import shlex
import shutil
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


VIDEOS_MARKER = "From a folder of .mp4 files to a trained model"
ONE_STEP = ["Training.max_steps_per_epoch=1", "Training.max_eval_batches=1", "Training.save_media=False"]


def test_your_own_videos_from_mp4_files_to_fvd(tmp_path, monkeypatch, real_mp4s):
    """README "Your own videos" on eight real sky clips encoded as .mp4: prepare, train the three stages (one step
    each), write one .mp4 per sample, compare them with the held-out clips and evaluate the model by its folder
    alone (tiny random-weight metric networks instead of the released ones)."""
    import csv
    import math

    import eval_synthesis_quality
    import generate_samples
    from data import prepare_videos
    from evaluation.backbones import RANDOM_BACKBONES_ENV
    from metrics import compare
    from stage1_VAE.main import main as train_stage1
    from stage2_cINN.AE.main import main as train_ae
    from stage2_cINN.main import main as train_cinn
    from tests.test_eval import tiny_backbones

    default, commands = recipe(marker=VIDEOS_MARKER)
    assert default.startswith("runs/")  # ignored by git
    commands = [substitute(c, tmp_path) for c in commands]
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(RANDOM_BACKBONES_ENV, "1")  # LPIPS of the evaluation: a random VGG (its file is absent here)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    (tmp_path / "mp4").mkdir()
    for path in real_mp4s.values():
        shutil.copy(path, tmp_path / "mp4")
    entry = {("-m", "data.prepare_videos"): prepare_videos.main, ("-m", "stage1_VAE.main"): train_stage1,
             ("-m", "stage2_cINN.AE.main"): train_ae, ("-m", "stage2_cINN.main"): train_cinn,
             ("generate_samples.py",): generate_samples.main}
    results = {}
    for command in commands:
        assert command[0] == "python", command
        key = tuple(command[1:3]) if command[1] == "-m" else (command[1],)
        argv = command[3:] if command[1] == "-m" else command[2:]
        if key == ("-m", "metrics.compare"):
            results["compare"] = compare.main(argv, backbones=tiny_backbones())
        elif key == ("eval_synthesis_quality.py",):
            results["eval"] = eval_synthesis_quality.main(argv + ["-workers", "0"], backbones=tiny_backbones())
        else:
            entry[key](argv + (ONE_STEP if "Training.n_epochs=1" in argv else []))
    report = json.loads((tmp_path / "data" / "prepare_videos.json").read_text())
    assert {v["split"] for v in report["videos"].values()} == {"train", "eval", "test"} and not report["skipped"]
    for run, column in (("stage1", "train_gen/total"), ("ae", "train_rec_loss"), ("cinn", "train_nll")):
        rows = list(csv.DictReader((tmp_path / run / "metrics.csv").open()))
        assert rows and math.isfinite(float(rows[-1][column])), run
    test_videos = sorted(n for n, v in report["videos"].items() if v["split"] == "test")
    videos = sorted(p.name for p in (tmp_path / "samples" / "videos").iterdir())
    assert videos == sorted(f"{n}_{k}.mp4" for n in test_videos for k in range(2))  # named by start frame, index
    assert results["compare"]["n_real"] == 2 and results["compare"]["n_fake"] == 4
    assert results["compare"]["frames"] == 16 and all(math.isfinite(v) for v in results["compare"]["metrics"].values())
    ev = results["eval"]
    assert ev["dataset"] == "folder" and ev["protocol"] == "all" and ev["n_videos"] == 2
    assert ev["data_path"] == str((tmp_path / "data").resolve()) and math.isfinite(ev["metrics"]["FVD"])
