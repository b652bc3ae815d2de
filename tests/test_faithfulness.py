"""Training and inference behave as the original code does (issue #12): each test replays the original's
sequence of calls, written out step by step from its training scripts, on tiny modules, and compares every
state that the sequence leaves behind (weights, spectral-norm vectors, ActNorm, optimiser, RNG streams)."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from blocks.lpips import PinnedDropout, make_lpips
from data.synthetic import write_synthetic_dataset
from tests.helpers import tiny_ae_config, tiny_stage1_config
from training.run import start_run_from_config

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny tensors: one intra-op thread


class TinyLPIPS(nn.Module):
    """LPIPS in miniature (features, squared difference, dropout, 1x1 head, spatial mean): the same calls
    on the RNG as the real one, at a fraction of its cost."""

    def __init__(self, dropout: bool) -> None:
        super().__init__()
        self.net = nn.Conv2d(3, 4, 3, padding=1)
        self.lin = nn.Sequential(PinnedDropout(0.5, dropout), nn.Conv2d(4, 1, 1, bias=False))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.lin((self.net(a) - self.net(b)) ** 2).mean((2, 3), keepdim=True)  # (N, 1, 1, 1)


def _tiny_lpips(weights, allow_random, dropout=False):
    torch.manual_seed(123)
    return TinyLPIPS(dropout)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("faith")
    return {"32": write_synthetic_dataset("bair", root / "b32", n_videos=2, n_frames=18, size=32),
            "64": write_synthetic_dataset("bair", root / "b64", n_videos=4, n_frames=2, size=64)}


def _states_equal(a: dict, b: dict, atol: float = 1e-10) -> list[str]:
    """Names of the entries that differ between two state dicts (empty when all match)."""
    return [k for k in a if not torch.allclose(a[k].double(), b[k].double(), rtol=0, atol=atol)]


# ------------------------------------------------------------------------------------------------ stage 1
def _stage1(data, tmp_path, monkeypatch, **training):
    import stage1_VAE.trainer as stage1

    monkeypatch.setattr(stage1, "make_lpips", _tiny_lpips)
    cfg = tiny_stage1_config(save_path=str(tmp_path), save_media=False, bs=1, **training)
    cfg["Encoder"].update(z_dim=8, channels=[16, 16, 32, 32, 48])  # smaller than the tiny config
    cfg["Decoder"]["z_dim"] = 8
    cfg["Discriminator_Temporal"]["channels"] = [16] * 5
    cfg["Discriminator_Patch"]["ndf"] = 4
    cfg["Data"].update(data["32"])
    return stage1.Stage1Trainer(start_run_from_config(cfg, -1, "config_stage1.yaml"))


def _hinge_d(real, fake):
    return (F.relu(1 - real).mean() + F.relu(1 + fake).mean()) / 2


def _original_stage1_step(nets, opts, lpips, seq, epoch, tr):
    """The original's stage-1 iteration (``Backward.forward``), one call after the other."""
    enc, dec, disc_t, disc_s = nets
    opt_g, opt_t, opt_s = opts
    orig = seq[:, 1:]
    z, mu, logvar = enc(orig)  # the reparameterised sample draws from torch's stream
    gen = dec(seq[:, 0], z)
    start = np.random.randint(0, gen.shape[1] - tr["subsample_length"] + 1)  # numpy: window, then 20 frames
    fake, real = (v[:, start:start + tr["subsample_length"]] for v in (gen, orig))
    k = np.random.randint(0, orig.shape[0] * orig.shape[1], 20)
    fake_f, real_f = gen.flatten(0, 1)[k], orig.flatten(0, 1)[k]
    real = real.detach().requires_grad_(True)  # for the gradient penalty
    gan = epoch >= tr["pretrain"]
    # temporal discriminator: fake, then real; updated only from `pretrain` on
    logit_f, _ = disc_t(fake.detach())
    logit_r, _ = disc_t(real)
    loss_t = _hinge_d(logit_r, logit_f)
    grad = torch.autograd.grad(logit_r.mean(), real, create_graph=True)[0]
    gp = grad.pow(2).flatten(1).sum(1).mean()
    if gan:
        opt_t.zero_grad()
        (loss_t + tr["w_GP"] * gp).backward()
        opt_t.step()
    # patch discriminator: fake, then real
    patch_f = disc_s(fake_f.detach())
    patch_r = disc_s(real_f)
    loss_s = _hinge_d(patch_r, patch_f)
    if gan:
        opt_s.zero_grad()
        loss_s.backward()
        opt_s.step()
    # generator: the discriminators run in every epoch, their terms count from `pretrain` on
    total = 0
    gen_s = -disc_s(fake_f).mean()
    total = total + gen_s if gan else total
    logit_f, fm_f = disc_t(fake)
    _, fm_r = disc_t(real)
    fmap = sum((a - b).abs().mean() for a, b in zip(fm_f, fm_r)) / len(fm_f)
    gen_t = tr["w_coup_t"] * -logit_f.mean() + tr["w_fmap_t"] * fmap
    total = total + gen_t if gan else total
    percep = lpips(orig.flatten(0, 1), gen.flatten(0, 1)).mean()
    rec = (gen - orig).abs().mean()
    kl = -0.5 * torch.mean(torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1))
    total = total + tr["w_percep"] * percep + tr["w_kl"] * kl + tr["w_recon"] * rec
    opt_g.zero_grad()
    total.backward()
    opt_g.step()


