"""Config validation and overrides, device selection, atomic checkpoints, CSV logging, AMP helpers."""
import os
from pathlib import Path

import pytest
import torch
import yaml

from stage1_VAE.config import STAGE1_SCHEMA
from stage2_cINN.AE.config import AE_SCHEMA
from stage2_cINN.config import CINN_SCHEMA
from training.logger import CSVLogger, resolve_wandb_mode
from utils.checkpoint import atomic_save, find_checkpoint, load_checkpoint
from utils.config import ConfigError, apply_overrides, load_config, save_config, validate_config
from utils.device import get_device

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "stage1": sorted((ROOT / "stage1_VAE/configs").glob("*.yaml")),
    "ae": sorted((ROOT / "stage2_cINN/AE/configs").glob("*.yaml")),
    "cinn": sorted((ROOT / "stage2_cINN/configs").glob("*.yaml")),
}
SCHEMAS = {"stage1": STAGE1_SCHEMA, "ae": AE_SCHEMA, "cinn": CINN_SCHEMA}


@pytest.mark.parametrize("schema,path", [(s, p) for s, ps in CONFIGS.items() for p in ps], ids=lambda x: str(x)[-40:])
def test_every_shipped_config_validates(schema, path):
    cfg = load_config(path, SCHEMAS[schema])
    assert isinstance(cfg["Training"]["lr"], float)  # '2e-4' is a float, not a string
    assert cfg["Data"]["Augmentation"]["prob_hflip"] == 0.5


def _write(tmp_path, cfg):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_missing_key_names_file_section_and_key(tmp_path):
    cfg = yaml.safe_load((ROOT / "stage1_VAE/configs/bair_config.yaml").read_text())
    del cfg["Decoder"]["z_dim"]
    p = _write(tmp_path, cfg)
    with pytest.raises(ConfigError) as e:
        load_config(p, STAGE1_SCHEMA)
    msg = str(e.value)
    assert str(p) in msg and "'Decoder'" in msg and "'z_dim'" in msg and "missing" in msg


def test_misspelt_key_is_rejected_with_suggestion(tmp_path):
    cfg = yaml.safe_load((ROOT / "stage1_VAE/configs/bair_config.yaml").read_text())
    cfg["Training"]["w_percp"] = cfg["Training"].pop("w_percep")
    with pytest.raises(ConfigError, match=r"unknown key 'w_percp' in section 'Training'.*w_percep"):
        load_config(_write(tmp_path, cfg), STAGE1_SCHEMA)


def test_unknown_section_and_defaults():
    cfg = yaml.safe_load((ROOT / "stage2_cINN/configs/landscape_config.yaml").read_text())
    out = validate_config(cfg, CINN_SCHEMA)
    assert out["Training"]["control"] is False  # released configs lack it
    assert out["Logging"]["mode"] == cfg["Logging"]["mode"]
    del cfg["Logging"]
    assert validate_config(cfg, CINN_SCHEMA)["Logging"]["mode"] is None  # resolved later
    cfg["Flw"] = {}
    with pytest.raises(ConfigError, match="unknown section 'Flw'.*Flow"):
        validate_config(cfg, CINN_SCHEMA)


def test_overrides_parse_yaml_values_and_reject_bad_paths():
    cfg = {"Training": {"bs": 10, "lr": 1e-4}, "Data": {"data_path": "a"}}
    out = apply_overrides(cfg, ["Training.bs=4", "Data.data_path=/x", "Training.lr=2e-4", "Training.amp=bf16"])
    assert out["Training"]["bs"] == 4 and out["Data"]["data_path"] == "/x" and out["Training"]["amp"] == "bf16"
    assert isinstance(out["Training"]["lr"], float) and out["Training"]["lr"] == 2e-4
    assert cfg["Training"]["bs"] == 10  # original untouched
    with pytest.raises(ConfigError):
        apply_overrides(cfg, ["Trainig.bs=3"])
    with pytest.raises(ConfigError):
        apply_overrides(cfg, ["Training.bs"])


