"""The command line of a new user: every mistake is one ``error:`` line with exit status 2 (no traceback) from
the real scripts, argument and config values are checked before any work, a run folder is created only once
every input is checked, and start frames of any format are read as the original reads them."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from stage1_VAE.config import STAGE1_SCHEMA
from stage2_cINN import arguments
from tests.helpers import write_tiny_model
from utils import command
from utils.config import ConfigError, load_config, validate_config, yaml_load
from utils.errors import ArgumentError, I2VError

pytestmark = pytest.mark.usefixtures("single_thread")  # small tensors: one intra-op thread

ROOT = Path(__file__).resolve().parents[1]
STAGE1 = ROOT / "stage1_VAE" / "configs"


# ----------------------------------------------------------------------------- bad invocations, real scripts

def _bad_invocations(tmp: Path) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (command after ``python``, strings the error must contain). The cINN case needs the tiny
    stage-1 and AE models and the default synthetic data (3 clips per split, batch size 4)."""
    from data.synthetic import write_synthetic_dataset

    tiny = write_tiny_model(tmp / "frozen")
    data = write_synthetic_dataset("bair", tmp / "bair", size=32)  # the CLI's default: 3 videos per split
    (tmp / "notes.txt").write_text("not an image")
    sample = [str(ROOT / "generate_samples.py"), "-dataset", "demo"]
    tiny1 = ["-m", "stage1_VAE.main", "-cf", str(STAGE1 / "tiny_config.yaml"), "-gpu", "-1"]
    runs = f"Training.save_path={tmp / 'runs'}"
    return {
        "gpu": (sample + ["-gpu", "abc"], ["argument -gpu", "'abc'"]),
        "seq_length_0": (sample + ["-seq_length", "0"], ["argument -seq_length", "positive integer", "'0'"]),
        "seq_length_neg": (sample + ["-seq_length", "-5"], ["argument -seq_length", "'-5'"]),
        "n_samples_0": (sample + ["-n_samples", "0"], ["argument -n_samples", "positive integer"]),
        "bs_0": (sample + ["-bs", "0"], ["argument -bs", "positive integer"]),
        "images_file": (sample + ["-images", str(tmp / "notes.txt")], ["argument -images", "notes.txt", "image"]),
        "texture": ([str(ROOT / "generate_samples.py"), "-dataset", "DTDB", "-texture", "lava"],
                    ["argument -texture", "'lava'", "fire"]),
        "n_epochs": (tiny1 + ["Training.n_epochs=abc", runs], ["Training.n_epochs", "'abc'", "positive integer",
                                                               "tiny_config.yaml"]),
        "dataset": (tiny1 + ["Data.dataset=bairr", runs], ["Data.dataset", "'bairr'", "landscape"]),
        "no_section": (tiny1 + ["bs=4"], ["override 'bs=4'", "Section.key=value", "Training.bs=4"]),
        "stage1_shipped": (["-m", "stage1_VAE.main", "-cf", str(STAGE1 / "bair_config.yaml"), "-gpu", "0"],
                           ["placeholder", "Training.save_path='INSERT_PATH_HERE'", "Data.data_path"]),
        "ae_shipped": (["-m", "stage2_cINN.AE.main", "-cf", str(ROOT / "stage2_cINN/AE/configs/bair_config.yaml"),
                        "-gpu", "0"], ["placeholder", "Training.savename='INSERT_NAME_HERE'"]),
        "cinn_zero_steps": (["-m", "stage2_cINN.main", "-cf", str(ROOT / "stage2_cINN/configs/tiny_config.yaml"),
                             "-gpu", "-1", f"Data.data_path={data['data_path']}", runs,
                             f"First_stage_model.model_path={tiny['dirs']['stage1'].parent}",
                             "First_stage_model.model_name=stage1",
                             f"Conditioning_Model.model_path={tiny['dirs']['ae'].parent}",
                             "Conditioning_Model.model_name=stage2_AE"],
                            ["train split has 3 clip(s)", "batch size 4", "0 steps"]),
    }