def test_stage1_steps_follow_the_original_sequence(data, tmp_path, monkeypatch):
    """Warm-up epoch and first GAN epoch: same weights, spectral-norm vectors, patch ActNorm (initialised on
    the first fake frames), LPIPS dropout draws and numpy/torch streams as the original's calls (float64)."""
    trainer = _stage1(data, tmp_path, monkeypatch, pretrain=1)
    nets = [trainer.encoder, trainer.decoder, trainer.disc_t, trainer.disc_s, trainer.perceptual]
    for m in nets:
        m.double().train()
    ref = copy.deepcopy(nets)
    tr = trainer.tr
    adam = dict(lr=tr["lr"], betas=(0.5, 0.9), weight_decay=tr["weight_decay"])
    ref_opts = [torch.optim.Adam(list(ref[0].parameters()) + list(ref[1].parameters()), **adam),
                torch.optim.Adam(ref[2].parameters(), **adam), torch.optim.Adam(ref[3].parameters(), **adam)]
    clip = torch.stack([trainer.eval_loader.dataset[i]["seq"] for i in range(2)]).double()  # (2, 17, 3, 32, 32)
    assert trainer.perceptual.lin[0].training  # Training.lpips_dropout defaults to the original's dropout

    def run(step):
        torch.manual_seed(5)
        np.random.seed(5)
        for epoch, seq in ((0, clip[:1]), (1, clip[1:])):
            step(seq, epoch)
        return torch.get_rng_state(), np.random.get_state()[1]

    rng_ours = run(lambda seq, epoch: trainer.train_step(seq, epoch))
    rng_ref = run(lambda seq, epoch: _original_stage1_step(ref[:4], ref_opts, ref[4], seq, epoch, tr))
    assert torch.equal(rng_ours[0], rng_ref[0]) and np.array_equal(rng_ours[1], rng_ref[1])
    for ours, theirs, name in zip(nets[:4], ref[:4], ("encoder", "decoder", "disc_t", "disc_s")):
        assert not _states_equal(ours.state_dict(), theirs.state_dict()), name
    assert int(trainer.disc_s.main[3].initialized) == 1


def test_stage1_validation_decodes_a_posterior_sample(data, tmp_path, monkeypatch):
    """The original's validation (and per-epoch FVD) decode the encoder's sample; ``val_latent: mean`` mu."""
    for latent in ("sample", "mean"):
        trainer = _stage1(data, tmp_path / latent, monkeypatch, val_latent=latent, max_eval_batches=1)
        seen = []
        trainer.decoder.register_forward_hook(lambda m, args, out: seen.append(args[1].clone()))
        seq = next(iter(trainer.eval_loader))["seq"]
        torch.manual_seed(3)
        z, mu, _ = trainer.encoder.eval()(seq[:, 1:])
        torch.manual_seed(3)
        trainer.validate(0)
        torch.testing.assert_close(seen[0], z if latent == "sample" else mu, rtol=0, atol=0)
        assert not torch.equal(z, mu)


# --------------------------------------------------------------------------------------------------- LPIPS
def test_training_lpips_keeps_the_original_dropout(monkeypatch):
    """The losses' LPIPS: dropout (p=0.5) before each linear head stays active after ``.eval()`` and
    gives the original's formula with dropout; ``dropout=False`` and the evaluation metric are deterministic."""
    import blocks.lpips
    import metrics.lpips_metric as lm

    base = lm.load_lpips(allow_random_backbone=True)
    assert not any(m.training for m in base.modules() if isinstance(m, nn.Dropout))  # the metric: eval
    monkeypatch.setattr(blocks.lpips, "load_lpips", lambda *a, **k: copy.deepcopy(base))
    on, off = make_lpips(None, True, dropout=True).eval(), make_lpips(None, True, dropout=False).train()
    x, y = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1

    def by_hand(drop: bool) -> torch.Tensor:
        feats = [on.net(on.scaling_layer(v)) for v in (x, y)]
        total = 0
        for k, head in enumerate(on.lins):
            a, b = (f[k] / (f[k].pow(2).sum(1, keepdim=True).sqrt() + 1e-10) for f in feats)
            d = F.dropout((a - b) ** 2, 0.5, training=drop)
            total = total + F.conv2d(d, head.model[-1].weight).mean((2, 3), keepdim=True)
        return total

    torch.manual_seed(9)
    got = on(x, y)
    torch.manual_seed(9)
    torch.testing.assert_close(got, by_hand(True))
    assert not torch.allclose(on(x, y), got)  # fresh masks each call
    torch.testing.assert_close(off(x, y), by_hand(False))
    torch.testing.assert_close(off(x, y), base(x, y))


