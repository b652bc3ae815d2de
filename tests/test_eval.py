"""Tests of the evaluation scripts and protocols: per-dataset real/fake slicing, the paper's counting
protocol (issue #12 item 9), boolean flags, missing weights reported before any generation,
eval_synthesis_quality / eval_diversity end to end on the tiny model with synthetic BAIR data (tiny
random-weight backbones), ``python -m metrics.compare``, and evaluation at scale (issue #16): two torchrun
ranks against one process, the real-statistics cache, trials, resuming and ranks that die or hang."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import eval_diversity
import eval_synthesis_quality
from data.synthetic import write_synthetic_dataset
from evaluation.backbones import RANDOM_BACKBONES_ENV, Backbones
from metrics import compare, protocol, scoring, weights
from metrics.diversity import embedding_diversity
from metrics.dti3d import DTDBI3D
from metrics.fvd import FVDFeatureExtractor
from metrics.i3d import KineticsI3D
from tests.eval_helpers import activating_init
from tests.helpers import ROOT, write_tiny_model
from tests.test_metrics import TINY_POOL
from utils.errors import ArgumentError, MissingFileError
from utils.media import save_gif, save_mp4, save_png

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny tensors: one intra-op thread

N_TEST_VIDEOS = 3


# ----------------------------------------------------------------------------- fixtures

class FrameStats:
    """A tiny FID stand-in: per-channel mean and std of each frame; records the frames it saw."""

    def __init__(self) -> None:
        self.frames = 0

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        assert frames.dim() == 4 and frames.shape[1] == 3
        self.frames += frames.shape[0]
        return torch.cat([frames.mean((2, 3)), frames.std((2, 3))], 1)


class Shrunk:
    """An I3D extractor fed frames downsampled to 16x16 (keeps the CPU tests fast)."""

    def __init__(self, extractor: FVDFeatureExtractor) -> None:
        self.extractor, self.protocol = extractor, extractor.protocol

    def __call__(self, videos: torch.Tensor) -> torch.Tensor:
        b, t = videos.shape[:2]
        if videos.shape[-1] > 16:
            videos = torch.nn.functional.interpolate(videos.flatten(0, 1), size=(16, 16), mode="area")
            videos = videos.unflatten(0, (b, t))
        return self.extractor(videos)


def tiny_backbones(fid: bool = True) -> Backbones:
    """Random-weight I3D networks for 16x16 inputs (no resizing) and, optionally, the FrameStats FID.
    LPIPS/VGG are left to the loaders, which use random trunks under I2V_ALLOW_RANDOM_BACKBONES=1."""
    kinetics = activating_init(KineticsI3D(avg_pool_kernel=TINY_POOL))
    dtdb = activating_init(DTDBI3D(16, avg_pool_kernel=TINY_POOL))
    return Backbones(
        fvd=Shrunk(FVDFeatureExtractor(kinetics, "fvd", resize=False)),
        dtfvd=Shrunk(FVDFeatureExtractor(dtdb, "dtfvd", resize=False)),
        fid=FrameStats() if fid else None, vgg_size=None)




@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """No metric weights anywhere: empty models/ and torch hub folders, random backbones not allowed."""
    monkeypatch.setattr(weights, "MODELS_DIR", tmp_path / "models")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv(RANDOM_BACKBONES_ENV, raising=False)


@pytest.fixture
def random_vgg(tmp_path, monkeypatch):
    """LPIPS/VGG with random trunks (their weights file is absent), as the test-only env var allows."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv(RANDOM_BACKBONES_ENV, "1")


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    """The tiny model (32 px) and a synthetic BAIR dataset with N_TEST_VIDEOS test videos of 20 frames."""
    root = tmp_path_factory.mktemp("eval")
    dirs = write_tiny_model(root / "model")["dirs"]
    write_synthetic_dataset("bair", root / "bair", n_videos=N_TEST_VIDEOS, n_frames=20, size=32)
    return {"model": dirs["stage2"], "data": root / "bair"}


def _common_args(setup, *extra: str) -> list[str]:
    """Arguments of a run on the tiny setup; ``-protocol all``: 3 test videos are too few for the paper's FVD."""
    return ["-gpu", "-1", "-dataset", "bair", "-data_path", str(setup["data"]), "-ckpt_path", str(setup["model"]),
            "-workers", "0", "-bs", "2", "-protocol", "all", *extra]


# ----------------------------------------------------------------------------- protocol

def _indexed(b: int, t: int, offset: float) -> torch.Tensor:
    """(b, t, 3, 2, 2) videos whose frame k is filled with offset + k."""
    return (offset + torch.arange(t, dtype=torch.float32)).view(1, t, 1, 1, 1).expand(b, t, 3, 2, 2).clone()


