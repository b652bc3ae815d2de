"""One command that checks and measures the project on a GPU machine, with nothing but this repository and pip
wheels (random weights, synthetic data):

    python benchmarks/gpu_check.py                   # the GPU (under 8 minutes on one H200)
    python benchmarks/gpu_check.py --device cpu --smoke --out /tmp/check    # tiny sizes, seconds (CI)

Sections, in this order (each check is timed and recorded; a failing check does not stop the others):

1. ``tests``: ``pytest -m cuda`` (the CUDA-only branches: fp16 + GradScaler, nccl, the lazy NaN flag, bf16/fp16
   decoder, TorchScript I3D, pinned loaders, resume onto the GPU, ...);
2. ``training``: one iteration of the stage-1, AE and cINN trainers (real trainer code, BAIR size, config batch)
   with ``Training.amp`` bf16 and fp16: s/step, peak memory, finite losses, and the stage-1 step's TFLOP/s;
3. ``sampling``: ``Pipeline.generate`` (cINN reverse + decoder, 16 frames) at BAIR (64 px) and landscape
   (128 px) size in fp32, bf16 and bf16 + channels-last-3D: videos/s, peak memory, achieved TFLOP/s
   (``torch.utils.flop_counter``) and its share of the GPU's dense bf16 peak, bf16's PSNR against fp32;
4. ``fvd``: FVD features/s (Kinetics I3D, 224 px, TF1 resize);
5. sampling with bf16 + ``torch.compile`` (last: compiling takes longest; it starts only with 150 s left).

Results go to ``--out`` (default ``benchmarks/results/``) as ``gpu_check_<device>.json`` and ``.md``, rewritten
after every check, so an interrupted run keeps what it measured. ``--budget`` seconds (default 420: 60 s under
the 8 minutes for a compile that overruns) bound the whole run: checks that would start later are
recorded as skipped. Exit status 1 if a check failed.

``--smoke``: the tiny configs, batch 1-2, one call per check, ``torch.compile(backend="eager")`` (dynamo without
code generation), 32 px FVD inputs, and ``pytest -m cuda tests/test_cuda.py`` only; it keeps this script from
rotting in CI, its numbers mean nothing.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench  # noqa: E402
import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils.flop_counter import flop_registry  # noqa: E402

from stage1_VAE.config import STAGE1_SCHEMA  # noqa: E402
from stage2_cINN.AE.config import AE_SCHEMA  # noqa: E402
from stage2_cINN.config import CINN_SCHEMA  # noqa: E402
from utils.config import load_config  # noqa: E402

# Dense (no structured sparsity) bf16 Tensor Core peaks in TFLOP/s, from NVIDIA's product datasheets (H100/H200:
# "1,979 teraFLOPS with sparsity" -> 989; H200/H100 NVL 1,671 -> 835; H100 PCIe 1,513 -> 756; A100 624 -> 312;
# L40S 362; L4 242 -> 121; RTX 4090 (Ada whitepaper, FP32 accumulate) 165). Matched in this order against
# torch.cuda.get_device_name().
PEAK_BF16_TFLOPS = (("H200 NVL", 835.0), ("H200", 989.0), ("H100 NVL", 835.0), ("H100 PCIe", 756.0),
                    ("H100", 989.0), ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0), ("RTX 4090", 165.0))
TINY = ("stage1_VAE/configs/tiny_config.yaml", "stage2_cINN/configs/tiny_config.yaml",
        "stage2_cINN/AE/configs/tiny_config.yaml", "bair")
SECTIONS = ("tests", "sampling", "training", "fvd")


def peak_bf16_tflops(device: torch.device) -> float | None:
    """The dense bf16 peak of ``device`` (None: the CPU, or a GPU missing from :data:`PEAK_BF16_TFLOPS`)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key in name), None)


# ------------------------------------------------------------------------------------------ the report
@dataclass
class Check:
    """One check: its section and name, ``ok`` / ``failed`` / ``skipped``, seconds, measurements, error."""

    section: str
    name: str
    status: str = "ok"
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""