# ------------------------------------------------------------------------------------------- conditioning AE
def _ae(data, tmp_path, monkeypatch, **training):
    import stage2_cINN.AE.trainer as ae

    monkeypatch.setattr(ae, "make_lpips", _tiny_lpips)
    cfg = tiny_ae_config(save_path=str(tmp_path), save_media=False, max_eval_batches=1, **training)
    cfg["Data"].update(data["64"])
    return ae.AETrainer(start_run_from_config(cfg, -1, "config_stage2_AE.yaml"))


def _original_ae_step(enc, dec, disc, opts, lpips, x, epoch, pretrain, w_kl):
    """The original's AE iteration (``Loss.forward`` with ``training=True``), one call after the other."""
    opt_g, opt_d = opts
    posterior = enc(x)
    recon = dec(posterior.mode())
    rec = (x - recon).abs() + lpips(x, recon)
    nll = rec.sum() / rec.shape[0]
    g_loss = -disc(recon).mean()
    last = dec.last_layer
    grads = [torch.autograd.grad(v, last, retain_graph=True)[0] for v in (nll, g_loss)]
    d_weight = torch.clamp(grads[0].norm() / (grads[1].norm() + 1e-4), 0.0, 1e4).detach()
    factor = 1.0 if epoch >= pretrain else 0.0
    loss = nll + w_kl * posterior.kl().mean() + d_weight * factor * g_loss
    opt_g.zero_grad()
    loss.backward()
    opt_g.step()
    d_loss = factor * _hinge_d(disc(x.detach()), disc(recon.detach()))
    if d_loss.item() > 0:
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()


@torch.no_grad()
def _original_ae_validation_batch(enc, dec, disc, lpips, x):
    """The original's AE validation of one batch: network in eval mode, the discriminator still training."""
    posterior = enc(x)
    recon = dec(posterior.mode())
    rec = (x - recon).abs() + lpips(x, recon)
    disc(recon), disc(x), disc(recon)  # the generator term, then the discriminator's real / fake terms
    return rec.mean()


def test_ae_steps_and_validation_follow_the_original_sequence(data, tmp_path, monkeypatch):
    """Warm-up epoch, first GAN epoch and a validation batch: the same weights, spectral-norm vectors,
    ActNorm and RNG stream as the original's calls (float64)."""
    trainer = _ae(data, tmp_path, monkeypatch, pretrain=1)
    nets = [trainer.encoder, trainer.decoder, trainer.disc, trainer.loss.perceptual]
    assert trainer.loss.perceptual.lin[0].training  # Training.lpips_dropout: the original's dropout
    for m in nets:
        m.double().train()
    ref = copy.deepcopy(nets)
    tr = trainer.tr
    ref_opts = [torch.optim.Adam(list(ref[0].parameters()) + list(ref[1].parameters()), lr=tr["lr"],
                                 weight_decay=tr["weight_decay"]),
                torch.optim.Adam(ref[2].parameters(), lr=tr["lr"], weight_decay=tr["weight_decay"])]
    frames = torch.stack([trainer.eval_loader.dataset[i]["seq"][0] for i in range(2)]).double()  # (2, 3, 64, 64)

    def run(step, validate):
        torch.manual_seed(5)
        for epoch in (0, 1):
            step(frames, epoch)
        return validate(frames), torch.get_rng_state()

    def ours_val(x):
        monkeypatch.setattr(trainer, "_frames", lambda batch: x)
        return trainer.validate(1)["rec_loss"]

    def ref_val(x):
        ref[0].eval(), ref[1].eval()
        return _original_ae_validation_batch(*ref[:3], ref[3], x)

    val_ours, rng_ours = run(lambda x, e: trainer.train_step(x, e), ours_val)
    val_ref, rng_ref = run(lambda x, e: _original_ae_step(*ref[:3], ref_opts, ref[3], x, e, 1, tr["w_kl"]), ref_val)
    assert torch.equal(rng_ours, rng_ref)
    assert val_ours == pytest.approx(float(val_ref), rel=1e-6)  # logged in float32
    for ours, theirs, name in zip(nets[:3], ref[:3], ("encoder", "decoder", "disc")):
        # 1e-7 (1/2000 of one Adam step): the conv biases before BatchNorm have gradients of pure rounding
        # noise, which Adam's first steps divide by their own size
        assert not _states_equal(ours.state_dict(), theirs.state_dict(), atol=1e-7), name