def test_each_bad_invocation_of_the_issue_is_one_error_line(tmp_path):
    cases = _bad_invocations(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    procs = {name: subprocess.Popen([sys.executable, *cmd], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for name, (cmd, _) in cases.items()}  # all at once: most stop before torch is imported
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 2, (name, proc.returncode, err[-2000:])
        assert "Traceback" not in err and "error: " in err, (name, err[-2000:])
        for needle in cases[name][1]:
            assert needle in err, (name, needle, err[-2000:])
    assert not (tmp_path / "INSERT_PATH_HERE").exists()  # the shipped configs created no run folder
    assert not (tmp_path / "runs").exists()  # nor did the cINN run that would have taken 0 steps


# ----------------------------------------------------------------------------- the error path

def test_run_prints_project_errors_and_keeps_other_tracebacks(capsys):
    def bad_value(argv):
        raise ArgumentError(f"-n_targets {argv[0]}: expected a positive integer")

    with pytest.raises(SystemExit) as info:
        command.run(bad_value, ["0"])
    assert info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: -n_targets 0: expected a positive integer"

    def bug(argv):
        raise KeyError("a bug")

    with pytest.raises(KeyError):  # not the user's mistake: the traceback stays
        command.run(bug, [])


def test_worker_errors_lose_the_worker_traceback():
    from data.frame_io import FrameReadError

    wrapped = FrameReadError("Caught FrameReadError in DataLoader worker process 0.\nOriginal Traceback (most recent "
                             "call last):\n  File \"x.py\", line 1\ndata.frame_io.FrameReadError: cannot read image "
                             "/d/0.png: missing")
    assert command.error_message(wrapped) == "cannot read image /d/0.png: missing"


def test_project_error_classes_share_one_base():
    from data import DataLayoutError, FrameReadError
    from stage2_cINN.loading import MissingFilesError
    from utils.errors import MissingFileError

    for cls in (ConfigError, MissingFilesError, MissingFileError, FrameReadError, DataLayoutError, ArgumentError):
        assert issubclass(cls, I2VError), cls
    assert issubclass(MissingFilesError, FileNotFoundError) and issubclass(ConfigError, ValueError)


def test_argument_types(tmp_path):
    assert command.gpu_spec("0,1") == [0, 1] and command.gpu_spec("-1") == [-1]
    assert arguments.known_dataset("IPER") == "iPER" and arguments.known_texture("Fire") == "fire"
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), np.zeros((4, 4, 3), np.uint8))
    assert arguments.image_source(str(image)) == image  # one start frame is fine
    assert command.existing_folder(str(tmp_path)) == tmp_path
    for parse, text in ((command.positive_int, "0"), (command.gpu_spec, "0,x"), (command.existing_folder, str(image)),
                        (command.existing_file, str(tmp_path)), (command.str2bool, "maybe"),
                        (command.int_at_least(2), "1")):
        with pytest.raises(Exception) as info:
            parse(text)
        assert type(info.value).__name__ == "ArgumentTypeError", (parse, text)


# ----------------------------------------------------------------------------- config types

@pytest.mark.parametrize("override, needles", [
    ("Training.n_epochs=abc", ["'Training.n_epochs' = 'abc'", "override 'Training.n_epochs=abc'", "positive integer"]),
    ("Training.bs=0", ["'Training.bs' = 0", "positive integer"]),
    ("Training.lr=fast", ["'Training.lr'", "positive number"]),
    ("Data.dataset=bairr", ["'Data.dataset' = 'bairr'", "unknown dataset 'bairr'"]),
    ("Decoder.upsample_s=[2,0]", ["'Decoder.upsample_s'", "item 1: 0"]),
    ("Data.Augmentation.prob_hflip=2", ["'Data.Augmentation.prob_hflip'", "[0, 1]"]),
    ("Logging.mode=sometimes", ["'Logging.mode'", "'offline'"]),
    ("bs=4", ["names no section", "did you mean 'Training.bs=4'"]),
])
def test_config_values_are_type_checked_at_load(override, needles):
    with pytest.raises(ConfigError) as info:
        load_config(STAGE1 / "bair_config.yaml", STAGE1_SCHEMA, [override])
    message = str(info.value)
    assert "bair_config.yaml" in message
    for needle in needles:
        assert needle in message, (needle, message)


def test_typed_config_keeps_good_values():
    cfg = load_config(STAGE1 / "bair_config.yaml", STAGE1_SCHEMA, ["Training.savename=2021", "Logging.mode=offline"])
    assert cfg["Training"]["savename"] == "2021" and isinstance(cfg["Training"]["lr"], float)
    raw = yaml_load((STAGE1 / "bair_config.yaml").read_text())
    raw["Training"]["w_kl"] = "1e-5"  # how plain YAML 1.1 loaders read 1e-5
    assert validate_config(raw, STAGE1_SCHEMA)["Training"]["w_kl"] == 1e-5
    with pytest.raises(ConfigError, match="'Data.sequence_length' = 17.5"):
        validate_config({**raw, "Data": {**raw["Data"], "sequence_length": 17.5}}, STAGE1_SCHEMA, "x.yaml")


# ----------------------------------------------------------------------------- validation before work

def test_zero_training_steps_is_an_error_naming_clips_and_batch_size(tmp_path):
    from data import DataLayoutError, get_dataset, make_loader
    from data.loader import check_batches
    from data.synthetic import write_synthetic_dataset
    from tests.helpers import tiny_cinn_config

    cfg = tiny_cinn_config("unused", "unused")
    cfg["Data"].update(write_synthetic_dataset("bair", tmp_path / "bair", size=32))
    train = get_dataset(cfg, "train")
    with pytest.raises(DataLayoutError, match=r"train split has 3 clip\(s\).*batch size 4.*0 steps"):
        make_loader(train, 4, shuffle=True, workers=0)
    make_loader(train, 3, shuffle=True, workers=0)  # one full batch is enough
    with pytest.raises(DataLayoutError, match=r"over 2 ranks \(1 per rank\)"):  # torchrun: per rank
        check_batches(train, 2, world_size=2)


