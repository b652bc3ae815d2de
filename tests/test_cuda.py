"""The CUDA-only branches (issue #25): fp16 training with the GradScaler, nccl, the lazy NaN flag, the bf16/fp16
decoder, the TorchScript I3D, pinned loaders, resume onto the GPU.

Tests marked ``cuda`` need a GPU and are skipped without one (``tests/conftest.py``);
``python benchmarks/gpu_check.py`` runs them first on a GPU machine. Where a branch's logic can be reached on the
CPU by faking what it needs (an enabled GradScaler on the CPU, FiniteMonitor's lazy mode, a mocked
``torch.cuda.is_available``, a mocked nccl start), it is tested here too, unmarked.
"""
from __future__ import annotations

import contextlib
import math
from pathlib import Path

import pytest
import torch

from data.synthetic import write_synthetic_dataset
from tests.helpers import tiny_ae_config, tiny_stage1_config, write_tiny_model
from training.finite import FiniteMonitor
from utils.errors import NonFiniteLossError

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.device("cuda", 0)
PSNR_FLOOR_DB = {"bf16": 45.0, "fp16": 45.0}  # as tests/test_precision.py (bf16 reaches ~60 dB on the CPU)
pytestmark = pytest.mark.usefixtures("single_thread")  # the CPU tests' small tensors: one intra-op thread


@contextlib.contextmanager
def no_tf32():
    """float32 convolutions and matmuls on CUDA without TF32 (PyTorch's default lets cuDNN use it); the flags are
    restored after. (Not monkeypatch: ``torch.backends.cuda.matmul`` serves ``allow_tf32`` through ``__getattr__``,
    so monkeypatch's undo fails in teardown.)"""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


@pytest.fixture
def exact_fp32():
    """:func:`no_tf32` for a test: comparisons with the CPU."""
    with no_tf32():
        yield


