"""Reliability (issue 18): checkpoint sets, full disks, NaN guards, safe and checked loading, bad frames, run folders.

One tiny stage-1 trainer is built once per module and reset between tests; faults are injected in-process
(an exception from ``torch.save`` stands for a kill between two part writes); one subprocess holds a run
folder's lock for the concurrency test.
"""
from __future__ import annotations

import copy
import dataclasses
import errno
import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from data.synthetic import write_synthetic_dataset
from tests.helpers import ROOT, tiny_cinn_config, tiny_stage1_config, write_tiny_model
from training.logger import RunLogger
from training.run import start_run_from_config
from utils.config import ConfigError
from utils.errors import (
    CheckpointError,
    CheckpointMismatchError,
    CheckpointWriteError,
    NonFiniteLossError,
    NonFiniteWeightsError,
    RunFolderError,
    UnsafeCheckpointError,
)

pytestmark = pytest.mark.usefixtures("single_thread")
PARTS = ("GEN", "ENC", "DISC_t", "DISC_s")


# ------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def bair(tmp_path_factory):
    return write_synthetic_dataset("bair", tmp_path_factory.mktemp("bair") / "bair", n_videos=2, n_frames=17, size=32)


class _L1Distance(torch.nn.Module):
    """Stands in for LPIPS (a random VGG16 takes seconds to build): a per-frame distance ``(N, 1, 1, 1)``."""

    def forward(self, x, y):
        return (x - y).abs().mean(dim=(1, 2, 3), keepdim=True)


@pytest.fixture(scope="module")
def stage1(bair, tmp_path_factory):
    """A tiny stage-1 trainer (batches of 1, two steps per epoch, the shipped verbose_idx 30) and its initial state."""
    import stage1_VAE.trainer as s1

    cfg = tiny_stage1_config(bs=1, bs_eval=1, max_steps_per_epoch=2, max_eval_batches=1, save_media=False, pretrain=0,
                             verbose_idx=30, n_epochs=1, save_path=str(tmp_path_factory.mktemp("runs")))
    cfg["Data"].update(bair)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(s1, "make_lpips", lambda *args: _L1Distance())
        trainer = s1.Stage1Trainer(start_run_from_config(cfg, -1, "config_stage1.yaml"))
    initial = {name: [_copy(x.state_dict()) for x in trio] for name, trio in trainer._parts().items()}
    return trainer, initial


def _copy(state):
    return copy.deepcopy(state)


def _reset(stage1, run_dir: Path):
    """The module's trainer with its initial weights/optimisers/schedulers, writing into ``run_dir``."""
    trainer, initial = stage1
    for name, trio in trainer._parts().items():
        for obj, state in zip(trio, initial[name]):
            obj.load_state_dict(_copy(state))
    for group in trainer.opt_g.param_groups + trainer.opt_dt.param_groups + trainer.opt_ds.param_groups:
        group["lr"] = trainer.tr["lr"]
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer.ctx = dataclasses.replace(trainer.ctx, run_dir=run_dir, log=RunLogger(run_dir, trainer.ctx.config))
    trainer.start_epoch, trainer.step, trainer.best = 0, 0, None
    if hasattr(trainer, "finite"):  # a fresh NaN/Inf monitor
        trainer.finite = type(trainer.finite)(trainer.device, "stage-1")
    return trainer


def _perturb(trainer, seed: int):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in (trainer.encoder, trainer.decoder, trainer.disc_t, trainer.disc_s):
            for p in m.parameters():
                p.add_(0.01 * torch.randn(p.shape, generator=g))


def _weights(trainer) -> dict:
    return {n: _copy(m.state_dict()) for n, m in (("decoder", trainer.decoder), ("encoder", trainer.encoder),
                                                  ("disc_t", trainer.disc_t), ("disc_s", trainer.disc_s))}


def _assert_weights(trainer, expected: dict):
    for name, sd in expected.items():
        got = getattr(trainer, name).state_dict()
        assert all(torch.equal(got[k], sd[k]) for k in sd), f"{name} differs from the expected epoch's weights"