@pytest.mark.parametrize("dataset, real_frames, fake_frames", [
    ("bair", list(range(16)), [0] + [100 + k for k in range(15)]),
    ("BAIR", list(range(16)), [0] + [100 + k for k in range(15)]),
    ("iPER", list(range(17)), [0] + [100 + k for k in range(16)]),
    ("landscape", list(range(16)), [100 + k for k in range(16)]),
    ("DTDB", list(range(16)), [100 + k for k in range(16)]),
])
def test_protocol_slices_per_dataset(dataset, real_frames, fake_frames):
    seq, fake = _indexed(2, 17, 0.0), _indexed(2, 16, 100.0)  # real frame k = k, generated frame k = 100 + k
    real_out, fake_out = protocol.protocol_slices(dataset, seq, fake)
    assert real_out.shape == (2, len(real_frames), 3, 2, 2) and fake_out.shape == (2, len(fake_frames), 3, 2, 2)
    assert real_out[0, :, 0, 0, 0].tolist() == real_frames
    assert fake_out[1, :, 0, 0, 0].tolist() == fake_frames
    assert protocol.protocol_length(dataset, 16) == len(real_frames)


def test_protocol_slices_rejects_bad_inputs():
    with pytest.raises(ValueError, match="no evaluation protocol"):
        protocol.protocol_slices("kitti", _indexed(1, 17, 0), _indexed(1, 16, 0))
    with pytest.raises(ValueError, match="one frame"):
        protocol.protocol_slices("bair", _indexed(1, 16, 0), _indexed(1, 16, 0))
    assert [protocol.dtfvd_frames(n) for n in (8, 16, 17, 32)] == [16, 16, 32, 32]
    with pytest.raises(ValueError, match="at most 32"):
        protocol.dtfvd_frames(33)


def test_metric_flags_are_parsed_as_booleans(tmp_path):
    base = ["-dataset", "bair", "-data_path", str(tmp_path)]
    args = eval_synthesis_quality.parse_args(base + ["-FVD", "False", "-LPIPS", "True", "-FID", "0"])
    assert args.FVD is False and args.LPIPS is True and args.FID is False and args.DTFVD is True
    assert eval_diversity.parse_args(base + ["-VGG", "false"]).VGG is False
    with pytest.raises(SystemExit) as info:
        eval_synthesis_quality.parse_args(base + ["-FVD", "maybe"])
    assert info.value.code == 2  # an argparse error, not "on"
    with pytest.raises(ArgumentError, match="nothing to evaluate"):
        eval_synthesis_quality.main(base + [t for m in scoring.SYNTHESIS_METRICS for t in (f"-{m}", "False")])


def test_diversity_records_give_the_score_of_all_realisations_at_once():
    realizations = torch.randn(3, 5, 2, 3, 2, 2)  # (n_realiz, B, T, 3, H, W)
    backbones = Backbones(fvd=lambda v: v.flatten(1))
    feats = scoring.DiversityFeatures(backbones, ["I3D"], "all", n_realiz=3, batch_size=2)
    parts = [feats.chunk_records(range(0, 4), [realizations[:, :4]]), feats.chunk_records(range(4, 5),
                                                                                          [realizations[:, 4:]])]
    records = {k: torch.cat([p[k][1] for p in parts]) for k in parts[0]}
    trials, counts = feats.score(records, 5)
    assert trials[0]["I3D"] == pytest.approx(embedding_diversity(realizations, lambda v: v.flatten(1)), rel=1e-12)
    assert counts["I3D"] == {"start_frames": 5, "available": 5, "realisations": 3}


# ----------------------------------------------------------------------------- missing weights

def _forbid_model_loading(monkeypatch):
    import evaluation.runner

    def fail(*args, **kwargs):
        raise AssertionError("the model was loaded although metric weights are missing")

    monkeypatch.setattr(evaluation.runner, "load_model", fail)


def test_missing_weights_are_named_before_any_generation(no_weights, monkeypatch, tmp_path):
    _forbid_model_loading(monkeypatch)
    base = ["-gpu", "-1", "-dataset", "bair", "-data_path", str(tmp_path)]
    with pytest.raises(MissingFileError) as info:  # cli.run prints it as one error, without a traceback
        eval_synthesis_quality.main(base)  # all four metrics are on by default
    message = str(info.value)
    for name in ("model_rgb.pth", "I3D_16.pth.tar", "pt_inception-2015-12-05-6726825d.pth", "vgg16-397923af.pth"):
        assert name in message
    with pytest.raises(MissingFileError, match="i3d_torchscript.pt"):
        eval_synthesis_quality.main(base + ["-i3d", "torchscript", "-DTFVD", "False", "-FID", "False",
                                            "-LPIPS", "False"])
    iper = ["-gpu", "-1", "-dataset", "iPER", "-data_path", str(tmp_path), "-FVD", "False"]
    with pytest.raises(MissingFileError) as info:  # iPER, paper: the 16-frame DTDB I3D on frames 0-15, as the original
        eval_synthesis_quality.main(iper)
    assert "I3D_16.pth.tar" in str(info.value) and "I3D_32" not in str(info.value)
    with pytest.raises(MissingFileError) as info:  # iPER, all: the 32-frame DTDB I3D covers all 17 frames
        eval_synthesis_quality.main(iper + ["-protocol", "all"])
    assert "I3D_32.pth.tar" in str(info.value) and "I3D_16" not in str(info.value)
    with pytest.raises(MissingFileError) as info:
        eval_diversity.main(base)
    for name in ("model_rgb.pth", "I3D_16.pth.tar", "vgg16-397923af.pth"):
        assert name in str(info.value)


