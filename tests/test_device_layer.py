"""Device correctness on the CPU (issue #25): every path a GPU run takes, run on the fake GPU of
``tests/fake_gpu.py``, where a tensor on the wrong device fails as it would on CUDA.

The paths (``tests/device_scenarios.py``) run in one worker process of this module (the fake device changes
process-wide PyTorch state): the three trainers with validation, per-epoch FVD, checkpoints and resume; sampling,
transfer and endpoint control (API and scripts); both evaluation scripts and ``metrics.compare`` on one rank
(on two gloo ranks: ``tests/test_eval.py``, whose two-rank runs use the fake GPU). A planted ``torch.zeros(n)``
without ``device=`` in a training step must fail.
"""
from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from data.synthetic import write_synthetic_dataset
from tests import device_scenarios as scenarios
from tests.eval_helpers import KINETICS_FILE, VGG_FILE, _save, activating_init
from tests.helpers import write_tiny_model
from utils.media import save_png

FAKE = "fakegpu:0"


@pytest.fixture(scope="module")
def worker():
    """One spawned process that runs the scenarios (torch imported once for all of them; one intra-op thread:
    the tensors are tiny and the machine may be busy)."""
    with multiprocessing.get_context("spawn").Pool(1, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        yield lambda fn, *args: pool.apply(fn, args)


def _random_weights(folder: Path) -> Path:
    """The two metric weights files the scenarios read (Kinetics I3D, VGG16), random, in the released layouts
    (``tests.eval_helpers.write_random_weights`` writes all four)."""
    import torchvision

    from metrics.i3d import KineticsI3D

    _save(activating_init(KineticsI3D()).state_dict(), folder / KINETICS_FILE)
    vgg = activating_init(torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"]), 3)
    _save({f"features.{k}": v for k, v in vgg.state_dict().items()}, folder / VGG_FILE)
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    """Synthetic BAIR data (32 px clips for training and evaluation, 64 px frames), random metric weights in the
    released layouts, the tiny model (its stage-1 config logging the FVD, so the cINN's per-epoch FVD runs) and its
    control variant."""
    root = tmp_path_factory.mktemp("device")
    model = write_tiny_model(root / "model")["dirs"]
    stage1_config = model["stage1"] / "config_stage1.yaml"
    cfg1 = yaml.safe_load(stage1_config.read_text())
    cfg1["Training"]["FVD"] = "FVD"
    stage1_config.write_text(yaml.safe_dump(cfg1, sort_keys=False))
    control = write_tiny_model(root / "control", control=True, seed=5)["dirs"]
    weights = _random_weights(root / "weights")
    return {"root": root, "model": model, "control": control, "weights": weights,
            "i3d": str(weights / KINETICS_FILE), "vgg": str(weights / VGG_FILE),
            "bair32": write_synthetic_dataset("bair", root / "bair32", n_videos=2, n_frames=18, size=32),
            "bair64": write_synthetic_dataset("bair", root / "bair64", n_videos=2, n_frames=2, size=64),
            "bair7": write_synthetic_dataset("bair", root / "bair7", n_videos=2, n_frames=7, size=32)}


def _check_training(out: dict, files: set[str]) -> None:
    assert out["start_epoch"] == 1 and out["devices"] == {FAKE}, out
    assert files <= set(out["files"]), out["files"]
    assert out["resumed"] and all(np.isfinite(v) for v in out["resumed"].values()), out["resumed"]


def test_stage1_training_validation_fvd_and_resume(worker, setup, tmp_path):
    out = worker(scenarios.train_stage1, setup["bair32"], str(tmp_path), setup["i3d"], setup["vgg"])
    _check_training(out, {"latest_checkpoint_GEN.pth", "best_PFVD_ENC.pth", "metrics.csv", "media"})
    assert {"PFVD", "L1", "LPIPS", "PSNR", "SSIM"} <= set(out["metrics"]), out["metrics"]
    assert "train_gen/gan_t" in out["resumed"]  # the discriminators train from epoch 1 (pretrain)


def test_ae_training_validation_and_resume(worker, setup, tmp_path):
    out = worker(scenarios.train_ae, setup["bair64"], str(tmp_path), setup["vgg"])
    _check_training(out, {"latest_checkpoint_AE.pth", "Encoder_stage2.pth", "media"})


def test_cinn_training_with_control_fvd_and_resume(worker, setup, tmp_path):
    out = worker(scenarios.train_cinn, setup["bair32"], str(tmp_path), str(setup["model"]["stage1"]),
                 str(setup["model"]["ae"]), setup["i3d"])
    _check_training(out, {"latest_checkpoint_cINN.pth", "cINN.pth", "media"})
    assert {"PFVD", "nll"} <= set(out["metrics"]), out["metrics"]


def test_a_planted_host_tensor_in_a_training_step_fails(worker, setup, tmp_path):
    message = worker(scenarios.planted_host_tensor, setup["bair32"], str(tmp_path))
    assert message.startswith("Expected all tensors to be on the same device") and "fakegpu:0 and cpu" in message


def test_sampling_transfer_and_endpoint(worker, setup, tmp_path):
    images, videos = tmp_path / "images", tmp_path / "videos"
    gen = torch.Generator().manual_seed(0)
    for i in range(2):
        save_png(torch.rand(3, 32, 32, generator=gen) * 2 - 1, images / f"{i}.png")
        for k in range(17):
            save_png(torch.rand(3, 32, 32, generator=gen) * 2 - 1, videos / f"v{i}" / f"{k:02d}.png")
    out = worker(scenarios.sampling, str(setup["model"]["stage2"]), str(setup["control"]["stage2"]), str(images),
                 str(videos), setup["bair32"]["data_path"], str(tmp_path / "out"))
    assert out["shapes"] == {"sample": (2, 20, 3, 32, 32), "sample_many": (2, 2, 4, 3, 32, 32)}
    assert out["devices"] == {"fakegpu"} and len(out["written"]) == 4 and all(out["written"])


def _eval_runs(setup) -> dict:
    """Synthesis (FVD), diversity (I3D) and compare (FVD) runs with ``-gpu 0`` on 2 test clips, chunks of 1."""
    root = setup["root"]
    base = ["-gpu", "0", "-dataset", "bair", "-data_path", setup["bair7"]["data_path"], "-ckpt_path",
            str(setup["model"]["stage2"]), "-workers", "0", "-bs", "1", "-seq_length", "6", "-protocol", "all",
            "-weights_dir", str(setup["weights"])]
    real, fake = (Path(setup["bair7"]["data_path"]) / split / name
                  for split, name in (("test", "traj_0_to_255"), ("eval", "traj_256_to_511")))
    return {"synthesis": base + ["-DTFVD", "False", "-FID", "False", "-LPIPS", "False", "-out",
                                 str(root / "synthesis.json")],
            "diversity": base + ["-VGG", "False", "-DTI3D", "False", "-n_realiz", "2", "-out",
                                 str(root / "diversity.json")],
            "compare": ["--real", str(real), "--fake", str(fake), "--fvd", "--gpu", "0", "--bs", "1", "--weights_dir",
                        str(setup["weights"]), "--out", str(root / "compare.json")]}


def test_evaluation_scripts_and_compare_on_one_rank(worker, setup):
    """One rank here; two gloo ranks with every metric network on the fake GPU: tests/test_eval.py
    (``two_processes``, whose numbers must equal those of one CPU process)."""
    out = worker(scenarios.evaluation, str(setup["weights"]), _eval_runs(setup), ["FVD", "I3D"])
    assert list(out["synthesis"]) == ["FVD"] and list(out["compare"]) == ["FVD"] and "I3D" in out["diversity"]
    for name in ("synthesis", "diversity", "compare"):
        assert all(np.isfinite(v) for v in out[name].values()), (name, out[name])


def test_metric_inputs_and_the_guards_rules(worker):
    out = worker(scenarios.metric_inputs)
    assert out["fvd"] == (FAKE, (1, 3, 4, 224, 224)) and out["pfvd"] == (FAKE, (1, 3, 4, 224, 224))
    assert out["dtfvd"] == (FAKE, (1, 3, 16, 224, 224))
    assert np.isfinite(out["psnr"]) and np.isfinite(out["ssim"])
    assert out["rules"] == {"cpu_scalar": "accepted", "cpu_vector": "DeviceMismatch",
                            "device_scalar_on_cpu": "DeviceMismatch", "cpu_index": "accepted", "numpy": "TypeError",
                            "cpu_numpy": "accepted", "tolist": [1.0, 1.0, 1.0], "item": 3.0,
                            "cpu_generator": "DeviceMismatch", "like": FAKE, "tensor": FAKE}


def test_ddp_helpers_on_the_device_with_a_gloo_group(worker):
    """reduce_mean's device path (nccl's: values to the GPU, all_reduce, back to the host), gradient averaging
    and the initial broadcast, on fake-GPU tensors."""
    out = worker(scenarios.collectives)
    assert out == {"means": {"a": 3.0, "b": 1.5}, "devices": {FAKE}}


def test_the_fake_gpu_stays_in_the_worker():
    """This process never registers the fake device (other tests see PyTorch's own accelerator state)."""
    assert getattr(torch, "fakegpu", None) is None
