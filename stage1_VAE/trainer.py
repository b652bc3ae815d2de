"""Stage-1 training: the video VAE-GAN (encoder, SPADE/AdaIN generator, temporal and patch discriminators)."""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from tqdm import tqdm

from blocks.fingerprint import PATCH_DISC, STAGE1_DECODER, STAGE1_ENCODER, TEMPORAL_DISC, expected_values
from blocks.lpips import make_lpips
from metrics.quality import psnr, ssim
from stage1_VAE.config import CONFIG_FILE
from stage1_VAE.modules import build_stage1
from stage1_VAE.modules.losses import Stage1Loss
from training.checkpoints import (
    current_rng,
    load_checkpoint_set,
    restore_training_state,
    resume_counters,
    save_checkpoint_set,
    training_state,
)
from training.finite import FiniteMonitor
from training.fvd import make_training_fvd
from training.loop import (
    MeanTracker,
    average_gradients,
    build_loaders,
    epoch_iter,
    finish_epoch,
    n_steps,
    sync_initialised_params,
    wrap_model,
)
from training.run import RunContext
from utils.distributed import barrier, reduce_mean
from utils.media import grid, save_gif, save_mp4, side_by_side
from utils.precision import autocast, make_scaler

logger = logging.getLogger(__name__)

PART_KINDS = {"GEN": STAGE1_DECODER, "ENC": STAGE1_ENCODER, "DISC_t": TEMPORAL_DISC, "DISC_s": PATCH_DISC}


