"""Tests of the metric library: I3D ports vs the reference, Frechet distance, FVD/DTFVD protocols,
FID/LPIPS backbones built from local files, diversity scores and missing-weight errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from metrics import diversity, fid, frechet, fvd, lpips_metric, weights
from metrics.dti3d import DTDBI3D, load_dtdb_i3d
from metrics.i3d import KineticsI3D, load_kinetics_i3d, load_torchscript_i3d
from tests.eval_helpers import activating_init

MANIFEST_KEYS = {
    "kinetics": "pytorch_fvd_i3d (model_rgb.pth)",
    "dtdb16": "dtfvd_i3d_16 (I3D_16.pth.tar state_dict)",
    "dtdb32": "dtfvd_i3d_32 (I3D_32.pth.tar state_dict)",
}
# Tiny inputs (T=10, 32x32) reach the head with a (2, 1, 1) map, so tests pool over that.
TINY_POOL = (2, 1, 1)


def _close(actual: torch.Tensor, expected: torch.Tensor, rel: float = 1e-4) -> bool:
    return bool(torch.allclose(actual, expected, rtol=rel, atol=rel * float(expected.abs().max())))


@pytest.fixture(scope="module")
def reference(fixtures_dir):
    return torch.load(fixtures_dir / "i3d_reference.pt", weights_only=False)


@pytest.fixture(scope="module")
def manifest(fixtures_dir):
    return json.loads((fixtures_dir / "metric_backbone_manifest.json").read_text())


# ----------------------------------------------------------------------------- I3D networks

@pytest.mark.parametrize("name, build", [("kinetics", KineticsI3D), ("dtdb16", lambda: DTDBI3D(16)),
                                         ("dtdb32", lambda: DTDBI3D(32))])
def test_state_dict_layout_matches_manifest(manifest, name, build):
    state = build().state_dict()
    assert list(state) == list(manifest[MANIFEST_KEYS[name]])
    assert {k: list(v.shape) for k, v in state.items()} == manifest[MANIFEST_KEYS[name]]


@torch.no_grad()
def test_kinetics_i3d_reproduces_reference(reference):
    ref = reference["kinetics_i3d"]
    model = KineticsI3D().eval()
    model.load_state_dict(ref["state_dict"])  # fp16 tensors copied into fp32 parameters
    assert model.conv3d_1a_7x7.conv3d.weight.dtype == torch.float32
    clip = reference["clip_uint8"][:16].permute(3, 0, 1, 2)[None].float() / 255.0  # (1, 3, 16, 224, 224)
    softmax, logits = model(clip)
    assert softmax.shape == logits.shape == (1, 400)
    assert _close(logits, ref["logits"])
    assert _close(softmax, ref["softmax"])


@torch.no_grad()
def test_dtdb_i3d_reproduces_reference(reference):
    ref = reference["dtdb_i3d"]
    for n_frames in (16, 32):
        model = DTDBI3D(n_frames).eval()
        model.load_state_dict(ref["state_dict"])
        clip = reference["clip_uint8"][:n_frames].permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0
        rep = model.representation(clip)
        assert rep.shape == (1, 1024)
        assert _close(rep, ref[f"representation{n_frames}"]), n_frames


@torch.no_grad()
def test_random_i3d_forward_shapes():
    x = torch.rand(1, 3, 10, 32, 32) * 2 - 1
    softmax, logits = activating_init(KineticsI3D(avg_pool_kernel=TINY_POOL))(x)
    assert softmax.shape == logits.shape == (1, 400)
    assert torch.allclose(softmax.sum(1), torch.ones(1), atol=1e-5)
    assert activating_init(DTDBI3D(16, avg_pool_kernel=TINY_POOL))(x).shape == (1, 18)
    with pytest.raises(ValueError, match="16 or 32"):
        DTDBI3D(24)


# ----------------------------------------------------------------------------- Frechet distance

def _scipy_frechet(mu1, s1, mu2, s2) -> float:
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _both_routes(f1: np.ndarray, f2: np.ndarray) -> tuple[float, float]:
    """Covariance (eigh) route and feature (SVD) route of the distance."""
    by_stats = frechet.frechet_distance(*frechet.statistics(f1), *frechet.statistics(f2))
    return by_stats, frechet.frechet_distance_from_features(f1, f2)


def test_frechet_statistics_are_float64_mean_and_unbiased_cov():
    f = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    mu, sigma = frechet.statistics(torch.from_numpy(f))
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(mu, f.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(f.astype(np.float64), rowvar=False), rtol=1e-12)


def test_frechet_identical_sets_and_mean_shift():
    rng = np.random.default_rng(1)
    for n, dim in [(500, 16), (40, 300)]:  # full rank and rank-deficient (N < D)
        f = rng.normal(size=(n, dim)) * rng.uniform(0.2, 3.0, size=dim)
        shift = rng.normal(size=dim)
        trace = np.trace(np.cov(f, rowvar=False))
        for value in _both_routes(f, f):
            assert -1e-6 <= value <= 1e-9 * trace
        for value in _both_routes(f, f + shift):
            assert value == pytest.approx(shift @ shift, rel=1e-8, abs=1e-9 * trace)


def test_frechet_matches_scipy_when_well_conditioned():
    rng = np.random.default_rng(2)
    f1 = rng.normal(size=(3000, 12))
    f2 = rng.normal(size=(2500, 12)) @ rng.normal(size=(12, 12)) * 0.5 + 0.3
    expected = _scipy_frechet(*frechet.statistics(f1), *frechet.statistics(f2))
    for value in _both_routes(f1, f2):
        assert value == pytest.approx(expected, rel=1e-10)
    # small N < D: the feature route is used and agrees with the covariance route
    small = frechet.frechet_distance_from_features(f1[:5], f2[:7])
    assert small == pytest.approx(frechet.frechet_distance(*frechet.statistics(f1[:5]),
                                                           *frechet.statistics(f2[:7])), rel=1e-10)


def test_frechet_rank_deficient_matches_low_dimensional_problem():
    """Features in a k-dim subspace of R^D (k < N < D): the distance equals the k-dim distance,
    where scipy's sqrtm is well-conditioned."""
    rng = np.random.default_rng(3)
    k, n, dim = 6, 40, 500
    basis, _ = np.linalg.qr(rng.normal(size=(dim, k)))
    g1 = rng.normal(size=(n, k))
    g2 = rng.normal(size=(n + 9, k)) @ rng.normal(size=(k, k)) + 0.5
    expected = _scipy_frechet(*frechet.statistics(g1), *frechet.statistics(g2))
    for value in _both_routes(g1 @ basis.T, g2 @ basis.T):
        assert np.isfinite(value) and isinstance(value, float)
        assert value == pytest.approx(expected, rel=1e-8)


