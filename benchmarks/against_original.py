"""This code against the original, side by side (``python benchmarks/bench.py --against-original DIR``).

``DIR`` is a clone of the original repository (CompVis/image2video-synthesis-using-cINNs; it needs
``omegaconf``, put on the path with ``--original-path``). One persistent worker process per codebase
(same thread count) is started; the main process calls them alternately, one timed run per call, in the
order original, ours, ours, original, ... so that a drifting machine speed hits both alike (a fresh pair of
workers for each item and precision: a BAIR model and its heap take GBs). Both load the
same random weights, written once in the released folder layout (``config_stage2.yaml`` + ``cINN.pth``,
``stage1/``, ``stage2_AE/``; the cINN's ActNorm initialised on random latents, as training would).

Items:

* ``sampling``: the user's path. Ours: the allocator tuning and ``get_device`` -> ``load_model(dir, device,
  precision)`` -> ``pipe.sample(x0, 16)``. The original: ``get_model.Model(dir, 16)`` -> ``model(x0)`` under
  ``torch.no_grad`` (``generate_samples.py``), its ``cuda()`` calls patched to no-ops on the CPU; its bf16 is
  ``torch.autocast`` around that call (the original has no precision option).
* ``fwdbwd``: stage-1 encoder + decoder forward, L1 + 1e-5 KL, backward, batch ``--batch`` (default 2);
  bf16 is ``torch.autocast`` around both forwards in both codebases (ours: ``utils.precision.autocast``).

Timed calls exclude loading (sampling) and building (fwdbwd); each setup is warmed up first. Before
timing, the fp32 samples of both codebases for one fixed residual are compared (max abs difference).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
ITEMS = ("sampling", "fwdbwd")


# ------------------------------------------------------------------------------------------ the model
def write_released_model(root: Path, cfg_paths: tuple[str, str, str], seed: int = 0) -> Path:
    """Random weights of the given stage-1 / cINN / AE configs in the released layout under ``root``
    (paths in ``config_stage2.yaml`` absolute, with the trailing slash the original concatenates);
    returns the stage-2 folder."""
    import torch
    import yaml

    from stage1_VAE.config import STAGE1_SCHEMA
    from stage1_VAE.modules import build_stage1
    from stage2_cINN.AE.config import AE_SCHEMA
    from stage2_cINN.AE.modules import build_ae_encoder
    from stage2_cINN.config import CINN_SCHEMA
    from stage2_cINN.modules import build_cinn
    from utils.checkpoint import atomic_save
    from utils.config import load_config, strip_private

    def dump(cfg: dict, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(strip_private(cfg), sort_keys=False))

    torch.manual_seed(seed)
    cfg1, cfg2, cfg_ae = (load_config(ROOT / p, s) for p, s in zip(cfg_paths, (STAGE1_SCHEMA, CINN_SCHEMA, AE_SCHEMA)))
    s1, ae, s2 = root / "stage1", root / "stage2_AE", root / "stage2"
    nets = build_stage1(cfg1)
    dump(cfg1, s1 / "config_stage1.yaml")
    atomic_save({"epoch": 0, "state_dict": nets["decoder"].state_dict()}, s1 / "best_PFVD_GEN.pth")
    atomic_save({"epoch": 0, "state_dict": nets["encoder"].state_dict()}, s1 / "best_PFVD_ENC.pth.tar")
    dump(cfg_ae, ae / "config_stage2_AE.yaml")
    atomic_save({"state_dict": build_ae_encoder(cfg_ae["AE"]).state_dict()}, ae / "Encoder_stage2.pth")
    cfg2["First_stage_model"].update(model_path=f"{root.resolve()}/", model_name="stage1",
                                     checkpoint_decoder="best_PFVD_GEN", checkpoint_encoder="best_PFVD_ENC")
    cfg2["Conditioning_Model"].update(model_path=f"{root.resolve()}/", model_name="stage2_AE",
                                      checkpoint_name="Encoder_stage2")
    z_dim = int(cfg1["Decoder"]["z_dim"])
    flow = build_cinn(cfg2, z_dim).train()
    with torch.no_grad():  # data-dependent ActNorm initialisation, as the first training batch does
        flow(torch.randn(256, z_dim), torch.randn(256, flow.cond_channels))
    dump(cfg2, s2 / "config_stage2.yaml")
    atomic_save({"state_dict": flow.eval().state_dict()}, s2 / "cINN.pth")
    return s2


# ------------------------------------------------------------------------------------------ workers
def _inputs(img: int, bs: int, z_dim: int):
    import torch

    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(bs, 3, img, img, generator=g) * 2 - 1
    seq = torch.rand(bs, 17, 3, img, img, generator=g) * 2 - 1
    return x0, seq, torch.randn(bs, z_dim, generator=g)


def _fwdbwd_step(enc, dec, seq, amp_ctx: Callable) -> Callable[[], None]:
    def run() -> None:
        with amp_ctx():
            z, mu, logvar = enc(seq[:, 1:])
            x_hat = dec(seq[:, 0], z)
        mu, logvar = mu.float(), logvar.float()
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1).mean()
        ((x_hat.float() - seq[:, 1:]).abs().mean() + 1e-5 * kl).backward()
        for m in (enc, dec):
            m.zero_grad(set_to_none=True)
    return run


class Ours:
    """This repository's code on its user path."""

    def __init__(self, model_dir: Path, bs: int) -> None:
        from utils.allocator import tune_cpu_allocator
        from utils.device import get_device

        tune_cpu_allocator()  # as every entry point starts (utils.command.run)
        self.device = get_device(-1)
        self.model_dir, self.bs = model_dir, bs

    def setup(self, item: str, precision: str) -> tuple[Callable[[], object], Callable | None]:
        from stage2_cINN.pipeline import load_model
        from utils.precision import autocast

        if item == "sampling":
            pipe = load_model(self.model_dir, self.device, precision)
            x0, _, res = _inputs(pipe.img_size, self.bs, pipe.z_dim)
            return (lambda: pipe.sample(x0, 16)), (lambda: pipe.sample(x0, 16, residual=res))
        from stage1_VAE.config import STAGE1_SCHEMA
        from stage1_VAE.modules import build_stage1
        from utils.checkpoint import load_checkpoint, state_dict_of
        from utils.config import load_config

        cfg1 = load_config(self.model_dir.parent / "stage1" / "config_stage1.yaml", STAGE1_SCHEMA)
        nets = build_stage1(cfg1)
        enc, dec = nets["encoder"].train(), nets["decoder"].train()
        for net, name in ((enc, "best_PFVD_ENC.pth.tar"), (dec, "best_PFVD_GEN.pth")):
            net.load_state_dict(state_dict_of(load_checkpoint(self.model_dir.parent / "stage1" / name)))
        _, seq, _ = _inputs(int(cfg1["Data"]["img_size"]), self.bs, dec.z_dim)
        amp = "none" if precision == "fp32" else precision
        return _fwdbwd_step(enc, dec, seq, lambda: autocast(self.device, amp)), None


