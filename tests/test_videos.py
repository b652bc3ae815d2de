"""Your own videos, end to end (issue #23): video files are data (the ``folder`` dataset, ``-videos``, ``-images``,
``metrics.compare``, ``python -m data.check``), decoded by seeking; bad files are one error naming them; one list of
suffixes; ``python -m data.prepare_videos``; ``metrics.compare`` on any length; a model trained on ``folder`` data
sampled by its folder alone, with one video per sample; transfer from a video file. Real sky clips encoded as .mp4
(``real_mp4s``), a tiny random model, tiny random metric networks."""
from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
import yaml

import generate_samples
import generate_transfer
from data import get_dataset, videos
from data.augment import ClipTransform
from data.dataset import DataLayoutError
from data.formats import IMAGE_SUFFIXES, unique_names
from data.images import list_images, list_start_frames, read_image
from data.prepare_videos import assign_splits
from data.prepare_videos import main as prepare_videos
from data.videos import VideoFileError, list_videos, read_frames, read_video
from metrics import compare
from metrics.fvd import FVDFeatureExtractor
from metrics.i3d import KineticsI3D
from stage2_cINN import arguments
from tests.helpers import tiny_stage1_config, write_tiny_model
from tests.test_eval import tiny_backbones
from utils import command
from utils.errors import ArgumentError, I2VError
from utils.media import save_gif, save_mp4

pytestmark = pytest.mark.usefixtures("single_thread")  # small tensors: one intra-op thread

SPLITS = {"train": ("sample1", "sample2", "sample3", "sample4"), "eval": ("sample5",), "test": ("sample11", "sample12")}


@pytest.fixture(scope="module")
def tiny():
    """Tiny random-weight metric networks (tests.test_eval.tiny_backbones), built once for the module."""
    return tiny_backbones()


@pytest.fixture(scope="module")
def mp4_root(real_mp4s, tmp_path_factory) -> Path:
    """A ``folder`` dataset of .mp4 files: train (4), eval (1), test (2 held-out clips)."""
    root = tmp_path_factory.mktemp("mp4_data")
    for split, names in SPLITS.items():
        (root / split).mkdir()
        for name in names:
            shutil.copy(real_mp4s[name], root / split)
    return root