def test_frechet_rank_deficient_closed_forms():
    """N < D with generic rank-(N-1) covariances: closed forms for orthogonal supports and scaling."""
    rng = np.random.default_rng(4)
    n, dim = 30, 400
    q, _ = np.linalg.qr(rng.normal(size=(dim, 2 * n)))
    f1 = rng.normal(size=(n, n)) @ q[:, :n].T * 2.0 + 1.0
    f2 = rng.normal(size=(n, n)) @ q[:, n:].T - 1.0  # covariance supports are orthogonal: S1 S2 = 0
    (mu1, s1), (mu2, s2) = frechet.statistics(f1), frechet.statistics(f2)
    expected = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2)
    for value in _both_routes(f1, f2):
        assert value == pytest.approx(expected, rel=1e-10)
    scale = 1.7  # S2 = scale^2 S1, so tr sqrt(S1 S2) = scale tr S1
    f3 = f1 * scale + 0.25
    d_mu = f1.mean(0) * (1 - scale) - 0.25
    expected = d_mu @ d_mu + (1 - scale) ** 2 * np.trace(s1)
    for value in _both_routes(f1, f3):
        assert value == pytest.approx(expected, rel=1e-8)


def test_frechet_to_features_of_cached_statistics_matches_the_feature_routes():
    rng = np.random.default_rng(5)
    for n1, n2, dim in [(40, 30, 300), (60, 50, 20)]:  # fewer and more samples than dimensions
        f1 = rng.normal(size=(n1, dim)) * rng.uniform(0.2, 3.0, size=dim)
        f2 = rng.normal(size=(n2, dim)) @ rng.normal(size=(dim, dim)) * 0.1 + 0.2
        mu1, sigma1 = frechet.statistics(f1)
        expected = frechet.frechet_distance_from_features(f1, f2)
        assert frechet.frechet_distance_to_features(mu1, sigma1, f2) == pytest.approx(expected, rel=1e-9)
        trace = np.trace(sigma1)
        assert abs(frechet.frechet_distance_to_features(mu1, sigma1, f1)) <= 1e-9 * trace  # identical sets
    with pytest.raises(ValueError, match="shape mismatch"):
        frechet.frechet_distance_to_features(mu1, sigma1, f2[:, :3])