def test_no_tf32_sets_and_restores_the_flags():
    """Runs on the CPU too: the fixture of the CUDA comparisons sets up and tears down cleanly."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    with no_tf32():
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == before


@pytest.fixture(scope="module")
def bair(tmp_path_factory):
    root = tmp_path_factory.mktemp("bair")
    return {"32": write_synthetic_dataset("bair", root / "b32", n_videos=2, n_frames=18, size=32),
            "64": write_synthetic_dataset("bair", root / "b64", n_videos=2, n_frames=2, size=64)}


def _stage1(bair, tmp_path, gpu, **training):
    from stage1_VAE.trainer import Stage1Trainer
    from training.run import start_run_from_config

    cfg = tiny_stage1_config(save_path=str(tmp_path), **training)
    cfg["Data"].update(bair["32"], aug=False)
    return Stage1Trainer(start_run_from_config(cfg, gpu, "config_stage1.yaml"))


def _ae(bair, tmp_path, gpu, **training):
    from stage2_cINN.AE.trainer import AETrainer
    from training.run import start_run_from_config

    cfg = tiny_ae_config(save_path=str(tmp_path), **training)
    cfg["Data"].update(bair["64"], aug=False)
    return AETrainer(start_run_from_config(cfg, gpu, "config_stage2_AE.yaml"))


def _scaled_steps(trainer, batch, n: int, epoch: int, key: str) -> tuple[list[float], list[bool]]:
    """``n`` steps on one batch: (the loss ``key`` of each, whether the GradScaler skipped it (scale lowered))."""
    losses, skipped = [], []
    for _ in range(n):
        scale = trainer.scaler.get_scale()
        logs = trainer.train_step(batch, epoch)
        losses.append(float(logs[key]))
        skipped.append(trainer.scaler.get_scale() < scale)
    return losses, skipped


def _check_scaled_training(losses: list[float], skipped: list[bool]) -> None:
    """The loss falls, and once the scaler has taken a step (its initial scale-downs over) no step overflows."""
    assert all(math.isfinite(v) for v in losses), losses
    first_taken = skipped.index(False)
    assert not any(skipped[first_taken:]), skipped
    assert min(losses[-3:]) < 0.7 * losses[0], losses


# ------------------------------------------------------------------------------------------ fp16 + GradScaler
@pytest.mark.cuda
def test_stage1_fp16_training_with_the_grad_scaler(bair, tmp_path):
    trainer = _stage1(bair, tmp_path, 0, amp="fp16", pretrain=2, lr=1e-3, w_percep=1.0)
    assert trainer.scaler.is_enabled() and trainer.device.type == "cuda"
    seq = trainer.eval_loader.dataset[0]["seq"].unsqueeze(0).to(CUDA)
    _check_scaled_training(*_scaled_steps(trainer, seq, 40, epoch=0, key="gen/recon_l1"))
    losses, _ = _scaled_steps(trainer, seq, 3, epoch=2, key="disc/total")  # the discriminators step too
    assert all(math.isfinite(v) for v in losses)
    assert all(torch.isfinite(p).all() for m in (trainer.disc_t, trainer.disc_s) for p in m.parameters())


@pytest.mark.cuda
def test_ae_fp16_training_with_the_grad_scaler(bair, tmp_path):
    trainer = _ae(bair, tmp_path, 0, amp="fp16", pretrain=100, lr=1e-3)
    x = trainer._frames(next(iter(trainer.eval_loader)))
    assert trainer.scaler.is_enabled() and x.is_cuda
    _check_scaled_training(*_scaled_steps(trainer, x, 40, epoch=0, key="train/rec_loss"))


def test_grad_scaler_plumbing_on_the_cpu(bair, tmp_path, monkeypatch):
    """The trainers' fp16 calls (scale, unscale_ before clipping, a step per optimiser, update) with an enabled
    GradScaler on the CPU: an overflowing step is skipped for every optimiser and the scale halves."""
    from stage1_VAE import trainer as stage1

    monkeypatch.setattr(stage1, "make_scaler", lambda device, amp: torch.amp.GradScaler("cpu", init_scale=4.0))
    trainer = _stage1(bair, tmp_path, -1, pretrain=0, grad_clip=1.0, w_percep=0.0)
    seq = trainer.eval_loader.dataset[0]["seq"].unsqueeze(0)
    nets = (trainer.encoder, trainer.decoder, trainer.disc_t)
    weights = lambda: [p.detach().clone() for m in nets for p in m.parameters()]  # noqa: E731
    before = weights()
    hook = trainer.decoder.register_full_backward_hook(lambda _m, gi, _go: tuple(g * float("inf") for g in gi))
    trainer.train_step(seq, 0)  # the generator's gradients overflow: its step is skipped
    hook.remove()
    assert trainer.scaler.get_scale() == 2.0
    n_gen = sum(p.numel() for m in nets[:2] for p in m.parameters())
    after = torch.cat([p.reshape(-1) for p in weights()])
    assert torch.equal(after[:n_gen], torch.cat([p.reshape(-1) for p in before])[:n_gen])
    logs = trainer.train_step(seq, 0)
    assert trainer.scaler.get_scale() == 2.0 and all(torch.isfinite(v) for v in logs.values())
    assert not torch.equal(torch.cat([p.reshape(-1) for p in weights()])[:n_gen], after[:n_gen])


# ------------------------------------------------------------------------------------------ resume onto the GPU
@pytest.mark.cuda
def test_resume_onto_the_gpu(bair, tmp_path):
    """Checkpoints are loaded with ``map_location=<gpu>``; their RNG states must still reach the generators."""
    common = dict(max_steps_per_epoch=1, max_eval_batches=1, save_media=False, pretrain=1)
    _stage1(bair, tmp_path / "first", 0, n_epochs=1, **common).fit()
    resumed = _stage1(bair, tmp_path / "second", 0, n_epochs=2, reload_path=str(tmp_path / "first" / "tiny"),
                      **common)
    assert resumed.start_epoch == 1
    resumed.fit()


# ------------------------------------------------------------------------------------------ the lazy NaN flag
def _lazy_monitor_raises_at_check(monitor: FiniteMonitor, device: torch.device) -> None:
    ok = {"a": torch.tensor(1.0, device=device), "b": torch.tensor(2.0, device=device)}
    monitor.add(ok, 1)
    monitor.add({"a": torch.tensor(float("nan"), device=device), "b": torch.tensor(2.0, device=device)}, 2)
    monitor.add({"a": torch.tensor(float("inf"), device=device), "b": torch.tensor(2.0, device=device)}, 3)
    with pytest.raises(NonFiniteLossError, match=r"at step 2: a=nan \(finite: b=2\)"):
        monitor.check()


@pytest.mark.cuda
def test_device_nan_flag_on_cuda():
    monitor = FiniteMonitor(CUDA, "stage-1")
    assert not monitor.eager
    _lazy_monitor_raises_at_check(monitor, CUDA)


def test_device_nan_flag_logic_on_the_cpu():
    """The CUDA mode (no host sync per step, the first bad step kept on the device) forced on the CPU."""
    monitor = FiniteMonitor(torch.device("cpu"), "stage-1")
    monitor.eager = False
    _lazy_monitor_raises_at_check(monitor, torch.device("cpu"))


# ------------------------------------------------------------------------------------------ nccl
def _start_one_process_group(monkeypatch, backend_seen: list) -> None:
    """``init_distributed`` as torchrun starts it (WORLD_SIZE 2), joining a real group of this one process."""
    import torch.distributed as dist

    real_init = dist.init_process_group
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")

    def init(backend, **kwargs):
        backend_seen.append(backend)
        store = dist.HashStore()
        real_init(backend, store=store, rank=0, world_size=1, **kwargs)

    monkeypatch.setattr(dist, "init_process_group", init)


@pytest.mark.cuda
def test_nccl_process_group_and_collectives_with_one_process(monkeypatch):
    import torch.distributed as dist

    from evaluation.sharded import all_gather, gather_records
    from training.loop import average_gradients, sync_initialised_params
    from utils.distributed import DistInfo, cleanup_distributed, init_distributed, reduce_mean

    backends: list = []
    _start_one_process_group(monkeypatch, backends)
    try:
        info = init_distributed(CUDA, timeout=60)
        assert backends == ["nccl"] and dist.get_backend() == "nccl" and torch.cuda.current_device() == 0
        assert info == DistInfo(0, 1, 0)
        forced = type("Distributed", (DistInfo,), {"enabled": True})(0, 1, 0)  # one rank that takes the DDP path
        assert reduce_mean({"a": torch.tensor(3.0, device=CUDA), "b": 1.5}, forced) == {"a": 3.0, "b": 1.5}
        assert all_gather({"x": 1}, forced) == [{"x": 1}]
        records = {"FVD.real": (torch.tensor([1, 0]), torch.tensor([[1.0], [0.0]]))}
        assert torch.equal(gather_records([records], forced)["FVD.real"], torch.tensor([[0.0], [1.0]]))
        net = torch.nn.Linear(3, 2).to(CUDA)
        net(torch.ones(1, 3, device=CUDA)).sum().backward()
        grad = net.weight.grad.clone()
        average_gradients(net, forced)
        sync_initialised_params(net, forced)
        assert torch.equal(net.weight.grad, grad)
    finally:
        cleanup_distributed()


def test_the_nccl_start_on_the_cpu(monkeypatch):
    """What ``init_distributed`` does for a CUDA device, with CUDA and the process group mocked."""
    import torch.distributed as dist

    from utils import distributed

    calls: dict = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.setdefault("set_device", d))
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: calls.update(backend=backend, **kw))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    info = distributed.init_distributed(torch.device("cuda", 1), timeout=30)
    assert info.rank == 1 and info.world_size == 2
    assert calls["backend"] == "nccl" and calls["set_device"] == torch.device("cuda", 1)
    assert calls["timeout"].total_seconds() == 30
    monkeypatch.setattr(dist, "get_backend", lambda: "nccl")
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert distributed.collective_device() == torch.device("cuda", 1)  # where reduce_mean's values go


# ------------------------------------------------------------------------------------------ inference precision
@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.usefixtures("exact_fp32")
def test_low_precision_decoder_on_cuda(precision):
    from data.images import list_images, read_images
    from stage2_cINN.pipeline import load_model
    from tests.test_precision import DEMO, psnr

    fp32, low = load_model(DEMO, CUDA), load_model(DEMO, CUDA, precision=precision)
    cpu = load_model(DEMO, "cpu")
    x0 = read_images(list_images(ROOT / "assets" / "GT_samples" / "demo")[:2], fp32.img_size)
    residual = torch.randn(2, fp32.z_dim, generator=torch.Generator().manual_seed(0))
    ref = fp32.sample(x0, 16, residual=residual)
    assert ref.is_cuda and psnr(ref.cpu(), cpu.sample(x0, 16, residual=residual)) > 50  # CUDA fp32 ~ CPU fp32
    out = low.sample(x0, 16, residual=residual)
    assert {p.dtype for p in low.decoder.parameters()} == {getattr(torch, {"bf16": "bfloat16", "fp16": "float16"}[
        precision])}
    assert out.dtype == torch.float32 and psnr(ref, out) >= PSNR_FLOOR_DB[precision]


# ------------------------------------------------------------------------------------------ TorchScript I3D
class _ScriptedI3D(torch.nn.Module):
    """A stand-in with the call signature of StyleGAN-V's TorchScript I3D (the released file is not here)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 8, 3, 2)

    def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True,
                return_features: bool = False) -> torch.Tensor:
        return self.conv(x).mean((2, 3, 4))