def _encode(path: Path, frames: np.ndarray, codec: str = "libx264", gop: int = 8) -> Path:
    """``frames`` (T, H, W, 3) uint8 as a video file: key frames every ``gop`` frames, B-frames for H.264."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"g": str(gop), "bf": "2"} if codec == "libx264" else {"g": str(gop)}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def _ramp(n: int, size: int = 32) -> np.ndarray:
    """(n, size, size, 3) frames whose brightness steps with the frame index (each frame tells its index)."""
    levels = np.linspace(10, 245, n).round().astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (n, size, size, 3)).copy()


# ----------------------------------------------------------------------------- decoding

class _Counting:
    """Wraps ``data.videos._open`` and counts the frames decoded."""

    def __init__(self, monkeypatch):
        self.decoded, opener = 0, videos._open

        def counting_open(path):
            container = opener(path)
            decode = container.decode

            def counted(*args, **kwargs):
                for frame in decode(*args, **kwargs):
                    self.decoded += 1
                    yield frame

            return _Proxy(container, counted)

        monkeypatch.setattr(videos, "_open", counting_open)


class _Proxy:
    def __init__(self, container, decode):
        self._container, self.decode = container, decode

    def __getattr__(self, name):
        return getattr(self._container, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._container.close()


def test_a_clip_is_decoded_from_the_key_frame_before_it_not_from_the_file_start(tmp_path, monkeypatch):
    frames = _ramp(96)
    path = _encode(tmp_path / "long.mp4", frames, gop=8)
    whole = read_frames(path)
    assert whole.shape == (96, 32, 32, 3) and videos.frame_count(path) == 96
    np.testing.assert_allclose(whole[:, 0, 0, 0], frames[:, 0, 0, 0], atol=3)  # frame k is frame k
    counter = _Counting(monkeypatch)
    clip = read_frames(path, 81, 8)  # key frames at 0, 8, ..., 80: decodes from 80 (plus the B-frame delay)
    assert np.array_equal(clip, whole[81:89])
    assert counter.decoded <= 8 + 8, f"decoded {counter.decoded} frames for an 8-frame clip at frame 81"
    videos._index_cache.clear()
    monkeypatch.setattr(videos, "_scan", None)  # the first frames (a start frame) need no pass over the file
    assert np.array_equal(videos.first_frame(path), whole[0]) and np.array_equal(read_frames(path, 0, 3), whole[:3])


@pytest.mark.parametrize("suffix, codec", [(".webm", "libvpx-vp9"), (".avi", "mpeg4"), (".mov", "libx264"),
                                           (".mkv", "libx264"), (".avi", "libx264")])
def test_every_video_container_gives_the_same_clips(tmp_path, suffix, codec):
    """Clips in presentation order, also from H.264 in AVI, whose packets are numbered in decoding order."""
    frames = np.zeros((40, 48, 48, 3), np.uint8)
    frames[np.arange(40), np.arange(40)] = 255  # frame k: a white line at row k
    path = _encode(tmp_path / f"v{suffix}", frames, codec=codec, gop=6)
    whole = read_frames(path)
    assert len(whole) == videos.frame_count(path) == 40
    assert np.array_equal(whole.mean((2, 3)).argmax(1), np.arange(40))  # frame k is frame k
    for start in (0, 5, 6, 23):
        assert np.array_equal(read_frames(path, start, 16), whole[start:start + 16]), (suffix, start)


def test_gif_frames_and_frame_folders_read_alike(tmp_path):
    video = torch.from_numpy(_ramp(12, 16)).permute(0, 3, 1, 2).float() / 127.5 - 1
    save_gif(video, tmp_path / "v.gif")
    gif = read_video(tmp_path / "v.gif")
    assert gif.shape == (12, 3, 16, 16) and torch.allclose(gif, video, atol=2 / 127.5)
    assert torch.equal(read_video(tmp_path / "v.gif", 5), gif[:5])  # only the first frames
    folder = tmp_path / "frames"
    folder.mkdir()
    for k, frame in enumerate(_ramp(12, 16)):  # frame2 before frame10: natural order, not the names' order
        cv2.imwrite(str(folder / f"frame{k}.png"), frame[..., ::-1])
    assert torch.equal(read_video(folder), video) and torch.equal(read_video(folder, 5), video[:5])


def test_folder_dataset_reads_mp4_clips(mp4_root, real_mp4s):
    cfg = tiny_stage1_config(str(mp4_root))
    cfg["Data"]["dataset"] = "folder"
    train = get_dataset(cfg, "train")
    assert len(train) == 4 and all(v.is_file and len(v) in (33, 34) for v in train.videos)
    assert train[0]["seq"].shape == (17, 3, 32, 32)
    test = get_dataset(cfg, "test")  # start frame 0, no augmentation: the first 17 frames, resized
    whole = torch.from_numpy(read_frames(real_mp4s["sample11"])).permute(0, 3, 1, 2)
    expected = ClipTransform(32)(whole[:17])
    assert torch.equal(test[0]["seq"], expected)
    assert torch.equal(videos.read_clip_file(real_mp4s["sample11"], 9, 17), whole[9:26])


# ----------------------------------------------------------------------------- bad files

@pytest.fixture
def bad_files(tmp_path, real_mp4s) -> dict[str, Path]:
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes())
    data = real_mp4s["sample1"].read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])  # moov atom at the end: lost
    container = av.open(str(tmp_path / "noframes.mp4"), "w")  # a header, no frame
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
    container.start_encoding()
    container.close()
    return {p.stem: p for p in tmp_path.glob("*.mp4")}


def test_bad_video_files_are_one_error_naming_the_file(bad_files, real_mp4s):
    for name, reason in (("empty", "an empty file"), ("random", "not a readable video"),
                         ("truncated", "not a readable video"), ("noframes", "holds no video")):
        with pytest.raises(VideoFileError, match=reason) as info:
            read_video(bad_files[name])
        assert str(bad_files[name]) in str(info.value), name
    with pytest.raises(VideoFileError, match=r"has 33 frames; 100 frames needed") as info:
        read_video(real_mp4s["sample1"], 100)
    assert str(real_mp4s["sample1"]) in str(info.value)


def test_a_bad_video_is_one_error_line_before_the_model_loads(bad_files, capsys, monkeypatch):
    import stage2_cINN.pipeline

    monkeypatch.setattr(stage2_cINN.pipeline, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    for name, script, flag in (("empty", generate_transfer, "-videos"), ("random", generate_transfer, "-videos"),
                               ("truncated", generate_samples, "-images"), ("noframes", generate_samples, "-images")):
        with pytest.raises(SystemExit) as info:
            command.run(script.main, ["-dataset", "demo", "-gpu", "-1", flag, str(bad_files[name])])
        err = capsys.readouterr().err.strip().splitlines()
        assert info.value.code == 2 and len(err) == 1 and err[0].startswith("error: cannot read video "), err
        assert str(bad_files[name]) in err[0] and "Traceback" not in err[0]


def test_bad_and_unlisted_files_in_a_split_are_named(bad_files, mp4_root, tmp_path, caplog, capsys):
    from data.check import main as check

    root = tmp_path / "data"
    shutil.copytree(mp4_root, root)
    shutil.copy(bad_files["empty"], root / "train")
    cfg = tiny_stage1_config(str(root))
    cfg["Data"]["dataset"] = "folder"
    with caplog.at_level(logging.WARNING):
        assert len(get_dataset(cfg, "train")) == 4  # training skips the unreadable file, naming it
    assert "empty.mp4: an empty file" in caplog.text
    argv = ["-cf", "stage1_VAE/configs/tiny_config.yaml", f"Data.data_path={root}", "Data.dataset=folder"]
    assert check(argv + ["--modes", "train", "test"]) == 1
    out = capsys.readouterr().out
    assert "empty.mp4: an empty file" in out and "1 video files unreadable" in out
    assert re.search(r"test: 2 videos, 6\d frames; 0 unreadable \(in 0 videos\), 0 video files unreadable", out)
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("x")
    with pytest.raises(DataLayoutError, match=r"holds 1 file\(s\) that are not videos \(readme.txt\)"):
        get_dataset({"Data": {**cfg["Data"], "data_path": str(root / "notes")}}, "train")


# ----------------------------------------------------------------------------- one list of suffixes

def test_one_list_of_image_and_video_suffixes(tmp_path, real_mp4s):
    image = np.random.default_rng(1).integers(0, 256, (20, 20, 3), np.uint8)
    for suffix in IMAGE_SUFFIXES:  # what the app takes, -images takes (webp, bmp, tiff included)
        assert cv2.imwrite(str(tmp_path / f"x{suffix}"), image), suffix
        assert arguments.image_source(str(tmp_path / f"x{suffix}")) == tmp_path / f"x{suffix}"
        assert read_image(tmp_path / f"x{suffix}", 20).shape == (3, 20, 20)
    assert len(list_images(tmp_path)) == len(IMAGE_SUFFIXES)
    assert arguments.video_source(str(real_mp4s["sample1"])) == real_mp4s["sample1"]  # -videos: a file too
    assert list_videos(real_mp4s["sample1"]) == [real_mp4s["sample1"]]
    assert list_start_frames(real_mp4s["sample1"]) == [real_mp4s["sample1"]]  # a video gives its first frame
    first = torch.from_numpy(read_frames(real_mp4s["sample1"], 0, 1)).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert torch.allclose(read_image(real_mp4s["sample1"], 36), torch.nn.functional.interpolate(
        first, size=(36, 36), mode="bilinear", align_corners=False)[0].clamp(-1, 1))
    with pytest.raises(Exception, match="is not a png/jpg"):
        arguments.image_source(str(Path(__file__)))
    assert unique_names([Path("a/s11.mp4"), Path("b/s12.gif"), Path("c/s12.mp4")]) == ["s11", "s12_gif", "s12_mp4"]


# ----------------------------------------------------------------------------- python -m data.prepare_videos

def test_prepare_videos_splits_resumes_and_reports(real_mp4s, bad_files, tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    (src / "more").mkdir(parents=True)
    for name in ("sample1", "sample2", "sample3", "sample4", "sample5"):
        shutil.copy(real_mp4s[name], src)
    shutil.copy(real_mp4s["sample6"], src / "more")
    shutil.copy(bad_files["empty"], src)
    (src / "notes.txt").write_text("x")
    argv = ["--src", str(src), "--out", str(out), "--size", "16", "--split", "0.5", "0.25", "0.25"]
    report = prepare_videos(argv)
    printed = capsys.readouterr().out
    assert set(report["videos"]) == {"sample1", "sample2", "sample3", "sample4", "sample5", "more_sample6"}
    assert sorted(v["split"] for v in report["videos"].values()) == ["eval", "test"] + ["train"] * 4  # 6: 4 / 1 / 1
    assert "an empty file" in report["skipped"][str(src / "empty.mp4")]
    assert "not a video file" in report["skipped"][str(src / "notes.txt")]
    assert "skipped" in printed and "empty.mp4" in printed and json.loads((out / "prepare_videos.json").read_text())
    where = {n: out / v["split"] / n for n, v in report["videos"].items()}
    frame = cv2.imread(str(where["sample1"] / "frame0.jpg"))
    assert frame.shape == (16, 28, 3) and report["videos"]["sample1"]["frames"] == 33  # shorter side 16, every frame
    assert assign_splits(list(reversed(report["videos"])), [0.5, 0.25, 0.25], 0) == \
        {n: v["split"] for n, v in report["videos"].items()}  # the split depends on the names, not their order
    kept = where["sample2"] / "frame3.jpg"
    stamp = kept.stat().st_mtime_ns
    shutil.rmtree(where["sample1"])  # a video not finished ...
    half = where["sample1"].with_name(".sample1.partial")
    half.mkdir()  # ... and its half-written folder
    (half / "frame0.jpg").write_bytes(b"")
    again = prepare_videos(argv)
    assert again["written"] == 1 and again["kept"] == 5 and not half.exists()
    assert len(list(where["sample1"].iterdir())) == 33 and kept.stat().st_mtime_ns == stamp
    with pytest.raises(ArgumentError, match=r"--size 16 \(now 32\)"):
        prepare_videos(argv[:5] + ["32"] + argv[6:])
    for k in range(7, 12):  # --src grows: earlier videos keep their split, none lands in two
        shutil.copy(real_mp4s["sample1"], src / f"new{k}.mp4")
    grown = prepare_videos(argv)
    assert {n: grown["videos"][n]["split"] for n in report["videos"]} == {n: v["split"] for n, v in
                                                                          report["videos"].items()}
    assert grown["written"] == 5 and grown["kept"] == 6
    on_disk = [d.name for mode in ("train", "eval", "test") for d in (out / mode).iterdir()]
    assert len(on_disk) == len(set(on_disk)) == 11
    for k in range(7, 12):  # back to the six videos the dataset below counts
        shutil.rmtree(out / grown["videos"][f"new{k}"]["split"] / f"new{k}")
    cfg = tiny_stage1_config(str(out))
    cfg["Data"]["dataset"] = "folder"
    assert len(get_dataset(cfg, "train")) == 4


# ----------------------------------------------------------------------------- metrics.compare on any length

def _copy_videos(real_mp4s, folder: Path, names) -> Path:
    folder.mkdir()
    for name in names:
        shutil.copy(real_mp4s[name], folder)
    return folder


def test_compare_constrains_the_length_only_by_the_metrics_asked_for(real_mp4s, tmp_path, tiny):
    real = _copy_videos(real_mp4s, tmp_path / "real", ("sample1", "sample2", "sample3"))
    fake = _copy_videos(real_mp4s, tmp_path / "fake", ("sample4", "sample5", "sample6"))
    base = ["--real", str(real), "--fake", str(fake), "--gpu", "-1", "--bs", "3", "--size", "16"]
    result = compare.main(base + ["--fvd", "--fid"], backbones=tiny)  # 33-frame videos
    assert result["frames"] == 33 and set(result["metrics"]) == {"FVD", "FID"}
    with pytest.raises(ArgumentError, match=r"has 33 frame\(s\): DTFVD is defined for videos of at most 32 frames.*"
                                            r"--frames 32"):
        compare.main(base + ["--dtfvd"], backbones=tiny)
    assert compare.main(base + ["--dtfvd", "--frames", "16"], backbones=tiny)["frames"] == 16
    with pytest.raises(ArgumentError, match=r"--real .*real: its shortest video, sample1.mp4, has 33 frame\(s\); "
                                            r"--frames 40 needs at least 40"):
        compare.main(base + ["--fid", "--frames", "40"], backbones=tiny)
    static = tmp_path / "static"  # still clips saved as GIF: the writer merges identical frames into one
    static.mkdir()
    for k in range(2):
        save_gif(torch.full((16, 3, 16, 16), 0.1 * k), static / f"still{k}.gif")
    assert read_video(static / "still0.gif").shape[0] == 1
    full_size = dataclasses.replace(tiny, fvd=FVDFeatureExtractor(KineticsI3D(), "fvd"))  # at its real input size
    with pytest.raises(ArgumentError) as info:
        compare.main(["--real", str(real), "--fake", str(static), "--gpu", "-1", "--fvd"], backbones=full_size)
    message = str(info.value)
    assert f"--fake {static}" in message and "still0.gif, has 1 frame(s)" in message
    assert "FVD needs videos of at least 10 frames" in message
    assert compare.main(["--real", str(real), "--fake", str(static), "--gpu", "-1", "--fid", "--size", "16"],
                        backbones=tiny)["frames"] == 1  # FID compares frames: any length


# ----------------------------------------------------------------------------- a model of your own videos

@pytest.fixture(scope="module")
def folder_model(mp4_root, tmp_path_factory) -> Path:
    """The tiny model, its config saying it was trained on ``folder`` data at ``mp4_root``."""
    s2 = write_tiny_model(tmp_path_factory.mktemp("folder_model"))["dirs"]["stage2"]
    config = yaml.safe_load((s2 / "config_stage2.yaml").read_text())
    config["Data"].update(dataset="folder", data_path=str(mp4_root))
    (s2 / "config_stage2.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return s2


def test_a_folder_model_samples_by_its_folder_one_video_per_sample(folder_model, mp4_root, tmp_path, tiny):
    out = tmp_path / "out"
    generate_samples.main(["-ckpt_path", str(folder_model), "-gpu", "-1", "-n_samples", "2", "-per_sample", "both",
                           "-out", str(out)])  # no -dataset, no -images: the test split's first frames
    names = [f"sample{i}_{k}" for i in (11, 12) for k in range(2)]
    assert sorted(p.name for p in (out / "videos").iterdir()) == [f"{n}.mp4" for n in names]
    assert sorted(p.name for p in (out / "frames").iterdir()) == names
    mp4, png = read_video(out / "videos" / "sample12_1.mp4"), read_video(out / "frames" / "sample12_1")
    assert mp4.shape == png.shape == (16, 3, 32, 32)  # H.264 (colour subsampled) and lossless PNG of one sample
    other = read_video(out / "frames" / "sample12_0")
    assert (mp4 - png).abs().mean() < 0.5 * (mp4 - other).abs().mean()
    for fake in ("videos", "frames"):  # either folder is a --fake of metrics.compare
        result = compare.main(["--real", str(mp4_root / "test"), "--fake", str(out / fake), "--gpu", "-1", "--fid",
                               "--size", "32"], backbones=tiny)
        assert result["n_real"] == 2 and result["n_fake"] == 4 and result["frames"] == 16


def test_dataset_and_protocol_come_from_the_model_or_are_refused(folder_model, capsys):
    import eval_synthesis_quality
    from evaluation.synthesis import check_args

    args = eval_synthesis_quality.parse_args(["-ckpt_path", str(folder_model), "-gpu", "-1"])
    assert check_args(args) == ("folder", ["FVD", "DTFVD", "FID", "LPIPS"])
    assert args.protocol == "all" and Path(args.data_path) == Path(yaml.safe_load(
        (folder_model / "config_stage2.yaml").read_text())["Data"]["data_path"])
    paper = eval_synthesis_quality.parse_args(["-ckpt_path", str(folder_model), "-gpu", "-1", "-protocol", "paper"])
    with pytest.raises(ArgumentError, match="the paper has no evaluation protocol for -dataset folder.*-protocol all"):
        check_args(paper)
    with pytest.raises(I2VError, match="-dataset folder has no released or bundled model: give -ckpt_path"):
        generate_samples.main(["-dataset", "folder", "-gpu", "-1"])
    with pytest.raises(SystemExit) as info:
        generate_samples.parse_args(["-gpu", "-1"])
    assert info.value.code == 2 and "-dataset is required without -ckpt_path" in capsys.readouterr().err
    assert generate_samples.parse_args(["-ckpt_path", str(folder_model)]).dataset == "folder"


def test_transfer_takes_a_video_file_and_names_outputs_by_its_stem(folder_model, real_mp4s, tmp_path):
    start = tmp_path / "start.webp"
    assert cv2.imwrite(str(start), cv2.imread(str(Path(__file__).parents[1] / "assets/GT_samples/demo/"
                                                   "landscape_sample1.jpg")))
    written = generate_transfer.main(["-ckpt_path", str(folder_model), "-gpu", "-1", "-videos",
                                      str(real_mp4s["sample11"]), "-images", str(start), "-out", str(tmp_path)])
    assert [p.name for p in written] == ["transfer_sample11.gif"] and (tmp_path / "transfer_sample11.mp4").is_file()
    assert read_video(written[0]).shape[0] == 16
    with pytest.raises(ArgumentError, match="one query video and no -images"):
        generate_transfer.main(["-ckpt_path", str(folder_model), "-gpu", "-1", "-videos", str(real_mp4s["sample11"])])


def test_save_mp4_round_trips_through_the_decoder(tmp_path):
    video = torch.from_numpy(_ramp(5, 16)).permute(0, 3, 1, 2).float() / 127.5 - 1  # a brightness step per frame
    back = read_video(save_mp4(video, tmp_path / "v.mp4"))
    assert back.shape == (5, 3, 16, 16) and (back - video).abs().mean() < 0.05  # H.264's error, not another video
