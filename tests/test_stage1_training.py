"""Stage-1 training loop: overfitting one clip, exact resume, DDP with two CPU processes, bad configs."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from data.synthetic import write_synthetic_dataset
from stage1_VAE.config import STAGE1_SCHEMA
from tests.helpers import tiny_stage1_config
from training.run import start_run_from_config
from utils.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bair_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("bair")
    return write_synthetic_dataset("bair", root / "bair", n_videos=2, n_frames=18, size=32)


def _config(bair_root, run_dir, **training):
    cfg = tiny_stage1_config(**training)
    cfg["Data"].update(bair_root)
    cfg["Training"]["save_path"] = str(run_dir)
    return cfg


def _trainer(cfg):
    from stage1_VAE.trainer import Stage1Trainer

    return Stage1Trainer(start_run_from_config(cfg, -1, "config_stage1.yaml"))


def test_overfit_one_clip_reconstruction_falls(bair_root, tmp_path):
    cfg = _config(bair_root, tmp_path, pretrain=100, lr=1e-3, w_percep=1.0)
    cfg["Data"]["aug"] = False
    trainer = _trainer(cfg)
    seq = trainer.eval_loader.dataset[0]["seq"].unsqueeze(0)  # one fixed clip
    losses = [float(trainer.train_step(seq, epoch=0)["gen/recon_l1"]) for _ in range(25)]
    assert losses[-1] < 0.6 * losses[0], losses


def test_warm_up_logs_the_discriminator_and_gan_terms_without_updating(bair_root, tmp_path):
    """Before ``Training.pretrain`` the original computes and logs the discriminators' losses and the generator's
    GAN terms every step; the discriminators are not updated."""
    trainer = _trainer(_config(bair_root, tmp_path, pretrain=1))
    seq = trainer.eval_loader.dataset[0]["seq"].unsqueeze(0)
    before = {k: v.clone() for k, v in trainer.disc_t.state_dict().items() if not k.endswith(("_u", "_v"))}
    logs = trainer.train_step(seq, epoch=0)
    logged = {"disc_t/loss", "disc_t/r1", "disc_s/loss", "disc/total", "gen/gan_s", "gen/gan_t", "gen/fmap_t"}
    assert logged <= set(logs)
    assert all(torch.isfinite(v) for v in logs.values())
    after = trainer.disc_t.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())  # only the spectral-norm vectors move
    assert all(p.grad is None for p in trainer.disc_t.parameters())


def test_resume_equals_uninterrupted(bair_root, tmp_path):
    common = dict(max_steps_per_epoch=1, max_eval_batches=1, save_media=False, pretrain=1)
    full = _trainer(_config(bair_root, tmp_path / "full", n_epochs=2, **common))
    full.fit()
    first = _trainer(_config(bair_root, tmp_path / "part", n_epochs=1, **common))
    first.fit()  # "killed" after epoch 0: only its checkpoints survive
    resumed = _trainer(_config(bair_root, tmp_path / "resumed", n_epochs=2,
                               reload_path=str(tmp_path / "part" / "tiny"), **common))
    assert resumed.start_epoch == 1
    resumed.fit()
    for name in ("encoder", "decoder", "disc_t", "disc_s"):
        a, b = getattr(full, name).state_dict(), getattr(resumed, name).state_dict()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"{name}.{k} differs after resume")
    # the two discriminators' schedulers are restored separately (the original mixed them up)
    assert resumed.sched_dt.state_dict() == full.sched_dt.state_dict()
    assert resumed.sched_ds.state_dict() == full.sched_ds.state_dict()
    ckpt = torch.load(tmp_path / "full" / "tiny" / "latest_checkpoint_GEN.pth", weights_only=False)
    assert {"epoch", "state_dict", "optim_state_dict", "scheduler_state_dict"} <= set(ckpt)
    assert (tmp_path / "full" / "tiny" / "best_PFVD_ENC.pth").is_file()
    assert (tmp_path / "full" / "tiny" / "config_stage1.yaml").is_file()
    assert (tmp_path / "full" / "tiny" / "metrics.csv").read_text().count("\n") == 3


def test_cli_with_overrides_and_media(bair_root, tmp_path):
    from stage1_VAE.main import main

    cf = ROOT / "stage1_VAE" / "configs" / "tiny_config.yaml"
    metrics = main(["-cf", str(cf), "-gpu", "-1", f"Data.data_path={bair_root['data_path']}",
                    f"Training.save_path={tmp_path}", "Training.n_epochs=1", "Training.max_steps_per_epoch=1",
                    "Training.max_eval_batches=1"])
    assert {"L1", "LPIPS", "KL", "PSNR", "SSIM"} <= set(metrics)
    media = sorted((tmp_path / "tiny" / "media").iterdir())
    assert [p.suffix for p in media] == [".gif", ".mp4"]


def test_bad_configs_fail_clearly(tmp_path):
    from stage1_VAE.modules import build_stage1

    cfg = tiny_stage1_config()
    cfg["Data"]["img_size"] = 48
    with pytest.raises(ValueError, match="img_size"):
        build_stage1(cfg)
    with pytest.raises(ConfigError, match="unknown key 'n_epoch'"):
        load_config(ROOT / "stage1_VAE/configs/tiny_config.yaml", STAGE1_SCHEMA, ["Training.n_epoch=3"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DDP_SCRIPT = r"""