def test_iter_batches_rechunks_without_dropping():
    parts = [torch.arange(5), torch.arange(5, 7), torch.arange(7, 16)]
    chunks = list(frechet.iter_batches(parts, 4))
    assert [len(c) for c in chunks] == [4, 4, 4, 4]
    assert torch.equal(torch.cat(chunks), torch.arange(16))
    assert [len(c) for c in frechet.iter_batches(torch.zeros(10, 2), 4)] == [4, 4, 2]


# ----------------------------------------------------------------------------- FVD protocols

def test_tf1_bilinear_resize_semantics():
    x = torch.tensor([[0.0, 10.0]])[None]  # (1, 1, 2)
    out = fvd.resize_bilinear_tf1(x.expand(1, 2, 2), (4, 4))
    # TF1 (align_corners=False, no half-pixel centres): src = dst * 2 / 4 -> 0, .5, 1, 1.5 (clamped)
    assert torch.allclose(out[0, 0], torch.tensor([0.0, 5.0, 10.0, 10.0]))
    assert torch.allclose(out[0, :, 0], torch.zeros(4))
    down = fvd.resize_bilinear_tf1(torch.arange(16.0).view(1, 4, 4), (2, 2))  # picks rows/cols 0 and 2
    assert torch.equal(down[0], torch.tensor([[0.0, 2.0], [8.0, 10.0]]))


def test_protocol_preprocessing():
    videos = torch.rand(2, 5, 3, 20, 30) * 2 - 1
    kin = KineticsI3D()
    x = fvd.FVDFeatureExtractor(kin, "fvd").preprocess(videos)
    assert x.shape == (2, 3, 5, 224, 224) and x.min() >= -1 and x.max() <= 1
    assert torch.allclose(x[:, :, :, 0, 0], videos[:, :, :, 0, 0].transpose(1, 2), atol=1e-5)
    p = fvd.FVDFeatureExtractor(kin, "pfvd").preprocess(videos)
    assert p.shape == (2, 3, 5, 224, 224) and p.min() >= 0
    corners = (videos[..., [0, -1], :][..., [0, -1]] + 1) / 2  # align_corners keeps the corner pixels
    assert torch.allclose(p[..., [0, -1], :][..., [0, -1]], corners.transpose(1, 2), atol=1e-6)
    d = fvd.FVDFeatureExtractor(DTDBI3D(16), "dtfvd").preprocess(videos)
    assert d.shape == (2, 3, 16, 224, 224) and d.min() < 0
    assert torch.equal(d[:, :, 5:10], d[:, :, :5]) and torch.equal(d[:, :, 15], d[:, :, 0])  # tiled
    with pytest.raises(TypeError):
        fvd.FVDFeatureExtractor(kin, "dtfvd")