@pytest.mark.cuda
@pytest.mark.usefixtures("exact_fp32")
def test_torchscript_i3d_on_cuda(tmp_path):
    from metrics.fvd import FVDFeatureExtractor
    from metrics.i3d import load_torchscript_i3d

    torch.jit.script(_ScriptedI3D()).save(str(tmp_path / "i3d_torchscript.pt"))
    videos = torch.rand(2, 16, 3, 32, 32) * 2 - 1
    on_gpu = FVDFeatureExtractor(load_torchscript_i3d(CUDA, tmp_path / "i3d_torchscript.pt"), "fvd", CUDA)(videos)
    on_cpu = FVDFeatureExtractor(load_torchscript_i3d("cpu", tmp_path / "i3d_torchscript.pt"), "fvd")(videos)
    assert on_gpu.is_cuda and on_gpu.shape == (2, 8)
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-3, atol=1e-4)


# ------------------------------------------------------------------------------------------ pinned loaders
@pytest.mark.cuda
def test_pinned_loaders_on_cuda(bair):
    from data.dataset import get_dataset
    from data.loader import make_loader

    cfg = tiny_stage1_config()
    cfg["Data"].update(bair["32"])
    loader = make_loader(get_dataset(cfg, "eval"), 2, False, 1)
    batch = next(iter(loader))["seq"]
    assert loader.pin_memory and batch.is_pinned()
    on_gpu = batch.to(CUDA, non_blocking=True)
    torch.cuda.synchronize()
    assert torch.equal(on_gpu.cpu(), batch)


def test_loaders_pin_memory_when_cuda_is_available(bair, monkeypatch):
    from data.dataset import get_dataset
    from data.loader import make_loader

    cfg = tiny_stage1_config()
    cfg["Data"].update(bair["32"])
    dataset = get_dataset(cfg, "eval")
    assert not make_loader(dataset, 2, False, 0).pin_memory or torch.cuda.is_available()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert make_loader(dataset, 2, False, 0).pin_memory  # not iterated: pinning needs the driver


# ------------------------------------------------------------------------------------------ the tiny model
@pytest.mark.cuda
@pytest.mark.usefixtures("exact_fp32")
def test_sampling_on_cuda_matches_the_cpu(tmp_path):
    from stage2_cINN.pipeline import load_model

    folder = write_tiny_model(tmp_path)["dirs"]["stage2"]
    x0 = torch.rand(2, 3, 32, 32) * 2 - 1
    residual = torch.randn(2, 16)
    on_gpu = load_model(folder, CUDA).sample(x0, 20, residual=residual)
    torch.testing.assert_close(on_gpu.cpu(), load_model(folder).sample(x0, 20, residual=residual),
                               rtol=1e-3, atol=1e-3)