def _fail_on_call(monkeypatch, n: int, exc: BaseException):
    """``torch.save`` (as used by utils.checkpoint.atomic_save) raises ``exc`` on its ``n``-th call."""
    import utils.checkpoint as ck

    real, calls = torch.save, {"n": 0}

    def save(obj, f, *a, **k):
        calls["n"] += 1
        if calls["n"] == n:
            f.write(b"partial")
            raise exc
        return real(obj, f, *a, **k)

    monkeypatch.setattr(ck.torch, "save", save)


# -------------------------------------------------------------------------- 1-3 checkpoint sets, disk full
def test_kill_between_part_writes_resumes_the_previous_complete_set(stage1, tmp_path, monkeypatch, caplog):
    """Item 1: a kill after GEN of epoch 1 was written must not give a resume that mixes epochs."""
    trainer = _reset(stage1, tmp_path)
    trainer.save(0)
    epoch0 = _weights(trainer)
    _perturb(trainer, seed=1)
    trainer.step = 7
    _fail_on_call(monkeypatch, 2, KeyboardInterrupt())  # GEN of epoch 1 written, killed while writing ENC
    with pytest.raises(KeyboardInterrupt):
        trainer.save(1)
    monkeypatch.undo()
    _perturb(trainer, seed=2)
    trainer.resume(tmp_path)
    assert trainer.start_epoch == 1 and trainer.step == 0  # epoch 0's set, whole
    _assert_weights(trainer, epoch0)
    # what a kill -9 leaves behind: an unfinished temp file and a staged part of an uncommitted set
    from training.runfolder import claim_run_folder

    (tmp_path / ".latest_checkpoint_ENC.pth.x1y2.tmp").write_bytes(b"\0" * 1000)
    torch.save({"epoch": 1}, tmp_path / ".latest_checkpoint_GEN.pth.epoch1.staged")
    with caplog.at_level(logging.WARNING):
        trainer.resume(tmp_path)
    assert "incomplete checkpoint set of epoch 1" in caplog.text and trainer.start_epoch == 1
    claim_run_folder(tmp_path, {"reload_path": str(tmp_path)})
    assert "removed 2 temporary file(s)" in caplog.text
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".staged"))]


def test_legacy_folder_resumes_when_its_parts_agree_and_refuses_mixed_epochs(stage1, tmp_path):
    """A folder written before checkpoint sets (no manifest, numpy RNG state) still resumes; mixed epochs do not."""
    from training.checkpoints import training_state

    trainer = _reset(stage1, tmp_path)
    legacy_rng = {"python": __import__("random").getstate(), "numpy": np.random.get_state(),
                  "torch": torch.get_rng_state()}
    for name, trio in trainer._parts().items():
        extra = {"rng": legacy_rng, "step": 4, "best": np.float64(0.5)} if name == "GEN" else {}
        torch.save(training_state(2, *trio, **extra), tmp_path / f"latest_checkpoint_{name}.pth")
    trainer.resume(tmp_path)
    assert (trainer.start_epoch, trainer.step, trainer.best) == (3, 4, 0.5)
    torch.save(training_state(3, *trainer._parts()["GEN"]), tmp_path / "latest_checkpoint_GEN.pth")
    with pytest.raises(CheckpointError, match=r"different epochs .*latest_checkpoint_GEN.pth epoch 3.*ENC.pth epoch 2"):
        trainer.resume(tmp_path)


def test_interrupted_renames_roll_forward(tmp_path, monkeypatch):
    """A committed set whose renames were interrupted is completed, not mixed."""
    from training.checkpoint_set import recover_folder, write_set
    from training.checkpoints import load_checkpoint_set

    names = ["a.pth", "b.pth"]
    write_set(tmp_path, "s", {n: {"epoch": 0, "x": torch.zeros(2)} for n in names}, 0)
    real, calls = os.replace, {"n": 0}

    def replace(src, dst):
        if str(src).endswith(".staged"):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        write_set(tmp_path, "s", {n: {"epoch": 1, "x": torch.ones(2)} for n in names}, 1)
    monkeypatch.undo()
    got = load_checkpoint_set(tmp_path, "s", names)
    assert [c["epoch"] for _, c in got.values()] == [1, 1]
    recover_folder(tmp_path)
    assert torch.equal(torch.load(tmp_path / "b.pth")["x"], torch.ones(2))