def test_training_checks_every_input_before_the_run_folder(tmp_path):
    from stage2_cINN.main import main
    from utils.errors import MissingFileError

    runs = tmp_path / "runs"
    with pytest.raises(MissingFileError, match="Data.data_path='/nonexistent/bair'"):
        main(["-cf", str(ROOT / "stage2_cINN/configs/tiny_config.yaml"), "-gpu", "-1",
              "Data.data_path=/nonexistent/bair", f"Training.save_path={runs}"])
    with pytest.raises(MissingFileError, match="missing model files"):  # the frozen stage-1 / AE models
        main(["-cf", str(ROOT / "stage2_cINN/configs/tiny_config.yaml"), "-gpu", "-1", f"Data.data_path={tmp_path}",
              f"Training.save_path={runs}", f"First_stage_model.model_path={tmp_path}"])
    assert not runs.exists()


# ----------------------------------------------------------------------------- start frames

def _warnings(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def test_start_frames_as_the_original_reads_them(tmp_path, caplog):
    from data.images import read_image

    rng = np.random.default_rng(0)
    grey, rgba = tmp_path / "grey.png", tmp_path / "rgba.png"
    cv2.imwrite(str(grey), rng.integers(0, 256, (32, 32), dtype=np.uint8))
    bgra = rng.integers(0, 256, (32, 32, 4), dtype=np.uint8)
    cv2.imwrite(str(rgba), bgra)
    with caplog.at_level(logging.WARNING):
        g = read_image(grey, 32)
    assert g.shape == (3, 32, 32) and torch.equal(g[0], g[1]) and torch.equal(g[1], g[2])  # grey in R, G, B
    assert "grey.png is a greyscale image" in _warnings(caplog)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        x = read_image(rgba, 32)
    expected = torch.from_numpy(bgra[..., 2::-1].copy()).permute(2, 0, 1).float() / 127.5 - 1  # RGB, alpha dropped
    torch.testing.assert_close(x, expected)
    assert "rgba.png has an alpha channel" in _warnings(caplog)


def test_non_square_start_frames_are_resized_with_a_warning(tmp_path, caplog):
    from data.augment import resize_clip
    from data.images import read_image

    frame = np.random.default_rng(1).integers(0, 256, (91, 37, 3), dtype=np.uint8)  # 37 wide, 91 high
    cv2.imwrite(str(tmp_path / "odd.png"), frame)
    with caplog.at_level(logging.WARNING):
        x = read_image(tmp_path / "odd.png", 64)
    ref = torch.from_numpy(frame[..., ::-1].copy()).permute(2, 0, 1).float()[None] / 127.5 - 1
    torch.testing.assert_close(x, resize_clip(ref, 64)[0].clamp(-1, 1))  # the original's resize, no crop
    assert "odd.png is 37x91 (width x height), not square: resized to 64x64" in _warnings(caplog)


def test_grey_and_alpha_video_frames_read_as_rgb(tmp_path):
    from data.videos import read_video

    (tmp_path / "v").mkdir()
    cv2.imwrite(str(tmp_path / "v" / "0.png"), np.full((8, 10), 200, np.uint8))
    cv2.imwrite(str(tmp_path / "v" / "1.png"), np.full((8, 10, 4), 100, np.uint8))
    video = read_video(tmp_path / "v")
    assert video.shape == (2, 3, 8, 10)
    assert torch.allclose(video[0], torch.full_like(video[0], 200 / 127.5 - 1))
    assert torch.allclose(video[1], torch.full_like(video[1], 100 / 127.5 - 1))


def test_run_applies_the_allocator_tuning_where_entry_points_start(monkeypatch):
    """The CPU allocator tuning is applied by the start of every entry point, not hidden in ``get_device``."""
    calls = []
    monkeypatch.setattr(command, "tune_cpu_allocator", lambda: calls.append(1) or True)
    command.run(lambda argv: None, [])
    assert calls == [1]


def test_every_console_command_runs_a_main_function(monkeypatch):
    """Each ``[project.scripts]`` entry of pyproject.toml names a ``cli`` function that runs its script's ``main``."""
    import tomllib

    import cli

    scripts = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert len(scripts) >= 14
    called: list = []
    monkeypatch.setattr(cli, "run", called.append)
    for name, target in scripts.items():
        module, func = target.split(":")
        assert module == "cli", name
        getattr(cli, func)()
        assert callable(called[-1]) and called[-1].__name__ == "main", (name, called[-1])
    assert len({f.__module__ for f in called}) == len(scripts)  # one script per command