class Original:
    """The original code (a clone at ``root``) on its own path, its ``cuda()`` calls no-ops without CUDA."""

    def __init__(self, root: Path, model_dir: Path, bs: int) -> None:
        import torch

        sys.path.insert(0, str(root))
        if not torch.cuda.is_available():
            torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
            torch.nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
        self.model_dir, self.bs = model_dir, bs

    @staticmethod
    def _amp(precision: str):
        import contextlib

        import torch

        if precision == "fp32":
            return contextlib.nullcontext()
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        return torch.autocast("cuda" if torch.cuda.is_available() else "cpu", dtype=dtype)

    def setup(self, item: str, precision: str) -> tuple[Callable[[], object], Callable | None]:
        import torch
        from omegaconf import OmegaConf

        if item == "sampling":
            from get_model import Model

            model = Model(f"{self.model_dir}/", 16)
            img = int(model.config.Data["img_size"])
            x0, _, res = _inputs(img, self.bs, model.z_dim)

            @torch.no_grad()
            def sample() -> object:
                with self._amp(precision):
                    return model(x0)

            @torch.no_grad()
            def fixed() -> object:  # Model.forward with a given residual
                z = model.flow(res, [x0, None], reverse=True).view(x0.size(0), -1)
                return model.decoder(x0, z)
            return sample, fixed
        from stage1_VAE.modules.decoder import Generator
        from stage1_VAE.modules.resnet3D import Encoder

        stage1 = self.model_dir.parent / "stage1"
        config = OmegaConf.load(stage1 / "config_stage1.yaml")
        enc, dec = Encoder(dic=config.Encoder).train(), Generator(config.Decoder).train()
        enc.load_state_dict(torch.load(stage1 / "best_PFVD_ENC.pth.tar")["state_dict"])
        dec.load_state_dict(torch.load(stage1 / "best_PFVD_GEN.pth")["state_dict"])
        _, seq, _ = _inputs(int(config.Data["img_size"]), self.bs, int(config.Decoder["z_dim"]))
        return _fwdbwd_step(enc, dec, seq, lambda: self._amp(precision)), None


