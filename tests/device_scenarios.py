"""The paths of ``tests/test_device_layer.py``, each run on the fake GPU of :mod:`tests.fake_gpu` in the worker
process of that test module: the three trainers (steps, validation, per-epoch FVD, checkpoints, resume), sampling,
transfer, endpoint control, both evaluation scripts, ``metrics.compare`` and the metric pre-processing.

Every function takes plain paths (the data, models and weights the test module wrote) and returns plain values
for the test to check; a tensor on the wrong device raises :class:`tests.fake_gpu.DeviceMismatch` (or CUDA's
``TypeError`` for ``.numpy()``).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import torch

from tests.fake_gpu import DeviceMismatch, fake_gpu, patch_everywhere, to_fake

I3D_TEST_SIZE = 40  # the per-epoch FVD resizes frames to this instead of 224 (the I3D pools adaptively)


@contextlib.contextmanager
def small_i3d() -> Iterator[None]:
    """The per-epoch (P)FVD on small frames: resized to :data:`I3D_TEST_SIZE`, a global final pool."""
    import metrics.i3d  # noqa: F401  (patched)
    from metrics import fvd

    def small(load):
        def load_small(*args, **kwargs):
            model = load(*args, **kwargs)
            model.avg_pool = torch.nn.AdaptiveAvgPool3d(1)
            return model
        return load_small

    size, fvd.I3D_SIZE = fvd.I3D_SIZE, I3D_TEST_SIZE
    try:
        with patch_everywhere("metrics.i3d.load_kinetics_i3d", small):
            yield
    finally:
        fvd.I3D_SIZE = size


def _state_devices(trainer: Any) -> set[str]:
    """Devices of a trainer's parameters and optimiser states (Adam's 0-dim step counts stay on the CPU, as
    PyTorch keeps them)."""
    tensors = [p for m in vars(trainer).values() if isinstance(m, torch.nn.Module) for p in m.parameters()]
    for opt in (o for o in vars(trainer).values() if isinstance(o, torch.optim.Optimizer)):
        tensors += [t for state in opt.state.values() for t in state.values()
                    if isinstance(t, torch.Tensor) and t.dim() > 0]
    return {str(t.device) for t in tensors}


def _fit_and_resume(trainer_cls, cfg: dict, config_file: str) -> dict:
    """``cfg`` trained for one epoch (steps, validation, checkpoints), then a second run that resumes from those
    checkpoints and trains its second epoch (the GAN terms start there: ``pretrain`` 1)."""
    from training.run import start_run_from_config

    tr = cfg["Training"]
    metrics = trainer_cls(start_run_from_config(dict(cfg, Training={**tr, "n_epochs": 1}), 0, config_file)).fit()
    run_dir = Path(tr["save_path"]) / tr["savename"]
    second = dict(cfg, Training={**tr, "n_epochs": 2, "reload_path": str(run_dir), "savename": "resumed"})
    resumed = trainer_cls(start_run_from_config(second, 0, config_file))
    logs = resumed.train_epoch(resumed.start_epoch)
    return {"metrics": metrics, "resumed": logs, "start_epoch": resumed.start_epoch,
            "devices": _state_devices(resumed), "files": sorted(p.name for p in run_dir.iterdir())}


def _small(**training) -> dict:
    """Training keys of a short run: one step of batch 1 per epoch, one validation batch of 2 (an FVD needs two
    videos), media."""
    return {"max_steps_per_epoch": 1, "max_eval_batches": 1, "bs": 1, "bs_eval": 2, "save_media": True, **training}


def train_stage1(data: dict, run_root: str, i3d_weights: str, vgg_weights: str) -> dict:
    """Stage 1: steps, validation with the per-epoch PFVD and media, checkpoints; resumed for a second epoch."""
    from stage1_VAE.trainer import Stage1Trainer
    from tests.helpers import tiny_stage1_config

    cfg = tiny_stage1_config(**_small(pretrain=1, FVD="FVD", i3d_weights=i3d_weights, lpips_weights=vgg_weights,
                                      save_path=run_root))
    cfg["Data"].update(data)
    with fake_gpu(), small_i3d():
        return _fit_and_resume(Stage1Trainer, cfg, "config_stage1.yaml")


def train_ae(data: dict, run_root: str, vgg_weights: str) -> dict:
    """The conditioning AE: steps (the discriminator from epoch 1), validation, checkpoints, resume."""
    from stage2_cINN.AE.trainer import AETrainer
    from tests.helpers import tiny_ae_config

    cfg = tiny_ae_config(**_small(pretrain=1, lpips_weights=vgg_weights, save_path=run_root))
    cfg["Data"].update(data)
    with fake_gpu():
        return _fit_and_resume(AETrainer, cfg, "config_stage2_AE.yaml")


def train_cinn(data: dict, run_root: str, stage1_dir: str, ae_dir: str, i3d_weights: str) -> dict:
    """The cINN with end-effector control: steps, validation with the per-epoch FVD of prior samples, media,
    checkpoints, resume."""
    from stage2_cINN.trainer import CINNTrainer
    from tests.helpers import tiny_cinn_config

    cfg = tiny_cinn_config(stage1_dir, ae_dir, **_small(bs=2, control=True, fvd_samples=True, i3d_weights=i3d_weights,
                                                        save_path=run_root))
    cfg["Data"].update(data)
    with fake_gpu(), small_i3d():
        return _fit_and_resume(CINNTrainer, cfg, "config_stage2.yaml")


def planted_host_tensor(data: dict, run_root: str) -> str:
    """A stage-1 step with a planted ``torch.zeros(n)`` (no ``device=``) that meets the batch: must raise."""
    from stage1_VAE.trainer import Stage1Trainer
    from tests.helpers import tiny_stage1_config
    from training.run import start_run_from_config

    cfg = tiny_stage1_config(**_small(save_path=run_root, w_percep=0.0))
    cfg["Data"].update(data)
    original = Stage1Trainer.train_step

    def planted(self, seq, epoch):
        logs = original(self, seq, epoch)
        weights = torch.zeros(seq.shape[0])  # the bug: made on the CPU
        logs["planted"] = (seq.flatten(1).mean(1) * weights).sum()
        return logs

    Stage1Trainer.train_step = planted
    try:
        with fake_gpu():
            trainer = Stage1Trainer(start_run_from_config(cfg, 0, "config_stage1.yaml"))
            try:
                trainer.train_epoch(0)
            except DeviceMismatch as exc:
                return str(exc)
    finally:
        Stage1Trainer.train_step = original
    return "no error"


def sampling(model_dir: str, control_dir: str, images: str, videos: str, bair: str, out: str) -> dict:
    """``load_model`` + ``sample`` / ``sample_many`` (API, CPU and device inputs) and the three scripts with
    ``-gpu 0`` (samples, motion transfer, endpoint control)."""
    import generate_samples
    import generate_transfer
    import visualize_endpoint
    from stage2_cINN.pipeline import load_model

    out_dir = Path(out)
    with fake_gpu() as device:
        pipe = load_model(model_dir, device)
        x0 = torch.rand(2, 3, 32, 32) * 2 - 1  # the API takes CPU inputs too
        shapes = {"sample": pipe.sample(x0, seq_length=20).shape,  # two generator passes
                  "sample_many": pipe.sample_many(to_fake(x0), 2, seq_length=4).shape}
        devices = {pipe.sample(to_fake(x0), seq_length=4).device.type}
        common = ["-gpu", "0", "-ckpt_path"]
        gif = generate_samples.main(["-dataset", "landscape", *common, model_dir, "-images", images, "-out",
                                     str(out_dir / "samples"), "-n_samples", "2", "-seq_length", "6"])
        transfers = generate_transfer.main(["-dataset", "landscape", *common, model_dir, "-videos", videos,
                                            "-n_targets", "1", "-out", str(out_dir / "transfer")])
        endpoint = visualize_endpoint.main(["-dataset", "bair", *common, control_dir, "-data_path", bair,
                                            "-n_examples", "1", "-n_samples", "1", "-seq_length", "4", "-out",
                                            str(out_dir / "endpoint")])
    return {"shapes": {k: tuple(v) for k, v in shapes.items()}, "devices": devices,
            "written": [Path(p).is_file() for p in [gif, *transfers, *endpoint]]}


def evaluation(weights_dir: str, runs: dict, metrics: list[str]) -> dict:
    """``eval_synthesis_quality``, ``eval_diversity`` and ``metrics.compare`` in this process (one rank), with
    ``-gpu 0`` and the metric networks of ``weights_dir`` (those of ``metrics``) loaded on the fake GPU."""
    import eval_diversity
    import eval_synthesis_quality
    from metrics import compare
    from tests.eval_helpers import small_backbones

    with fake_gpu() as device:
        backbones = small_backbones(Path(weights_dir), metrics, device=device)
        return {"synthesis": eval_synthesis_quality.main(runs["synthesis"], backbones=backbones)["metrics"],
                "diversity": eval_diversity.main(runs["diversity"], backbones=backbones)["metrics"],
                "compare": compare.main(runs["compare"], backbones=backbones)["metrics"]}


def metric_inputs() -> dict:
    """The I3D pre-processing of every protocol at full size (224 px), PSNR/SSIM, Frechet statistics from
    features, and the guard's own rules."""
    from metrics.dti3d import DTDBI3D
    from metrics.fvd import FVDFeatureExtractor
    from metrics.i3d import KineticsI3D
    from metrics.quality import psnr, ssim

    out: dict[str, Any] = {}
    with fake_gpu() as device:
        videos = to_fake(torch.rand(1, 4, 3, 8, 8) * 2 - 1)
        for protocol, net in (("fvd", KineticsI3D), ("pfvd", KineticsI3D), ("dtfvd", lambda: DTDBI3D(16))):
            with torch.device("meta"):
                model = net()
            extractor = FVDFeatureExtractor(model.to_empty(device=device), protocol, device)
            x = extractor.preprocess(videos)
            out[protocol] = (str(x.device), tuple(x.shape))
        out["psnr"] = float(psnr(videos, videos.flip(1)))
        out["ssim"] = float(ssim(videos, videos.flip(1)))
        out["rules"] = _guard_rules(device)
    return out