@torch.no_grad()
def test_fvd_zero_for_same_set_and_rising_with_noise():
    gen = torch.Generator().manual_seed(0)
    real = torch.rand(6, 10, 3, 32, 32, generator=gen) - 0.5
    noise = torch.randn(real.shape, generator=gen)
    model = activating_init(KineticsI3D(avg_pool_kernel=TINY_POOL))
    extractor = fvd.FVDFeatureExtractor(model, "fvd", resize=False)
    real_feats = fvd.extract_i3d_features(real.split(4), extractor, batch_size=3)  # 4 + 2 -> 3 + 3
    assert real_feats.shape == (6, 400) and real_feats.dtype == np.float64
    assert abs(fvd.compute_fvd(real_feats, real_feats)) < 1e-6
    values = [fvd.compute_fvd(real_feats, fvd.extract_i3d_features(real + s * noise, extractor, 6))
              for s in (0.05, 0.2, 0.6)]
    assert 0 < values[0] < values[1] < values[2], values


# the TF-Hub I3D ships as a TorchScript file, so its stand-in is one too (torch.jit.script: deprecated, not gone)
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@torch.no_grad()
def test_dtfvd_features_and_torchscript_call_contract():
    videos = torch.rand(2, 6, 3, 32, 32) * 2 - 1
    dtdb = activating_init(DTDBI3D(16, avg_pool_kernel=TINY_POOL))
    feats = fvd.extract_i3d_features(videos, fvd.FVDFeatureExtractor(dtdb, "dtfvd", resize=False), 2)
    assert feats.shape == (2, 1024) and np.isfinite(feats).all()

    class Stub(nn.Module):
        """Stands in for StyleGAN-V's TorchScript I3D and checks how it is called."""

        def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True,
                    return_features: bool = False) -> torch.Tensor:
            assert not rescale and not resize and return_features
            size = torch.full_like(x[:, 0, 0, 0, 0], x.shape[-1])
            return torch.stack([x.amin((1, 2, 3, 4)), x.amax((1, 2, 3, 4)), size], 1)

    out = fvd.FVDFeatureExtractor(torch.jit.script(Stub()), "fvd")(videos)
    assert out[:, 2].eq(224).all() and out[:, 0].ge(-1).all() and out[:, 1].le(1).all()


# ----------------------------------------------------------------------------- FID, LPIPS, VGG

@torch.no_grad()
def test_fid_inception_from_local_file(tmp_path):
    random_model = fid.load_fid_inception(allow_random_backbone=True, path=tmp_path / "absent.pth")
    feats = fid.extract_fid_features(torch.rand(1, 2, 3, 16, 16) * 2 - 1, fid.FIDFeatureExtractor(random_model), 1)
    assert feats.shape == (2, 2048) and np.isfinite(feats).all()
    # the weights of a local file (here: another random network) are what the model ends up with
    state = fid._build_fid_inception_v3(None).state_dict()
    torch.save(state, tmp_path / "inception.pth")
    loaded = fid.load_fid_inception(path=tmp_path / "inception.pth")
    assert torch.equal(loaded.blocks[0][0].conv.weight, state["Conv2d_1a_3x3.conv.weight"])
    assert abs(fid.compute_fid(feats, feats)) < 1e-6


@torch.no_grad()
def test_vgg_trunk_from_torchvision_file_and_lpips(tmp_path):
    import torchvision

    tv_features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"]).eval()  # vgg16().features
    torch.save({f"features.{k}": v for k, v in tv_features.state_dict().items()}, tmp_path / "vgg16.pth")
    trunk = lpips_metric.load_vgg16_features(path=tmp_path / "vgg16.pth")
    x = torch.randn(1, 3, 32, 32)
    taps, h = [], x
    for i, layer in enumerate(tv_features[:30]):
        h = layer(h)
        if i in (3, 8, 15, 22, 29):
            taps.append(h)
    for ours, theirs in zip(trunk(x), taps):
        assert torch.allclose(ours, theirs, atol=1e-6)

    model = lpips_metric.load_lpips(vgg_path=tmp_path / "vgg16.pth")
    videos = torch.rand(2, 3, 3, 32, 32) * 2 - 1
    assert lpips_metric.compute_lpips(videos, videos.clone(), model, frame_batch=4) == 0.0
    other = lpips_metric.lpips_per_video(videos, videos.flip(0), model)
    assert other.shape == (2,) and (other > 0).all()


