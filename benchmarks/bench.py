"""Throughput and peak memory of the project's hot paths, with random weights of the real config sizes.

    python benchmarks/bench.py --config bair landscape --what sampling,fwdbwd --device cpu --repeats 3 \
        --baseline-rev cae7f02

Items (``--what``):

* ``sampling``: cINN reverse + decoder (:meth:`stage2_cINN.pipeline.Pipeline.generate`), 16 frames, batch
  sizes ``--sample-bs`` (default 1 and 8); videos/s.
* ``fwdbwd``: stage-1 encoder + decoder forward/backward of a batch of ``--batch`` clips (default 2).
* ``stage1``: one full stage-1 training iteration (D_t, D_s and encoder+decoder updates) of the real
  :class:`stage1_VAE.trainer.Stage1Trainer` on synthetic clips, LPIPS with a random VGG backbone.
* ``cinn``: one cINN iteration (flow forward, NLL, backward, AMSGrad Adam step) on random latents, batch of
  the config (50) unless ``--batch`` is given.
* ``ae``: one iteration of the real :class:`stage2_cINN.AE.trainer.AETrainer` (generator and discriminator
  updates), synthetic frames.
* ``fvd``: FVD feature extraction (random-weight Kinetics I3D at 224 px, TF1 resize), videos/s.
* ``data``: clips/s of the training loader with ``--workers`` workers on synthetic data in a temp dir.
* ``roofline``: FLOPs of ``sampling`` and ``fwdbwd`` (counted on the meta device) and the time they take at
  the throughput a large 3x3x3 convolution reaches on the device: a floor for these items.

With ``--baseline-rev REV`` the ``sampling`` and ``fwdbwd`` items also run the decoder of git revision REV
(loaded from ``git show REV:stage1_VAE/modules/decoder.py``, same weights) in the same process, interleaved
with the current code, and print the speed-up; that revision runs with glibc's default malloc, as it did
(``utils.allocator``), and ``--malloc-ab`` adds the current code with the default malloc. Times are wall-clock
(mean +- std and median over ``--repeats`` runs after ``--warmup`` runs); ``cpu`` is the process CPU time (less
sensitive to other processes on a shared machine). Peak memory: ``torch.cuda.max_memory_allocated`` on CUDA; on
the CPU the rise of the process RSS above its value at the start of the timed runs (sampled every 50 ms).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from stage1_VAE.config import STAGE1_SCHEMA  # noqa: E402
from stage1_VAE.modules import build_stage1  # noqa: E402
from stage2_cINN.AE.config import AE_SCHEMA  # noqa: E402
from stage2_cINN.config import CINN_SCHEMA  # noqa: E402
from utils import command  # noqa: E402
from utils.compile import maybe_compile  # noqa: E402
from utils.config import load_config  # noqa: E402
from utils.memory_format import set_channels_last  # noqa: E402

CONFIGS = {
    "bair": ("stage1_VAE/configs/bair_config.yaml", "stage2_cINN/configs/bair_config.yaml",
             "stage2_cINN/AE/configs/bair_config.yaml", "bair"),
    "landscape": ("stage1_VAE/configs/landscape_config.yaml", "stage2_cINN/configs/landscape_config.yaml",
                  "stage2_cINN/AE/configs/landscape_config.yaml", "landscape"),
    "demo": ("models/demo/configs/stage1.yaml", "models/demo/configs/stage2.yaml",  # small: smoke runs
             "models/demo/configs/stage2_AE.yaml", "landscape"),
}
ALL = ("roofline", "sampling", "fwdbwd", "stage1", "cinn", "ae", "fvd", "data")


# ------------------------------------------------------------------------------------------ measuring
@dataclass
class Result:
    """Timings of one benchmark item (seconds per call) and its peak memory (MiB)."""

    config: str
    item: str
    variant: str
    items_per_call: int
    unit: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    peak_mib: float = float("nan")
    baseline_of: str | None = None  # the variant this one is a "before" of (git revision or default malloc)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.wall)

    @property
    def std(self) -> float:
        return statistics.stdev(self.wall) if len(self.wall) > 1 else 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    def row(self) -> str:
        rate = self.items_per_call / self.median
        return (f"{self.config:10s} {self.item:9s} {self.variant:22s} {self.mean:8.3f} +- {self.std:6.3f} s "
                f"(median {self.median:7.3f}, cpu {statistics.median(self.cpu):7.3f})  "
                f"{rate:8.3f} {self.unit}  peak {self.peak_mib:8.1f} MiB")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def peak_memory(device: torch.device, out: Result, interval: float = 0.05):
    """Record the peak memory of the block into ``out.peak_mib``: the CUDA allocator's peak on CUDA, else
    the highest process RSS above the RSS at entry (sampled every ``interval`` s by a thread; resetting
    VmHWM through /proc/self/clear_refs makes the next page faults very slow on some VMs)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        yield
        torch.cuda.synchronize(device)
        out.peak_mib = (torch.cuda.max_memory_allocated(device) - base) / 2**20
        return
    base, peak, stop = _rss_bytes(), [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        out.peak_mib = max(peak[0] - base, 0) / 2**20


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], object], res: Result, device: torch.device, repeats: int, warmup: int) -> Result:
    """Run ``fn`` ``warmup`` times, then ``repeats`` timed times (wall and process CPU time)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    with peak_memory(device, res):
        for _ in range(repeats):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            _sync(device)
            res.wall.append(time.perf_counter() - t0)
            res.cpu.append(time.process_time() - c0)
    return res


def measure_ab(fns: dict[str, Callable[[], object]], results: dict[str, Result], device: torch.device,
               repeats: int, warmup: int) -> None:
    """Like :func:`measure` for several variants, interleaved run by run (fair on a loaded machine)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            one = Result(**{**asdict(results[name]), "wall": [], "cpu": []})
            measure(fn, one, device, 1, 0)
            results[name].wall += one.wall
            results[name].cpu += one.cpu
            prev = results[name].peak_mib
            results[name].peak_mib = one.peak_mib if prev != prev else max(prev, one.peak_mib)  # nan: first


