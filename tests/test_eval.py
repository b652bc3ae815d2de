"""Tests of the evaluation scripts and protocols: per-dataset real/fake slicing, boolean flags, missing
weights reported before any generation, eval_synthesis_quality / eval_diversity end to end on the tiny
model with synthetic BAIR data (tiny random-weight backbones), and ``python -m metrics.compare``."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

import eval_diversity
import eval_synthesis_quality
from data.synthetic import write_synthetic_dataset
from metrics import compare, evaluation, weights
from metrics.diversity import embedding_diversity
from metrics.dti3d import DTDBI3D
from metrics.fvd import FVDFeatureExtractor
from metrics.i3d import KineticsI3D
from tests.helpers import write_tiny_model
from tests.test_metrics import TINY_POOL, _activating_init
from utils.errors import ArgumentError, MissingFileError
from utils.video import save_gif, save_mp4, save_png

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


def tiny_backbones(fid: bool = True) -> evaluation.Backbones:
    """Random-weight I3D networks for 16x16 inputs (no resizing) and, optionally, the FrameStats FID.
    LPIPS/VGG are left to the loaders, which use random trunks under I2V_ALLOW_RANDOM_BACKBONES=1."""
    kinetics = _activating_init(KineticsI3D(avg_pool_kernel=TINY_POOL))
    dtdb = _activating_init(DTDBI3D(16, avg_pool_kernel=TINY_POOL))
    return evaluation.Backbones(
        fvd=Shrunk(FVDFeatureExtractor(kinetics, "fvd", resize=False)),
        dtfvd=Shrunk(FVDFeatureExtractor(dtdb, "dtfvd", resize=False)),
        fid=FrameStats() if fid else None, vgg_size=None)




@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """No metric weights anywhere: empty models/ and torch hub folders, random backbones not allowed."""
    monkeypatch.setattr(weights, "MODELS_DIR", tmp_path / "models")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv(evaluation.RANDOM_BACKBONES_ENV, raising=False)


@pytest.fixture
def random_vgg(tmp_path, monkeypatch):
    """LPIPS/VGG with random trunks (their weights file is absent), as the test-only env var allows."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv(evaluation.RANDOM_BACKBONES_ENV, "1")


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    """The tiny model (32 px) and a synthetic BAIR dataset with N_TEST_VIDEOS test videos of 20 frames."""
    root = tmp_path_factory.mktemp("eval")
    dirs = write_tiny_model(root / "model")["dirs"]
    write_synthetic_dataset("bair", root / "bair", n_videos=N_TEST_VIDEOS, n_frames=20, size=32)
    return {"model": dirs["stage2"], "data": root / "bair"}


def _common_args(setup, *extra: str) -> list[str]:
    return ["-gpu", "-1", "-dataset", "bair", "-data_path", str(setup["data"]), "-ckpt_path", str(setup["model"]),
            "-workers", "0", "-bs", "2", *extra]


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
    real_out, fake_out = evaluation.protocol_slices(dataset, seq, fake)
    assert real_out.shape == (2, len(real_frames), 3, 2, 2) and fake_out.shape == (2, len(fake_frames), 3, 2, 2)
    assert real_out[0, :, 0, 0, 0].tolist() == real_frames
    assert fake_out[1, :, 0, 0, 0].tolist() == fake_frames
    assert evaluation.protocol_length(dataset, 16) == len(real_frames)


def test_protocol_slices_rejects_bad_inputs():
    with pytest.raises(ValueError, match="no evaluation protocol"):
        evaluation.protocol_slices("kitti", _indexed(1, 17, 0), _indexed(1, 16, 0))
    with pytest.raises(ValueError, match="one frame"):
        evaluation.protocol_slices("bair", _indexed(1, 16, 0), _indexed(1, 16, 0))
    assert [evaluation.dtfvd_frames(n) for n in (8, 16, 17, 32)] == [16, 16, 32, 32]
    with pytest.raises(ValueError, match="at most 32"):
        evaluation.dtfvd_frames(33)


def test_metric_flags_are_parsed_as_booleans(tmp_path):
    base = ["-dataset", "bair", "-data_path", str(tmp_path)]
    args = eval_synthesis_quality.parse_args(base + ["-FVD", "False", "-LPIPS", "True", "-FID", "0"])
    assert args.FVD is False and args.LPIPS is True and args.FID is False and args.DTFVD is True
    assert eval_diversity.parse_args(base + ["-VGG", "false"]).VGG is False
    with pytest.raises(SystemExit) as info:
        eval_synthesis_quality.parse_args(base + ["-FVD", "maybe"])
    assert info.value.code == 2  # an argparse error, not "on"
    with pytest.raises(ArgumentError, match="nothing to evaluate"):
        eval_synthesis_quality.main(base + [t for m in evaluation.SYNTHESIS_METRICS for t in (f"-{m}", "False")])


def test_diversity_accumulates_exactly_over_batches():
    realizations = torch.randn(3, 5, 2, 3, 2, 2)
    backbones = evaluation.Backbones(fvd=lambda v: v.flatten(1))
    scores = evaluation.DiversityMetrics(backbones, ["I3D"], batch_size=2)
    scores.add(realizations[:, :4])
    scores.add(realizations[:, 4:])
    expected = embedding_diversity(realizations, lambda v: v.flatten(1))
    assert scores.results()["I3D"] == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------------------- missing weights

def _forbid_model_loading(monkeypatch):
    import stage2_cINN.pipeline

    def fail(*args, **kwargs):
        raise AssertionError("the model was loaded although metric weights are missing")

    monkeypatch.setattr(stage2_cINN.pipeline, "load_model", fail)


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
    with pytest.raises(MissingFileError) as info:  # iPER: 17-frame videos -> the 32-frame DTDB I3D
        eval_synthesis_quality.main(["-gpu", "-1", "-dataset", "iPER", "-data_path", str(tmp_path), "-FVD", "False"])
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
    assert set(saved["metrics"]) == set(evaluation.SYNTHESIS_METRICS)
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
    run = lambda real, fake, *flags: compare.main(["--real", str(real), "--fake", str(fake), "--gpu", "-1", *flags])
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