def test_metrics_rows_past_the_resumed_epoch_are_dropped(stage1, tmp_path):
    trainer = _reset(stage1, tmp_path)
    trainer.save(0)
    for epoch in range(3):  # epochs 1 and 2 ran after the last checkpoint, then the run was killed
        trainer.ctx.log.log_epoch({"epoch": epoch, "loss": 1.0 / (epoch + 1)})
    trainer.resume(tmp_path)
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines == ["epoch,loss", "0,1.0"]


def test_full_disk_names_the_file_and_keeps_the_previous_set(stage1, tmp_path, monkeypatch):
    trainer = _reset(stage1, tmp_path)
    trainer.save(0)
    epoch0 = _weights(trainer)
    _perturb(trainer, seed=3)
    _fail_on_call(monkeypatch, 3, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(CheckpointWriteError) as err:
        trainer.save(1)
    monkeypatch.undo()
    msg = str(err.value)
    assert "latest_checkpoint_DISC_t.pth" in msg and "no space left" in msg and "free on its disk" in msg
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # staged parts and temp files removed
    trainer.resume(tmp_path)
    assert trainer.start_epoch == 1
    _assert_weights(trainer, epoch0)


# ------------------------------------------------------------------------------------ 4-5 non-finite
def test_huge_learning_rate_stops_before_overwriting_the_last_good_set(stage1, tmp_path):
    """Item 4: lr=1e6 at the shipped verbose_idx (30, never reached here) stops with the step and terms named,
    and the good checkpoint set of epoch 0 stays."""
    trainer = _reset(stage1, tmp_path)
    trainer.save(0)
    before = {p: (tmp_path / f"latest_checkpoint_{p}.pth").read_bytes() for p in PARTS}
    trainer.start_epoch, trainer.tr["n_epochs"] = 1, 2
    for group in trainer.opt_g.param_groups + trainer.opt_dt.param_groups + trainer.opt_ds.param_groups:
        group["lr"] = 1e6
    try:
        with pytest.raises(NonFiniteLossError) as err:
            trainer.fit()
    finally:
        trainer.tr["n_epochs"] = 1
    assert "loss at step 2: " in str(err.value) or "validation of epoch 1 gave non-finite" in str(err.value)
    assert {p: (tmp_path / f"latest_checkpoint_{p}.pth").read_bytes() for p in PARTS} == before


def test_nonfinite_step_is_caught_at_once_and_named(stage1, tmp_path, monkeypatch):
    """An Inf loss term at step 1 stops the epoch there (not at verbose_idx) and names the term."""
    trainer = _reset(stage1, tmp_path)
    monkeypatch.setattr(trainer, "train_step", lambda seq, epoch: {"gen/total": torch.tensor(float("inf")),
                                                                   "gen/recon_l1": torch.tensor(0.5)})
    with pytest.raises(NonFiniteLossError, match=r"step 1: gen/total=inf \(finite: gen/recon_l1=0.5\)"):
        trainer.train_epoch(0)
    assert trainer.step == 1


def test_nonfinite_weights_are_never_written(stage1, tmp_path):
    trainer = _reset(stage1, tmp_path)
    with torch.no_grad():
        trainer.decoder.fc.weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteWeightsError, match=r"GEN.pth: tensor 'state_dict.fc.weight' holds 1 NaN"):
        trainer.save(0)
    assert not list(tmp_path.glob("*.pth"))


def test_finite_monitor_keeps_the_flag_on_the_device(monkeypatch):
    """On CUDA no host sync per step: ``add`` only records; ``check`` reads the first bad step."""
    from training.finite import FiniteMonitor

    monitor = FiniteMonitor(torch.device("cpu"), "test")
    monitor.eager = False  # as on CUDA
    monitor.add({"a": torch.tensor(1.0)}, 1)
    monitor.add({"a": torch.tensor(float("nan"))}, 2)
    monitor.add({"a": torch.tensor(float("inf"))}, 3)  # no raise yet
    with pytest.raises(NonFiniteLossError, match="step 2: a=nan"):
        monitor.check()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("tiny"))


