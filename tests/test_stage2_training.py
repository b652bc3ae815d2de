"""Training loops of the conditioning AE and the cINN on tiny models and synthetic data."""
from __future__ import annotations

import pytest
import torch

from data.synthetic import write_synthetic_dataset
from tests.helpers import tiny_ae_config, tiny_cinn_config, write_tiny_model
from training.run import start_run_from_config


@pytest.fixture(scope="module")
def bair(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return {"32": write_synthetic_dataset("bair", root / "b32", n_videos=4, n_frames=18, size=32),
            "64": write_synthetic_dataset("bair", root / "b64", n_videos=3, n_frames=2, size=64)}


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("frozen"))


def _ae(bair, run_dir, **training):
    from stage2_cINN.AE.trainer import AETrainer

    cfg = tiny_ae_config(save_path=str(run_dir), save_media=False, **training)
    cfg["Data"].update(bair["64"])
    return AETrainer(start_run_from_config(cfg, -1, "config_stage2_AE.yaml"))


def _cinn(bair, frozen, run_dir, **training):
    from stage2_cINN.trainer import CINNTrainer

    cfg = tiny_cinn_config(frozen["dirs"]["stage1"], frozen["dirs"]["ae"], save_path=str(run_dir),
                           save_media=False, **training)
    cfg["Data"].update(bair["32"])
    return CINNTrainer(start_run_from_config(cfg, -1, "config_stage2.yaml"))


def test_ae_saves_encoder_on_best_and_resumes_exactly(bair, tmp_path):
    common = dict(max_steps_per_epoch=2, max_eval_batches=1, pretrain=1)
    full = _ae(bair, tmp_path / "full", n_epochs=2, **common)
    full.fit()
    run = tmp_path / "full" / "tiny_ae"
    enc = torch.load(run / "Encoder_stage2.pth", weights_only=False)
    assert set(enc) == {"state_dict"} and set(enc["state_dict"]) == set(full.encoder.state_dict())
    _ae(bair, tmp_path / "part", n_epochs=1, **common).fit()
    resumed = _ae(bair, tmp_path / "res", n_epochs=2, reload_path=str(tmp_path / "part" / "tiny_ae"), **common)
    assert resumed.start_epoch == 1
    resumed.fit()
    for name in ("encoder", "decoder", "disc"):
        a, b = getattr(full, name).state_dict(), getattr(resumed, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_ae_best_file_follows_the_validation_loss(bair, tmp_path, monkeypatch):
    trainer = _ae(bair, tmp_path, n_epochs=3, max_steps_per_epoch=1, max_eval_batches=1, pretrain=5)
    values = iter([1.0, 0.5, 0.8])
    monkeypatch.setattr(trainer, "validate", lambda epoch: {"rec_loss": next(values), "L1": 0.0})
    saved = []
    monkeypatch.setattr(trainer, "save", lambda epoch, best: saved.append((epoch, best)))
    trainer.fit()
    assert saved == [(0, True), (1, True), (2, False)] and trainer.best == 0.5


def test_cinn_nll_falls_and_checkpoints(bair, frozen, tmp_path):
    trainer = _cinn(bair, frozen, tmp_path, n_epochs=1, lr=2e-3)
    trainer.fit()
    run = tmp_path / "tiny_cinn"
    ckpt = torch.load(run / "cINN.pth", weights_only=False)
    assert set(ckpt) == {"state_dict"} and (run / "config_stage2.yaml").is_file()
    assert (run / "latest_checkpoint_cINN.pth").is_file()
    batch = next(iter(trainer.train_loader))
    z, emb = trainer.targets(batch)
    from stage2_cINN.modules.nll import nll_loss

    with torch.no_grad():
        trainer.flow.train()
        before = float(nll_loss(*trainer.flow(z, emb)))
    for _ in range(40):
        eps, logdet = trainer.model(z, emb)
        loss = nll_loss(eps, logdet)
        trainer.opt.zero_grad()
        loss.backward()
        trainer.opt.step()
    assert loss.item() < before - 5.0, (before, loss.item())


def test_cinn_resume_equals_uninterrupted(bair, frozen, tmp_path):
    common = dict(max_steps_per_epoch=1, max_eval_batches=1)
    full = _cinn(bair, frozen, tmp_path / "full", n_epochs=2, **common)
    full.fit()
    _cinn(bair, frozen, tmp_path / "part", n_epochs=1, **common).fit()
    resumed = _cinn(bair, frozen, tmp_path / "res", n_epochs=2, reload_path=str(tmp_path / "part" / "tiny_cinn"),
                    **common)
    resumed.fit()
    a, b = full.flow.state_dict(), resumed.flow.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert full.sched.state_dict() == resumed.sched.state_dict()


def test_cinn_nan_guard_skips_then_stops(bair, frozen, tmp_path, monkeypatch):
    trainer = _cinn(bair, frozen, tmp_path, n_epochs=1, max_nonfinite=2, bs=2, max_steps_per_epoch=4)
    trainer.train_loader = [next(iter(trainer.train_loader))] * 4  # four steps of one batch
    real_targets = trainer.targets
    calls = {"n": 0}

    def poisoned(batch):
        z, emb = real_targets(batch)
        calls["n"] += 1
        return (z * float("nan"), emb) if calls["n"] >= 2 else (z, emb)

    monkeypatch.setattr(trainer, "targets", poisoned)
    before = {k: v.clone() for k, v in trainer.flow.state_dict().items()}
    with pytest.raises(RuntimeError, match="non-finite .* for 2 consecutive steps"):
        trainer.train_epoch(0)
    assert trainer.step == 1  # one good update, then two skipped ones, then the stop
    after = trainer.flow.state_dict()
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_cinn_control_variant_uses_the_endpoint(bair, frozen, tmp_path):
    trainer = _cinn(bair, frozen, tmp_path, n_epochs=1, control=True, max_steps_per_epoch=1)
    batch = next(iter(trainer.train_loader))
    assert "cond" in batch
    z, emb = trainer.targets(batch)
    assert emb.shape[1] == 48 + 30 and torch.equal(emb[:, 48:].sum(1), torch.full((emb.shape[0],), 3.0))
    trainer.fit()
    assert (tmp_path / "tiny_cinn" / "cINN.pth").is_file()


CINN_DDP_SCRIPT = r"""
import sys, torch, torch.distributed as dist
sys.path.insert(0, sys.argv[1])
from tests.helpers import tiny_cinn_config
from training.run import start_run_from_config
from stage2_cINN.trainer import CINNTrainer
from utils.distributed import init_distributed
init_distributed(torch.device("cpu"), timeout=60)  # a rank left waiting fails the test, not hangs it
cfg = tiny_cinn_config(sys.argv[2], sys.argv[3], save_path=sys.argv[5], bs=4, max_steps_per_epoch=3, seed=3)
cfg["Data"].update(dataset="bair", data_path=sys.argv[4])
tr = CINNTrainer(start_run_from_config(cfg, -1, "config_stage2.yaml"))
init = torch.cat([p.detach().reshape(-1).clone() for p in tr.flow.parameters()])
targets, calls = tr.targets, []
def poisoned(batch):  # step 2 of rank 0 only has a NaN loss: both ranks skip it
    z, emb = targets(batch)
    calls.append(1)
    return (z * float("nan"), emb) if dist.get_rank() == 0 and len(calls) == 2 else (z, emb)
tr.targets = poisoned
tr.train_epoch(0)
assert tr.step == 2 and tr.finite.total_skipped == 1, (tr.step, tr.finite.total_skipped)
flat = torch.cat([p.detach().reshape(-1) for p in tr.flow.parameters()])
out = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
dist.all_gather(out, flat)
if dist.get_rank() == 0:
    print("MAXDIFF", max(float((o - out[0]).abs().max()) for o in out), "MOVED", float((flat - init).abs().max()))
dist.destroy_process_group()
"""


def test_cinn_ddp_two_cpu_processes(frozen, tmp_path):
    """Two gloo ranks, batches of 4 (ActNorm's data-dependent init on 2 clips can be degenerate and make the first
    loss non-finite); a NaN loss on one rank is skipped by both, which stay identical."""
    import os
    import subprocess
    import sys

    from tests.test_stage1_training import ROOT, _free_port

    data = write_synthetic_dataset("bair", tmp_path / "data", n_videos=24, n_frames=18, size=32)  # 3 steps a rank
    script = tmp_path / "ddp.py"
    script.write_text(CINN_DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           str(script), str(ROOT), str(frozen["dirs"]["stage1"]), str(frozen["dirs"]["ae"]), data["data_path"],
           str(tmp_path / "runs")]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("MAXDIFF")][0].split()
    assert float(line[1]) == 0.0 and float(line[3]) > 0  # identical on both ranks, and actually updated