def test_override_of_misspelt_key_fails_validation(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'bss'"):
        load_config(ROOT / "stage1_VAE/configs/bair_config.yaml", STAGE1_SCHEMA, ["Training.bss=3"])


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(ROOT / "stage1_VAE/configs/bair_config.yaml", STAGE1_SCHEMA, ["Training.bs=3"])
    save_config(cfg, tmp_path / "config_stage1.yaml")
    back = load_config(tmp_path / "config_stage1.yaml", STAGE1_SCHEMA)
    assert back["Training"]["bs"] == 3 and "_path" not in yaml.safe_load((tmp_path / "config_stage1.yaml").read_text())


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml", STAGE1_SCHEMA)


def test_device_selection(monkeypatch, caplog):
    assert get_device(-1) == torch.device("cpu")
    assert get_device("-1") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level("INFO"):
        assert get_device(None) == torch.device("cpu")
    assert "CPU" in caplog.text
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert get_device(1) == torch.device("cuda", 1)
    assert get_device("0,1") == torch.device("cuda", 0)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert get_device([0, 1]) == torch.device("cuda", 1)
    assert get_device(None) == torch.device("cuda", 1)


def test_unusable_gpu_falls_back_to_the_cpu_with_one_warning(monkeypatch, caplog):
    """The original's ``-gpu 0`` commands run on a machine without CUDA (or with fewer GPUs)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level("WARNING", logger="utils.device"):
        assert get_device(0) == torch.device("cpu")
        assert get_device([0, 1]) == torch.device("cpu")
    assert len(caplog.records) == 2 and "-gpu 0" in caplog.text and "running on the CPU" in caplog.text
    assert ("no CUDA support" if torch.version.cuda is None else "CUDA is not available") in caplog.text
    caplog.clear()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with caplog.at_level("WARNING", logger="utils.device"):
        assert get_device(5) == torch.device("cpu")
    assert [r.getMessage() for r in caplog.records] == ["-gpu 5: only 2 CUDA device(s) exist: running on the CPU"]
    assert get_device(-1) == torch.device("cpu")


def test_atomic_save_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pth"
    atomic_save({"a": torch.ones(3)}, path)

    def boom(obj, f):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"a": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["a"], torch.ones(3))  # the old file is intact
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pth"]  # no temp file left


def test_checkpoint_suffixes_and_errors(tmp_path):
    atomic_save({"state_dict": {}}, tmp_path / "best_PFVD_ENC.pth.tar")
    assert find_checkpoint(tmp_path / "best_PFVD_ENC") == tmp_path / "best_PFVD_ENC.pth.tar"
    with pytest.raises(FileNotFoundError, match="best_PFVD_GEN"):
        load_checkpoint(tmp_path / "best_PFVD_GEN", hint="put the released weights there")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="bad.pth"):
        load_checkpoint(tmp_path / "bad.pth")


def test_csv_logger_extends_columns(tmp_path):
    log = CSVLogger(tmp_path / "m.csv")
    log.log({"epoch": 0, "loss": 1.0})
    log.log({"epoch": 1, "loss": 0.5, "fvd": 3.0})
    lines = (tmp_path / "m.csv").read_text().splitlines()
    assert lines[0] == "epoch,loss,fvd" and lines[2] == "1,0.5,3.0"


def test_wandb_mode(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_wandb_mode(None) == "disabled"
    assert resolve_wandb_mode("online") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x")
    assert resolve_wandb_mode(None) == "online"
    with pytest.raises(ValueError):
        resolve_wandb_mode("sometimes")


_FAULTS_SCRIPT = """
import resource, sys, torch
from utils.allocator import tune_cpu_allocator
active = tune_cpu_allocator(sys.argv[1] == "1")
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def step():  # three 64 MiB activations, as in a forward pass
    a = torch.ones(16 * 2**20)
    b = a * 2
    return float((b + a)[0])
for _ in range(4):  # warm-up: the heap grows to the step's peak
    step()
before = faults()
for _ in range(5):
    step()
print(int(active), faults() - before)
"""


def test_malloc_tuning_reuses_freed_large_blocks():
    """With the tuning, freed 64 MiB activations are reused by the next step without page-faulting them in
    again (glibc's default mmaps and unmaps each of them: 16384 faults per tensor)."""
    import subprocess
    import sys

    from utils.allocator import _mallopt, tune_cpu_allocator

    if _mallopt() is None:
        pytest.skip("no glibc mallopt on this platform: the tuning is a no-op here")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    runs = {}
    for flag in ("0", "1"):
        out = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT, flag], capture_output=True, text=True,
                             env=env, cwd=root, check=True).stdout.split()
        runs[flag] = (int(out[0]), int(out[1]))
    assert runs["1"][0] == 1 and runs["0"][0] == 0
    pages = 5 * 3 * 64 * 2**20 // 4096  # re-faulting 5 steps x 3 tensors of 64 MiB page by page
    assert runs["0"][1] > pages * 9 // 10, runs  # glibc's default: fresh pages for every tensor
    # tuned: the freed blocks are reused (measured: 0-4 of the 15 tensors still land on fresh pages, as the
    # heap's free blocks settle)
    assert runs["1"][1] < pages // 2, runs
    os.environ["I2V_MALLOC_TUNING"] = "0"
    try:
        assert tune_cpu_allocator() is False  # the environment switch turns it off
    finally:
        del os.environ["I2V_MALLOC_TUNING"]
