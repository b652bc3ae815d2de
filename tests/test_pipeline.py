"""Inference API and the sampling/transfer scripts on a tiny model written in the released layout."""
from __future__ import annotations

import shutil
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
import yaml

from stage2_cINN.loading import MissingFilesError
from stage2_cINN.pipeline import load_model
from tests.helpers import write_tiny_model
from utils.errors import ArgumentError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("released"))


@pytest.fixture(scope="module")
def pipe(tiny):
    return load_model(tiny["dirs"]["stage2"])


def _emb(tiny, x0):
    return tiny["conditioner"].embed(torch.nn.functional.interpolate(x0, size=(64, 64), mode="bilinear"))


def _x0(n=2, seed=0):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_load_model_round_trip(tiny, pipe):
    cfg2 = yaml.safe_load((tiny["dirs"]["stage2"] / "config_stage2.yaml").read_text())
    assert "control" not in cfg2["Training"] and pipe.control is False  # missing key means False
    assert (tiny["dirs"]["stage1"] / "best_PFVD_ENC.pth.tar").is_file()  # .pth.tar accepted
    for mine, ref in [(pipe.flow, tiny["flow"]), (pipe.decoder, tiny["decoder"]),
                      (pipe.encoder, tiny["encoder"]), (pipe.conditioner, tiny["conditioner"])]:
        a, b = mine.state_dict(), ref.state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert not mine.training and not any(p.requires_grad for p in mine.parameters())


def test_sample_equals_hand_composition(tiny, pipe):
    x0, residual = _x0(), torch.randn(2, 16)
    video = pipe.sample(x0, 16, residual=residual)
    with torch.no_grad():
        z = tiny["flow"].reverse(residual, _emb(tiny, x0))
        ref = tiny["decoder"](x0, z)
    assert video.shape == (2, 16, 3, 32, 32)
    torch.testing.assert_close(video, ref, rtol=1e-5, atol=1e-6)
    assert torch.equal(pipe.sample(x0, 16, residual=residual), video)  # reproducible
    other = pipe.sample(x0, 16, residual=torch.randn(2, 16))
    assert (other - video).abs().mean() > 1e-4  # the residual matters


