"""Stage-1 networks: state-dict layout of every shipped config, shapes, encoder modes, SPADE cache, ActNorm."""
import copy
import json
import math

import pytest
import torch
from torch import nn

from blocks.actnorm import ActNorm2d
from stage1_VAE.modules import (
    Encoder,
    Generator,
    PatchDiscriminator,
    TemporalDiscriminator,
    build_stage1,
    check_stage1_shapes,
)
from utils.config import yaml_load

DATASETS = ["bair", "landscape", "iPER", "DTDB_fire", "DTDB_clouds", "DTDB_vegetation", "DTDB_waterfall"]


def _load_config(repo_root, dataset):
    with open(repo_root / "stage1_VAE" / "configs" / f"{dataset}_config.yaml") as f:
        return yaml_load(f)


@pytest.mark.parametrize("dataset", DATASETS)
def test_state_dict_matches_manifest(dataset, repo_root, fixtures_dir):
    manifest = json.loads((fixtures_dir / "state_dict_manifest.json").read_text())[dataset]
    with torch.device("meta"):  # full-size networks without allocating or initialising real weights
        nets = build_stage1(_load_config(repo_root, dataset))
    for name, net in nets.items():
        got = [(k, list(v.shape)) for k, v in net.state_dict().items()]
        expected = [(k, list(v)) for k, v in manifest[f"stage1.{name}"].items()]
        assert got == expected, f"{dataset} stage1.{name}: state dict differs from the manifest"


def _tiny_config(img_size):
    """A small but structurally complete stage-1 config (16 frames of img_size px)."""
    return {
        "Decoder": {
            "channel_factor": 8,
            "z_dim": 8,
            "upsample_s": [2, 1] if img_size == 64 else [2, 2],
            "upsample_t": [2, 1],
            "spectral_norm": True,
        },
        "Encoder": {
            "res_type_encoder": "resnet18",
            "deterministic": False,
            "use_max_pool": False,
            "z_dim": 8,
            "channels": [16, 16, 32, 32, 32],
            "stride_t": [1, 2, 2, 2],
            "stride_s": [1, 2, 2, 2] if img_size == 64 else [2, 2, 2, 2],
        },
        "Discriminator_Temporal": {
            "res_type_encoder": "resnet18",
            "use_max_pool": True,
            "channels": [16, 16, 16, 32, 32],
            "stride_t": [2, 2, 2, 2],
            "stride_s": [1, 1, 2, 2] if img_size == 64 else [1, 2, 2, 2],
            "spectral_norm": True,
        },
        "Discriminator_Patch": {"in_channels": 3, "ndf": 8, "n_layers": 3, "use_actnorm": True, "spectral_norm": True},
        "Training": {"subsample_length": 12},
        "Data": {"img_size": img_size, "sequence_length": 17},
    }


@pytest.mark.parametrize("img_size,batch", [(64, 2), (128, 1)])
def test_output_shapes(img_size, batch):
    nets = build_stage1(_tiny_config(img_size))
    video = torch.rand(batch, 16, 3, img_size, img_size) * 2 - 1
    x0 = video[:, 0]
    with torch.no_grad():
        z, mu, logvar = nets["encoder"](video)
        assert z.shape == mu.shape == logvar.shape == (batch, 8)
        out = nets["decoder"](x0, z)
        assert out.shape == (batch, 16, 3, img_size, img_size)
        assert out.abs().max() <= 1
        for t in (16, 12):  # full clip and the training crop
            logit, fmaps = nets["disc_t"](video[:, :t])
            assert logit.shape == (batch, 1)
            assert len(fmaps) == 4 and all(f.dim() == 5 and f.shape[0] == batch for f in fmaps)
            assert fmaps[-1].shape[2:] == (1, 4, 4)
        patch = nets["disc_s"](video.flatten(0, 1)[:5])
        side = img_size // 8 - 2
        assert patch.shape == (5, 1, side, side)


def test_encoder_deterministic_and_sampling():
    cfg = _tiny_config(64)["Encoder"]
    enc = Encoder.from_config(cfg).eval()
    video = torch.randn(2, 16, 3, 64, 64)
    with torch.no_grad():
        torch.manual_seed(3)
        z, mu, logvar = enc(video)
        torch.manual_seed(3)
        eps = torch.randn_like(mu)
        torch.testing.assert_close(z, mu + torch.exp(0.5 * logvar) * eps)
        assert not torch.allclose(z, mu)
        enc_det = Encoder.from_config({**cfg, "deterministic": True}).eval()
        enc_det.load_state_dict(enc.state_dict())
        z_det, mu_det, _ = enc_det(video)
        torch.testing.assert_close(z_det, mu_det)
        torch.testing.assert_close(mu_det, mu)


def test_generator_condition_cache_reused_and_broadcast():
    gen = Generator(z_dim=8, channel_factor=8, upsample_s=[1, 1], upsample_t=[1, 1]).eval()  # 8 x 32 px
    x0 = torch.rand(1, 3, 32, 32) * 2 - 1
    z = torch.randn(3, 8)
    with torch.no_grad():
        direct = gen(x0.expand(3, -1, -1, -1), z)
        cache = gen.condition(x0)  # batch 1, reused for 3 latents
        assert [g.shape[-1] for g, _ in cache] == [4, 8, 16, 32, 32, 32]
        via_cache = gen(None, z, cond_cache=cache)
    torch.testing.assert_close(via_cache, direct, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="cond_cache"):
        gen(None, z)


