"""Stage-2 training: the conditional INN between stage-1 latents and N(0, I), given the start frame."""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from tqdm import tqdm

from blocks.fingerprint import CINN, expected_values
from stage2_cINN.config import CONFIG_FILE
from stage2_cINN.loading import embed_start_frame, load_conditioner, load_first_stage, model_files
from stage2_cINN.modules import build_cinn
from stage2_cINN.modules.control import endpoint_to_onehot
from stage2_cINN.modules.nll import nll_loss
from training.checkpoints import (
    current_rng,
    load_checkpoint_set,
    restore_training_state,
    resume_counters,
    save_checkpoint_set,
    save_weights,
    training_state,
)
from training.finite import FiniteMonitor
from training.fvd import make_training_fvd
from training.loop import (
    MeanTracker,
    build_loaders,
    epoch_iter,
    finish_epoch,
    n_steps,
    sync_initialised_params,
    wrap_model,
)
from training.run import RunContext
from utils.checkpoint import check_finite
from utils.config import ConfigError
from utils.distributed import barrier, reduce_mean
from utils.errors import NonFiniteLossError
from utils.media import grid, save_gif, side_by_side
from utils.precision import autocast

logger = logging.getLogger(__name__)


class CINNTrainer:
    """Trains the cINN on posterior samples of the frozen stage-1 encoder, conditioned on the frozen AE
    embedding of x0 (+ the end-effector code with control). The flow is kept in fp32."""

    CONFIG_FILE = CONFIG_FILE  # the name of its merged config in the run folder (the released layout's)

    def __init__(self, ctx: RunContext):
        self.ctx, cfg = ctx, ctx.config
        self.tr = tr = cfg["Training"]
        self.device = ctx.device
        self.control = bool(tr["control"])
        files = model_files(cfg).check()
        first = load_first_stage(files, self.device)
        self.encoder, self.decoder = first["encoder"], first["decoder"]
        self.conditioner, cfg_ae = load_conditioner(files, self.device)
        self.ae_size = int(cfg_ae["AE"]["in_size"])
        self.z_dim = int(first["config"]["Decoder"]["z_dim"])
        if int(cfg["Data"]["img_size"]) != int(first["config"]["Data"]["img_size"]):
            raise ConfigError(f"{cfg.get('_path', 'config')}: Data.img_size={cfg['Data']['img_size']} differs from the "
                              f"stage-1 model's img_size={first['config']['Data']['img_size']}")
        self.flow = build_cinn(cfg, self.z_dim).to(self.device)
        self.opt = torch.optim.Adam(self.flow.parameters(), lr=tr["lr"], betas=(tr["beta1"], tr["beta2"]),
                                    weight_decay=tr["weight_decay"], amsgrad=tr["amsgrad"])
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=tr["step_size"], gamma=tr["gamma"])
        self.finite = FiniteMonitor(self.device, "cINN", max_skips=tr["max_nonfinite"], dist=self.ctx.dist)
        self.start_epoch, self.step, self.best = 0, 0, None
        self.train_loader, self.eval_loader = build_loaders(ctx)
        # the FVD of prior samples with the I3D the stage-1 run logged (its Training.FVD), as the original
        self.fvd = (make_training_fvd(first["config"]["Training"]["FVD"], self.device, tr["i3d_weights"])
                    if tr["fvd_samples"] else None)
        if tr["reload_path"]:
            self.resume(Path(tr["reload_path"]))
        elif ctx.dist.enabled:  # data-dependent ActNorm init on rank 0's data, then identical weights everywhere
            with torch.no_grad():
                self.flow.train()
                self.flow(*self.targets(next(iter(self.train_loader))))
            sync_initialised_params(self.flow, ctx.dist)
        self.model = wrap_model(self.flow, self.device, ctx.dist, tr["compile"])

    @torch.no_grad()
    def targets(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(z ~ q(z | x_1:16), condition) for a batch; frozen networks, no gradients."""
        seq = batch["seq"].to(self.device, non_blocking=True)
        with autocast(self.device, self.tr["amp"]):  # Training.amp: only the frozen encoders, the flow stays fp32
            z, _, _ = self.encoder(seq[:, 1:])  # (B, z_dim): a posterior sample, as in the original
            emb = embed_start_frame(self.conditioner, seq[:, 0], self.ae_size)  # (B, emb_dim): mean embedding of x0
        z, emb = z.float(), emb.float()
        if self.control:
            emb = torch.cat([emb, endpoint_to_onehot(batch["cond"].to(self.device))], dim=1)
        return z, emb

    def train_step(self, batch: dict) -> dict | None:
        """One flow update on a batch (NLL of posterior samples given the start frame's embedding); None when the
        loss was NaN/Inf and the update skipped (``Training.max_nonfinite``; logged, raises after too many)."""
        z, emb = self.targets(batch)
        eps, logdet = self.model(z, emb)
        loss = nll_loss(eps, logdet)
        if not self.finite.allow(loss):
            return None
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.tr["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(self.flow.parameters(), self.tr["grad_clip"])
        self.opt.step()
        return {"nll": loss.detach(), "logdet": logdet.detach().mean()}

    def train_epoch(self, epoch: int) -> dict:
        """One epoch of flow updates. The AE embedder stays in eval mode unless ``Training.embedder_train_mode``
        (the original's ``cINN.train()`` also switched it to training mode: BatchNorm encoders then embed x0
        with batch statistics and update their running statistics, although the embedder is frozen)."""
        self.model.train()
        self.conditioner.train(bool(self.tr["embedder_train_mode"]))
        tracker = MeanTracker()
        max_steps = self.tr["max_steps_per_epoch"]
        for batch in tqdm(epoch_iter(self.train_loader, epoch, max_steps), total=n_steps(self.train_loader, max_steps),
                          desc=f"cINN epoch {epoch}", disable=not self.ctx.dist.is_main, leave=False):
            logs = self.train_step(batch)
            if logs is None:  # NaN/Inf: the update was skipped
                continue
            self.step += 1
            tracker.add(logs)  # a finite loss (allow above) has finite terms: nothing more to watch
            if self.step % self.tr["verbose_idx"] == 0:
                self.ctx.log.log_step({f"train/{k}": v for k, v in reduce_mean(logs, self.ctx.dist).items()}, self.step)
        self.finite.end_epoch(epoch)  # an epoch whose every step was skipped is an error
        self.sched.step()
        out = {f"train_{k}": v for k, v in reduce_mean(tracker.mean(), self.ctx.dist).items()}
        out["skipped_steps"] = self.finite.total_skipped
        return out

    @torch.no_grad()
    def validate(self, epoch: int) -> dict:
        """Eval NLL, and FVD of prior samples G(x0, INN^-1(eps | x0)) against the real clips."""
        self.flow.eval()
        self.conditioner.eval()
        tracker, reals, fakes, shown = MeanTracker(), [], [], None
        max_b = self.tr["max_eval_batches"]
        for batch in tqdm(epoch_iter(self.eval_loader, 0, max_b), total=n_steps(self.eval_loader, max_b),
                          desc="cINN validation", disable=not self.ctx.dist.is_main, leave=False):
            z, emb = self.targets(batch)
            eps, logdet = self.flow(z, emb)
            tracker.add({"nll": nll_loss(eps, logdet)})
            if self.fvd is not None or shown is None:
                seq = batch["seq"].to(self.device)
                fake = self.decoder(seq[:, 0], self.flow.reverse(torch.randn_like(z), emb))
                if self.fvd is not None:
                    reals.append(self.fvd.features(seq[:, 1:]))
                    fakes.append(self.fvd.features(fake))
                shown = shown if shown is not None else (seq[:4].cpu(), fake[:4].cpu())
        out = {k: float(v) for k, v in tracker.mean().items()}
        if self.fvd is not None and reals:
            out[self.fvd.name] = self.fvd.distance(torch.cat(reals), torch.cat(fakes))
        if shown is not None and self.tr["save_media"]:
            seq, fake = shown
            video = grid([side_by_side([s[1:], f]) for s, f in zip(seq, fake)])
            save_gif(video, self.ctx.run_dir / "media" / f"samples_epoch{epoch:03d}.gif", fps=4)
        return out

    def save(self, epoch: int, best: bool) -> None:
        """``cINN.pth`` on a new best (the released format: only the flow) and ``latest_checkpoint_cINN.pth``
        (rank 0); never non-finite."""
        if not self.ctx.dist.is_main:
            return
        if best:  # the released format: only the flow
            save_weights(self.ctx, {"state_dict": self.flow.state_dict()}, "cINN.pth", epoch)
        extra = dict(rng=current_rng(), step=self.step, best=self.best)
        if self.tr["embedder_train_mode"]:  # the embedder's running statistics drift: keep them for an exact resume
            extra["embedder_state"] = self.conditioner.state_dict()
        save_checkpoint_set(self.ctx, "latest_checkpoint", {
            "latest_checkpoint_cINN.pth": training_state(epoch, self.flow, self.opt, self.sched, **extra)}, epoch)

    def resume(self, folder: Path) -> None:
        (path, ckpt), = load_checkpoint_set(folder, "latest_checkpoint", ["latest_checkpoint_cINN.pth"],
                                            map_location=self.device).values()
        restore_training_state(ckpt, path, self.flow, self.opt, self.sched, kind=CINN,
                               expected=expected_values(CINN, self.ctx.config, self.z_dim))
        if ckpt.get("embedder_state") is not None and self.tr["embedder_train_mode"]:
            check_finite(ckpt["embedder_state"], path)
            self.conditioner.load_state_dict(ckpt["embedder_state"])
        self.start_epoch, self.step, self.best = resume_counters(ckpt, self.ctx)
        logger.info("resumed from %s at epoch %d", folder, self.start_epoch)

    def fit(self) -> dict:
        metrics: dict = {}
        key = self.fvd.name if self.fvd is not None else "nll"
        for epoch in range(self.start_epoch, self.tr["n_epochs"]):
            train_logs = self.train_epoch(epoch)
            if self.ctx.dist.is_main:
                metrics = self.validate(epoch)
                self.save(epoch, finish_epoch(self, epoch, train_logs, metrics, metrics[key]))
            barrier(self.ctx.dist)
        if self.ctx.dist.is_main and self.start_epoch < self.tr["n_epochs"] and self.best is None:
            raise NonFiniteLossError(f"no epoch gave a finite validation score ({key}): no cINN.pth was written")
        self.ctx.log.finish()
        return metrics