def test_ae_plateau_schedulers_follow_the_last_training_batch(data, tmp_path, monkeypatch):
    """Both ReduceLROnPlateau (AE and discriminator) step on the last training batch's reconstruction loss
    and both come back on resume; ``plateau_metric: validation`` steps them on the validation loss."""
    trainer = _ae(data, tmp_path / "run", monkeypatch, n_epochs=1, max_steps_per_epoch=2)
    seen = []
    step = trainer.train_step
    monkeypatch.setattr(trainer, "train_step", lambda x, e: seen.append(step(x, e)) or seen[-1])
    trainer.fit()
    assert len(seen) == 2 and float(seen[0]["train/rec_loss"]) != float(seen[1]["train/rec_loss"])
    for sched in (trainer.sched, trainer.sched_d):
        assert sched.best == pytest.approx(float(seen[-1]["train/rec_loss"]), rel=1e-6) and sched.last_epoch == 1
    resumed = _ae(data, tmp_path / "resumed", monkeypatch, n_epochs=2, reload_path=str(tmp_path / "run" / "tiny_ae"))
    assert resumed.sched.state_dict() == trainer.sched.state_dict()
    assert resumed.sched_d.state_dict() == trainer.sched_d.state_dict()
    resumed.tr["plateau_metric"] = "validation"
    monkeypatch.setattr(resumed, "train_epoch", lambda epoch: {"last_batch_rec_loss": 9.0})
    monkeypatch.setattr(resumed, "validate", lambda epoch: {"rec_loss": 0.125, "L1": 0.0})
    monkeypatch.setattr(resumed, "save", lambda epoch, best: None)
    resumed.fit()
    assert resumed.sched.best == resumed.sched_d.best == 0.125


# ---------------------------------------------------------------------------------------------------- cINN
@pytest.fixture(scope="module")
def bn_model(tmp_path_factory):
    """A tiny released-layout model whose AE embedder has BatchNorm layers (as landscape, DTDB waterfall)."""
    import yaml

    from stage2_cINN.AE.modules import build_ae_encoder
    from tests.helpers import perturb_, write_tiny_model
    from utils.checkpoint import atomic_save
    from utils.config import strip_private

    model = write_tiny_model(tmp_path_factory.mktemp("bn"))
    cfg = tiny_ae_config()
    cfg["AE"]["norm"] = "bn"
    ae_dir = model["dirs"]["ae"]
    (ae_dir / "config_stage2_AE.yaml").write_text(yaml.safe_dump(strip_private(cfg), sort_keys=False))
    atomic_save({"state_dict": perturb_(build_ae_encoder(cfg["AE"]), 0.02).state_dict()}, ae_dir / "Encoder_stage2.pth")
    return model


@pytest.mark.parametrize("train_mode", [False, True])
def test_cinn_embedder_mode(data, bn_model, tmp_path, train_mode):
    """Ours keeps the AE embedder in eval mode; ``embedder_train_mode: True`` gives the original's (batch
    statistics while training, running statistics drifting and kept for resume, eval mode in validation)."""
    from stage2_cINN.trainer import CINNTrainer
    from tests.helpers import tiny_cinn_config

    cfg = tiny_cinn_config(bn_model["dirs"]["stage1"], bn_model["dirs"]["ae"], save_path=str(tmp_path),
                           save_media=False, n_epochs=1, bs=2, bs_eval=2, max_steps_per_epoch=1,
                           max_eval_batches=1, fvd_samples=False, embedder_train_mode=train_mode)
    cfg["Data"].update(data["32"])
    trainer = CINNTrainer(start_run_from_config(cfg, -1, "config_stage2.yaml"))
    bn = next(m for m in trainer.conditioner.modules() if isinstance(m, nn.BatchNorm2d))
    before = bn.running_mean.clone()
    modes = []
    trainer.conditioner.register_forward_hook(lambda m, args, out: modes.append(m.training))
    trainer.fit()
    assert modes == [train_mode, False]  # one training batch, one validation batch
    assert torch.equal(bn.running_mean, before) is not train_mode
    ckpt = torch.load(tmp_path / "tiny_cinn" / "latest_checkpoint_cINN.pth", weights_only=False)
    assert ("embedder_state" in ckpt) is train_mode