def test_missing_weights_name_file_and_source(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "MODELS_DIR", tmp_path / "models")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    loaders = {
        "model_rgb.pth": load_kinetics_i3d,
        "i3d_torchscript.pt": load_torchscript_i3d,
        "I3D_16.pth.tar": lambda: load_dtdb_i3d(16),
        "I3D_32.pth.tar": lambda: load_dtdb_i3d(32),
        "pt_inception-2015-12-05-6726825d.pth": fid.load_fid_inception,
        "vgg16-397923af.pth": lpips_metric.load_lpips,
    }
    for filename, load in loaders.items():
        with pytest.raises(FileNotFoundError, match=filename) as info:
            load()
        assert str(tmp_path) in str(info.value) and "http" in str(info.value)
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        lpips_metric.load_vgg16_features()


def test_state_dict_file_formats(tmp_path):
    state = {"a": torch.ones(2)}
    torch.save({"state_dict": {"module.a": torch.ones(2)}, "epoch": 3}, tmp_path / "wrapped.pth.tar")
    torch.save(state, tmp_path / "plain.pth")
    for name in ("wrapped.pth.tar", "plain.pth"):
        loaded = weights.load_state_dict_file(tmp_path / name)
        assert list(loaded) == ["a"] and torch.equal(loaded["a"], state["a"])


# ----------------------------------------------------------------------------- diversity

def test_pairwise_sq_diff_sum_matches_brute_force():
    x = torch.randn(4, 3, 5)
    brute = sum(((x[i] - x[j]) ** 2).sum(1) for i in range(4) for j in range(4) if i != j)
    assert torch.allclose(diversity.pairwise_sq_diff_sum(x).float(), brute, rtol=1e-6)


def test_embedding_diversity_closed_form_and_dti3d_scale():
    realizations = torch.randn(3, 4, 2, 3, 2, 2)  # (n_realiz, B, T, 3, H, W)
    flat = realizations.flatten(2)
    expected = np.mean([((flat[i] - flat[j]) ** 2).mean().item() for i in range(3) for j in range(3) if i != j])

    def embed(v: torch.Tensor) -> torch.Tensor:
        return v.flatten(1)

    assert diversity.embedding_diversity(realizations, embed, batch_size=3) == pytest.approx(expected, rel=1e-6)
    assert diversity.embedding_diversity(realizations[:1].expand(3, -1, -1, -1, -1, -1), embed) == 0.0

    class FakeExtractor:
        """A DTFVD extractor whose embedding is the flattened video."""

        protocol = "dtfvd"

        def __call__(self, v: torch.Tensor) -> torch.Tensor:
            return v.flatten(1)

    dti3d = diversity.dti3d_diversity(realizations.split(2, dim=1), FakeExtractor())
    assert dti3d == pytest.approx(1000 * expected, rel=1e-6)


@torch.no_grad()
def test_vgg_diversity_zero_for_identical_and_positive_otherwise():
    vgg = lpips_metric.load_vgg16_features(allow_random_backbone=True, path="/nonexistent/vgg16.pth")
    sample = torch.rand(1, 2, 2, 3, 32, 32) * 2 - 1
    assert diversity.vgg_diversity(sample.expand(3, -1, -1, -1, -1, -1), vgg, size=None) == 0.0
    varied = torch.cat([sample, sample.flip(-1), -sample])
    per_layer = diversity.vgg_diversity(varied, vgg, size=None, frame_batch=3, per_layer=True)
    assert list(per_layer) == list(diversity.VGG_LAYERS) and all(v > 0 for v in per_layer.values())
    assert diversity.vgg_diversity(varied, vgg, size=None) == pytest.approx(np.mean(list(per_layer.values())), rel=1e-9)