def test_cinn_run_whose_every_step_was_skipped_is_an_error(tiny_model, bair, tmp_path, monkeypatch):
    """Item 5: fewer steps than max_nonfinite, all NaN: an error, not exit 0 without cINN.pth."""
    from stage2_cINN.trainer import CINNTrainer

    cfg = tiny_cinn_config(tiny_model["dirs"]["stage1"], tiny_model["dirs"]["ae"], save_path=str(tmp_path),
                           save_media=False, bs=2, max_steps_per_epoch=1, max_eval_batches=1, n_epochs=1)
    cfg["Data"].update(bair)
    trainer = CINNTrainer(start_run_from_config(cfg, -1, "config_stage2.yaml"))
    real = trainer.targets

    def poisoned(batch):
        z, emb = real(batch)
        return z * float("nan"), emb

    monkeypatch.setattr(trainer, "targets", poisoned)
    with pytest.raises(NonFiniteLossError, match="every one of the 1 steps of cINN epoch 0"):
        trainer.fit()


# ---------------------------------------------------------------------- 6-7, 11 loading model files
def _copy_model(tiny_model, dest: Path) -> Path:
    import shutil

    shutil.copytree(tiny_model["dirs"]["stage2"].parent, dest)
    return dest


class _Evil:
    """Unpickling it creates ``marker`` (stands for any code a crafted file could run)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickle_is_refused_and_does_not_run(tiny_model, tmp_path, monkeypatch):
    """Item 11: a crafted cINN.pth (or metric weights file) must not run code."""
    from metrics.weights import load_state_dict_file
    from stage2_cINN.pipeline import load_model

    root = _copy_model(tiny_model, tmp_path / "m")
    marker = tmp_path / "pwned"
    sd = torch.load(root / "stage2" / "cINN.pth")["state_dict"]
    torch.save({"state_dict": sd, "extra": _Evil(marker)}, root / "stage2" / "cINN.pth")
    unsafe = r"cINN.pth: it holds pickled Python objects \((builtins|io)\.open\).*I2V_TRUST_CHECKPOINTS=1"
    with pytest.raises(UnsafeCheckpointError, match=unsafe):
        load_model(root / "stage2")
    with pytest.raises(UnsafeCheckpointError):
        load_state_dict_file(root / "stage2" / "cINN.pth")
    assert not marker.exists()
    # the documented opt-in for a trusted legacy file with a harmless non-tensor object
    import argparse

    from utils.checkpoint import load_checkpoint

    torch.save({"state_dict": sd, "args": argparse.Namespace(lr=1)}, tmp_path / "legacy.pth")
    with pytest.raises(UnsafeCheckpointError, match="argparse.Namespace"):
        load_checkpoint(tmp_path / "legacy.pth")
    monkeypatch.setenv("I2V_TRUST_CHECKPOINTS", "1")
    assert load_checkpoint(tmp_path / "legacy.pth")["args"].lr == 1


def test_load_model_refuses_nonfinite_weights(tiny_model, tmp_path):
    """Item 6."""
    from stage2_cINN.pipeline import load_model

    root = _copy_model(tiny_model, tmp_path / "m")
    sd = torch.load(root / "stage2" / "cINN.pth")["state_dict"]
    sd["sub_layers.1.coupling.t.0.main.2.weight"][0, 0] = float("inf")
    torch.save({"state_dict": sd}, root / "stage2" / "cINN.pth")
    with pytest.raises(NonFiniteWeightsError, match=r"cINN.pth: tensor 'sub_layers.1.coupling.t.0.main.2.weight' "
                                                    r"holds 1 Inf of 1024 values"):
        load_model(root / "stage2")


def test_wrong_model_or_size_gives_a_short_message(tiny_model, tmp_path):
    """Item 7: the file, what it looks like, key counts, the config values that disagree."""
    from stage1_VAE.modules.decoder import Generator
    from stage2_cINN.pipeline import load_model

    root = _copy_model(tiny_model, tmp_path / "m")
    bigger = tiny_stage1_config()["Decoder"]
    bigger["z_dim"] = 32
    torch.save({"state_dict": Generator.from_config(bigger).state_dict()}, root / "stage1" / "best_PFVD_GEN.pth")
    with pytest.raises(CheckpointMismatchError) as err:
        load_model(root / "stage2")
    msg = str(err.value)
    assert "best_PFVD_GEN.pth does not fit the stage-1 decoder" in msg
    assert "mis-shaped: " in msg and "fc.weight (2048, 32) in the file vs (2048, 16) in the model" in msg
    assert "Decoder.z_dim 32 in the file, 16 in config_stage1.yaml" in msg and len(msg) < 1000
    enc = torch.load(root / "stage1" / "best_PFVD_ENC.pth.tar")
    torch.save(enc, root / "stage1" / "best_PFVD_GEN.pth")
    with pytest.raises(CheckpointMismatchError, match="it looks like a stage-1 encoder, not a stage-1 decoder"):
        load_model(root / "stage2")
    torch.save([1, 2, 3], root / "stage1" / "best_PFVD_GEN.pth")
    with pytest.raises(CheckpointError, match=r"best_PFVD_GEN.pth holds a list, not a checkpoint"):
        load_model(root / "stage2")
    (root / "stage2" / "config_stage2.yaml").write_bytes(b"\xff\xfe\x00garbage\x81")
    with pytest.raises(ConfigError, match=r"config_stage2.yaml.*: not valid YAML: not UTF-8 text"):
        load_model(root / "stage2")


def test_resume_from_a_file_of_another_model_names_it(stage1, tmp_path):
    trainer = _reset(stage1, tmp_path)
    trainer.save(0)
    enc = torch.load(tmp_path / "latest_checkpoint_ENC.pth")
    gen = torch.load(tmp_path / "latest_checkpoint_GEN.pth")
    gen["state_dict"] = enc["state_dict"]
    torch.save(gen, tmp_path / "latest_checkpoint_GEN.pth")
    (tmp_path / "latest_checkpoint.set.json").unlink()  # as an older run's folder
    with pytest.raises(CheckpointMismatchError, match=r"latest_checkpoint_GEN.pth does not fit the stage-1 decoder: "
                                                      r"120 missing, 67 unexpected.*looks like a stage-1 encoder"):
        trainer.resume(tmp_path)


# --------------------------------------------------------------------------------------- 8-9 data
def _folder_dataset(root: Path, n_videos: int, n_frames: int = 5) -> dict:
    for v in range(n_videos):
        folder = root / "train" / f"v{v}"
        folder.mkdir(parents=True)
        for k in range(n_frames):
            cv2.imwrite(str(folder / f"frame{k}.png"), np.full((16, 16, 3), 40 * v + k, np.uint8))
    return {"Data": {"dataset": "folder", "data_path": str(root), "sequence_length": n_frames, "img_size": 16,
                     "aug": False}, "Training": {}}


def test_bad_frame_skips_its_clip_and_too_many_stop(tmp_path, caplog):
    """Item 8: a corrupt or empty frame skips its clip with a warning naming the file; > the limit stops."""
    from data import get_dataset, make_loader
    from data.frame_io import BadClipsError
    from training.loop import epoch_iter

    cfg = _folder_dataset(tmp_path, 4)
    (tmp_path / "train" / "v1" / "frame2.png").write_bytes(b"")
    (tmp_path / "train" / "v3" / "frame0.png").write_bytes(b"not a png")
    dataset = get_dataset(cfg, "train")
    loader = make_loader(dataset, 2, shuffle=False, workers=0, skip_bad_clips=0.5)
    with caplog.at_level(logging.WARNING):
        seen = sum(batch["seq"].shape[0] for batch in epoch_iter(loader, 0))
    assert seen == 2 and loader.bad_clips == 2
    assert "v1/frame2.png: an empty file" in caplog.text and "v3/frame0.png: not a valid image" in caplog.text
    assert "skipped 2 of 4 clips" in caplog.text
    strict = make_loader(dataset, 1, shuffle=False, workers=0, skip_bad_clips=0.01)
    with pytest.raises(BadClipsError, match=r"1 of the 4 clips of epoch 3 .*v1/frame2.png"):
        list(epoch_iter(strict, 3))


def test_gap_in_frame_numbers_warns_once_per_video(tmp_path, caplog):
    """Item 9: frame2 missing in the middle of a video: one warning for that video."""
    from data import get_dataset

    cfg = _folder_dataset(tmp_path, 2, n_frames=6)
    (tmp_path / "train" / "v0" / "frame2.png").unlink()
    cfg["Data"]["sequence_length"] = 3
    with caplog.at_level(logging.WARNING, logger="data"):
        dataset = get_dataset(cfg, "train")
        for i in range(len(dataset)):
            dataset[i]
    gaps = [r.message for r in caplog.records if "gap" in r.message]
    assert len(gaps) == 1 and "v0" in gaps[0] and "frame1.png -> frame3.png" in gaps[0]


def test_data_check_lists_every_problem(tmp_path, capsys):
    """Item 8: ``python -m data.check -cf <config>`` scans the dataset up front."""
    import yaml

    from data.check import main

    cfg = _folder_dataset(tmp_path / "d", 3)
    (tmp_path / "d" / "train" / "v0" / "frame1.png").write_bytes(b"")
    (tmp_path / "d" / "train" / "v2" / "frame3.png").unlink()
    cv2.imwrite(str(tmp_path / "d" / "train" / "v1" / "frame4.png"), np.zeros((8, 8, 3), np.uint8))
    full = tiny_stage1_config()
    full["Data"].update(cfg["Data"], sequence_length=4)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({k: v for k, v in full.items() if not k.startswith("_")}))
    assert main(["-cf", str(tmp_path / "c.yaml"), "--modes", "train", "--workers", "2"]) == 1
    out = capsys.readouterr().out
    assert "v0/frame1.png: an empty file" in out and "v1/frame4.png: 8x8 pixels" in out
    assert "v2: frame numbers jump from frame2.png to frame4.png" in out
    assert "train: 3 videos, 14 frames; 1 unreadable" in out


# ------------------------------------------------------------------------------------ 10 run folders
HOLD_SCRIPT = r"""
import sys
sys.path.insert(0, sys.argv[1])
from training.runfolder import RunFolderLock  # what start_run_from_config takes
RunFolderLock(sys.argv[2]).acquire()
print("LOCKED", flush=True)
sys.stdin.read()
"""


def test_one_run_per_folder(tmp_path):
    """Item 10: a second run in a folder that a live run holds stops naming its PID; a dead PID's lock is
    taken over; a fresh run refuses a folder with checkpoints unless it resumes from it or overwrites."""
    cfg = lambda **training: tiny_stage1_config(str(tmp_path), save_path=str(tmp_path), **training)  # noqa: E731
    env = {**os.environ, "WANDB_MODE": "disabled"}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, str(ROOT), str(tmp_path / "tiny")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        with pytest.raises(RunFolderError, match=f"in use by another run \\(PID {holder.pid}"):
            start_run_from_config(cfg(), -1, "config_stage1.yaml")
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    run_dir = tmp_path / "tiny"
    (run_dir / ".run.lock").write_text(f"{holder.pid} {os.uname().nodename}\n")  # a dead holder's stale lock
    ctx = start_run_from_config(cfg(), -1, "config_stage1.yaml")
    assert (run_dir / ".run.lock").read_text().split()[0] == str(os.getpid())
    ctx.lock.release()

    torch.save({"epoch": 0}, run_dir / "latest_checkpoint_GEN.pth")
    (run_dir / "metrics.csv").write_text("epoch\n0\n")
    with pytest.raises(RunFolderError, match=r"already holds checkpoints \(latest_checkpoint_GEN.pth\).*reload_path"):
        start_run_from_config(cfg(), -1, "config_stage1.yaml")
    start_run_from_config(cfg(reload_path=str(run_dir)), -1, "config_stage1.yaml")
    with pytest.raises(RunFolderError, match="resumes from another folder"):
        start_run_from_config(cfg(reload_path=str(tmp_path)), -1, "config_stage1.yaml")
    start_run_from_config(cfg(overwrite=True), -1, "config_stage1.yaml")
    assert not (run_dir / "latest_checkpoint_GEN.pth").exists() and not (run_dir / "metrics.csv").exists()
