"""Stage-1 loss terms with hand-computed values, the loss module's composition, and the LPIPS factory."""
import logging
import math

import pytest
import torch
from torch import nn

from blocks.gan import hinge_d_loss
from blocks.lpips import make_lpips
from stage1_VAE.modules import PatchDiscriminator, TemporalDiscriminator
from stage1_VAE.modules.losses import Stage1Indices, Stage1Loss, feature_matching, kl_divergence, r1_penalty

VGG16_FILE = "vgg16-397923af.pth"
WEIGHTS = dict(w_recon=10.0, w_percep=30.0, w_kl=1e-2, w_coup_t=2.0, w_fmap_t=10.0, w_GP=10.0, w_coup_s=5.0)


def test_hinge_d_loss_by_hand():
    real = torch.tensor([2.0, 0.5, -1.0])  # relu(1 - real) = [0, 0.5, 2] -> mean 5/6
    fake = torch.tensor([-2.0, 0.0, 1.5])  # relu(1 + fake) = [0, 1, 2.5] -> mean 7/6
    torch.testing.assert_close(hinge_d_loss(real, fake), torch.tensor(1.0))
    torch.testing.assert_close(hinge_d_loss(torch.full((4, 1), 3.0), torch.full((4, 1), -3.0)), torch.tensor(0.0))


def test_kl_divergence_by_hand():
    mu = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    # per sample sum(1 + logvar - mu^2 - exp(logvar)): [ln2 - 2, -4]; KL = -0.5 * mean
    expected = -0.5 * ((math.log(2.0) - 2.0) + (-4.0)) / 2
    torch.testing.assert_close(kl_divergence(mu, logvar), torch.tensor(expected))
    torch.testing.assert_close(kl_divergence(torch.zeros(3, 5), torch.zeros(3, 5)), torch.tensor(0.0))


def test_r1_penalty_linear_disc_by_hand():
    w = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    x = torch.randn(4, 3, requires_grad=True)
    penalty = r1_penalty(x @ w, x)
    # d mean(x @ w) / dx_b = w / B for every sample -> sum of squares |w|^2 / B^2, same for all samples
    torch.testing.assert_close(penalty, torch.tensor(14.0 / 16))
    # differentiable w.r.t. the discriminator's parameters: d/dw |w|^2 / B^2 = 2 w / B^2
    (grad_w,) = torch.autograd.grad(penalty, w)
    torch.testing.assert_close(grad_w, 2 * w.detach() / 16)


def test_r1_penalty_matches_explicit_autograd():
    lin = nn.Linear(6, 1)
    x = torch.randn(5, 2, 3, requires_grad=True)
    logits = lin(torch.tanh(x).flatten(1))  # (5, 1)
    penalty = r1_penalty(logits, x)
    grads = torch.stack([torch.autograd.grad(logits[b, 0] / 5, x, retain_graph=True)[0][b] for b in range(5)])
    torch.testing.assert_close(penalty, grads.pow(2).flatten(1).sum(1).mean())


def test_feature_matching_by_hand():
    fake = [torch.ones(2, 3, 1, 2, 2), torch.tensor([[-2.0, 2.0]])]
    real = [torch.zeros(2, 3, 1, 2, 2), torch.zeros(1, 2)]
    torch.testing.assert_close(feature_matching(fake, real), torch.tensor(1.5))  # mean(1, 2)
    with pytest.raises(ValueError):
        feature_matching(fake, real[:1])