def worker_main(argv: list[str]) -> None:
    """Serve JSON requests on stdin: ``{"item", "precision", "n"}`` -> ``{"wall": [...], "cpu": [...]}``;
    ``{"check": path}`` saves the fp32 sample of the fixed residual."""
    import argparse

    import torch

    p = argparse.ArgumentParser()
    p.add_argument("--codebase", choices=("ours", "original"), required=True)
    p.add_argument("--original", default=None)
    p.add_argument("--model", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--bs", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    a = p.parse_args(argv)
    if a.codebase == "ours":  # never both: the two codebases have packages of the same names
        sys.path.insert(0, str(ROOT))
    torch.set_num_threads(a.threads)
    model = Path(a.model)
    code = Ours(model, a.bs) if a.codebase == "ours" else Original(Path(a.original), model, a.bs)
    setups: dict[tuple[str, str], tuple] = {}

    def get(key: tuple[str, str]) -> tuple:
        if key not in setups:
            setups[key] = code.setup(*key)
            for _ in range(a.warmup):
                setups[key][0]()
        return setups[key]

    out = sys.stdout
    sys.stdout = sys.stderr  # the libraries' prints must not mix with the replies
    for line in sys.stdin:
        req = json.loads(line)
        if "check" in req:
            torch.save(get(("sampling", "fp32"))[1]().float(), req["check"])
            reply: dict = {"ok": True}
        else:
            fn = get((req["item"], req["precision"]))[0]
            reply = {"wall": [], "cpu": []}
            for _ in range(int(req.get("n", 1))):
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                reply["wall"].append(time.perf_counter() - t0)
                reply["cpu"].append(time.process_time() - c0)
        out.write(json.dumps(reply) + "\n")
        out.flush()


class Worker:
    """A worker process of one codebase, answering one request at a time."""

    def __init__(self, codebase: str, model: Path, threads: int, bs: int, warmup: int,
                 original: Path | None = None, extra_path: str | None = None) -> None:
        env = dict(os.environ)
        if extra_path:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra_path, env.get("PYTHONPATH")]))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--codebase", codebase,
               "--model", str(model), "--threads", str(threads), "--bs", str(bs), "--warmup", str(warmup)]
        if original is not None:
            cmd += ["--original", str(original)]
        self.name = codebase
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                     cwd=str(original or ROOT))

    def ask(self, **req) -> dict:
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            line = ""
        else:
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} worker died (rc {self.proc.wait()}); see its output above")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def run(original: Path, cfg_paths: tuple[str, str, str], name: str, items: list[str], precisions: list[str],
        rounds: int, warmup: int, threads: int, bs: int, tmp: Path, original_path: str | None) -> list[dict]:
    """Alternate the two workers over ``items`` x ``precisions``; print and return the medians and ratios."""
    import torch

    model = write_released_model(tmp, cfg_paths)
    rows, med = [], {}

    def start() -> dict[str, Worker]:
        return {"original": Worker("original", model, threads, bs, warmup, original, original_path),
                "ours": Worker("ours", model, threads, bs, warmup)}

    for item in items:
        for p in precisions:  # fresh workers for each setup: a BAIR model and its heap take GBs
            workers = start()
            try:
                if item == "sampling" and p == "fp32":  # same weights, same residual: the codebases agree
                    for w in workers.values():
                        w.ask(check=str(tmp / f"check_{w.name}.pt"))
                    a, b = (torch.load(tmp / f"check_{n}.pt") for n in ("original", "ours"))
                    print(f"# {name} sampling fp32, fixed residual: max |ours - original| = "
                          f"{(a - b).abs().max():.2e}", flush=True)
                times = {c: {"wall": [], "cpu": []} for c in workers}
                for r in range(rounds):
                    for c in (("original", "ours") if r % 2 == 0 else ("ours", "original")):
                        got = workers[c].ask(item=item, precision=p, n=1)
                        times[c]["wall"] += got["wall"]
                        times[c]["cpu"] += got["cpu"]
                    print(f"# {name} {item} {p} round {r + 1}: " + ", ".join(
                        f"{c} {times[c]['wall'][-1]:.2f} s (cpu {times[c]['cpu'][-1]:.2f})" for c in workers),
                        flush=True)
            finally:
                for w in workers.values():
                    w.close()
            for c in workers:
                med[(item, c, p)] = statistics.median(times[c]["wall"])
            ratio = med[(item, "original", p)] / med[(item, "ours", p)]
            rows.append({"config": name, "item": item, "precision": p, "original_s": med[(item, "original", p)],
                         "ours_s": med[(item, "ours", p)], "ratio": ratio, "times": times,
                         "load_average": os.getloadavg()})
            print(f"{name:10s} {item:9s} {p:5s} original {med[(item, 'original', p)]:7.3f} s  ours "
                  f"{med[(item, 'ours', p)]:7.3f} s  speed-up x{ratio:.2f}  (wall medians of {rounds})", flush=True)
        for p in precisions:
            if p != "fp32" and (item, "original", "fp32") in med:
                print(f"{name:10s} {item:9s} original fp32 / ours {p}: "
                      f"x{med[(item, 'original', 'fp32')] / med[(item, 'ours', p)]:.2f}", flush=True)
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
    else:
        sys.exit("run through: python benchmarks/bench.py --against-original DIR")