def _guard_rules(device: torch.device) -> dict:
    """What the fake GPU accepts and refuses, as CUDA does."""
    x = torch.ones(3, device=device)

    def raises(fn) -> str:
        try:
            fn()
        except (DeviceMismatch, TypeError) as exc:
            return type(exc).__name__
        return "accepted"

    return {"cpu_scalar": raises(lambda: x * torch.tensor(2.0)), "cpu_vector": raises(lambda: x * torch.ones(3)),
            "device_scalar_on_cpu": raises(lambda: torch.ones(3) * x.sum()),
            "cpu_index": raises(lambda: x[torch.tensor([0, 2])]), "numpy": raises(lambda: x.numpy()),
            "cpu_numpy": raises(lambda: x.cpu().numpy()), "tolist": x.tolist(), "item": x.sum().item(),
            "cpu_generator": raises(lambda: torch.randn(2, device=device, generator=torch.Generator())),
            "like": str(torch.zeros_like(x).device), "tensor": str(torch.tensor([1.0], device=device).device)}


def collectives() -> dict:
    """The DDP helpers on the fake GPU in a one-process gloo group that takes the distributed path, with
    ``collective_device`` standing for nccl's (the current GPU)."""
    import torch.distributed as dist

    from training.loop import average_gradients, sync_initialised_params
    from utils import distributed

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        with fake_gpu() as device:
            original, distributed.collective_device = distributed.collective_device, lambda: device
            try:
                info = type("Distributed", (distributed.DistInfo,), {"enabled": True})(0, 1, 0)
                means = distributed.reduce_mean({"a": torch.tensor(3.0, device=device), "b": 1.5}, info)
                net = torch.nn.Linear(3, 2).to(device)
                net(torch.ones(1, 3, device=device)).sum().backward()
                average_gradients(net, info)
                sync_initialised_params(net, info)
                devices = {str(t.device) for t in (net.weight, net.weight.grad)}
            finally:
                distributed.collective_device = original
    finally:
        dist.destroy_process_group()
    return {"means": means, "devices": devices}