# ----------------------------------------------------------------------------- end to end

def test_eval_synthesis_quality_end_to_end(tiny_setup, random_vgg, caplog):
    backbones = tiny_backbones()
    with caplog.at_level(logging.WARNING):
        payload = eval_synthesis_quality.main(_common_args(tiny_setup), backbones=backbones)
    assert "RANDOM WEIGHTS" in caplog.text  # the random LPIPS trunk is announced loudly
    out = tiny_setup["model"] / "eval_synthesis_bair.json"
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(payload))
    assert saved["dataset"] == "bair" and saved["seed"] == 249 and saved["seq_length"] == 16
    assert saved["n_videos"] == N_TEST_VIDEOS and saved["frames_per_video"] == 16
    assert set(saved["metrics"]) == set(scoring.SYNTHESIS_METRICS)
    assert all(np.isfinite(v) and v > 0 for v in saved["metrics"].values()), saved["metrics"]
    assert "RANDOM" in saved["backbones"]["LPIPS"]
    assert backbones.fid.frames == 2 * N_TEST_VIDEOS * 16  # FID over all frames of real and fake videos

    # -n_videos caps the clips; -out moves the file; metrics switched off are absent
    path = tiny_setup["model"].parent / "capped.json"
    backbones.fid.frames = 0
    capped = eval_synthesis_quality.main(_common_args(tiny_setup, "-n_videos", "2", "-LPIPS", "False", "-FVD",
                                                      "False", "-DTFVD", "False", "-out", str(path)),
                                         backbones=backbones)
    assert json.loads(path.read_text())["metrics"] == capped["metrics"]
    assert capped["n_videos"] == 2 and list(capped["metrics"]) == ["FID"] and backbones.fid.frames == 2 * 2 * 16