def test_init_schemes():
    nets = build_stage1(_tiny_config(64))
    # decoder: SPADE convs xavier-uniform(gain 0.02) with zero bias
    spade = nets["decoder"].g_2.norm_0.conv_gamma
    bound = 0.02 * math.sqrt(6.0 / (spade.weight[0].numel() + spade.weight.shape[0] * 9))
    assert spade.weight.abs().max() <= bound and spade.weight.abs().max() > bound / 2
    assert torch.all(spade.bias == 0)
    # temporal discriminator: orthogonal Conv3d weights (rows orthonormal when out <= in*27)
    w = nets["disc_t"].layer[1][0].conv1.weight_orig.flatten(1)
    torch.testing.assert_close(w @ w.T, torch.eye(w.shape[0]), atol=1e-4, rtol=0)
    # encoder: kaiming-normal fan_out on Conv3d
    w = nets["encoder"].layer[2][1].conv2.weight
    expected_std = math.sqrt(2.0 / (w.shape[0] * 27))
    assert abs(w.std().item() / expected_std - 1) < 0.1


def test_build_rejects_inconsistent_config():
    cfg = _tiny_config(64)
    check_stage1_shapes(cfg)
    bad = copy.deepcopy(cfg)
    bad["Data"]["img_size"] = 128  # encoder would end at 8x8, decoder still makes 64 px
    with pytest.raises(ValueError, match=r"Encoder: .*img_size=128 .*Encoder.stride_s=") as err:
        build_stage1(bad)
    assert "Decoder" in str(err.value)
    bad = copy.deepcopy(cfg)
    bad["Encoder"]["stride_t"] = [1, 1, 2, 2]
    with pytest.raises(ValueError, match=r"Encoder\.stride_t=\[1, 1, 2, 2\].*time 2"):
        build_stage1(bad)
    bad = copy.deepcopy(cfg)
    bad["Decoder"]["z_dim"] = 9
    with pytest.raises(ValueError, match="z_dim"):
        build_stage1(bad)


def test_actnorm_data_dependent_init():
    norm = ActNorm2d(4).train()
    std, mean = torch.tensor([0.5, 2.0, 3.0, 1.0]).view(1, 4, 1, 1), torch.arange(4.0).view(1, 4, 1, 1)
    x = torch.randn(8, 4, 5, 5) * std + mean
    assert norm.initialized.item() == 0
    y = norm(x)
    assert norm.initialized.item() == 1 and norm.initialized.dtype == torch.uint8
    flat = y.transpose(0, 1).flatten(1)
    torch.testing.assert_close(flat.mean(1), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(flat.std(1), torch.ones(4), atol=1e-4, rtol=0)
    # later batches do not re-initialise
    loc = norm.loc.detach().clone()
    norm(x * 5 + 1)
    torch.testing.assert_close(norm.loc.detach(), loc)
    # inverse
    torch.testing.assert_close(norm.reverse(y), x, atol=1e-5, rtol=1e-5)


def test_actnorm_no_init_in_eval_or_after_loading():
    x = torch.randn(4, 3, 2, 2) + 3
    norm = ActNorm2d(3).eval()
    torch.testing.assert_close(norm(x), x)  # identity, not initialised in eval mode
    assert norm.initialized.item() == 0
    trained = ActNorm2d(3).train()
    trained(x)
    fresh = ActNorm2d(3).train()
    fresh.load_state_dict(trained.state_dict())
    torch.testing.assert_close(fresh(x * 2), trained(x * 2))  # loaded values kept, no re-init
    # loading an uninitialised state makes the next training batch initialise again
    fresh.load_state_dict(ActNorm2d(3).state_dict())
    y = fresh(x * 2)
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)


def test_patch_discriminator_batchnorm_variant():
    disc = PatchDiscriminator(ndf=8, n_layers=3, use_actnorm=False, spectral_norm=False)
    norms = [m for m in disc.main if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 3 and not any(isinstance(m, ActNorm2d) for m in disc.main)
    convs = [m for m in disc.main if isinstance(m, nn.Conv2d)]
    assert [c.bias is not None for c in convs] == [True, False, False, False, True]
    assert "main.3.running_mean" in disc.state_dict() and "main.0.weight_orig" not in disc.state_dict()
    out = disc(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 1, 2, 2)
    out.mean().backward()
    assert norms[0].weight.grad is not None


def test_temporal_discriminator_rejects_wrong_length():
    disc = TemporalDiscriminator(channels=[16, 16, 16, 32, 32], stride_t=[2, 2, 2, 2], stride_s=[1, 1, 2, 2])
    with pytest.raises(ValueError, match="1 x 4 x 4"):
        disc(torch.randn(1, 16, 3, 32, 32))  # ends at 2x2


@pytest.mark.parametrize("res_type,n_blocks,width", [("resnet34", [3, 4, 6, 3], 32), ("resnet50", [3, 4, 6, 3], 128)])
def test_deeper_block_types(res_type, n_blocks, width):
    enc = Encoder(z_dim=4, channels=[16, 16, 16, 32, 32], stride_t=[1, 2, 2, 2], stride_s=[1, 2, 2, 2],
                  res_type_encoder=res_type)
    assert [len(stage) for stage in enc.layer] == n_blocks
    assert enc.conv_mu.in_channels == width  # bottlenecks expand by 4
    with torch.no_grad():
        z, mu, _ = enc(torch.randn(1, 16, 3, 64, 64))
    assert z.shape == mu.shape == (1, 4)
    with pytest.raises(ValueError, match="res_type_encoder"):
        Encoder(z_dim=4, channels=[16] * 5, stride_t=[1] * 4, stride_s=[1] * 4, res_type_encoder="resnet9")
