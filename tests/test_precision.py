"""Precision: bf16 inference (``load_model(..., precision=...)``, ``-precision``) and bf16 autocast training on
the CPU (``Training.amp: bf16``; GradScaler only for fp16)."""
from __future__ import annotations

import copy
import types
from pathlib import Path

import pytest
import torch

from stage2_cINN.pipeline import load_model
from tests.helpers import tiny_ae_config, tiny_stage1_config, write_tiny_model
from utils.precision import PrecisionError, autocast, make_scaler

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "models" / "demo" / "stage2"
CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("single_thread")  # small tensors: one intra-op thread
PSNR_FLOOR_DB = 45.0  # bf16 reaches ~60 dB on the demo model; two samples of different residuals ~30 dB


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of videos in [-1, 1] (peak-to-peak 2)."""
    return float(10 * torch.log10(4 / (a - b).pow(2).mean()))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("released"))


# ------------------------------------------------------------------------------------------ inference
def test_precision_is_checked_before_anything_is_loaded(tmp_path, capsys):
    from utils.command import run

    with pytest.raises(PrecisionError, match="fp16 needs a CUDA device"):
        load_model(tmp_path / "nothing here", CPU, precision="fp16")  # not a MissingFilesError: checked first
    with pytest.raises(PrecisionError, match="fp32|bf16|fp16"):
        load_model(tmp_path, CPU, precision="bf8")
    with pytest.raises(SystemExit) as stop:  # the scripts: one error line, exit 2, no traceback
        run(lambda argv: load_model(tmp_path, CPU, "fp16"), [])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == "error: precision fp16 needs a CUDA device (got cpu); use bf16 on the CPU"


def test_bf16_runs_only_the_decoder_in_bfloat16_with_float32_in_and_out(tiny):
    pipe = load_model(tiny["dirs"]["stage2"], CPU, precision="bf16")
    assert {p.dtype for p in pipe.decoder.parameters()} == {torch.bfloat16}
    for net in (pipe.flow, pipe.encoder, pipe.conditioner):  # what needs (or does not gain from) bf16: fp32
        assert {p.dtype for p in net.parameters()} == {torch.float32}
    x0, residual = torch.rand(2, 3, 32, 32) * 2 - 1, torch.randn(2, pipe.z_dim)
    video = pipe.sample(x0, 20, residual=residual)  # 20 frames: a second pass from the last frame
    assert video.shape == (2, 20, 3, 32, 32) and video.dtype == torch.float32 and torch.isfinite(video).all()
    z = pipe.flow.reverse(residual, pipe.embed(x0))
    with torch.no_grad():  # the decoder called directly (as evaluate_demo does) takes and returns float32
        direct = pipe.decoder(x0, z)
    assert direct.dtype == torch.float32
    torch.testing.assert_close(direct, video[:, :16], rtol=0, atol=0)
    many = pipe.sample_many(x0[:1], 2, residual=residual[None])
    torch.testing.assert_close(many[0], pipe.sample(x0[:1].expand(2, -1, -1, -1), residual=residual),
                               rtol=0, atol=0)


def test_bf16_samples_keep_a_psnr_floor_against_fp32():
    """bf16 samples of the demo model from the same residuals stay within a PSNR floor of the fp32 ones.
    The floor is far above what a wrong video gets: other residuals, or the cINN run forward instead of
    inverted (what a bf16 path that broke the flow's inversion would give)."""
    from data.images import list_images, read_images

    fp32, bf16 = load_model(DEMO, CPU), load_model(DEMO, CPU, precision="bf16")
    x0 = read_images(list_images(ROOT / "assets" / "GT_samples" / "demo")[:2], fp32.img_size)
    g = torch.Generator().manual_seed(0)
    residual, other = torch.randn(2, fp32.z_dim, generator=g), torch.randn(2, fp32.z_dim, generator=g)
    ref = fp32.sample(x0, 16, residual=residual)
    low = bf16.sample(x0, 16, residual=residual)
    assert psnr(ref, fp32.sample(x0, 16, residual=residual)) == float("inf")  # fp32: exact
    assert psnr(ref, low) >= PSNR_FLOOR_DB and (ref - low).abs().max() < 0.05
    assert psnr(ref, fp32.sample(x0, 16, residual=other)) < PSNR_FLOOR_DB - 5
    not_inverted = bf16.decode(x0, bf16.flow(residual, bf16.embed(x0))[0])
    assert not psnr(ref, not_inverted) >= PSNR_FLOOR_DB - 5  # far below, or NaN (the decode diverged)


# ------------------------------------------------------------------------------------------ training
def test_autocast_is_bf16_on_the_cpu_and_fp16_needs_cuda():
    with autocast(CPU, "bf16"):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.bfloat16  # the old autocast was a no-op on the CPU
    with autocast(CPU, "none"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    assert not make_scaler(CPU, "bf16").is_enabled() and not make_scaler(CPU, "none").is_enabled()
    for bad in (lambda: autocast(CPU, "fp16"), lambda: make_scaler(CPU, "fp16"), lambda: autocast(CPU, "fp8")):
        with pytest.raises(PrecisionError):
            bad()


def test_bf16_weight_gradient_of_a_two_frame_conv3d_is_right():
    """oneDNN's bf16 weight gradient of a 3x3x3 conv3d on 2 frames is wrong (relative error ~1 or NaN on
    every call, torch 2.14 CPU); :func:`utils.precision.autocast` pads such inputs in time explicitly."""
    torch.manual_seed(0)
    conv, x = torch.nn.Conv3d(32, 32, 3, 1, 1), torch.randn(1, 32, 2, 8, 8)
    ref = torch.autograd.grad(conv.double()(x.double()).pow(2).sum(), conv.weight)[0]
    conv.float()
    with autocast(CPU, "bf16"):
        y = conv(x)
    assert y.dtype == torch.bfloat16
    grad = torch.autograd.grad(y.float().pow(2).sum(), conv.weight)[0]
    assert float((grad.double() - ref).norm() / ref.norm()) < 0.02


def test_fp16_training_on_the_cpu_is_a_config_error_before_the_run_folder(tmp_path):
    from training.run import start_run_from_config
    from utils.config import ConfigError

    (tmp_path / "data").mkdir()
    cfg = tiny_stage1_config(amp="fp16", save_path=str(tmp_path / "runs"))
    cfg["Data"]["data_path"] = str(tmp_path / "data")
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        start_run_from_config(cfg, -1, "config_stage1.yaml")
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def bair_root(tmp_path_factory):
    from data.synthetic import write_synthetic_dataset

    return write_synthetic_dataset("bair", tmp_path_factory.mktemp("bair") / "bair", n_videos=2, n_frames=18,
                                   size=32)


def test_stage1_bf16_training_overfits_one_clip(bair_root, tmp_path):
    from stage1_VAE.trainer import Stage1Trainer
    from training.run import start_run_from_config

    cfg = tiny_stage1_config(amp="bf16", pretrain=100, lr=1e-3, w_percep=1.0, save_path=str(tmp_path))
    cfg["Data"].update(bair_root, aug=False)
    trainer = Stage1Trainer(start_run_from_config(cfg, -1, "config_stage1.yaml"))
    seen = []
    trainer.decoder.register_forward_hook(lambda _m, _a, out: seen.append(out.dtype))
    seq = trainer.eval_loader.dataset[0]["seq"].unsqueeze(0)
    losses = [float(trainer.train_step(seq, epoch=0)["gen/recon_l1"]) for _ in range(16)]
    assert set(seen) == {torch.bfloat16}  # the decoder really ran in bf16
    assert all(p.dtype == torch.float32 for p in trainer.decoder.parameters())  # fp32 master weights
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3, losses  # noisy per step (posterior sample, LPIPS dropout)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def test_r1_double_backward_under_bf16_adds_no_error_of_its_own():
    """R1 (the gradient of D_t w.r.t. its input, differentiated again w.r.t. D_t's weights) under bf16
    autocast: the penalty is close to fp32's, and its weight gradient deviates from fp32's no more than the
    plain first-order gradient of D_t does (bf16 backward through GroupNorm layers of a random D_t loses
    precision layer by layer: ~35 % relative L2 at the first layers, ~1 % at the top)."""
    from stage1_VAE.modules import build_stage1
    from stage1_VAE.modules.losses import r1_penalty

    torch.manual_seed(0)
    disc = build_stage1(tiny_stage1_config())["disc_t"].train()
    real = torch.rand(2, 12, 3, 32, 32) * 2 - 1
    out = {}
    for amp in ("none", "bf16"):
        for kind in ("r1", "plain"):
            d = copy.deepcopy(disc)  # the same spectral-norm state for every run
            x = real.clone().requires_grad_(True)
            with autocast(CPU, amp):
                logits = d(x)[0]
                loss = r1_penalty(logits, x) if kind == "r1" else logits.mean()
            loss.backward()
            grads = torch.cat([p.grad.flatten() for p in d.parameters() if p.grad is not None])
            out[amp, kind] = (float(loss.detach()), grads)
    assert out["bf16", "r1"][0] > 0 and abs(out["bf16", "r1"][0] / out["none", "r1"][0] - 1) < 0.1
    assert torch.isfinite(out["bf16", "r1"][1]).all()
    err = {k: float((out["bf16", k][1] - out["none", k][1]).norm() / out["none", k][1].norm()) for k in ("r1", "plain")}
    assert err["r1"] < 1.5 * err["plain"] and _cosine(out["bf16", "r1"][1], out["none", "r1"][1]) > 0.8, err


def test_ae_adaptive_weight_under_bf16_matches_fp32():
    from stage2_cINN.AE.modules import AELoss, build_ae

    torch.manual_seed(0)
    cfg = tiny_ae_config()
    nets = build_ae(cfg)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    weights = {}
    for amp in ("none", "bf16"):
        n = copy.deepcopy(nets)  # the same spectral-norm / ActNorm state for both runs
        loss_fn = AELoss.from_config(cfg, n["disc"], lambda a, b: (a - b).pow(2).mean((1, 2, 3), keepdim=True))
        with autocast(CPU, amp):
            q = n["encoder"](x)
            x_hat = n["decoder"](q.mode())
            _, log = loss_fn.generator_loss(x, x_hat, q, epoch=cfg["Training"]["pretrain"],
                                            last_layer=n["decoder"].last_layer)
        weights[amp] = float(log["train/d_weight"])
    assert weights["none"] > 0 and abs(weights["bf16"] / weights["none"] - 1) < 0.15, weights


def test_cinn_targets_under_bf16_are_float32(tiny):
    """``Training.amp: bf16`` runs the cINN trainer's frozen encoders in bf16; the flow gets float32."""
    from stage2_cINN.trainer import CINNTrainer

    seq = torch.rand(2, 17, 3, 32, 32) * 2 - 1
    out = {}
    for amp in ("none", "bf16"):
        fake = types.SimpleNamespace(device=CPU, encoder=tiny["encoder"], conditioner=tiny["conditioner"],
                                     ae_size=64, control=False, tr={"amp": amp})
        torch.manual_seed(0)  # the posterior sample
        out[amp] = CINNTrainer.targets(fake, {"seq": seq})
    for a, b in zip(out["bf16"], out["none"]):
        assert a.dtype == torch.float32 and _cosine(a, b) > 0.99