def glibc_default_malloc(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` run with glibc's default malloc thresholds (the 'before' of :mod:`utils.allocator`), the tuning
    restored afterwards. Free blocks the tuned runs left in the heap can still serve it, so this 'before'
    is, if anything, a little too fast."""
    from utils.allocator import restore_default_allocator, tune_cpu_allocator

    def run() -> object:
        restore_default_allocator()
        try:
            return fn()
        finally:
            tune_cpu_allocator(True)
    return run


def add_before_variants(fns: dict[str, Callable[[], object]], key: str, baseline: Callable[[], object] | None,
                        args) -> None:
    """Add the ``--baseline-rev`` variant (with glibc's default malloc, as that revision ran, unless
    ``--no-malloc-tuning``) and, with ``--malloc-ab``, the current code with the default malloc."""
    tuned = not args.no_malloc_tuning
    if args.malloc_ab and tuned:
        fns[f"{key} glibc-malloc"] = glibc_default_malloc(fns[key])
    if baseline is not None:
        fns[f"{key} @{args.baseline_rev}"] = glibc_default_malloc(baseline) if tuned else baseline


# ------------------------------------------------------------------------------------------ models
def baseline_generator_class(rev: str) -> type:
    """The ``Generator`` of ``stage1_VAE/modules/decoder.py`` at git revision ``rev``."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:stage1_VAE/modules/decoder.py"],
                         check=True, capture_output=True, text=True).stdout
    name = f"stage1_VAE.modules._decoder_{rev.replace('/', '_')}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "stage1_VAE.modules"  # its relative imports resolve against today's package
    exec(compile(src, f"{rev}:decoder.py", "exec"), module.__dict__)  # noqa: S102 - the repo's own history
    return module.Generator


def stage1_nets(cfg1: dict, device: torch.device, channels_last: bool) -> dict:
    torch.manual_seed(0)
    nets = {k: v.to(device) for k, v in build_stage1(cfg1).items()}
    if channels_last:
        for m in nets.values():
            set_channels_last(m)
    return nets


def baseline_decoder(rev: str, cfg1: dict, like: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    dec = baseline_generator_class(rev).from_config(cfg1["Decoder"]).to(device)
    dec.load_state_dict(like.state_dict())
    return dec.train(like.training)


# ------------------------------------------------------------------------------------------ items
def bench_sampling(name: str, cfgs: tuple, args, device: torch.device) -> list[Result]:
    from stage2_cINN.modules import build_cinn
    from stage2_cINN.pipeline import Pipeline

    cfg1, cfg2 = cfgs[0], cfgs[1]
    nets = stage1_nets(cfg1, device, args.channels_last)
    dec = nets["decoder"].eval()
    flow = build_cinn(cfg2, int(cfg1["Decoder"]["z_dim"])).to(device).eval()
    pipe = Pipeline(flow, dec, nets["encoder"].eval(), None, cfg2, cfg1, device)
    pipe.decoder = maybe_compile(dec, args.compile)
    img, emb_dim = int(cfg1["Data"]["img_size"]), flow.cond_channels
    out = []
    for bs in args.sample_bs:
        g = torch.Generator().manual_seed(bs)
        x0 = (torch.rand(bs, 3, img, img, generator=g) * 2 - 1).to(device)
        emb = torch.randn(bs, emb_dim, generator=g).to(device)
        eps = torch.randn(bs, pipe.z_dim, generator=g).to(device)
        fns = {f"bs{bs}": lambda: pipe.generate(x0, emb, eps)}
        baseline = None
        if args.baseline_rev:
            base = baseline_decoder(args.baseline_rev, cfg1, dec, device).eval()

            @torch.no_grad()
            def baseline() -> torch.Tensor:
                return base(x0, flow.reverse(eps, emb))

            with torch.no_grad():
                err = (fns[f"bs{bs}"]() - baseline()).abs().max().item()
            print(f"# {name} sampling bs{bs}: max |current - baseline| = {err:.2e}")
        add_before_variants(fns, f"bs{bs}", baseline, args)
        res = {k: Result(name, "sampling", k, bs, "videos/s", baseline_of=None if k == f"bs{bs}" else f"bs{bs}")
               for k in fns}
        measure_ab(fns, res, device, args.repeats, args.warmup)
        out += list(res.values())
    return out


def bench_fwdbwd(name: str, cfgs: tuple, args, device: torch.device) -> list[Result]:
    cfg1 = cfgs[0]
    nets = stage1_nets(cfg1, device, args.channels_last)
    enc, dec = nets["encoder"].train(), nets["decoder"].train()
    img, bs = int(cfg1["Data"]["img_size"]), args.batch or 2
    g = torch.Generator().manual_seed(0)
    seq = (torch.rand(bs, 17, 3, img, img, generator=g) * 2 - 1).to(device)
    base = baseline_decoder(args.baseline_rev, cfg1, dec, device) if args.baseline_rev else None

    def step(d: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            z, mu, logvar = enc(seq[:, 1:])
            x_hat = d(seq[:, 0], z)
            kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1).mean()
            ((x_hat - seq[:, 1:]).abs().mean() + 1e-5 * kl).backward()
            enc.zero_grad(set_to_none=True)
            d.zero_grad(set_to_none=True)
        return run

    key = f"bs{bs} current"
    fns = {key: step(maybe_compile(dec, args.compile))}
    add_before_variants(fns, key, step(base) if base is not None else None, args)
    res = {k: Result(name, "fwdbwd", k, bs, "clips/s", baseline_of=None if k == key else key) for k in fns}
    measure_ab(fns, res, device, args.repeats, args.warmup)
    return list(res.values())


def _synthetic(kind: str, tmp: Path, img: int, n_videos: int = 4) -> dict:
    from data.synthetic import write_synthetic_dataset

    return write_synthetic_dataset(kind, tmp / kind, n_videos=n_videos, n_frames=20, size=img)


def _training_config(path: str, schema: dict, data: dict, tmp: Path, bs: int, extra: list[str]) -> dict:
    overrides = [f"Training.save_path={tmp / 'runs'}", "Training.savename=bench", f"Training.bs={bs}",
                 "Training.workers=0", "Training.allow_random_lpips=True", "Logging.mode=disabled", *extra]
    cfg = load_config(ROOT / path, schema, overrides)
    cfg["Data"].update(data)
    return cfg


def bench_stage1(name: str, cfgs: tuple, args, device: torch.device) -> list[Result]:
    from stage1_VAE.trainer import Stage1Trainer
    from training.run import start_run_from_config

    img, bs = int(cfgs[0]["Data"]["img_size"]), args.batch or (2 if device.type == "cpu" else None)
    with tempfile.TemporaryDirectory() as tmp:
        data = _synthetic(cfgs[3], Path(tmp), img)
        bs = bs or int(cfgs[0]["Training"]["bs"])
        cfg = _training_config(CONFIGS[name][0], STAGE1_SCHEMA, data, Path(tmp), bs,
                               ["Training.FVD=none", f"Training.amp={args.amp}", f"Training.compile={args.compile}"])
        gpu = (device.index or 0) if device.type == "cuda" else -1
        trainer = Stage1Trainer(start_run_from_config(cfg, gpu, Stage1Trainer.CONFIG_FILE))
        seq = (torch.rand(bs, 17, 3, img, img, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(device)
        epoch = int(cfg["Training"]["pretrain"])  # GAN terms and discriminator updates on
        for m in (trainer.encoder, trainer.decoder, trainer.disc_t, trainer.disc_s):
            m.train()
        res = Result(name, "stage1", f"bs{bs} full iteration", bs, "clips/s")
        return [measure(lambda: trainer.train_step(seq, epoch), res, device, args.repeats, args.warmup)]


def bench_cinn(name: str, cfgs: tuple, args, device: torch.device) -> list[Result]:
    from stage2_cINN.modules import build_cinn, nll_loss

    cfg1, cfg2 = cfgs[0], cfgs[1]
    tr = cfg2["Training"]
    z_dim = int(cfg1["Decoder"]["z_dim"])
    flow = build_cinn(cfg2, z_dim).to(device).train()
    bs = args.batch or int(tr["bs"])
    g = torch.Generator().manual_seed(0)
    z = torch.randn(bs, z_dim, generator=g).to(device)
    emb = torch.randn(bs, flow.cond_channels, generator=g).to(device)
    opt = torch.optim.Adam(flow.parameters(), lr=tr["lr"], betas=(tr["beta1"], tr["beta2"]),
                           weight_decay=tr["weight_decay"], amsgrad=tr["amsgrad"])

    def step() -> None:
        eps, logdet = flow(z, emb)
        loss = nll_loss(eps, logdet)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    res = Result(name, "cinn", f"bs{bs} flow iteration", bs, "samples/s")
    return [measure(step, res, device, args.repeats, args.warmup)]


def bench_ae(name: str, cfgs: tuple, args, device: torch.device) -> list[Result]:
    from stage2_cINN.AE.trainer import AETrainer
    from training.run import start_run_from_config

    cfg_ae = cfgs[2]
    img = int(cfg_ae["AE"]["in_size"])
    bs = args.batch or (2 if device.type == "cpu" else int(cfg_ae["Training"]["bs"]))
    with tempfile.TemporaryDirectory() as tmp:
        data = _synthetic(cfgs[3], Path(tmp), img)
        cfg = _training_config(CONFIGS[name][2], AE_SCHEMA, data, Path(tmp), bs, [f"Training.compile={args.compile}"])
        gpu = (device.index or 0) if device.type == "cuda" else -1
        trainer = AETrainer(start_run_from_config(cfg, gpu, AETrainer.CONFIG_FILE))
        x = (torch.rand(bs, 3, img, img, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(device)
        epoch = int(cfg["Training"]["pretrain"])  # adversarial term and discriminator update on
        res = Result(name, "ae", f"bs{bs} full iteration", bs, "images/s")
        return [measure(lambda: trainer.train_step(x, epoch), res, device, args.repeats, args.warmup)]


def bench_fvd(name: str, cfgs: tuple, args, device: torch.device) -> list[Result]:
    from metrics.fvd import FVDFeatureExtractor
    from metrics.i3d import KineticsI3D

    img = int(cfgs[0]["Data"]["img_size"])
    torch.manual_seed(0)
    extractor = FVDFeatureExtractor(KineticsI3D(), "fvd", device)
    bs = args.batch or (2 if device.type == "cpu" else 16)
    videos = (torch.rand(bs, 16, 3, img, img) * 2 - 1).to(device)
    res = Result(name, "fvd", f"bs{bs} I3D@224", bs, "videos/s")
    return [measure(lambda: extractor(videos), res, device, args.repeats, args.warmup)]


def bench_data(name: str, cfgs: tuple, args, device: torch.device) -> list[Result]:
    from data.dataset import get_dataset
    from data.loader import make_loader

    cfg1 = cfgs[0]
    img, bs = int(cfg1["Data"]["img_size"]), args.batch or int(cfg1["Training"]["bs"])
    n_batches = 4
    with tempfile.TemporaryDirectory() as tmp:
        data = _synthetic(cfgs[3], Path(tmp), img, n_videos=bs * n_batches)
        cfg = _training_config(CONFIGS[name][0], STAGE1_SCHEMA, data, Path(tmp), bs, [])
        loader = make_loader(get_dataset(cfg, "train"), bs, shuffle=True, workers=args.workers, drop_last=True)

        def epoch() -> int:
            n = 0
            for i, batch in enumerate(loader):
                n += batch["seq"].shape[0]
                if i + 1 >= n_batches:
                    break
            return n

        clips = min(n_batches, len(loader)) * bs
        res = Result(name, "data", f"bs{bs} workers={args.workers}", clips, "clips/s")
        return [measure(epoch, res, torch.device("cpu"), args.repeats, args.warmup)]


def _count_flops(fn: Callable[[], object]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def stage1_flops(cfg1: dict, generator_cls: type, bs: int) -> tuple[float, float]:
    """FLOPs (2 per multiply-add, ``torch.utils.flop_counter``) of a decoder forward (sampling) and of the
    encoder+decoder forward/backward (``fwdbwd``) for a batch of ``bs``, counted on the meta device."""
    from stage1_VAE.modules.encoder import Encoder

    img = int(cfg1["Data"]["img_size"])
    with torch.device("meta"):
        dec = generator_cls.from_config(cfg1["Decoder"]).eval()
        enc = Encoder.from_config(cfg1["Encoder"])
        x0, z = torch.empty(bs, 3, img, img), torch.empty(bs, dec.z_dim)
        seq = torch.empty(bs, dec.video_length, 3, img, img)
        with torch.no_grad():
            sampling = _count_flops(lambda: dec(x0, z))
        dec.train()
        fwdbwd = _count_flops(lambda: dec(x0, enc(seq)[0]).sum().backward())
    return sampling, fwdbwd


def conv_throughput(device: torch.device, repeats: int = 3) -> float:
    """FLOP/s of the best of ``repeats`` runs of a large 3x3x3 convolution (BAIR ``g_3.conv_1``: 128 -> 128
    channels on 16x64x64, batch 2): what this device's default convolution kernel reaches."""
    x = torch.randn(2, 128, 16, 64, 64, device=device)
    w = torch.randn(128, 128, 3, 3, 3, device=device)
    flops = 2 * x.numel() * 128 * 27
    best = float("inf")
    with torch.no_grad():
        torch.nn.functional.conv3d(x, w, padding=1)
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            torch.nn.functional.conv3d(x, w, padding=1)
            _sync(device)
            best = min(best, time.perf_counter() - t0)
    return flops / best


def bench_roofline(name: str, cfgs: tuple, args, device: torch.device) -> list[Result]:
    """Prints the FLOPs of ``sampling`` and ``fwdbwd`` (batch 2; decoder of this code and of
    ``--baseline-rev``) and the time they need at the measured convolution throughput: a floor for any
    implementation that runs these float32 convolutions with this device's kernels."""
    from stage1_VAE.modules.decoder import Generator

    rate = conv_throughput(device)
    print(f"# {name} roofline: large 3x3x3 conv3d runs at {rate / 1e9:.0f} GFLOP/s on {device}")
    variants = {"current": Generator}
    if args.baseline_rev:
        variants[f"@{args.baseline_rev}"] = baseline_generator_class(args.baseline_rev)
    for variant, cls in variants.items():
        sampling, fwdbwd = stage1_flops(cfgs[0], cls, 2)
        print(f"# {name} roofline {variant}: sampling bs2 (decoder) {sampling / 1e9:.0f} GFLOP -> >= "
              f"{sampling / rate:.2f} s; encoder+decoder fwd/bwd bs2 {fwdbwd / 1e9:.0f} GFLOP -> >= "
              f"{fwdbwd / rate:.2f} s")
    return []


def against_original(args, what: list[str]) -> list:
    """``--against-original DIR``: :func:`benchmarks.against_original.run` for each ``--config``."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from against_original import ITEMS as AO_ITEMS
    from against_original import run

    items = [w for w in what if w in AO_ITEMS] or list(AO_ITEMS)
    rows = []
    for name in args.config:
        with tempfile.TemporaryDirectory() as tmp:
            rows += run(Path(args.against_original).resolve(), CONFIGS[name][:3], name, items, args.precision,
                        args.repeats, args.warmup, args.threads or torch.get_num_threads(), args.batch or 2,
                        Path(tmp), args.original_path)
    print(f"# load average after: {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


ITEMS = {"roofline": bench_roofline, "sampling": bench_sampling, "fwdbwd": bench_fwdbwd, "stage1": bench_stage1,
         "cinn": bench_cinn, "ae": bench_ae, "fvd": bench_fvd, "data": bench_data}


def main(argv: list[str] | None = None) -> list[Result]:
    p = command.parser(__doc__.split("\n\n")[0])
    p.add_argument("--config", nargs="+", default=["bair", "landscape"], choices=sorted(CONFIGS))
    p.add_argument("--what", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    command.add_gpu_argument(p)
    p.add_argument("--device", default=None, type=_device_gpu,
                   help="cpu | cuda | cuda:N, the same as -gpu -1 | 0 | N (default: utils.device.get_device)")
    p.add_argument("--repeats", type=command.positive_int, default=3)
    p.add_argument("--warmup", type=command.non_negative_int, default=1)
    p.add_argument("--batch", type=command.positive_int, default=None, help="batch of the training/fvd/data items")
    p.add_argument("--sample-bs", type=command.positive_int, nargs="+", default=[1, 8])
    p.add_argument("--workers", type=command.non_negative_int, default=2, help="data-loader workers of the data item")
    p.add_argument("--threads", type=command.positive_int, default=None, help="torch.set_num_threads")
    p.add_argument("--baseline-rev", default=None, help="git revision whose decoder is the 'before'")
    p.add_argument("--channels-last", action="store_true", help="channels-last-3D stage-1 networks")
    p.add_argument("--compile", action="store_true", help="torch.compile the benchmarked networks")
    p.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"], help="stage-1 training autocast")
    p.add_argument("--flush-denormal", action="store_true",
                   help="torch.set_flush_denormal(True): on the CPU, denormal floats (seen in the random-weight "
                        "cINN's iteration) make arithmetic ~20x slower; this flushes them to zero")
    p.add_argument("--no-malloc-tuning", action="store_true",
                   help="leave glibc malloc at its defaults everywhere (utils.allocator)")
    p.add_argument("--malloc-ab", action="store_true",
                   help="sampling/fwdbwd: also run the current code with glibc's default malloc, interleaved")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--against-original", default=None, metavar="DIR",
                   help="time a clone of the original repository against this code, alternately in two worker "
                        "processes (sampling, fwdbwd; see benchmarks/against_original.py); --repeats rounds")
    p.add_argument("--original-path", default=None, metavar="PATHS",
                   help="extra PYTHONPATH of the original's worker (e.g. a folder with omegaconf)")
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"],
                   help="precisions of --against-original (bf16/fp16: load_model(precision=...) / autocast)")
    args = p.parse_args(argv)
    from utils.allocator import tune_cpu_allocator
    from utils.device import get_device

    malloc_tuned = tune_cpu_allocator(not args.no_malloc_tuning)
    if args.no_malloc_tuning:
        os.environ["I2V_MALLOC_TUNING"] = "0"  # also for the worker processes
    device = get_device(args.device if args.device is not None else args.gpu)  # a missing GPU: the CPU, warned
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.flush_denormal and not torch.set_flush_denormal(True):
        print("# flush-denormal is not supported on this CPU")
    what = [w.strip() for w in args.what.split(",") if w.strip()]
    unknown = set(what) - set(ALL)
    if unknown:
        p.error(f"unknown --what {sorted(unknown)}; choose from {ALL}")
    print(f"# device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"flush-denormal {args.flush_denormal}, malloc tuning {malloc_tuned}, load average {os.getloadavg()}, "
          f"argv {' '.join(sys.argv[1:])}")
    if args.against_original:
        return against_original(args, what)
    results: list[Result] = []
    for name in args.config:
        s1, s2, ae, kind = CONFIGS[name]
        cfgs = (load_config(ROOT / s1, STAGE1_SCHEMA), load_config(ROOT / s2, CINN_SCHEMA),
                load_config(ROOT / ae, AE_SCHEMA), kind)
        for item in what:
            for r in ITEMS[item](name, cfgs, args, device):
                print(r.row(), flush=True)
                results.append(r)
            mine = {r.variant: r for r in results if r.config == name and r.item == item}
            for b in mine.values():
                r = mine.get(b.baseline_of or "")
                if r is not None:
                    print(f"# {name} {item} {r.variant}: speed-up x{b.median / r.median:.2f} over {b.variant} "
                          f"(wall medians), x{statistics.median(b.cpu) / statistics.median(r.cpu):.2f} (cpu)")
    print(f"# load average after: {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps([{**asdict(r), "mean": r.mean, "std": r.std, "median": r.median}
                                               for r in results], indent=1))
    return results


def _device_gpu(text: str) -> int:
    """``--device cpu | cuda | cuda:N`` as the -gpu id it means (-1, 0, N)."""
    if text == "cpu":
        return -1
    if text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
        return int(text[5:] or 0)
    raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text!r}")


if __name__ == "__main__":
    command.run(main)