def test_eval_diversity_end_to_end(tiny_setup, random_vgg, tmp_path):
    out = tmp_path / "diversity.json"
    payload = eval_diversity.main(_common_args(tiny_setup, "-n_realiz", "2", "-n_videos", "2", "-out", str(out)),
                                  backbones=tiny_backbones(fid=False))
    saved = json.loads(out.read_text())
    assert saved["n_realiz"] == 2 and saved["n_videos"] == 2 and saved["metrics"] == payload["metrics"]
    scores = saved["metrics"]
    assert {"VGG", "I3D", "DTI3D", "VGG_relu1_2", "VGG_relu5_3"} <= set(scores)
    assert all(np.isfinite(v) and v > 0 for v in scores.values()), scores
    assert scores["VGG"] == pytest.approx(np.mean([scores[f"VGG_{k}"] for k in
                                                   ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")]))


# ----------------------------------------------------------------------------- metrics.compare

def _write_frames(video: torch.Tensor, folder) -> None:
    for k, frame in enumerate(video):
        save_png(frame, folder / f"{k}.png")


@pytest.fixture(scope="module")
def video_folders(tmp_path_factory):
    """real/ (a frame folder, a GIF and an MP4; 16 px, 10 frames), same/ (the same files), noisy/ (noised
    copies as frame folders, 20 px, 12 frames), empty/."""
    root = tmp_path_factory.mktemp("compare")
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(1, 1, 3, 16, 16, generator=gen) * 1.4 - 0.7
    motion = torch.linspace(0, 0.3, 10).view(1, 10, 1, 1, 1) * torch.randn(3, 1, 3, 1, 1, generator=gen)
    videos = (base + motion + 0.1 * torch.randn(3, 10, 3, 16, 16, generator=gen)).clamp(-1, 1)
    for name in ("real", "same"):
        _write_frames(videos[0], root / name / "video0")
        save_gif(videos[1], root / name / "video1.gif")
        assert save_mp4(videos[2], root / name / "video2.mp4") is not None
    for i, video in enumerate(videos):
        noisy = torch.cat([video, video[:2]]) + 0.3 * torch.randn(12, 3, 16, 16, generator=gen)
        noisy = torch.nn.functional.interpolate(noisy.clamp(-1, 1), size=(20, 20), mode="bilinear")
        _write_frames(noisy, root / "noisy" / f"video{i}")
    (root / "empty").mkdir()
    return root


def test_compare_identical_and_noised_folders(video_folders, random_vgg, tmp_path, caplog):
    root = video_folders
    backbones = tiny_backbones(fid=False)
    flags = ["--fvd", "--lpips", "--dtfvd", "--gpu", "-1", "--bs", "3"]
    same = compare.main(["--real", str(root / "real"), "--fake", str(root / "same"), *flags], backbones=backbones)
    assert same["n_real"] == same["n_fake"] == 3 and same["frames"] == 10 and same["size"] == [16, 16]
    assert same["metrics"]["LPIPS"] == 0.0
    assert abs(same["metrics"]["FVD"]) < 1e-6 and abs(same["metrics"]["DTFVD"]) < 1e-6
    out = tmp_path / "compare.json"
    with caplog.at_level(logging.WARNING):
        noisy = compare.main(["--real", str(root / "real"), "--fake", str(root / "noisy"), *flags, "--out", str(out)],
                             backbones=backbones)
    assert "shortest common length, 10 frames" in caplog.text and "resized 0 real and 3 fake" in caplog.text
    assert json.loads(out.read_text())["metrics"] == noisy["metrics"]
    for metric in ("FVD", "DTFVD", "LPIPS"):
        assert noisy["metrics"][metric] > max(same["metrics"][metric], 0) + 1e-3, (metric, noisy["metrics"])


def test_compare_errors(video_folders, tmp_path, capsys):
    root = video_folders

    def run(real, fake, *flags):
        return compare.main(["--real", str(real), "--fake", str(fake), "--gpu", "-1", *flags])

    with pytest.raises(SystemExit) as info:  # the parser checks the folders
        run(tmp_path / "absent", root / "same", "--fvd")
    assert info.value.code == 2 and "argument --real: folder not found" in capsys.readouterr().err
    with pytest.raises(MissingFileError, match="no videos in"):
        run(root / "real", root / "empty", "--fvd")
    with pytest.raises(ArgumentError, match="at least one metric"):
        run(root / "real", root / "same")
    for i in range(2):
        _write_frames(torch.zeros(10, 3, 8, 8), tmp_path / "two" / f"v{i}")
    with pytest.raises(ArgumentError, match="has 3 videos and .* has 2"):
        run(root / "real", tmp_path / "two", "--lpips")


# ----------------------------------------------------------------------------- the paper's protocol (#12 item 9)

def test_paper_protocol_counts_as_the_original():
    used = protocol.used_count
    assert used("FID", 256 * 16, "paper") == 4050  # BAIR: 4050 of 4096 frames (batches of 50)
    assert used("FID", 49, "paper") == 49  # fewer than one batch: one smaller batch, as pytorch-fid's loop
    assert used("LPIPS", 4096, "paper") == 4090
    assert used("DTFVD", 1000, "paper") == 1000 and used("DTFVD", 257, "paper") == 240
    assert used("FVD", 1000, "paper") == 992 and used("FVD", 256, "paper") == 256
    assert used("I3D", 1000, "paper") == 992 and used("DTI3D", 259, "paper") == 240
    assert [used(m, 257, "all") for m in ("FVD", "DTFVD", "FID", "LPIPS", "I3D", "DTI3D")] == [257] * 6
    for metric, n in (("FVD", 15), ("LPIPS", 9), ("I3D", 15)):  # the original failed with fewer
        with pytest.raises(protocol.ProtocolError, match="-protocol all"):
            used(metric, n, "paper")
    assert protocol.realisations_used("DTI3D", 7, "paper") == 5 and protocol.realisations_used("DTI3D", 7, "all") == 7
    assert protocol.realisations_used("I3D", 7, "paper") == 7


class _Marker:
    """Stands in for a backbone that the test never calls."""


def test_paper_scores_drop_what_the_original_dropped():
    gen = torch.Generator().manual_seed(0)
    n, t = 42, 3  # 126 frames: FID uses 100, LPIPS 120; DTFVD uses 40 videos, FVD 32
    records = {f"{m}.real": torch.randn(n, *shape, generator=gen) for m, shape in
               (("FVD", (5,)), ("DTFVD", (6,)), ("FID", (t, 4)))}
    records.update({f"{m}.fake": torch.randn(n, 1, *shape, generator=gen) + 0.3 for m, shape in
                    (("FVD", (5,)), ("DTFVD", (6,)), ("FID", (1, t, 4)))})
    records["FID.fake"] = records["FID.fake"].view(n, 1, t, 4)
    records["LPIPS"] = torch.rand(n, 1, t, generator=gen, dtype=torch.float64)
    # what the paper protocol drops is made far off, so that using it would change every score
    records["FID.fake"][:, 0].view(n * t, 4)[100:] += 50.0  # frames in video order
    records["DTFVD.fake"][40:] += 50.0
    records["FVD.fake"][32:] += 50.0
    records["LPIPS"].view(-1)[120:] = 100.0
    backbones = Backbones(fvd=_Marker(), dtfvd=_Marker(), fid=_Marker(), lpips=_Marker())
    feats = scoring.SynthesisFeatures(backbones, scoring.SYNTHESIS_METRICS, "paper")
    trials, counts, stats = feats.score(records, n, n, t)
    from metrics.frechet import frechet_distance_from_features as frechet

    fid_real, fid_fake = records["FID.real"].flatten(0, 1), records["FID.fake"][:, 0].flatten(0, 1)
    expected = {"FID": frechet(fid_real[:100].double().numpy(), fid_fake[:100].double().numpy()),
                "DTFVD": frechet(records["DTFVD.real"][:40].double().numpy(),
                                 records["DTFVD.fake"][:40, 0].double().numpy()),
                "FVD": frechet(records["FVD.real"][:32].double().numpy(), records["FVD.fake"][:32, 0].double().numpy()),
                "LPIPS": float(records["LPIPS"].view(-1)[:120].mean())}
    assert trials[0] == pytest.approx(expected, rel=1e-9)
    assert counts["FID"]["real"] == counts["FID"]["fake"] == 100 and counts["FID"]["real_available"] == 126
    assert counts["DTFVD"]["fake"] == 40 and counts["FVD"]["fake"] == 32 and counts["LPIPS"]["used"] == 120
    assert stats["FID"].count == 100
    everything = scoring.SynthesisFeatures(backbones, scoring.SYNTHESIS_METRICS, "all").score(records, n, n, t)[0][0]
    assert all(everything[m] > 2 * expected[m] for m in expected), (everything, expected)


def test_paper_diversity_drops_start_frames_and_compares_five_realisations():
    embed = lambda v: v.flatten(1)[:, :4]  # noqa: E731  (B, T, 3, H, W) -> (B, 4)
    backbones = Backbones(fvd=embed, dtfvd=embed)
    feats = scoring.DiversityFeatures(backbones, ["I3D", "DTI3D"], "paper", n_realiz=7, dtfvd_frames=2)
    realizations = torch.randn(7, 21, 2, 3, 2, 2)
    records = {k: v for k, (_, v) in feats.chunk_records(range(21), [realizations]).items()}
    assert records["I3D"].shape == (21, 1, 7, 4) and records["DTI3D"].shape == (21, 1, 5, 4)
    trials, counts = feats.score(records, 21)
    assert counts["I3D"]["start_frames"] == 16 and counts["DTI3D"] == {"start_frames": 20, "available": 21,
                                                                      "realisations": 5}
    emb = records["I3D"][:, 0].double()
    assert trials[0]["I3D"] == pytest.approx(scoring_diversity(emb[:16]), rel=1e-12)
    assert trials[0]["DTI3D"] == pytest.approx(1000 * scoring_diversity(emb[:20, :5]), rel=1e-12)


def scoring_diversity(emb: torch.Tensor) -> float:
    """Brute force: mean over ordered pairs i != j of the mean squared embedding difference."""
    n = emb.shape[1]
    return float(np.mean([((emb[:, i] - emb[:, j]) ** 2).mean().item() for i in range(n) for j in range(n) if i != j]))


def test_iper_test_clips_cycle_through_the_videos(tmp_path):
    from data import get_dataset

    written = write_synthetic_dataset("iPER", tmp_path, n_videos=3, n_frames=6, size=16)
    ds = get_dataset({"Data": {**written, "sequence_length": 4, "img_size": 16, "test_size": 8}}, "test")
    assert [ds.clip_for(i)[0] for i in range(8)] == [0, 1, 2, 0, 1, 2, 0, 1]  # the original's idx % n_videos


def test_iper_dtfvd_paper_uses_the_16_frame_network_on_frames_0_to_15():
    assert protocol.dtfvd_network_frames("paper", 16, 17) == 16 and protocol.dtfvd_network_frames("all", 16, 17) == 32
    assert protocol.dtfvd_network_frames("paper", 32, 32) == 32 and protocol.dtfvd_network_frames("paper", 8, 8) == 16
    clip = protocol.dtfvd_clip(_indexed(1, 17, 0.0), 16)
    assert clip[0, :, 0, 0, 0].tolist() == list(range(16))
    assert protocol.dtfvd_clip(_indexed(1, 6, 0.0), 16)[0, :, 0, 0, 0].tolist() == [k % 6 for k in range(16)]


def test_paper_protocol_with_too_few_videos_stops_before_generation(tiny_setup, random_vgg, monkeypatch):
    import stage2_cINN.pipeline

    monkeypatch.setattr(stage2_cINN.pipeline.Pipeline, "sample", lambda *a, **k: pytest.fail("generated videos"))
    args = [a for a in _common_args(tiny_setup, "-LPIPS", "False", "-DTFVD", "False", "-FID", "False")
            if a not in ("-protocol", "all")]
    with pytest.raises(ArgumentError, match="at least 16 videos; this run has 3. Use -protocol all"):
        eval_synthesis_quality.main(args, backbones=tiny_backbones())


# ----------------------------------------------------------------------------- evaluation at scale (#16)

SCALE_VIDEOS, SCALE_FRAMES = 3, 6  # 3 clips in chunks of 2: rank 0 gets 2, rank 1 one
ALL_METRICS = scoring.SYNTHESIS_METRICS + scoring.DIVERSITY_METRICS


@pytest.fixture(scope="module")
def scale_setup(tiny_setup, tmp_path_factory):
    """Random-weight metric files in the released layouts (a -weights_dir), a synthetic BAIR dataset with
    SCALE_VIDEOS test videos, and the argument lists of a synthesis, a diversity and a compare run on them."""
    from tests.eval_helpers import write_random_weights

    root = tmp_path_factory.mktemp("scale")
    write_synthetic_dataset("bair", root / "bair", n_videos=SCALE_VIDEOS, n_frames=SCALE_FRAMES + 1, size=32)
    weights_dir = write_random_weights(root / "weights")
    base = ["-gpu", "-1", "-dataset", "bair", "-data_path", str(root / "bair"), "-ckpt_path", str(tiny_setup["model"]),
            "-workers", "0", "-bs", "2", "-seq_length", str(SCALE_FRAMES), "-protocol", "all",
            "-weights_dir", str(weights_dir)]
    real, fake = (root / "bair" / split / name
                  for split, name in (("test", "traj_0_to_255"), ("eval", "traj_256_to_511")))

    def runs(tag: str) -> dict[str, list[str]]:
        out = root / tag
        return {"synthesis": base + ["-out", str(out / "synthesis.json")],
                "diversity": base + ["-n_realiz", "2", "-out", str(out / "diversity.json")],
                "compare": ["--real", str(real), "--fake", str(fake), "--lpips", "--dtfvd", "--gpu", "-1",
                            "--bs", "2", "--protocol", "paper", "--weights_dir", str(weights_dir),
                            "--out", str(out / "compare.json")]}

    return {"root": root, "weights": weights_dir, "runs": runs, "base": base}


@pytest.fixture(scope="module")
def small(scale_setup) -> Backbones:
    """The networks of the -weights_dir files, shrunk for 32-px frames (loaded once for the module's runs)."""
    from tests.eval_helpers import small_backbones

    return small_backbones(scale_setup["weights"], ALL_METRICS)


@pytest.fixture
def backbones(small) -> Backbones:
    """:func:`small` with its count of frames embedded for FID reset."""
    small.fid.frames = 0
    return small


@pytest.fixture(scope="module")
def one_process(scale_setup, small):
    """The three runs in this process (one rank), saving the real statistics of synthesis and compare."""
    runs, stats = scale_setup["runs"]("one"), scale_setup["root"] / "stats"
    small.fid.frames = 0
    out = {"synthesis": eval_synthesis_quality.main(runs["synthesis"] + ["--save-real-stats", str(stats / "s.npz")],
                                                    backbones=small)}
    out["fid_frames"] = small.fid.frames
    out["diversity"] = eval_diversity.main(runs["diversity"], backbones=small)
    out["compare"] = compare.main(runs["compare"] + ["--save-real-stats", str(stats / "c.npz")], backbones=small)
    return {**out, "root": scale_setup["root"], "stats": stats}


def _run_ranks(argv: list[str], logs: Path, timeout: float, stop_rank_1: bool = False) -> list[tuple[int, str, str]]:
    """(return code, stdout, stderr) of two processes ``python argv...`` started as torchrun starts its
    workers (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR/PORT; gloo on the CPU, one thread each). The launcher
    itself is left out: it would add another torch start-up to the test. ``stop_rank_1``: kill rank 1 once
    rank 0 has ended."""
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2",
           "OMP_NUM_THREADS": "1"}
    logs.mkdir(parents=True, exist_ok=True)
    files = [(logs / f"rank{r}.out", logs / f"rank{r}.err") for r in (0, 1)]
    procs = [subprocess.Popen([sys.executable, *argv], cwd=ROOT, stdout=out.open("w"), stderr=err.open("w"),
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}) for r, (out, err) in enumerate(files)]
    try:
        procs[0].wait(timeout=timeout)
        if stop_rank_1:
            procs[1].kill()
        procs[1].wait(timeout=timeout)
    finally:
        for proc in procs:
            proc.kill()
    return [(proc.returncode, out.read_text(), err.read_text()) for proc, (out, err) in zip(procs, files)]


@pytest.fixture(scope="module")
def two_processes(scale_setup):
    """The same runs on two ranks (tests/eval_dist_worker.py) on the fake GPU of tests/fake_gpu.py (a tensor on the
    wrong device fails there as on CUDA; the numbers are the CPU's), then a compare run during which rank 1 dies."""
    root = scale_setup["root"]
    runs = scale_setup["runs"]("two")
    config = {**runs, "weights": str(scale_setup["weights"]), "dead": runs["compare"][:-2] + ["--out", str(root / "x")],
              "timeout": 120, "fake_gpu": True}
    (root / "worker.json").write_text(json.dumps(config))
    ranks = _run_ranks(["tests/eval_dist_worker.py", str(root / "worker.json")], root / "logs", timeout=600)
    results = {name: json.loads((root / "two" / f"{name}.json").read_text())
               for name in ("synthesis", "diversity", "compare") if (root / "two" / f"{name}.json").is_file()}
    return {**results, "ranks": ranks}


def test_two_ranks_give_the_numbers_of_one_process(one_process, two_processes):
    assert two_processes["ranks"][1][0] == 0, two_processes["ranks"][1][2][-3000:]
    for name in ("synthesis", "diversity", "compare"):
        one, two = one_process[name], two_processes[name]
        assert one["world_size"] == 1 and two["world_size"] == 2
        assert two["counts"] == one["counts"], name
        assert two["metrics"] == pytest.approx(one["metrics"], rel=1e-5), name
        assert all(v > 0 for v in one["metrics"].values()), (name, one["metrics"])
    assert one_process["synthesis"]["counts"]["FID"]["fake"] == SCALE_VIDEOS * SCALE_FRAMES
    assert one_process["compare"]["counts"]["LPIPS"] == {"unit": "frame pairs", "used": 20, "available": 21}  # paper
    assert not (one_process["root"] / "one" / "synthesis.parts").exists()  # part files removed when done


def test_a_dead_rank_stops_the_others_with_an_error(two_processes):
    code, out, err = two_processes["ranks"][0]
    assert code == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: rank 0:") and "another rank died or did not answer in time" in last, last
    assert "finished although" not in out


def test_cached_real_stats_and_trials(one_process, scale_setup, backbones):
    """A run with --real-stats gives the numbers of the fresh run without embedding the real videos again; its
    -n_trials 2 report mean, std, every trial (trial 0 = the one-trial run: per-video seeds), seeds, weights."""
    from utils.checkpoint import file_sha256

    runs = scale_setup["runs"]("cached")
    result = eval_synthesis_quality.main(runs["synthesis"] + ["-n_trials", "2", "--real-stats",
                                                              str(one_process["stats"] / "s.npz")], backbones=backbones)
    assert result["trials"][0] == one_process["synthesis"]["metrics"]  # the same statistics, the same route
    assert result["counts"] == one_process["synthesis"]["counts"] and result["real_stats"]["read"]
    assert backbones.fid.frames == 2 * SCALE_VIDEOS * SCALE_FRAMES  # generated frames of 2 trials, no real ones
    assert result["n_trials"] == 2 and result["protocol"] == "all"
    for m in scoring.SYNTHESIS_METRICS:
        values = [t[m] for t in result["trials"]]
        assert values[0] != values[1]  # independent samples
        assert result["metrics"][m] == pytest.approx(np.mean(values)) and result["std"][m] == pytest.approx(
            np.std(values, ddof=1))
    assert result["seeds"]["trials"] == [[249, 0], [249, 1]] and "SeedSequence" in result["seeds"]["per_video"]
    fvd = result["weights"]["FVD"]
    assert fvd["network"] == "kinetics_i3d"
    assert fvd["sha256"] == file_sha256(scale_setup["weights"] / "PI3D/model_rgb.pth")
    assert result["counts"]["FVD"] == {"unit": "videos", "real": 3, "fake": 3, "real_available": 3,
                                       "fake_available": 3, "frames_per_video": SCALE_FRAMES}
    same = compare.main(runs["compare"] + ["--real-stats", str(one_process["stats"] / "c.npz")], backbones=backbones)
    assert same["metrics"] == one_process["compare"]["metrics"]
    assert one_process["fid_frames"] == 2 * SCALE_VIDEOS * SCALE_FRAMES  # real and generated frames


def test_real_stats_cache_is_refused_on_a_mismatch(one_process, scale_setup, backbones, tmp_path):
    from evaluation.real_stats import RealStatsError

    runs = scale_setup["runs"]("refused")
    path = one_process["stats"] / "s.npz"

    def refused(argv: list[str], *expected: str) -> None:
        with pytest.raises(RealStatsError) as info:  # cli.run prints it as one "error: ..." line
            eval_synthesis_quality.main(argv, backbones=backbones)
        message = str(info.value)
        assert "does not match this evaluation" in message or "not a real-statistics file" in message, message
        for text in expected:
            assert text in message, message

    cache = ["--real-stats", str(path)]
    refused(runs["synthesis"] + ["-n_videos", "2"] + cache, "n_clips: 3 in the file, 2 in this run", "FVD count")
    refused(runs["synthesis"] + ["-protocol", "paper", "-FVD", "False"] + cache, "protocol: 'all' in the file")
    with np.load(path) as data:  # the same statistics, from another network's weights
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    meta["identity"]["metrics"]["DTFVD"]["sha256"] = "0" * 64
    np.savez(tmp_path / "other.npz", **{**arrays, "meta": np.array(json.dumps(meta))})
    refused(runs["synthesis"] + ["--real-stats", str(tmp_path / "other.npz")], "DTFVD sha256: '0000")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    refused(runs["synthesis"] + ["--real-stats", str(tmp_path / "junk.npz")], "junk.npz")
    with pytest.raises(SystemExit) as info:  # the parser checks the file
        eval_synthesis_quality.main(runs["synthesis"] + ["--real-stats", str(tmp_path / "absent.npz")],
                                    backbones=backbones)
    assert info.value.code == 2
    with pytest.raises(ArgumentError, match="give one"):
        eval_synthesis_quality.main(runs["synthesis"] + cache + ["--save-real-stats", str(tmp_path / "x.npz")])


def test_interrupted_evaluation_resumes_to_the_same_numbers(one_process, scale_setup, backbones, monkeypatch):
    import stage2_cINN.pipeline

    out = scale_setup["root"] / "resumed" / "synthesis.json"
    argv = scale_setup["base"] + ["-FID", "False", "-LPIPS", "False", "-out", str(out)]
    sample = stage2_cINN.pipeline.Pipeline.sample
    calls = []

    def killed_at_the_second_chunk(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a Ctrl-C or a kill in the middle of the evaluation
        return sample(self, *args, **kwargs)

    monkeypatch.setattr(stage2_cINN.pipeline.Pipeline, "sample", killed_at_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        eval_synthesis_quality.main(argv, backbones=backbones)
    parts = list(out.with_suffix(".parts").glob("*/chunk_*.pt"))
    assert [p.name for p in parts] == ["chunk_000000.pt"] and not out.exists()
    calls.clear()
    monkeypatch.setattr(stage2_cINN.pipeline.Pipeline, "sample", lambda self, *a, **k: calls.append(1) or sample(
        self, *a, **k))
    resumed = eval_synthesis_quality.main(argv, backbones=backbones)
    assert len(calls) == 1  # only the second chunk was generated again
    reference = one_process["synthesis"]["metrics"]
    assert resumed["metrics"] == pytest.approx({m: reference[m] for m in ("FVD", "DTFVD")}, rel=1e-12)
    assert not out.with_suffix(".parts").exists()


def test_stuck_rank_times_out(tmp_path):
    """Rank 1 joins and then hangs; rank 0 gathering features stops with an error after the timeout."""
    script = ("import time, torch; from utils.distributed import init_distributed; "
              "from evaluation.runner import exit_on_rank_failure; from evaluation.sharded import gather_records; "
              "info = init_distributed(torch.device('cpu'), timeout=2)\n"
              "if info.rank == 1: time.sleep(60)\n"
              "exit_on_rank_failure(lambda: gather_records([{'x': (torch.zeros(1, dtype=torch.long), "
              "torch.zeros(1))}], info))\n")
    code, _, err = _run_ranks(["-c", script], tmp_path, timeout=90, stop_rank_1=True)[0]
    assert code == 1, err[-2000:]
    assert err.strip().splitlines()[-1].startswith(
        "error: rank 0: gathering the features failed: another rank died or did not answer in time"), err[-2000:]


def test_weights_dir_names_a_missing_file_with_its_source(tmp_path, monkeypatch, capsys):
    _forbid_model_loading(monkeypatch)
    (tmp_path / "w").mkdir()
    base = ["-gpu", "-1", "-dataset", "bair", "-data_path", str(tmp_path), "--weights_dir", str(tmp_path / "w")]
    with pytest.raises(MissingFileError) as info:
        eval_synthesis_quality.main(base + ["-DTFVD", "False", "-FID", "False", "-LPIPS", "False"])
    assert str(tmp_path / "w" / "PI3D" / "model_rgb.pth") in str(info.value) and "hassony2" in str(info.value)
    with pytest.raises(MissingFileError) as info:
        eval_diversity.main(base + ["-I3D", "False", "-DTI3D", "False"])
    assert str(tmp_path / "w" / "vgg16-397923af.pth") in str(info.value) and "download.pytorch.org" in str(info.value)
    with pytest.raises(SystemExit) as info:  # the parser checks the folder
        compare.main(["--real", str(tmp_path), "--fake", str(tmp_path), "--fid", "-weights_dir", str(tmp_path / "no")])
    assert info.value.code == 2 and "argument -weights_dir/--weights_dir: folder not found" in capsys.readouterr().err
