"""Stage-2 conditioning autoencoder: structure vs. the reference manifest, forward behaviour, spectral norm,
posterior, loss terms, and a small overfitting run."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from blocks.gan import hinge_d_loss
from stage2_cINN.AE.config import AE_SCHEMA
from stage2_cINN.AE.modules import AELoss, BigGANDecoder, DiagonalGaussian, ResnetEncoder, build_ae
from stage2_cINN.AE.modules.biggan import ConditionalBatchNorm2d, SpectralNorm
from stage2_cINN.AE.modules.losses import adaptive_disc_weight
from utils.config import load_config

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny tensors: one intra-op thread

CONFIG_DIR = Path(__file__).resolve().parents[1] / "stage2_cINN" / "AE" / "configs"
DATASETS = ["bair", "landscape", "iPER", "DTDB_fire", "DTDB_clouds", "DTDB_vegetation", "DTDB_waterfall"]


def _config(name: str, *overrides: str) -> dict:
    return load_config(CONFIG_DIR / f"{name}_config.yaml", AE_SCHEMA, overrides=overrides)


def _shapes(module: nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def _mse_perceptual(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Stand-in for LPIPS with its output shape (B, 1, 1, 1)."""
    return ((x - y) ** 2).mean(dim=(1, 2, 3), keepdim=True)




@pytest.fixture(scope="module")
def manifest(fixtures_dir: Path) -> dict:
    return json.loads((fixtures_dir / "state_dict_manifest.json").read_text())


@pytest.mark.parametrize("dataset", DATASETS)
def test_state_dicts_match_reference_manifest(dataset: str, manifest: dict) -> None:
    with torch.device("meta"):
        nets = build_ae(_config(dataset))
    assert _shapes(nets["encoder"]) == manifest[dataset]["stage2.ae_encoder"]
    assert _shapes(nets["decoder"]) == manifest[dataset]["stage2.ae_decoder"]


@pytest.mark.parametrize("dataset,size,n_blocks", [("bair", 64, 4), ("landscape", 128, 5)])
def test_forward_shapes_and_attention_only_at_128(dataset: str, size: int, n_blocks: int) -> None:
    cfg = _config(dataset, "AE.ch=8")
    nets = build_ae(cfg)
    enc, dec = nets["encoder"], nets["decoder"]
    z_dim = cfg["AE"]["z_dim"]
    calls = {"attention": 0}
    dec.decoder.attention.register_forward_hook(lambda *_: calls.__setitem__("attention", calls["attention"] + 1))
    x = torch.rand(2, 3, size, size) * 2 - 1
    with torch.no_grad():
        q = enc(x)
        x_hat = dec(q.sample())
        logits = nets["disc"](x_hat)
    assert q.mean.shape == q.logvar.shape == (2, z_dim, 1, 1)
    assert enc.embed(x).shape == (2, z_dim)
    assert len(dec.decoder.GBlock) == n_blocks
    assert x_hat.shape == (2, 3, size, size)
    assert x_hat.abs().max() <= 1
    assert logits.shape[:2] == (2, 1)
    assert calls["attention"] == (1 if size == 128 else 0)


def test_decoder_first_map_is_channels_last() -> None:
    """G_linear's 4*4*C outputs are read as (4, 4, C) and permuted to (C, 4, 4) (the TF-port layout)."""
    dec = BigGANDecoder(z_dim=64, in_size=64, ch=8).eval()
    seen = {}
    dec.decoder.GBlock[0].register_forward_hook(lambda m, inp, out: seen.setdefault("x", inp[0]))
    z = torch.randn(2, 64)
    with torch.no_grad():
        dec(z)
        flat = dec.decoder.G_linear(z[:, : dec.decoder.first_split])  # (2, 4*4*128)
    expected = flat.reshape(2, 4, 4, 128).permute(0, 3, 1, 2)
    torch.testing.assert_close(seen["x"], expected)


def test_decoder_state_dict_round_trip_reproduces_output() -> None:
    """The stored u/v/weight_bar fully determine the output: a strict load gives identical results."""
    src = BigGANDecoder(z_dim=64, in_size=64, ch=8).eval()
    dst = BigGANDecoder(z_dim=64, in_size=64, ch=8).eval()
    dst.load_state_dict(src.state_dict(), strict=True)
    z = torch.randn(2, 64, 1, 1)  # the encoder's sample layout is accepted as is
    with torch.no_grad():
        torch.testing.assert_close(dst(z), src(z), rtol=0, atol=0)


def test_decoder_uses_latent_splits_and_class_embedding() -> None:
    dec = BigGANDecoder(z_dim=64, in_size=64, ch=8).eval()
    assert dec.decoder.first_split == 24 and dec.decoder.split_size == 10
    z = torch.randn(2, 64)
    with torch.no_grad():
        base = dec(z)
        for idx in (0, 30, 63):  # first split, a GBlock split, the last GBlock split
            z2 = z.clone()
            z2[:, idx] += 3.0
            assert (dec(z2) - base).abs().max() > 1e-4, idx
        probs = dec.map_to_class_embedding(z)
    torch.testing.assert_close(probs.sum(1), torch.ones(2))