class Stage1Trainer:
    """Owns the stage-1 networks, optimisers, schedulers and the train/validate/checkpoint cycle."""

    CONFIG_FILE = CONFIG_FILE  # the name of its merged config in the run folder (the released layout's)

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        cfg, tr = ctx.config, ctx.config["Training"]
        self.tr = tr
        self.device = ctx.device
        nets = build_stage1(cfg)
        # the loss's LPIPS keeps its dropout active by default (Training.lpips_dropout), as the original's
        self.perceptual = make_lpips(tr["lpips_weights"], tr["allow_random_lpips"], tr["lpips_dropout"]).to(self.device)
        for p in self.perceptual.parameters():
            p.requires_grad_(False)
        wrap = lambda m: wrap_model(m, self.device, ctx.dist, tr["compile"])  # noqa: E731
        self.encoder, self.decoder = wrap(nets["encoder"]), wrap(nets["decoder"])
        # the discriminators stay outside DDP (several forwards per step, R1 double-backward): their
        # gradients are averaged by hand and their initial weights broadcast from rank 0
        self.disc_t, self.disc_s = nets["disc_t"].to(self.device), nets["disc_s"].to(self.device)
        self.loss = Stage1Loss(self.disc_t, self.disc_s, self.perceptual, tr).to(self.device)
        adam = dict(lr=tr["lr"], betas=(0.5, 0.9), weight_decay=tr["weight_decay"])
        gen_params = list(self.encoder.parameters()) + list(self.decoder.parameters())
        self.opt_g = torch.optim.Adam(gen_params, **adam)
        self.opt_dt = torch.optim.Adam(self.disc_t.parameters(), **adam)
        self.opt_ds = torch.optim.Adam(self.disc_s.parameters(), **adam)
        exp = lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=tr["lr_gamma"])  # noqa: E731
        self.sched_g, self.sched_dt, self.sched_ds = exp(self.opt_g), exp(self.opt_dt), exp(self.opt_ds)
        self.scaler = make_scaler(self.device, tr["amp"])
        self.start_epoch, self.step, self.best = 0, 0, None
        self.finite = FiniteMonitor(self.device, "stage-1")
        self.train_loader, self.eval_loader = build_loaders(ctx)
        self.fvd = make_training_fvd(tr["FVD"], self.device, tr["i3d_weights"])
        if tr["reload_path"]:
            self.resume(Path(tr["reload_path"]))
        elif ctx.dist.enabled:  # identical start on every rank, ActNorm initialised on rank 0's data (its real
            # frames; a single process initialises it on the first batch's fake frames, as the original)
            with torch.no_grad():
                seq = next(iter(self.train_loader))["seq"].to(self.device)
                self.disc_s.train()(seq[:, 1:].flatten(0, 1)[: self.loss.n_patch_frames])
            for m in (self.disc_t, self.disc_s):
                sync_initialised_params(m, ctx.dist)

    # ------------------------------------------------------------------ checkpoints
    def _parts(self):
        return {
            "GEN": (self.decoder, self.opt_g, self.sched_g),
            "ENC": (self.encoder, self.opt_g, self.sched_g),
            "DISC_t": (self.disc_t, self.opt_dt, self.sched_dt),
            "DISC_s": (self.disc_s, self.opt_ds, self.sched_ds),
        }

    def _files(self, prefix: str, names, epoch: int, **extra) -> dict:
        return {f"{prefix}_{name}.pth": training_state(epoch, *self._parts()[name], **(extra if name == "GEN" else {}))
                for name in names}

    def save(self, epoch: int) -> None:
        """Write ``latest_checkpoint_{GEN,ENC,DISC_t,DISC_s}.pth`` as one checkpoint set (rank 0), never from
        non-finite losses or weights."""
        self.finite.check()
        if not self.ctx.dist.is_main:
            return
        extra = dict(rng=current_rng(), step=self.step, best=self.best)
        save_checkpoint_set(self.ctx, "latest_checkpoint", self._files("latest_checkpoint", self._parts(), epoch,
                                                                       **extra), epoch)

    def save_best(self, epoch: int) -> None:
        self.finite.check()
        if self.ctx.dist.is_main:
            save_checkpoint_set(self.ctx, "best_PFVD", self._files("best_PFVD", ("GEN", "ENC"), epoch), epoch)

    def resume(self, folder: Path) -> None:
        """Continue exactly where the newest complete ``latest_checkpoint_*`` set in ``folder`` stopped (epoch,
        optimisers, schedulers, RNG); parts of different epochs are refused. Each discriminator gets its own
        scheduler back (the original loaded the D_s scheduler into the D_t one)."""
        files = {f"latest_checkpoint_{name}.pth": name for name in self._parts()}
        ckpts = load_checkpoint_set(folder, "latest_checkpoint", files, map_location=self.device)
        for file, (path, ckpt) in ckpts.items():
            name = files[file]
            restore_training_state(ckpt, path, *self._parts()[name], kind=PART_KINDS[name],
                                   expected=expected_values(PART_KINDS[name], self.ctx.config))
        self.start_epoch, self.step, self.best = resume_counters(ckpts["latest_checkpoint_GEN.pth"][1], self.ctx)
        logger.info("resumed from %s at epoch %d", folder, self.start_epoch)

    # ------------------------------------------------------------------ training
    def train_step(self, seq: torch.Tensor, epoch: int) -> dict:
        """One iteration in the original's order: the posterior sample and reconstruction, the window and
        patch frames (numpy), D_t and D_s on fake then real (updated from epoch ``pretrain``; before it their
        losses are only computed and logged, as in the original), then the encoder+decoder update."""
        tr = self.tr
        x0, x = seq[:, 0], seq[:, 1:]  # (B, 3, H, W), (B, T, 3, H, W)
        with autocast(self.device, tr["amp"]):
            z, mu, logvar = self.encoder(x)
            x_hat = self.decoder(x0, z)  # (B, T, 3, H, W)
        idx = self.loss.sample_indices(x.shape[0], x.shape[1], x.device)
        with autocast(self.device, tr["amp"]):
            d_loss, logs = self.loss.discriminator_loss(x, x_hat.detach(), epoch, idx)
        if self.loss.gan_active(epoch):
            self.opt_dt.zero_grad(set_to_none=True)
            self.opt_ds.zero_grad(set_to_none=True)
            self.scaler.scale(d_loss).backward()
            for disc, opt in ((self.disc_t, self.opt_dt), (self.disc_s, self.opt_ds)):
                average_gradients(disc, self.ctx.dist)
                self.scaler.step(opt)
        with autocast(self.device, tr["amp"]):
            g_loss, g_logs = self.loss.generator_loss(x, x_hat, mu, logvar, epoch, idx)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(g_loss).backward()
        if tr["grad_clip"]:
            self.scaler.unscale_(self.opt_g)
            torch.nn.utils.clip_grad_norm_(
                list(self.encoder.parameters()) + list(self.decoder.parameters()), tr["grad_clip"])
        self.scaler.step(self.opt_g)
        self.scaler.update()
        logs.update(g_logs)
        return logs

    def train_epoch(self, epoch: int) -> dict:
        for m in (self.encoder, self.decoder, self.disc_t, self.disc_s):
            m.train()
        tracker = MeanTracker()
        max_steps = self.tr["max_steps_per_epoch"]
        bar = tqdm(epoch_iter(self.train_loader, epoch, max_steps), total=n_steps(self.train_loader, max_steps),
                   desc=f"stage1 epoch {epoch}", disable=not self.ctx.dist.is_main, leave=False)
        for batch in bar:
            seq = batch["seq"].to(self.device, non_blocking=True)
            logs = self.train_step(seq, epoch)
            tracker.add(logs)
            self.step += 1
            self.finite.add(logs, self.step)  # checked now on the CPU; on CUDA at logging steps and saves
            if self.step % self.tr["verbose_idx"] == 0:
                self.finite.check()
                shown = reduce_mean(logs, self.ctx.dist)
                self.ctx.log.log_step({f"train/{k}": v for k, v in shown.items()}, self.step)
                bar.set_postfix(loss=f"{shown.get('gen/total', float('nan')):.3f}")
        if epoch >= self.tr["pretrain"]:
            self.sched_dt.step()
            self.sched_ds.step()
        self.sched_g.step()
        return {f"train_{k}": v for k, v in reduce_mean(tracker.mean(), self.ctx.dist).items()}

    @torch.no_grad()
    def validate(self, epoch: int) -> dict:
        """L1, LPIPS, KL, PSNR, SSIM of reconstructions on the eval split, and (P)FVD when available.

        The reconstructions decode a posterior sample, as the original's validation and per-epoch FVD do
        (``Training.val_latent: mean`` decodes ``mu``); one pass serves the metrics and the FVD."""
        self.encoder.eval()
        self.decoder.eval()
        tracker, reals, fakes, shown = MeanTracker(), [], [], None
        max_b = self.tr["max_eval_batches"]
        for batch in tqdm(epoch_iter(self.eval_loader, 0, max_b), total=n_steps(self.eval_loader, max_b),
                          desc="stage1 validation", disable=not self.ctx.dist.is_main, leave=False):
            seq = batch["seq"].to(self.device)
            x0, x = seq[:, 0], seq[:, 1:]
            with autocast(self.device, self.tr["amp"]):
                z, mu, logvar = self.encoder(x)
                x_hat = self.decoder(x0, z if self.tr["val_latent"] == "sample" else mu).float()
            lp = self.perceptual(x.flatten(0, 1), x_hat.flatten(0, 1)).mean()
            kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()
            tracker.add({"L1": (x - x_hat).abs().mean(), "LPIPS": lp, "KL": kl,
                         "PSNR": psnr(x, x_hat), "SSIM": ssim(x, x_hat)})
            if self.fvd is not None:
                reals.append(self.fvd.features(x))
                fakes.append(self.fvd.features(x_hat))
            shown = shown if shown is not None else (seq[:4].cpu(), x_hat[:4].cpu())
        out = {k: float(v) for k, v in tracker.mean().items()}
        if self.fvd is not None and reals:
            out[self.fvd.name] = self.fvd.distance(torch.cat(reals), torch.cat(fakes))
        if shown is not None and self.tr["save_media"] and self.ctx.dist.is_main:
            self.write_media(epoch, *shown)
        return out

    def write_media(self, epoch: int, seq: torch.Tensor, x_hat: torch.Tensor) -> None:
        """GIF + MP4: per row the real video and its reconstruction side by side."""
        rows = [side_by_side([s[1:], r]) for s, r in zip(seq, x_hat)]
        video = grid(rows)
        save_gif(video, self.ctx.run_dir / "media" / f"reconstruction_epoch{epoch:03d}.gif", fps=4)
        save_mp4(video, self.ctx.run_dir / "media" / f"reconstruction_epoch{epoch:03d}.mp4", fps=4)

    def fit(self) -> dict:
        """Train for ``n_epochs`` (from the resume point), validating and checkpointing each epoch."""
        metrics: dict = {}
        key = self.fvd.name if self.fvd is not None else "L1+LPIPS"
        if self.fvd is None:
            logger.warning("no I3D weights for the per-epoch FVD: 'best' checkpoints are selected by validation "
                           "L1 + LPIPS instead")
        for epoch in range(self.start_epoch, self.tr["n_epochs"]):
            train_logs = self.train_epoch(epoch)
            metrics = self.validate(epoch) if self.ctx.dist.is_main else {}
            self.finite.check_metrics(metrics, epoch)
            score = (metrics[key] if key in metrics else metrics["L1"] + metrics["LPIPS"]) if metrics else None
            if finish_epoch(self, epoch, train_logs, metrics, score):
                self.save_best(epoch)
            self.save(epoch)
            barrier(self.ctx.dist)
        self.ctx.log.finish()
        return metrics