def test_longer_videos_continue_from_the_last_frame(tiny, pipe):
    x0, residual = _x0(1), torch.randn(1, 16)
    video = pipe.sample(x0, 20, residual=residual)
    assert video.shape == (1, 20, 3, 32, 32)
    with torch.no_grad():
        z = tiny["flow"].reverse(residual, _emb(tiny, x0))
        first = tiny["decoder"](x0, z)
        second = tiny["decoder"](first[:, -1], z)
    torch.testing.assert_close(video[:, :16], first, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(video[:, 16:], second[:, :4], rtol=1e-5, atol=1e-6)


def _transfer_by_hand(tiny, query, x0, encoded):
    with torch.no_grad():
        _, mu, _ = tiny["encoder"](query[:, encoded])
        eps, _ = tiny["flow"](mu, _emb(tiny, query[:, 0]))
        z = tiny["flow"].reverse(eps.expand(x0.shape[0], -1), _emb(tiny, x0))
        return tiny["decoder"](x0, z)


def test_transfer_is_deterministic_with_mean_and_matches_composition(tiny, pipe):
    """By default from the posterior mean (as the original); frames 1-16 of a 17+-frame query are encoded,
    frames 1-15 of a 16-frame one (what the original's transfer script loads and encodes)."""
    query = torch.rand(1, 18, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    x0 = _x0(2, seed=2)
    a = pipe.transfer(query, x0)  # equal to the composition from mu: the default is the posterior mean
    assert a.shape == (2, 16, 3, 32, 32)
    torch.testing.assert_close(a, _transfer_by_hand(tiny, query, x0, slice(1, 17)), rtol=1e-5, atol=1e-6)
    short = pipe.transfer(query[:, :16], x0)
    torch.testing.assert_close(short, _transfer_by_hand(tiny, query, x0, slice(1, 16)), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(pipe.transfer(query, x0[:1], use_mean=False), a[:1])  # a posterior sample
    with pytest.raises(ValueError, match="at least 16 frames"):
        pipe.transfer(query[:, :15], x0)


def test_absolute_paths_and_any_batch_size(tmp_path):
    tiny = write_tiny_model(tmp_path / "abs", relative_paths=False, encoder_suffix=".pth", seed=3)
    pipe = load_model(tiny["dirs"]["stage2"])
    assert pipe.sample(_x0(5), 16).shape == (5, 16, 3, 32, 32)
    assert pipe.sample(torch.zeros(1, 3, 50, 70), 16).shape[-2:] == (32, 32)  # resized


def test_missing_files_are_listed_in_one_error(tiny, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tiny["dirs"]["stage2"].parent, root)
    (root / "stage1" / "best_PFVD_GEN.pth").unlink()
    (root / "stage2_AE" / "Encoder_stage2.pth").unlink()
    with pytest.raises(MissingFilesError) as e:
        load_model(root / "stage2")
    msg = str(e.value)
    assert str((root / "stage1" / "best_PFVD_GEN").resolve()) in msg
    assert str((root / "stage2_AE" / "Encoder_stage2").resolve()) in msg
    assert "expected layout" in msg
    with pytest.raises(MissingFilesError, match="config_stage2.yaml"):
        load_model(tmp_path / "nowhere")


# ---------------------------------------------------------------------------------------------- scripts
def _write_images(folder: Path, n: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        imageio.imwrite(folder / f"img{i}.png", rng.integers(0, 255, (24 + 16 * i, 40, 3), dtype=np.uint8))
    return folder


def _gif_frames(path: Path) -> np.ndarray:
    return np.stack(imageio.mimread(path, memtest=False))


def test_generate_samples_script(tiny, tmp_path):
    import generate_samples

    images = _write_images(tmp_path / "imgs")
    gif = generate_samples.main(["-dataset", "landscape", "-gpu", "-1", "-ckpt_path", str(tiny["dirs"]["stage2"]),
                                 "-images", str(images), "-out", str(tmp_path / "out"), "-n_samples", "2",
                                 "-seq_length", "6", "-bs", "3"])
    frames = _gif_frames(gif)
    # 6 frames; 2 rows (images) x 3 columns (start frame + 2 samples) of 32 px with 2 px padding
    assert frames.shape[:3] == (6, 2 * 36, 3 * 36)
    assert (tmp_path / "out" / "results.png").is_file() and (tmp_path / "out" / "results.mp4").is_file()


def test_generate_transfer_script(tiny, tmp_path):
    import generate_transfer

    vids = tmp_path / "videos"
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        (vids / name).mkdir(parents=True)
        for k in range(18):
            imageio.imwrite(vids / name / f"frame{k}.jpg", rng.integers(0, 255, (40, 70, 3), dtype=np.uint8))
    gifs = generate_transfer.main(["-dataset", "landscape", "-gpu", "-1", "-ckpt_path", str(tiny["dirs"]["stage2"]),
                                   "-videos", str(vids), "-out", str(tmp_path / "out")])
    assert [g.name for g in gifs] == ["transfer_a.gif", "transfer_b.gif"]
    assert _gif_frames(gifs[0]).shape[:3] == (16, 2 * 36, 2 * 36)


@pytest.mark.parametrize("case", ["no_model", "empty_images", "bad_image", "no_texture", "bad_dataset", "no_folder"])
def test_script_errors_are_clear(tiny, tmp_path, case, capsys):
    import generate_samples
    from utils.errors import I2VError

    args = ["-gpu", "-1", "-out", str(tmp_path / "out")]
    if case == "no_model":
        (tmp_path / "empty_model").mkdir()
        args += ["-dataset", "landscape", "-ckpt_path", str(tmp_path / "empty_model"), "-images",
                 str(_write_images(tmp_path / "i"))]
        expected = "config_stage2.yaml"
    elif case == "empty_images":
        (tmp_path / "empty").mkdir()
        args += ["-dataset", "landscape", "-ckpt_path", str(tiny["dirs"]["stage2"]), "-images", str(tmp_path / "empty")]
        expected = "no images"
    elif case == "bad_image":
        folder = _write_images(tmp_path / "bad", 1)
        (folder / "broken.jpg").write_bytes(b"not an image")
        args += ["-dataset", "landscape", "-ckpt_path", str(tiny["dirs"]["stage2"]), "-images", str(folder)]
        expected = "broken.jpg"
    elif case == "no_texture":
        args += ["-dataset", "DTDB"]
        expected = "-texture"
    elif case == "no_folder":  # checked by the parser
        args += ["-dataset", "landscape", "-ckpt_path", str(tmp_path / "missing")]
        expected = "argument -ckpt_path/-chkpt: folder not found"
    else:
        args += ["-dataset", "kinetics"]
        expected = "unknown dataset 'kinetics'"
    if case in ("no_folder", "bad_dataset"):
        with pytest.raises(SystemExit) as e:
            generate_samples.main(args)
        assert e.value.code == 2 and expected in capsys.readouterr().err
    else:
        with pytest.raises(I2VError, match=expected):
            generate_samples.main(args)


def test_visualize_endpoint_script(tmp_path):
    import visualize_endpoint
    from data.synthetic import write_synthetic_dataset

    tiny = write_tiny_model(tmp_path / "control", control=True, seed=5)
    pipe = load_model(tiny["dirs"]["stage2"])
    assert pipe.control
    x0 = _x0(2)
    with pytest.raises(ValueError, match="cond"):
        pipe.sample(x0)
    a = pipe.sample(x0, residual=torch.zeros(2, 16), cond=torch.tensor([[0.43, 0.0, 0.2], [0.43, 0.0, 0.2]]))
    b = pipe.sample(x0, residual=torch.zeros(2, 16), cond=torch.tensor([[0.43, 0.5, 0.3], [0.43, 0.5, 0.3]]))
    assert (a - b).abs().mean() > 1e-5  # the endpoint steers the sample
    data = write_synthetic_dataset("bair", tmp_path / "bair", n_videos=2, n_frames=18, size=32)
    gifs = visualize_endpoint.main(["-dataset", "bair", "-gpu", "-1", "-data_path", data["data_path"],
                                    "-ckpt_path", str(tiny["dirs"]["stage2"]), "-n_examples", "2", "-n_samples", "2",
                                    "-out", str(tmp_path / "out")])
    assert len(gifs) == 2
    assert _gif_frames(gifs[0]).shape[:3] == (16, 36, 3 * 36)  # real clip + 2 samples, 16 frames
    assert (tmp_path / "out" / "endpoint_0.png").is_file()
    with pytest.raises(ArgumentError, match="control"):
        generate_samples_main = __import__("generate_samples").main
        generate_samples_main(["-dataset", "bair", "-gpu", "-1", "-ckpt_path", str(tiny["dirs"]["stage2"]),
                               "-images", str(_write_images(tmp_path / "imgs")), "-out", str(tmp_path / "o2")])