def test_conditional_batchnorm_is_one_plus_gamma() -> None:
    cbn = ConditionalBatchNorm2d(6, cond_dim=5)
    x, c = torch.randn(4, 6, 3, 3), torch.randn(4, 5)
    normed = F.batch_norm(x, None, None, training=True, eps=1e-4)
    gamma = c @ cbn.gamma_embed.normalized_weight().t()  # (4, 6)
    beta = c @ cbn.beta_embed.normalized_weight().t()
    expected = (1 + gamma)[:, :, None, None] * normed + beta[:, :, None, None]
    torch.testing.assert_close(cbn(x, c), expected)


def _one_step_sigma(w: torch.Tensor, u: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    w_mat = w.reshape(w.shape[0], -1)
    v = w_mat.t() @ u
    v = v / (v.norm() + eps)
    u2 = w_mat @ v
    u2 = u2 / (u2.norm() + eps)
    return u2 @ (w_mat @ v)


@pytest.mark.parametrize("layer", [nn.Linear(6, 5), nn.Conv2d(4, 5, 3, padding=1)])
def test_spectral_norm_one_step_from_stored_u_without_write_back(layer: nn.Module) -> None:
    sn = SpectralNorm(layer)
    x = torch.randn(2, 6) if isinstance(layer, nn.Linear) else torch.randn(2, 4, 7, 7)
    u0 = layer.weight_u.detach().clone()
    w = layer.weight_bar.detach()
    w_sn = w / _one_step_sigma(w, u0)
    ref = F.linear(x, w_sn, layer.bias) if isinstance(layer, nn.Linear) else F.conv2d(x, w_sn, layer.bias, padding=1)
    for mode in (True, False):
        sn.train(mode)
        torch.testing.assert_close(sn(x), ref)
        torch.testing.assert_close(layer.weight_u, u0, rtol=0, atol=0)  # never written back
    assert not hasattr(layer, "weight")  # no stale normalised weight kept between calls
    copy.deepcopy(sn)
    assert set(dict(sn.named_parameters())) == {"module.bias", "module.weight_u", "module.weight_v",
                                                "module.weight_bar"}
    assert not layer.weight_u.requires_grad and not layer.weight_v.requires_grad


def test_spectral_norm_sigma_converges_to_largest_singular_value() -> None:
    sn = SpectralNorm(nn.Conv2d(8, 6, 3), power_iterations=100)
    true_sigma = torch.linalg.matrix_norm(sn.weight_bar.detach().reshape(6, -1), ord=2)
    one_step = SpectralNorm(nn.Conv2d(8, 6, 3))
    assert torch.isclose(sn.sigma(), true_sigma, rtol=1e-3)
    # a single step from a random u underestimates the norm; the normalised weight then has norm >= 1
    w1 = one_step.normalized_weight().detach().reshape(6, -1)
    assert torch.linalg.matrix_norm(w1, ord=2) >= 1 - 1e-4


def test_posterior_clamps_logvar_and_kl_matches_closed_form() -> None:
    mean = torch.randn(3, 4, 1, 1)
    logvar = torch.tensor([-100.0, -1.0, 2.0, 50.0]).view(1, 4, 1, 1).expand(3, 4, 1, 1)
    q = DiagonalGaussian(torch.cat([mean, logvar], dim=1))
    assert q.logvar.min() == -30 and q.logvar.max() == 10
    expected = 0.5 * (mean**2 + q.logvar.exp() - 1 - q.logvar).sum(dim=(1, 2, 3))
    torch.testing.assert_close(q.kl(), expected)
    torch.testing.assert_close(q.mode(), mean)
    det = DiagonalGaussian(torch.cat([mean, logvar], dim=1), deterministic=True)
    torch.testing.assert_close(det.sample(), mean)
    assert det.kl().abs().max() == 0


def test_encoder_output_is_clamped_gaussian() -> None:
    enc = ResnetEncoder(z_dim=8, encoder_type="resnet18", norm="bn").eval()
    with torch.no_grad():
        enc.model.fc.sub_layers[0].bias[8:] = 1e3  # logvar half
    with torch.no_grad():
        q = enc(torch.randn(2, 3, 64, 64))
    assert torch.all(q.logvar == 10)
    torch.testing.assert_close(enc.embed(torch.zeros(1, 3, 64, 64)), enc(torch.zeros(1, 3, 64, 64)).mean.flatten(1))


def test_encoder_actnorm_variant_builds() -> None:
    enc = ResnetEncoder(z_dim=8, encoder_type="resnet18", norm="an")
    assert "model.bn1.loc" in enc.state_dict() and "model.bn1.initialized" in enc.state_dict()


def test_adaptive_weight_against_hand_computation() -> None:
    w = torch.randn(3, 4, requires_grad=True)
    c = torch.randn(3, 4)
    nll = (w**2).sum()  # grad 2w
    g = (c * w).sum()  # grad c
    expected = (2 * w).norm() / (c.norm() + 1e-4)
    torch.testing.assert_close(adaptive_disc_weight(nll, g, w), expected.detach())
    g_flat = (1e-9 * w).sum()  # tiny GAN gradient: the weight saturates at 1e4
    assert adaptive_disc_weight((w**2).sum(), g_flat, w) == 1e4


class _TinyDisc(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _tiny_setup(pretrain: int = 5) -> tuple:
    torch.manual_seed(1)
    last = nn.Conv2d(4, 3, 3, padding=1)
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    h = torch.randn(2, 4, 8, 8)
    x_hat = torch.tanh(last(h))
    q = DiagonalGaussian(torch.randn(2, 6, 1, 1, requires_grad=True))
    loss_fn = AELoss(_TinyDisc(), _mse_perceptual, w_kl=1e-2, pretrain=pretrain)
    return loss_fn, last, x, x_hat, q


def test_generator_loss_before_and_after_pretrain() -> None:
    loss_fn, last, x, x_hat, q = _tiny_setup()
    nll = ((x - x_hat).abs() + _mse_perceptual(x, x_hat)).sum() / 2  # LPIPS broadcast over C, H, W
    kl = q.kl().sum() / 2
    before, log_before = loss_fn.generator_loss(x, x_hat, q, epoch=4, last_layer=last.weight)
    torch.testing.assert_close(before, nll + 1e-2 * kl)
    assert log_before["train/disc_factor"] == 0

    after, log = loss_fn.generator_loss(x, x_hat, q, epoch=5, last_layer=last.weight)
    g = -loss_fn.discriminator(x_hat).mean()
    gn = torch.autograd.grad(nll, last.weight, retain_graph=True)[0].norm()
    gg = torch.autograd.grad(g, last.weight, retain_graph=True)[0].norm()
    d_weight = torch.clamp(gn / (gg + 1e-4), 0, 1e4)
    assert d_weight > 0
    torch.testing.assert_close(after, nll + 1e-2 * kl + d_weight * g)
    torch.testing.assert_close(log["train/d_weight"], d_weight)
    # in warm-up the adaptive weight is computed and logged too, as the original logs it; it just does not count
    torch.testing.assert_close(log_before["train/d_weight"], d_weight)
    with torch.no_grad():  # without gradients (validation) the original logs 0
        _, log_val = loss_fn.generator_loss(x, x_hat, q, epoch=5, last_layer=last.weight, split="val")
    assert log_val["val/d_weight"] == 0


def test_discriminator_hinge_loss_off_before_pretrain() -> None:
    loss_fn, last, x, x_hat, q = _tiny_setup()
    d_before, _ = loss_fn.discriminator_loss(x, x_hat, epoch=4)
    assert d_before == 0 and not loss_fn.gan_active(4)
    d_after, _ = loss_fn.discriminator_loss(x, x_hat, epoch=5)
    real, fake = loss_fn.discriminator(x), loss_fn.discriminator(x_hat.detach())
    expected = 0.5 * (torch.relu(1 - real).mean() + torch.relu(1 + fake).mean())
    torch.testing.assert_close(d_after, expected)
    torch.testing.assert_close(hinge_d_loss(real, fake), expected)
    d_after.backward()
    assert all(p.grad is not None for p in loss_fn.discriminator.parameters())
    assert last.weight.grad is None  # the discriminator step does not reach the decoder


def test_loss_from_config_with_lpips_factory() -> None:
    """The default perceptual term is the training LPIPS (random VGG trunk here), broadcast per pixel."""
    cfg = _config("bair", "Training.allow_random_lpips=true")
    loss_fn = AELoss.from_config(cfg, _TinyDisc())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    x_hat = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1)
    torch.manual_seed(1)  # LPIPS dropout is active (Training.lpips_dropout): the same masks for both calls
    p = loss_fn.perceptual(x, x_hat)
    assert p.shape == (2, 1, 1, 1) and torch.all(p > 0)
    torch.manual_seed(1)
    rec = loss_fn.reconstruction(x, x_hat)
    torch.testing.assert_close(rec, (x - x_hat).abs() + p)
    assert not any(q.requires_grad for q in loss_fn.perceptual.parameters())


def test_ae_overfits_one_batch() -> None:
    """Encoder + BigGAN decoder (channel base 8, resnet18 encoder to keep it fast) fit one smooth batch."""
    cfg = _config("bair", "AE.ch=8", "AE.z_dim=48", "AE.encoder_type=resnet18")
    nets = build_ae(cfg)
    enc, dec = nets["encoder"], nets["decoder"]
    loss_fn = AELoss.from_config(cfg, nets["disc"], _mse_perceptual)
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=3e-3)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    x = F.avg_pool2d(x, 8).repeat_interleave(8, -1).repeat_interleave(8, -2)  # smooth, learnable images
    losses = []
    for _ in range(15):
        q = enc(x)
        x_hat = dec(q.sample())
        loss, log = loss_fn.generator_loss(x, x_hat, q, epoch=0, last_layer=dec.last_layer)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(log["train/rec_loss"]))
    assert losses[-1] < 0.4 * losses[0], losses
