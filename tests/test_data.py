"""Tests of the data pipeline: layouts, clips, augmentation, TFRecords, BAIR conversion and prep scripts."""
from __future__ import annotations

import logging
import shutil
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

import data
from data import DataLayoutError, FrameReadError, get_dataset, get_layout, make_loader
from data.augment import ClipTransform
from data.bair import convert_bair
from data.DTDB import extract_DTDB
from data.frame_io import read_positions
from data.iPER import extract_iPER
from data.landscape import rename_images
from data.synthetic import main as synthetic_main
from data.synthetic import write_bair_tfrecord, write_synthetic_dataset
from data.tfrecord import (
    TFRecordError,
    _update_bytes,
    crc32c,
    decode_example,
    encode_example,
    iter_records,
    read_examples,
    write_examples,
)

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny tensors: one intra-op thread

LAYOUT_NAMES = ["bair", "landscape", "iPER", "DTDB", "folder"]
L, SIZE = 5, 32


def make_config(written: dict, **overrides) -> dict:
    """A full config around the Data entries returned by the synthetic writer."""
    data_cfg = {"sequence_length": L, "img_size": SIZE, "aug": True, "iter_train": 2, "iter_eval": 1, "iter_test": 1,
                "test_size": 7,
                "Augmentation": {"brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "hue": 0.15, "prob_hflip": 0.5}}
    data_cfg.update(written)
    data_cfg.update(overrides)
    return {"Data": data_cfg, "Training": {}}




@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> dict:
    """One small synthetic dataset per layout (2 videos of 8 frames per split, 32 px)."""
    base = tmp_path_factory.mktemp("synthetic")
    return {name: write_synthetic_dataset(name, base / name, n_videos=2, n_frames=8, size=SIZE)
            for name in LAYOUT_NAMES}


def write_video_folder(folder: Path, frames: list[np.ndarray], suffix: str = ".png") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"frame{k}{suffix}"), frame)