class Report:
    """The checks of a run, written as JSON and Markdown after each one."""

    def __init__(self, device: torch.device, args: argparse.Namespace) -> None:
        self.device, self.args, self.start = device, args, time.monotonic()
        self.checks: list[Check] = []
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
        self.info = {"device": str(device), "name": name, "torch": torch.__version__, "cuda": torch.version.cuda,
                     "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
                     "peak_bf16_tflops": peak_bf16_tflops(device), "smoke": args.smoke, "budget_s": args.budget,
                     "argv": sys.argv[1:], "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        if device.type == "cuda":
            props = torch.cuda.get_device_properties(device)
            self.info.update(capability=f"{props.major}.{props.minor}", memory_gib=round(props.total_memory / 2**30, 1))
        tag = re.sub(r"[^A-Za-z0-9]+", "_", name if device.type == "cuda" else "cpu").strip("_")
        self.stem = Path(args.out) / f"gpu_check_{tag}{'_smoke' if args.smoke else ''}"

    def remaining(self) -> float:
        return self.args.budget - (time.monotonic() - self.start)

    def run(self, section: str, name: str, fn: Callable[[], dict], needs: float = 0.0) -> Check:
        """Run one check, skipped when less than ``needs`` seconds of the budget are left (it cannot be cut
        short); record its result and rewrite the files."""
        check = Check(section, name)
        if self.remaining() <= needs:
            check.status, check.error = "skipped", f"time budget: {max(self.remaining(), 0):.0f} s left"
        else:
            t0 = time.monotonic()
            try:
                check.metrics = fn() or {}
                check.status = check.metrics.pop("status", "ok")
                check.error = check.metrics.pop("error", "")
            except Exception as exc:  # noqa: BLE001 - recorded; the other checks go on
                check.status = "failed"
                check.error = f"{type(exc).__name__}: {exc}\n" + "".join(traceback.format_exc().splitlines(True)[-12:])
            check.seconds = round(time.monotonic() - t0, 2)
        self.checks.append(check)
        print(f"[{check.status:7s}] {section}/{name} ({check.seconds:.1f} s) {_brief(check.metrics)}"
              + (f"\n{check.error}" if check.error else ""), flush=True)
        self.write()
        return check

    def write(self) -> None:
        self.stem.parent.mkdir(parents=True, exist_ok=True)
        payload = {"info": {**self.info, "elapsed_s": round(time.monotonic() - self.start, 1)},
                   "checks": [asdict(c) for c in self.checks]}
        self.stem.with_suffix(".json").write_text(json.dumps(payload, indent=1, default=str) + "\n")
        self.stem.with_suffix(".md").write_text(markdown(payload))


def _brief(metrics: dict) -> str:
    keys = ("videos_per_s", "s_per_step", "tflops", "of_bf16_peak", "peak_mib", "passed", "failed", "psnr_vs_fp32")
    return ", ".join(f"{k}={metrics[k]}" for k in keys if k in metrics)


def markdown(payload: dict) -> str:
    """The report as Markdown: the device, then one table row per check."""
    info = payload["info"]
    lines = [f"# gpu_check: {info['name']} ({info['device']})", "",
             f"torch {info['torch']}, CUDA {info['cuda']}, cuDNN {info['cudnn']}, dense bf16 peak "
             f"{info['peak_bf16_tflops']} TFLOP/s, smoke {info['smoke']}, started {info['started']}, "
             f"{info['elapsed_s']} s", "",
             "| section | check | status | s | videos/s | s/step | TFLOP/s | of bf16 peak | peak MiB | notes |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for c in payload["checks"]:
        m = c["metrics"]
        notes = {k: v for k, v in m.items() if k not in ("videos_per_s", "s_per_step", "tflops", "of_bf16_peak",
                                                         "peak_mib")}
        note = ", ".join(f"{k}={v}" for k, v in notes.items())
        if c["error"]:
            note = (note + "; " if note else "") + c["error"].splitlines()[0][:160]
        lines.append(f"| {c['section']} | {c['name']} | {c['status']} | {c['seconds']} | {m.get('videos_per_s', '')} "
                     f"| {m.get('s_per_step', '')} | {m.get('tflops', '')} | {m.get('of_bf16_peak', '')} "
                     f"| {m.get('peak_mib', '')} | {note.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ measuring
def timed(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int,
          count_flops: bool = False) -> tuple[dict, object]:
    """(median seconds per call, seconds of the first call (compilation; FLOPs counted in it with
    ``count_flops``), peak memory (MiB); the first call's output) of ``fn``: the first call, ``warmup - 1`` more
    untimed ones, then ``repeats`` timed ones (none: the first call is the measurement)."""
    counter = _FlopCounter() if count_flops else contextlib.nullcontext()
    t0 = time.perf_counter()
    with counter:
        first_out = fn()
    bench._sync(device)
    first = time.perf_counter() - t0
    res = bench.Result("", "", "", 1, "")
    if repeats:
        bench.measure(fn, res, device, repeats, max(0, warmup - 1))
    else:  # --smoke: the first call is the only one
        res.wall, res.peak_mib = [first], float("nan")
    out = {"median_s": res.median, "first_call_s": round(first, 3),
           "peak_mib": None if math.isnan(res.peak_mib) else round(res.peak_mib, 1)}
    if count_flops:
        out["flops"] = float(counter.total)
    return out, first_out


class _FlopCounter(TorchDispatchMode):
    """FLOPs of the aten ops run under it, by ``torch.utils.flop_counter``'s formulas (2 per multiply-add;
    backward ops included). Unlike ``FlopCounterMode`` it tracks no modules, so ``autograd.grad`` inside a
    training step (the R1 penalty) works."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        formula = flop_registry.get(func._overloadpacket)
        if formula is None:  # composite ops reach the mode whole under inference_mode (aten.linear, aten.conv3d)
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        out = func(*args, **kwargs)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def throughput(flops: float, seconds: float, peak: float | None) -> dict:
    tflops = flops / seconds / 1e12
    out = {"tflops": float(f"{tflops:.4g}")}
    if peak:
        out["of_bf16_peak"] = f"{100 * tflops / peak:.1f}%"
    return out


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of videos in [-1, 1] (peak-to-peak 2)."""
    mse = float((a.float() - b.float()).pow(2).mean())
    return round(10 * math.log10(4 / mse), 1) if mse > 0 else float("inf")


# ------------------------------------------------------------------------------------------ sections
def run_tests(report: Report) -> dict:
    """``pytest -m cuda`` in a subprocess; on a GPU every selected test must run (none skipped)."""
    targets = ["tests/test_cuda.py"] if report.args.smoke else ["tests"]
    env = {**os.environ, "WANDB_MODE": "disabled",
           "I2V_FIXTURES": os.environ.get("I2V_FIXTURES", str(ROOT.parent / "shared" / "fixtures"))}
    timeout = max(30.0, min(300.0, report.remaining() - 60))
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", *targets]
    try:
        res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return {"status": "failed", "error": f"pytest -m cuda timed out after {timeout:.0f} s\n"
                                             + (exc.stdout or b"")[-2000:].decode(errors="replace")}
    tail = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", tail)}
    out = {"passed": counts.get("passed", 0), "failed": counts.get("failed", 0) + counts.get("error", 0)
           + counts.get("errors", 0), "skipped": counts.get("skipped", 0), "summary": tail}
    if res.returncode not in (0, 5) or out["failed"]:
        out.update(status="failed", error=res.stdout[-4000:] + res.stderr[-2000:])
    elif report.device.type == "cuda" and (out["skipped"] or not out["passed"]):
        out.update(status="failed", error="cuda tests were skipped on a GPU machine:\n" + res.stdout[-3000:])
    return out


def _configs(name: str) -> tuple:
    s1, s2, ae, kind = TINY if name == "tiny" else bench.CONFIGS[name]
    return (load_config(ROOT / s1, STAGE1_SCHEMA), load_config(ROOT / s2, CINN_SCHEMA),
            load_config(ROOT / ae, AE_SCHEMA), kind)


SAMPLING_VARIANTS = {"fp32": {"precision": "fp32"}, "bf16": {"precision": "bf16"},
                     "bf16+channels_last": {"precision": "bf16", "channels_last": True},
                     "bf16+compile": {"precision": "bf16", "compile": True}}
COMPILE_NEEDS_S = 150.0  # a compile check starts only with this much budget left (inductor: a minute or two)


def sampling_checks(report: Report, name: str, bs: int, variants: tuple[str, ...]) -> None:
    """Sampling of config ``name`` with random weights in ``variants`` (of :data:`SAMPLING_VARIANTS`; PSNR and
    TFLOP/s need fp32 first, whose output and FLOPs are kept per config)."""
    from stage2_cINN.modules import build_cinn
    from stage2_cINN.pipeline import Pipeline
    from utils.compile import maybe_compile

    args, device = report.args, report.device
    cfg1, cfg2 = _configs(name)[:2]
    img = int(cfg1["Data"]["img_size"])
    g = torch.Generator().manual_seed(0)

    def pipeline(precision: str, channels_last: bool = False, compile: bool = False) -> Pipeline:
        nets = bench.stage1_nets(cfg1, device, channels_last)
        torch.manual_seed(1)
        flow = build_cinn(cfg2, int(cfg1["Decoder"]["z_dim"])).to(device).eval()
        pipe = Pipeline(flow, nets["decoder"].eval(), nets["encoder"].eval(), None, cfg2, cfg1, device,
                        precision=precision)
        if compile:
            pipe.decoder = maybe_compile(pipe.decoder, True, backend="eager" if args.smoke else "inductor")
        return pipe

    x0 = (torch.rand(bs, 3, img, img, generator=g) * 2 - 1).to(device)
    eps = torch.randn(bs, int(cfg1["Decoder"]["z_dim"]), generator=g).to(device)
    state = _SAMPLING_STATE.setdefault(name, {})
    for variant in variants:
        kwargs = SAMPLING_VARIANTS[variant]
        def check(kwargs=kwargs, variant=variant) -> dict:
            pipe = pipeline(**kwargs)
            emb = torch.randn(bs, pipe.flow.cond_channels, generator=torch.Generator().manual_seed(2)).to(device)
            run = lambda: pipe.generate(x0, emb, eps)  # noqa: E731
            out, video = timed(run, device, args.repeats, args.warmup, count_flops=variant == "fp32")
            out.update(bs=bs, frames=int(video.shape[1]))
            if variant == "fp32":
                state["video"], state["flops"] = video.float().cpu(), out.pop("flops")
                out["gflop_per_call"] = round(state["flops"] / 1e9, 2)
            elif "video" in state:
                out["psnr_vs_fp32"] = psnr(video.cpu(), state["video"])
            out["videos_per_s"] = round(bs / out["median_s"], 3)
            if "flops" in state:
                out.update(throughput(state["flops"], out["median_s"], report.info["peak_bf16_tflops"]))
            return out

        report.run("sampling", f"{name} {img}px {variant}", check,
                   needs=COMPILE_NEEDS_S if kwargs.get("compile") and not args.smoke else 0.0)


_SAMPLING_STATE: dict[str, dict[str, Any]] = {}  # per config: the fp32 video and FLOPs


def _random_vgg(tmp: Path) -> str:
    """A random VGG16 ``features`` file in the released key layout (the trainers' LPIPS reads it quickly)."""
    import torchvision

    path = tmp / "vgg16-random.pth"
    if not path.is_file():
        vgg = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
        torch.save({f"features.{k}": v for k, v in vgg.state_dict().items()}, path)
    return str(path)


def _frozen_models(tmp: Path, cfg1: dict, cfg_ae: dict) -> tuple[Path, Path]:
    """Random-weight stage-1 and AE model folders of the config sizes (what the cINN trainer loads)."""
    from stage1_VAE.modules import build_stage1
    from stage2_cINN.AE.modules import build_ae_encoder
    from utils.checkpoint import atomic_save
    from utils.config import save_config

    s1, ae = tmp / "frozen" / "stage1", tmp / "frozen" / "stage2_AE"
    if not (ae / "Encoder_stage2.pth").is_file():
        nets = build_stage1(cfg1)
        save_config(cfg1, s1 / "config_stage1.yaml")
        atomic_save({"state_dict": nets["decoder"].state_dict()}, s1 / "best_PFVD_GEN.pth")
        atomic_save({"state_dict": nets["encoder"].state_dict()}, s1 / "best_PFVD_ENC.pth")
        save_config(cfg_ae, ae / "config_stage2_AE.yaml")
        atomic_save({"state_dict": build_ae_encoder(cfg_ae["AE"]).state_dict()}, ae / "Encoder_stage2.pth")
    return s1, ae


def training_checks(report: Report, name: str, tmp: Path) -> None:
    """One stage-1, AE and cINN iteration of the real trainers with Training.amp bf16 and fp16 (CUDA only)."""
    from stage1_VAE.trainer import Stage1Trainer
    from stage2_cINN.AE.trainer import AETrainer
    from stage2_cINN.trainer import CINNTrainer
    from training.run import start_run_from_config

    args, device = report.args, report.device
    cfg1, cfg2, cfg_ae, kind = _configs(name)
    gpu = (device.index or 0) if device.type == "cuda" else -1
    small = args.smoke or device.type != "cuda"
    datasets: dict[tuple[int, int], dict] = {}
    paths = {"stage1": bench.CONFIGS.get(name, TINY)[0] if name != "tiny" else TINY[0],
             "cinn": TINY[1] if name == "tiny" else bench.CONFIGS[name][1],
             "ae": TINY[2] if name == "tiny" else bench.CONFIGS[name][2]}

    def trainer(cls, path: str, schema: dict, img: int, bs: int, amp: str, extra: list[str]):
        n = max(2, bs)
        if (img, n) not in datasets:  # written once per size, shared by the amp modes
            datasets[img, n] = bench._synthetic(kind, tmp / f"data_{img}_{n}", img, n_videos=n)
        data = datasets[img, n]
        cfg = bench._training_config(path, schema, data, tmp, bs, [f"Training.amp={amp}", *extra])
        cfg["Training"]["savename"] = f"{cls.__name__}_{amp}"
        return cls(start_run_from_config(cfg, gpu, cls.CONFIG_FILE))

    def clips(bs: int, img: int, frames: int) -> torch.Tensor:
        return (torch.rand(bs, frames, 3, img, img, generator=torch.Generator().manual_seed(0)) * 2 - 1)

    def finite(logs: dict) -> bool:
        return all(bool(torch.isfinite(torch.as_tensor(v)).all()) for v in logs.values())

    for amp in ("bf16", "fp16"):
        skip = {"status": "skipped", "error": "fp16 needs CUDA"} if amp == "fp16" and device.type != "cuda" else None

        def stage1(amp=amp, skip=skip) -> dict:
            if skip:
                return dict(skip)
            img, bs = int(cfg1["Data"]["img_size"]), 1 if small else int(cfg1["Training"]["bs"])
            tr = trainer(Stage1Trainer, paths["stage1"], STAGE1_SCHEMA, img, bs, amp,
                         ["Training.FVD=none", f"Training.lpips_weights={_random_vgg(tmp)}"])
            seq, epoch = clips(bs, img, int(cfg1["Data"]["sequence_length"])).to(device), int(tr.tr["pretrain"])
            step = lambda: tr.train_step(seq, epoch)  # noqa: E731
            out, logs = timed(step, device, args.repeats, args.warmup, count_flops=True)
            flops = out.pop("flops")
            out.update(bs=bs, finite=finite(logs), gflop_per_step=round(flops / 1e9, 2))
            out.update(s_per_step=round(out["median_s"], 4), **throughput(flops, out["median_s"],
                                                                         report.info["peak_bf16_tflops"]))
            return out

        def ae(amp=amp, skip=skip) -> dict:
            if skip:
                return dict(skip)
            img, bs = int(cfg_ae["AE"]["in_size"]), 1 if small else int(cfg_ae["Training"]["bs"])
            tr = trainer(AETrainer, paths["ae"], AE_SCHEMA, img, bs, amp,
                         [f"Training.lpips_weights={_random_vgg(tmp)}"])
            x, epoch = clips(bs, img, 1)[:, 0].to(device), int(tr.tr["pretrain"])
            step = lambda: tr.train_step(x, epoch)  # noqa: E731
            out, logs = timed(step, device, args.repeats, args.warmup)
            return {**out, "bs": bs, "finite": finite(logs), "s_per_step": round(out["median_s"], 4)}

        def cinn(amp=amp, skip=skip) -> dict:
            if skip:
                return dict(skip)
            s1, ae_dir = _frozen_models(tmp, cfg1, cfg_ae)
            img, bs = int(cfg1["Data"]["img_size"]), 2 if small else int(cfg2["Training"]["bs"])
            tr = trainer(CINNTrainer, paths["cinn"], CINN_SCHEMA, img, bs, amp, [
                f"First_stage_model.model_path={s1.parent}", f"First_stage_model.model_name={s1.name}",
                f"Conditioning_Model.model_path={ae_dir.parent}", f"Conditioning_Model.model_name={ae_dir.name}",
                "Training.fvd_samples=False"])
            batch = {"seq": clips(bs, img, int(cfg1["Data"]["sequence_length"]))}
            tr.model.train()
            step = lambda: tr.train_step(batch)  # noqa: E731
            out, logs = timed(step, device, args.repeats, args.warmup)
            return {**out, "bs": bs, "finite": logs is not None and finite(logs),
                    "s_per_step": round(out["median_s"], 4)}

        for part, fn in (("stage1", stage1), ("ae", ae), ("cinn", cinn)):
            check = report.run("training", f"{name} {part} amp={amp}", fn)
            if check.status == "ok" and not check.metrics.get("finite"):
                check.status, check.error = "failed", "non-finite losses"
                report.write()


def fvd_check(report: Report) -> dict:
    """FVD features/s: random Kinetics I3D, the FVD protocol (TF1 resize to 224 px); smoke: 32 px, no resize."""
    from metrics.fvd import FVDFeatureExtractor
    from metrics.i3d import KineticsI3D

    args, device = report.args, report.device
    torch.manual_seed(0)
    model = KineticsI3D()
    if args.smoke:
        model.avg_pool = torch.nn.AdaptiveAvgPool3d(1)
    extractor = FVDFeatureExtractor(model, "fvd", device, resize=not args.smoke)
    bs, img = (2, 32) if args.smoke else (16, 64)
    videos = (torch.rand(bs, 16, 3, img, img) * 2 - 1).to(device)
    out = timed(lambda: extractor(videos), device, args.repeats, args.warmup)[0]
    out.update(bs=bs, input_px=img, network_px=img if args.smoke else 224)
    out["videos_per_s"] = round(bs / out["median_s"], 3)
    return out


# ------------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None, type=bench._device_gpu,
                   help="cpu | cuda | cuda:N (default: the first GPU, else the CPU)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: a CI check that the script runs")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder of the JSON/Markdown")
    p.add_argument("--budget", type=float, default=420.0, help="seconds for the whole run (default 420)")
    p.add_argument("--skip", default="", help=f"comma-separated sections to leave out: {','.join(SECTIONS)}")
    p.add_argument("--configs", nargs="+", default=None, choices=["bair", "landscape", "tiny"],
                   help="sampling configs (default bair landscape; --smoke: tiny)")
    p.add_argument("--sample-bs", type=int, default=None, help="sampling batch (default 8; --smoke: 1)")
    p.add_argument("--variants", default=",".join(SAMPLING_VARIANTS),
                   help=f"comma-separated sampling variants (default all: {','.join(SAMPLING_VARIANTS)})")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed repeats (default 5; --smoke: 0, the first call is timed)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 2; --smoke: 1)")
    args = p.parse_args(argv)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if set(args.variants) - set(SAMPLING_VARIANTS):
        p.error(f"--variants: unknown {sorted(set(args.variants) - set(SAMPLING_VARIANTS))}; choose from "
                f"{','.join(SAMPLING_VARIANTS)}")
    if args.skip - set(SECTIONS):
        p.error(f"--skip: unknown sections {sorted(args.skip - set(SECTIONS))}; choose from {SECTIONS}")
    args.configs = args.configs or (["tiny"] if args.smoke else ["bair", "landscape"])
    args.sample_bs = args.sample_bs or (1 if args.smoke else 8)
    args.repeats = args.repeats if args.repeats is not None else (0 if args.smoke else 5)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.smoke else 2)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from utils.allocator import tune_cpu_allocator
    from utils.device import get_device

    tune_cpu_allocator(True)
    os.environ.setdefault("WANDB_MODE", "disabled")
    device = get_device(args.device)
    if device.type == "cpu" and not args.smoke:
        print("# no GPU: running on the CPU (the full sizes take long there; --smoke is the CPU check)")
    report = Report(device, args)
    print(f"# gpu_check on {report.info['name']} ({device}), torch {torch.__version__}, budget {args.budget:.0f} s, "
          f"writing {report.stem}.json/.md", flush=True)
    if "tests" not in args.skip:
        report.run("tests", "pytest -m cuda", lambda: run_tests(report))
    with tempfile.TemporaryDirectory() as tmp:
        if "training" not in args.skip:
            training_checks(report, "tiny" if args.smoke else "bair", Path(tmp))
    eager = tuple(v for v in args.variants if v != "bf16+compile")
    if "sampling" not in args.skip:
        for name in args.configs:
            sampling_checks(report, name, args.sample_bs, eager)
    if "fvd" not in args.skip:
        report.run("fvd", "features", lambda: fvd_check(report))
    if "sampling" not in args.skip and "bf16+compile" in args.variants:  # last: compiling takes the longest
        for name in args.configs:
            sampling_checks(report, name, args.sample_bs, ("bf16+compile",))
    failed = [c for c in report.checks if c.status == "failed"]
    print(f"# {len(report.checks)} checks, {len(failed)} failed, {time.monotonic() - report.start:.0f} s; "
          f"{report.stem}.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