class _Recorder(nn.Module):
    """Wraps a discriminator and records the inputs it is called with."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.net(x)


def _l2(x, y):
    return (x - y).pow(2).flatten(1).mean(1)  # per-sample stand-in for LPIPS


def _loss_module(pretrain=1):
    torch.manual_seed(1)
    disc_t = TemporalDiscriminator(channels=[16, 16, 16, 16, 16], stride_t=[2, 2, 2, 2], stride_s=[1, 1, 2, 1])
    disc_s = PatchDiscriminator(ndf=8, n_layers=2)
    training = {**WEIGHTS, "subsample_length": 12, "pretrain": pretrain}
    loss = Stage1Loss(_Recorder(disc_t), _Recorder(disc_s), _l2, training)
    # eval: spectral norm keeps its stored vectors, so the explicit recomputations below see the same weights
    return loss.eval()


def _batch():
    x = torch.rand(2, 16, 3, 32, 32) * 2 - 1
    x_hat = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1).requires_grad_(True)
    mu, logvar = torch.randn(2, 8, requires_grad=True), torch.randn(2, 8)
    return x, x_hat, mu, logvar


def test_sample_indices():
    loss = _loss_module()
    idx = loss.sample_indices(3, 16, "cpu")
    assert idx.t_len == 12 and 0 <= idx.t_start <= 4
    assert idx.frames.shape == (20,) and idx.frames.dtype == torch.long
    assert 0 <= idx.frames.min() and idx.frames.max() < 48
    short = loss.sample_indices(3, 8, "cpu")  # fewer than 16 frames: the whole clip
    assert (short.t_start, short.t_len) == (0, 8)


def test_generator_loss_before_pretrain_logs_gan_terms_that_do_not_count():
    loss_mod = _loss_module(pretrain=1)
    x, x_hat, mu, logvar = _batch()
    idx = Stage1Indices(t_start=2, t_len=12, frames=torch.arange(20))
    loss, log = loss_mod.generator_loss(x, x_hat, mu, logvar, epoch=0, indices=idx)
    expected = (
        WEIGHTS["w_recon"] * (x_hat - x).abs().mean()
        + WEIGHTS["w_percep"] * _l2(x.flatten(0, 1), x_hat.flatten(0, 1)).mean()
        + WEIGHTS["w_kl"] * kl_divergence(mu, logvar)
    )
    torch.testing.assert_close(loss, expected)
    assert not loss_mod.gan_active(0)
    # as in the original, the discriminators still run (fake, then real for D_t) and their terms are logged
    assert len(loss_mod.disc_t.inputs) == 2 and len(loss_mod.disc_s.inputs) == 1
    with torch.no_grad():
        logit_fake, fm_fake = loss_mod.disc_t.net(x_hat[:, 2:14])
        _, fm_real = loss_mod.disc_t.net(x[:, 2:14])
        patch_fake = loss_mod.disc_s.net(x_hat.flatten(0, 1)[:20])
    torch.testing.assert_close(log["gen/gan_t"], -logit_fake.mean())
    torch.testing.assert_close(log["gen/gan_s"], -patch_fake.mean())
    torch.testing.assert_close(log["gen/fmap_t"], feature_matching(fm_fake, fm_real))
    total, d_log = loss_mod.discriminator_loss(x, x_hat, epoch=0, indices=idx)  # computed and logged, not stepped
    assert set(d_log) == {"disc_t/loss", "disc_t/r1", "disc_t/logit_real", "disc_t/logit_fake", "disc_s/loss",
                          "disc_s/logit_real", "disc_s/logit_fake", "disc/total"}
    assert d_log["disc_t/r1"] > 0 and not total.requires_grad  # no graph: nothing to update in warm-up
    torch.testing.assert_close(loss_mod.disc_t.inputs[2], x_hat.detach()[:, 2:14])  # fake first
    torch.testing.assert_close(loss_mod.disc_t.inputs[3], x[:, 2:14])
    torch.testing.assert_close(loss_mod.disc_s.inputs[1], x_hat.detach().flatten(0, 1)[:20])
    torch.testing.assert_close(loss_mod.disc_s.inputs[2], x.flatten(0, 1)[:20])


def test_generator_loss_after_pretrain_adds_gan_terms_with_shared_indices():
    loss_mod = _loss_module(pretrain=1)
    x, x_hat, mu, logvar = _batch()
    idx = Stage1Indices(t_start=3, t_len=12, frames=torch.tensor([0, 5, 5, 31, 17] * 4))
    base, _ = loss_mod.generator_loss(x, x_hat, mu, logvar, epoch=0, indices=idx)
    loss_mod.disc_t.inputs.clear()
    loss_mod.disc_s.inputs.clear()
    loss, log = loss_mod.generator_loss(x, x_hat, mu, logvar, epoch=1, indices=idx)
    # the discriminators saw the shared window and frames of the fake (and real, for the feature targets)
    seen_t, seen_s = loss_mod.disc_t.inputs, loss_mod.disc_s.inputs
    torch.testing.assert_close(seen_t[0], x_hat.detach()[:, 3:15])
    torch.testing.assert_close(seen_t[1], x[:, 3:15])
    torch.testing.assert_close(seen_s[0], x_hat.detach().flatten(0, 1)[idx.frames])
    # expected value, recomputed from the raw discriminators
    with torch.no_grad():
        logit_fake, fm_fake = loss_mod.disc_t.net(x_hat[:, 3:15])
        _, fm_real = loss_mod.disc_t.net(x[:, 3:15])
        patch_fake = loss_mod.disc_s.net(x_hat.flatten(0, 1)[idx.frames])
    expected = (
        base
        - patch_fake.mean()
        + WEIGHTS["w_coup_t"] * (-logit_fake.mean())
        + WEIGHTS["w_fmap_t"] * feature_matching(fm_fake, fm_real)
    )
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    assert {"gen/gan_s", "gen/gan_t", "gen/fmap_t"} <= set(log)
    # the generator gets gradients, the discriminators none (they are frozen in generator_loss)
    loss.backward()
    assert x_hat.grad is not None and x_hat.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss_mod.disc_t.parameters())
    assert all(p.grad is None for p in loss_mod.disc_s.parameters())
    assert all(p.requires_grad for p in loss_mod.disc_t.parameters())


def test_discriminator_loss_composition_and_gradients():
    loss_mod = _loss_module(pretrain=0)
    x, x_hat, _, _ = _batch()
    idx = Stage1Indices(t_start=4, t_len=12, frames=torch.arange(20) * 3 % 32)
    total, log = loss_mod.discriminator_loss(x, x_hat, epoch=0, indices=idx)
    seen_t, seen_s = loss_mod.disc_t.inputs, loss_mod.disc_s.inputs
    # the original's order: each discriminator sees the fake input first, then the real one
    torch.testing.assert_close(seen_t[0], x_hat.detach()[:, 4:16])
    torch.testing.assert_close(seen_t[1], x[:, 4:16])
    torch.testing.assert_close(seen_s[0], x_hat.detach().flatten(0, 1)[idx.frames])
    torch.testing.assert_close(seen_s[1], x.flatten(0, 1)[idx.frames])
    # recompute explicitly
    crop = x[:, 4:16].clone().requires_grad_(True)
    logit_real, _ = loss_mod.disc_t.net(crop)
    logit_fake, _ = loss_mod.disc_t.net(x_hat.detach()[:, 4:16])
    expected = (
        hinge_d_loss(logit_real, logit_fake)
        + WEIGHTS["w_GP"] * r1_penalty(logit_real, crop)
        + hinge_d_loss(loss_mod.disc_s.net(seen_s[1]), loss_mod.disc_s.net(seen_s[0]))
    )
    torch.testing.assert_close(total, expected, rtol=1e-5, atol=1e-5)
    assert log["disc_t/r1"] > 0
    total.backward()
    assert x_hat.grad is None  # fake is detached
    assert all(p.grad is not None for p in loss_mod.disc_t.parameters())
    assert all(p.grad is not None for p in loss_mod.disc_s.parameters())


def test_reads_training_section_with_yaml_strings(repo_root):
    from utils.config import yaml_load

    with open(repo_root / "stage1_VAE" / "configs" / "bair_config.yaml") as f:
        training = yaml_load(f)["Training"]
    training = {**training, "w_kl": "1e-5"}  # what plain pyyaml yields for the original files
    loss = Stage1Loss(nn.Identity(), nn.Identity(), _l2, training)
    assert (loss.w_kl, loss.w_percep, loss.w_GP, loss.pretrain, loss.subsample_length) == (1e-5, 30.0, 10.0, 1, 12)


def test_make_lpips_missing_weights_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    missing = tmp_path / "nowhere" / VGG16_FILE
    with pytest.raises(FileNotFoundError, match=VGG16_FILE) as err:
        make_lpips(str(missing))
    assert str(missing) in str(err.value)
    with pytest.raises(FileNotFoundError, match="torch_home/hub/checkpoints"):  # default: the hub cache
        make_lpips(None)


def test_make_lpips_random_backbone_and_loading(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with caplog.at_level(logging.WARNING):
        rand = make_lpips(None, allow_random_backbone=True)
    assert any("RANDOM" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(rand(x, x).flatten(), torch.zeros(2))
        assert torch.all(rand(x, -x).flatten() > 0)
    assert not any(p.requires_grad for p in rand.parameters())
    # a VGG16 state dict in torchvision's layout is mapped onto lpips' slices (here: the hub cache)
    state = {f"features.{k.split('.')[1]}.{k.split('.')[2]}": v + 1.0 for k, v in rand.net.state_dict().items()}
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(state, cache / VGG16_FILE)
    loaded = make_lpips(None)
    torch.testing.assert_close(loaded.net.slice1[0].weight, rand.net.slice1[0].weight + 1.0)
    torch.testing.assert_close(loaded.net.state_dict()["slice5.28.bias"], rand.net.state_dict()["slice5.28.bias"] + 1.0)