def asymmetric_frame(size: int = SIZE) -> np.ndarray:
    """A frame that is visibly not left-right symmetric, with varied colours."""
    yy, xx = np.mgrid[0:size, 0:size]
    frame = np.stack([xx * 255 // size, yy * 255 // size, (xx * yy) % 256], axis=-1).astype(np.uint8)
    frame[2:10, 2:6] = (0, 0, 255)
    return frame


# ----------------------------------------------------------------------------- layouts round trip
@pytest.mark.parametrize("name", LAYOUT_NAMES)
def test_layout_roundtrip_shapes_range_and_determinism(name, synthetic_root):
    config = make_config(synthetic_root[name])
    for mode in ("train", "eval", "test"):
        dataset = get_dataset(config, mode)
        item = dataset[len(dataset) - 1]
        seq = item["seq"]
        assert seq.shape == (L, 3, SIZE, SIZE) and seq.dtype == torch.float32
        assert seq.min() >= -1.0 and seq.max() <= 1.0 and seq.std() > 0.05
        assert set(item) == {"seq"}
        if mode != "train":
            for index in range(len(dataset)):
                assert torch.equal(dataset[index]["seq"], dataset[index]["seq"])
            again = get_dataset(config, mode)  # a fresh instance draws the same clips
            assert torch.equal(again[len(dataset) - 1]["seq"], seq)


@pytest.mark.parametrize("name", LAYOUT_NAMES)
def test_lengths_follow_repetition_rules(name, synthetic_root):
    config = make_config(synthetic_root[name], iter_train=3, iter_eval=2)
    train, evaluation, test = (get_dataset(config, mode) for mode in ("train", "eval", "test"))
    if name == "iPER":  # repeated iter_<mode> x last digit of the id; the synthetic ids end in 1 and 2
        assert (len(train), len(evaluation), len(test)) == (3 * 3, 2 * 3, 7)
    else:
        assert (len(train), len(evaluation), len(test)) == (6, 4, 2)


def test_names_are_case_insensitive_and_unknown_names_fail():
    assert get_layout("BAIR") is get_layout("bair")
    assert get_layout("iPER").name == "iper" and get_layout("DTDB").name == "dtdb"
    with pytest.raises(ValueError, match="unknown dataset"):
        get_layout("kinetics")


def test_bair_control_dataset_gives_the_endpoint(synthetic_root):
    config = make_config({**synthetic_root["bair"], "dataset": "BAIR"})
    dataset = data.get_dataset(config, "test", control=True)
    assert dataset[0]["cond"].shape == (3,)


def test_train_start_is_random_and_test_start_is_first(synthetic_root):
    config = make_config(synthetic_root["bair"])
    train, test = get_dataset(config, "train"), get_dataset(config, "test")
    assert {train.clip_for(0)[1] for _ in range(40)} == set(range(8 - L + 1))
    assert {test.clip_for(i)[1] for i in range(len(test))} == {0}


def test_dtdb_test_reads_eval_videos(synthetic_root):
    config = make_config(synthetic_root["DTDB"])
    evaluation, test = get_dataset(config, "eval"), get_dataset(config, "test")
    assert [v.path for v in test.videos] == [v.path for v in evaluation.videos]
    assert all(v.path.parent.name == "eval" for v in test.videos)
    assert torch.equal(evaluation[1]["seq"], test[1]["seq"])


def test_landscape_reads_lists_from_split_dir(synthetic_root, tmp_path):
    written = synthetic_root["landscape"]
    lists = tmp_path / "lists"
    shutil.copytree(written["split_dir"], lists)
    first = (lists / "train.txt").read_text().splitlines()[0]
    (lists / "train.txt").write_text(first + "\n")
    dataset = get_dataset(make_config(written, split_dir=str(lists), iter_train=1), "train")
    assert len(dataset) == 1 and dataset.videos[0].path.relative_to(written["data_path"]).as_posix() == \
        "sky_train/" + first.strip("/")


@pytest.mark.parametrize("config_name", ["bair", "landscape", "iPER", "DTDB_fire", "DTDB_clouds"])
def test_reference_config_schema(config_name, repo_root, tmp_path):
    config = yaml.safe_load((repo_root / "stage1_VAE" / "configs" / f"{config_name}_config.yaml").read_text())
    dat = config["Data"]
    written = write_synthetic_dataset(dat["dataset"], tmp_path, n_videos=1, n_frames=dat["sequence_length"] + 1,
                                      size=SIZE, texture=dat.get("texture", "fire"),
                                      image_format=dat.get("image_format"))
    dat["data_path"] = written["data_path"]
    if "split_dir" in written:
        dat["split_dir"] = written["split_dir"]
    for mode in ("train", "test"):
        dataset = get_dataset(config, mode)
        assert dataset[0]["seq"].shape == (dat["sequence_length"], 3, dat["img_size"], dat["img_size"])
    if config_name == "iPER":
        assert len(dataset) == dat["test_size"]


# ----------------------------------------------------------------------------- augmentation
def test_augmentation_is_shared_by_all_frames(tmp_path):
    write_video_folder(tmp_path / "train" / "still", [asymmetric_frame()] * 8)
    strong = {"brightness": 0.5, "contrast": 0.5, "saturation": 0.5, "hue": 0.3, "prob_hflip": 0.5}
    dataset = get_dataset(make_config({"dataset": "folder", "data_path": str(tmp_path)}, crop_margin=8,
                                      Augmentation=strong), "train")
    outputs = [dataset[0]["seq"] for _ in range(12)]
    for seq in outputs:
        assert torch.equal(seq, seq[:1].expand_as(seq)), "a frame was augmented differently from the others"
    assert len({seq.sum().item() for seq in outputs}) > 1, "augmentation never changed anything"


def test_flip_applies_to_all_frames_or_none():
    clip = torch.from_numpy(np.stack([np.roll(asymmetric_frame(), k, axis=1) for k in range(6)])).permute(0, 3, 1, 2)
    transform = ClipTransform(SIZE, train=True, prob_hflip=0.5)
    plain = transform.__class__(SIZE, train=False)(clip)
    outcomes = set()
    for _ in range(20):
        out = transform(clip)
        if torch.equal(out, plain):
            outcomes.add("none")
        else:
            assert torch.equal(out, plain.flip(-1)), "only some frames were flipped"
            outcomes.add("all")
    assert outcomes == {"none", "all"}


def test_eval_transform_is_resize_and_normalise():
    clip = torch.full((2, 3, 40, 40), 255, dtype=torch.uint8)
    clip[:, 0] = 0
    out = ClipTransform.from_config({"img_size": 20, "Augmentation": {"brightness": 0.5}}, train=False)(clip)
    assert out.shape == (2, 3, 20, 20)
    assert torch.allclose(out[:, 0], torch.tensor(-1.0)) and torch.allclose(out[:, 1:], torch.tensor(1.0))


# ----------------------------------------------------------------------------- BAIR control
def test_bair_control_cond_is_position_at_last_frame(synthetic_root):
    config = make_config(synthetic_root["bair"], aug=False)
    config["Training"]["control"] = True
    for mode in ("train", "eval", "test"):
        dataset = get_dataset(config, mode)
        for index in range(len(dataset)):
            torch.manual_seed(index)
            video_idx, start = dataset.clip_for(index)
            torch.manual_seed(index)
            item = dataset[index]
            video = dataset.videos[video_idx]
            expected = read_positions(video.path)[start + L - 1]
            assert item["cond"].dtype == torch.float32 and torch.equal(item["cond"], torch.from_numpy(expected))
            first = cv2.imread(str(video.path / f"{start}.png"))[..., ::-1]
            expected_frame = torch.from_numpy(first.copy()).permute(2, 0, 1) / 127.5 - 1
            assert torch.allclose(item["seq"][0], expected_frame, atol=1e-6)


def test_control_errors(synthetic_root, tmp_path):
    with pytest.raises(ValueError, match="only available for BAIR"):
        get_dataset(make_config(synthetic_root["folder"]), "test", control=True)
    root = tmp_path / "bair"
    shutil.copytree(synthetic_root["bair"]["data_path"], root)
    next(root.glob("test/*/1/endeffector_positions.csv")).unlink()
    with pytest.raises(FileNotFoundError, match="endeffector_positions.csv"):
        get_dataset(make_config({"dataset": "bair", "data_path": str(root)}), "test", control=True)


# ----------------------------------------------------------------------------- TFRecord
def test_crc32c_known_value_and_chunked_path():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    rng = np.random.default_rng(0)
    for n in (4095, 4096, 10_001, 70_000):
        blob = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc32c(blob) == _update_bytes(0xFFFFFFFF, blob) ^ 0xFFFFFFFF


def test_example_roundtrip_and_unpacked_lists(tmp_path):
    example = {"img": b"\x00\x01\xff", "many": [b"a", b"bc"], "pos": np.array([0.5, -1.25, 3e-8], np.float32),
               "ids": np.array([0, 7, -3, 2**40], np.int64)}
    path = tmp_path / "x.tfrecords"
    assert write_examples(path, [example, example]) == 2
    decoded = list(read_examples(path))
    assert len(decoded) == 2
    for got in decoded:
        assert got["img"] == [b"\x00\x01\xff"] and got["many"] == [b"a", b"bc"]
        np.testing.assert_array_equal(got["pos"], example["pos"])
        np.testing.assert_array_equal(got["ids"], example["ids"])
    # hand-built Example with *unpacked* floats (wire type 5) and ints (wire type 0)
    floats = b"".join(b"\x0d" + struct.pack("<f", v) for v in (1.5, -2.0))
    ints = b"\x08\x05\x08" + bytes([0xFF] * 9 + [0x01])  # 5 and -1
    feature = lambda kind, payload: bytes([kind << 3 | 2, len(payload)]) + payload  # noqa: E731
    entry = lambda key, value: feature(1, feature(1, key) + feature(2, value))  # noqa: E731
    record = feature(1, entry(b"f", feature(2, floats)) + entry(b"i", feature(3, ints)))
    got = decode_example(record)
    np.testing.assert_array_equal(got["f"], [1.5, -2.0])
    np.testing.assert_array_equal(got["i"], [5, -1])
    assert decode_example(encode_example({"f": [1.5, -2.0]}))["f"].tolist() == [1.5, -2.0]


def test_crc_check_catches_corruption(tmp_path):
    path = tmp_path / "x.tfrecords"
    write_examples(path, [{"img": bytes(range(256)) * 40}])
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0x01
    bad = tmp_path / "bad.tfrecords"
    bad.write_bytes(bytes(raw))
    with pytest.raises(TFRecordError, match="CRC mismatch in the data"):
        list(iter_records(bad))
    assert len(list(iter_records(bad, verify=False))) == 1
    raw[0] ^= 0x01  # length field
    bad.write_bytes(bytes(raw))
    with pytest.raises(TFRecordError, match="length field"):
        list(iter_records(bad))
    truncated = tmp_path / "short.tfrecords"
    truncated.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(TFRecordError, match="truncated"):
        list(iter_records(truncated))


def test_convert_bair_reproduces_frames_and_positions(tmp_path, capsys):
    raw = tmp_path / "raw" / "softmotion30_44k"
    truth = {
        ("train", "traj_512_to_767"): write_bair_tfrecord(raw / "train" / "traj_512_to_767.tfrecords", 2, seed=1),
        ("test", "traj_0_to_255"): write_bair_tfrecord(raw / "test" / "traj_0_to_255.tfrecords", 2, seed=2),
        ("eval", "traj_256_to_511"): write_bair_tfrecord(raw / "test" / "traj_256_to_511.tfrecords", 1, seed=3),
    }
    out = tmp_path / "bair"
    convert_bair.main(["--data_dir", str(tmp_path / "raw"), "--output_dir", str(out)])
    assert "train 2 videos, eval 1 videos, test 2 videos" in capsys.readouterr().out
    for (split, record), examples in truth.items():
        assert sorted(p.name for p in (out / split / record).iterdir()) == [str(n + 1) for n in range(len(examples))]
        for n, example in enumerate(examples, start=1):
            video = out / split / record / str(n)
            for i in range(30):
                png = cv2.imread(str(video / f"{i}.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
                np.testing.assert_array_equal(png, example["frames"][i])
            np.testing.assert_array_equal(read_positions(video), example["positions"])
    dataset = get_dataset(make_config({"dataset": "bair", "data_path": str(out)}, sequence_length=30, img_size=64),
                          "test", control=True)
    item = dataset[1]
    np.testing.assert_array_equal(item["cond"].numpy(), truth[("test", "traj_0_to_255")][1]["positions"][29])


# ----------------------------------------------------------------------------- bad input
def test_missing_root_and_split_folder_name_path_and_layout(synthetic_root, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as err:
        get_dataset(make_config({"dataset": "landscape", "data_path": str(missing)}), "train")
    assert str(missing) in str(err.value) and "sky_train/<id>/<clip>/frame<k>.jpg" in str(err.value)
    root = tmp_path / "bair"
    shutil.copytree(synthetic_root["bair"]["data_path"], root)
    shutil.rmtree(root / "eval")
    with pytest.raises(FileNotFoundError) as err:
        get_dataset(make_config({"dataset": "BAIR", "data_path": str(root)}), "eval")
    assert str(root / "eval") in str(err.value) and "traj_<a>_to_<b>/<n>/{0..29}.png" in str(err.value)
    with pytest.raises(ValueError, match="Data.texture"):
        get_dataset(make_config({"dataset": "DTDB", "data_path": str(root)}), "train")


def test_short_videos_skipped_with_one_warning(tmp_path, caplog):
    for name, n in (("long_a", 8), ("short_b", 3), ("long_c", 6), ("short_d", 0)):
        write_video_folder(tmp_path / "train" / name, [asymmetric_frame()] * n)
    config = make_config({"dataset": "folder", "data_path": str(tmp_path)})
    with caplog.at_level(logging.WARNING, logger="data"):
        dataset = get_dataset(config, "train")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2 of 4" in warnings[0].message and "short_b" in warnings[0].message and "short_d" in warnings[0].message
    assert sorted(v.path.name for v in dataset.videos) == ["long_a", "long_c"]
    with pytest.raises(DataLayoutError, match="sequence_length=9"):
        get_dataset(make_config({"dataset": "folder", "data_path": str(tmp_path)}, sequence_length=9), "train")


def test_corrupt_image_error_names_the_file(tmp_path):
    write_video_folder(tmp_path / "test" / "v", [asymmetric_frame()] * 6)
    (tmp_path / "test" / "v" / "frame2.png").write_bytes(b"this is not a png")
    dataset = get_dataset(make_config({"dataset": "folder", "data_path": str(tmp_path)}), "test")
    with pytest.raises(FrameReadError, match="frame2.png"):
        dataset[0]


def test_empty_split_is_an_error(tmp_path, synthetic_root):
    (tmp_path / "train").mkdir()
    with pytest.raises(DataLayoutError, match="no videos found"):
        get_dataset(make_config({"dataset": "folder", "data_path": str(tmp_path)}), "train")
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "train.txt").write_text("\n")
    with pytest.raises(DataLayoutError, match="empty"):
        get_dataset(make_config(synthetic_root["iPER"], split_dir=str(lists)), "train")


def test_frames_are_read_in_natural_order(tmp_path):
    write_video_folder(tmp_path / "test" / "v", [np.full((8, 8, 3), 20 * k, np.uint8) for k in range(12)])
    seq = get_dataset(make_config({"dataset": "folder", "data_path": str(tmp_path)}, sequence_length=12,
                                  img_size=8), "test")[0]["seq"]
    levels = ((seq.mean(dim=(1, 2, 3)) + 1) * 127.5).round()
    assert levels.tolist() == [20.0 * k for k in range(12)]  # frame10 after frame9, not after frame1


def test_frames_of_inconsistent_sizes_load(tmp_path):
    frames = [cv2.resize(asymmetric_frame(), size) for size in ((32, 32), (48, 24), (20, 40), (32, 32), (64, 64))]
    write_video_folder(tmp_path / "eval" / "mixed", frames, suffix=".jpg")
    dataset = get_dataset(make_config({"dataset": "folder", "data_path": str(tmp_path)}, img_size=16), "eval")
    seq = dataset[0]["seq"]
    assert seq.shape == (L, 3, 16, 16) and torch.isfinite(seq).all()


# ----------------------------------------------------------------------------- real clips, loaders, CLIs
def test_real_landscape_clips_load_through_folder_layout(repo_root):
    root = repo_root / "assets" / "GT_samples" / "landscape" / "transfer"
    config = make_config({"dataset": "folder", "data_path": str(root)}, sequence_length=17, img_size=64)
    dataset = get_dataset(config, "test")  # no split folders: the root's sub-folders are the videos
    assert len(dataset) == 12
    seq = dataset[0]["seq"]
    assert seq.shape == (17, 3, 64, 64) and -1 <= seq.min() < seq.max() <= 1
    first = sorted(dataset.videos[0].frames, key=lambda n: int(n[5:-4]))[0]
    assert dataset.videos[0].frames[0] == first  # natural order, not lexicographic


class _RandomDataset(torch.utils.data.Dataset):
    """Returns random numbers drawn in the worker, to observe worker seeding."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.tensor([np.random.rand(), torch.rand(()).item(), float(index)])


def test_make_loader_worker_seeds_are_distinct_and_reproducible(synthetic_root):
    def draw(seed):
        loader = make_loader(_RandomDataset(), batch_size=1, shuffle=False, workers=2, seed=seed)
        assert loader.persistent_workers and loader.pin_memory == torch.cuda.is_available()
        return torch.cat(list(loader))

    first, again, other = draw(0), draw(0), draw(1)
    assert torch.equal(first, again) and not torch.equal(first, other)
    worker0, worker1 = first[0::2], first[1::2]  # batches alternate between the two workers
    assert not torch.isin(worker0[:, :2].contiguous(), worker1[:, :2].contiguous()).any()
    batch = next(iter(make_loader(get_dataset(make_config(synthetic_root["bair"]), "train"), 3, True, 0)))
    assert batch["seq"].shape == (3, L, 3, SIZE, SIZE)


def test_make_loader_distributed(tmp_path):
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        loader = make_loader(_RandomDataset(), batch_size=2, shuffle=True, workers=0, distributed=True)
        assert isinstance(loader.sampler, torch.utils.data.DistributedSampler) and loader.drop_last
        assert sorted(torch.cat(list(loader))[:, 2].tolist()) == list(range(8))
    finally:
        torch.distributed.destroy_process_group()


def test_synthetic_cli(tmp_path, capsys):
    synthetic_main(["--layout", "folder", "--out", str(tmp_path), "--n_videos", "1", "--n_frames", "3", "--size", "16"])
    assert "folder" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "eval" / "video000").iterdir()) == ["frame0.png", "frame1.png",
                                                                                 "frame2.png"]


def test_rename_images_is_safe_and_idempotent(tmp_path, capsys):
    clip, shifted = tmp_path / "sky_train" / "a" / "a_1", tmp_path / "sky_test" / "b" / "b_1"
    clip.mkdir(parents=True)
    shifted.mkdir(parents=True)
    for k, name in enumerate(["img_1.jpg", "img_2.jpg", "img_10.jpg"]):
        (clip / name).write_bytes(f"frame {k}".encode())
    for name in ("frame1.png", "frame2.png", "frame3.png", "frame11.png"):  # renaming shifts every name by one
        (shifted / name).write_bytes(name.encode())
    rename_images.main(["--data_dir", str(tmp_path)])
    assert "2 of 2 clips" in capsys.readouterr().out
    assert [(clip / f"frame{k}.jpg").read_bytes() for k in range(3)] == [b"frame 0", b"frame 1", b"frame 2"]
    assert [(shifted / f"frame{k}.png").read_bytes() for k in range(4)] == \
        [b"frame1.png", b"frame2.png", b"frame3.png", b"frame11.png"]
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    rename_images.main(["--data_dir", str(tmp_path)])
    assert "0 of 2 clips" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    # an interrupted run (frame0 moved to its temporary name) is completed by the next one
    (clip / "frame0.jpg").rename(clip / ".rename_tmp_0.jpg")
    (clip / "frame2.jpg").rename(clip / "z_last.jpg")
    assert rename_images.rename_clip(clip)
    assert [(clip / f"frame{k}.jpg").read_bytes() for k in range(3)] == [b"frame 0", b"frame 1", b"frame 2"]


def _write_mp4(path: Path, n_frames: int, size: int = 32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (size, size))
    assert writer.isOpened()
    for k in range(n_frames):
        writer.write(np.roll(asymmetric_frame(size), 3 * k, axis=1))
    writer.release()


def test_extract_iper_and_dtdb(tmp_path, capsys, monkeypatch):
    _write_mp4(tmp_path / "iper_raw" / "001_1_2.mp4", 7)
    args = ["--raw_dir", str(tmp_path / "iper_raw"), "--processed_dir", str(tmp_path / "iper")]
    extract_iPER.main(args)
    assert sorted((tmp_path / "iper" / "001_1_2").iterdir()) == \
        sorted(tmp_path / "iper" / "001_1_2" / f"frame_{k}.png" for k in range(7))
    extract_iPER.main(args)
    assert "1 already extracted" in capsys.readouterr().out

    raw = tmp_path / "dtdb_raw" / "BY_APPEARANCE_FINAL"
    _write_mp4(raw / "TRAIN" / "Fire" / "Fire_g1_c1.mp4", 6)
    _write_mp4(raw / "TEST" / "Fire" / "Fire_g2_c1.mp4", 6)
    _write_mp4(raw / "TRAIN" / "Firework" / "Firework_g1_c1.mp4", 6)  # another texture: not selected
    extract_DTDB.main(["--raw_dir", str(tmp_path / "dtdb_raw"), "--processed_dir", str(tmp_path / "dtdb"),
                       "--texture", "fire"])
    assert sorted(p.relative_to(tmp_path / "dtdb").as_posix() for p in (tmp_path / "dtdb").glob("*/*/*")) == \
        ["fire/eval/Fire_g2_c1", "fire/train/Fire_g1_c1"]
    config = make_config({"dataset": "DTDB", "data_path": str(tmp_path / "dtdb"), "texture": "fire",
                          "image_format": "jpg"})
    assert get_dataset(config, "train")[0]["seq"].shape == (L, 3, SIZE, SIZE)
    videos = len(get_dataset(config, "train").videos)

    from data import prep_utils

    def interrupted(video, out_dir, name_pattern, size=None):  # a run killed while writing its last frame
        out_dir.mkdir(parents=True)
        for k in range(6):
            (out_dir / name_pattern.format(k)).write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr(prep_utils, "extract_video_frames", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prep_utils.extract_to_folder(raw / "TRAIN" / "Fire" / "Fire_g1_c1.mp4",
                                     tmp_path / "dtdb" / "fire" / "train" / "Fire_g3_c1", "frame_{}.jpg")
    assert len(get_dataset(config, "train").videos) == videos  # the half-written folder is not a video


# ----------------------------------------------------------------------------- faithfulness of resize / jitter
def test_resize_matches_the_original_kornia_resize_without_antialiasing():
    """The original's kornia 0.5 ``Resize`` has no antialiasing: 160 -> 128 and 100 -> 64 must equal
    kornia's bilinear resize with ``antialias=False`` exactly (antialiased frames differ by up to 0.5)."""
    import kornia

    from data.augment import resize_clip

    g = torch.Generator().manual_seed(0)
    for src, dst in ((160, 128), (100, 64), (150, 128)):
        clip = torch.rand(3, 3, src, src, generator=g)
        ours = resize_clip(clip, dst)
        ref = kornia.geometry.transform.resize(clip, (dst, dst), interpolation="bilinear", align_corners=False,
                                               antialias=False)
        assert torch.equal(ours, ref), (src, dst, (ours - ref).abs().max())


def test_start_frames_are_resized_like_training_frames(tmp_path):
    from data.augment import resize_clip
    from data.images import read_image

    frame = np.random.default_rng(0).integers(0, 256, (100, 100, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "x.png"), frame)
    x = torch.from_numpy(frame[..., ::-1].copy()).permute(2, 0, 1).float()[None] / 127.5 - 1
    torch.testing.assert_close(read_image(tmp_path / "x.png", 64), resize_clip(x, 64)[0].clamp(-1, 1))


def _jitter_only(**factors) -> ClipTransform:
    return ClipTransform(SIZE, train=True, prob_hflip=0.0, **factors)


def test_brightness_jitter_is_additive_as_in_the_original():
    """kornia 0.5 ``ColorJitter`` (the original) adds ``factor - 1`` to every pixel; kornia 0.9's multiplies."""
    torch.manual_seed(0)
    clip = torch.linspace(0.2, 0.8, SIZE * SIZE * 3).reshape(1, 3, SIZE, SIZE).expand(2, -1, -1, -1)
    for _ in range(5):
        out = (_jitter_only(brightness=0.1)(clip) + 1) / 2  # back to [0, 1]
        shift = out - clip
        assert shift.abs().max() > 1e-3, "no brightness change was drawn"
        assert torch.allclose(shift, shift.flatten()[0].expand_as(shift), atol=1e-5), "brightness is not additive"


def test_contrast_jitter_is_a_plain_scaling_as_in_the_original():
    """kornia 0.5 scales by the contrast factor; kornia 0.9's ``ColorJitter`` blends toward the mean."""
    torch.manual_seed(1)
    clip = torch.linspace(0.2, 0.8, SIZE * SIZE * 3).reshape(1, 3, SIZE, SIZE).expand(2, -1, -1, -1)
    for _ in range(5):
        out = (_jitter_only(contrast=0.1)(clip) + 1) / 2
        ratio = out / clip
        assert (ratio - 1).abs().max() > 1e-3, "no contrast change was drawn"
        assert torch.allclose(ratio, ratio.flatten()[0].expand_as(ratio), atol=1e-5), "contrast is not a scaling"