def test_ae_training_step_decodes_the_posterior_mode(bair, tmp_path, monkeypatch):
    """The original decodes ``posterior.mode()`` in training, not a sample."""
    from stage2_cINN.AE.modules.encoder import DiagonalGaussian

    trainer = _ae(bair, tmp_path, n_epochs=1, max_steps_per_epoch=1, max_eval_batches=1, pretrain=5)

    def no_sample(self):
        raise AssertionError("the AE training step decoded a posterior sample")

    monkeypatch.setattr(DiagonalGaussian, "sample", no_sample)
    logs = trainer.train_step(trainer._frames(next(iter(trainer.train_loader))), epoch=0)
    assert torch.isfinite(logs["train/total_loss"])
    # warm-up (epoch < pretrain): the adaptive GAN weight is computed and logged, as the original logs it
    assert logs["train/disc_factor"] == 0 and logs["train/d_weight"] > 0


@pytest.mark.parametrize("kind, needle", [("FVD", "model_rgb.pth"), ("DTFVD", "I3D_16.pth.tar"), ("none", None)])
def test_cinn_sample_fvd_uses_the_stage1_runs_fvd_kind(kind, needle, bair, frozen, tmp_path, monkeypatch, caplog):
    """The cINN's per-epoch FVD of prior samples uses the I3D of the stage-1 run's ``Training.FVD`` (the cINN
    config has no such key: reading it there was a KeyError); without weights it is off, with a warning."""
    import shutil

    import yaml

    from metrics import weights

    root = shutil.copytree(frozen["dirs"]["stage1"].parent, tmp_path / "model")
    cfg1 = yaml.safe_load((root / "stage1" / "config_stage1.yaml").read_text())
    cfg1["Training"]["FVD"] = kind  # the stage-1 run logged the (P)FVD of the Kinetics I3D, the DTFVD, or none
    (root / "stage1" / "config_stage1.yaml").write_text(yaml.safe_dump(cfg1))
    monkeypatch.setattr(weights, "MODELS_DIR", tmp_path / "no_models")
    with caplog.at_level("WARNING"):
        trainer = _cinn(bair, {"dirs": {"stage1": root / "stage1", "ae": root / "stage2_AE"}}, tmp_path / "run",
                        n_epochs=1, fvd_samples=True)
    assert trainer.fvd is None
    if needle is None:  # off by the stage-1 config: nothing to warn about
        assert "per-epoch" not in caplog.text
    else:  # the weights of that network are missing
        assert f"per-epoch {kind} disabled" in caplog.text and needle in caplog.text