import sys, torch, torch.distributed as dist
sys.path.insert(0, sys.argv[1])
from tests.helpers import tiny_stage1_config
from training.run import start_run_from_config
from stage1_VAE.trainer import Stage1Trainer
cfg = tiny_stage1_config(pretrain=0, max_steps_per_epoch=1, bs=1, seed=7)
cfg["Data"].update(dataset="bair", data_path=sys.argv[2])
cfg["Training"]["save_path"] = sys.argv[3]
tr = Stage1Trainer(start_run_from_config(cfg, -1, "config_stage1.yaml"))
weights = lambda: torch.cat([p.detach().reshape(-1).clone() for m in (tr.encoder, tr.decoder, tr.disc_t, tr.disc_s)
                             for p in m.parameters()])
init = weights()
tr.train_epoch(0)
flat = weights()
out = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
dist.all_gather(out, flat)
if dist.get_rank() == 0:
    print("MAXDIFF", max(float((o - out[0]).abs().max()) for o in out))
    print("MOVED", float((flat - init).abs().max()))
dist.destroy_process_group()
"""


def test_ddp_two_cpu_processes_hold_identical_weights(bair_root, tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(_free_port()), str(script), str(ROOT), bair_root["data_path"], str(tmp_path / "runs")]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("MAXDIFF")][0]
    assert float(line.split()[1]) == 0.0
    moved = [ln for ln in res.stdout.splitlines() if ln.startswith("MOVED")][0]
    assert float(moved.split()[1]) > 0  # a real update happened (from different data on each rank)


def test_per_epoch_fvd_backend(tmp_path, caplog, monkeypatch):
    from metrics import weights
    from metrics.i3d import KineticsI3D
    from training.fvd import make_training_fvd
    from utils.errors import MissingFileError

    cpu = torch.device("cpu")
    with pytest.raises(MissingFileError, match="Training.i3d_weights: .*missing.pth"):  # a named file must exist
        make_training_fvd("FVD", cpu, str(tmp_path / "missing.pth"))
    monkeypatch.setattr(weights, "MODELS_DIR", tmp_path / "models")  # no weights in the default place
    with caplog.at_level("WARNING"):
        assert make_training_fvd("FVD", cpu) is None  # disabled, and said so
    assert "model_rgb.pth" in caplog.text
    assert make_training_fvd("none", cpu) is None
    torch.save(KineticsI3D().state_dict(), tmp_path / "model_rgb.pth")
    fvd = make_training_fvd("FVD", cpu, str(tmp_path / "model_rgb.pth"))
    assert fvd.name == "PFVD"
    videos = torch.rand(2, 16, 3, 32, 32) * 2 - 1
    feats = fvd.features(videos)
    assert feats.shape == (2, 400) and feats.dtype == torch.float64
    assert abs(fvd.distance(feats, feats)) < 1e-6
