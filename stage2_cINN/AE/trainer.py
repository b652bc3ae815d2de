"""Stage-2a training: the conditioning autoencoder whose encoder embeds the start frame for the cINN."""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from tqdm import tqdm

from blocks.fingerprint import AE_DECODER, AE_ENCODER, PATCH_DISC, expected_values
from blocks.lpips import make_lpips
from stage2_cINN.AE.config import CONFIG_FILE
from stage2_cINN.AE.modules import AELoss, build_ae
from training.checkpoints import (
    bookkeeping,
    current_rng,
    load_checkpoint_set,
    restore_states,
    restore_training_state,
    resume_counters,
    save_checkpoint_set,
    save_weights,
)
from training.finite import FiniteMonitor
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
from utils.checkpoint import unwrap
from utils.distributed import barrier, reduce_mean
from utils.errors import CheckpointError
from utils.media import grid, save_gif
from utils.precision import autocast, make_scaler

logger = logging.getLogger(__name__)


class AETrainer:
    """Trains encoder + BigGAN decoder (+ patch discriminator from epoch ``pretrain``) on single frames and
    saves ``Encoder_stage2.pth`` whenever the validation reconstruction loss improves."""

    CONFIG_FILE = CONFIG_FILE  # the name of its merged config in the run folder (the released layout's)

    def __init__(self, ctx: RunContext):
        self.ctx, cfg = ctx, ctx.config
        self.tr = tr = cfg["Training"]
        self.device = ctx.device
        nets = build_ae(cfg)
        # dropout of the loss's LPIPS active by default (Training.lpips_dropout), as the original's
        perceptual = make_lpips(tr["lpips_weights"], tr["allow_random_lpips"], tr["lpips_dropout"]).to(self.device)
        self.encoder = wrap_model(nets["encoder"], self.device, ctx.dist, tr["compile"])
        self.decoder = wrap_model(nets["decoder"], self.device, ctx.dist, tr["compile"])
        self.disc = nets["disc"].to(self.device)  # outside DDP, gradients averaged by hand
        self.loss = AELoss.from_config(cfg, self.disc, perceptual).to(self.device)
        ae_params = list(self.encoder.parameters()) + list(self.decoder.parameters())
        self.opt_ae = torch.optim.Adam(ae_params, lr=tr["lr"], weight_decay=tr["weight_decay"])
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=tr["lr"], weight_decay=tr["weight_decay"])
        plateau = lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(  # noqa: E731
            o, mode="min", factor=0.5, patience=1, min_lr=1e-8, threshold=1e-4, threshold_mode="abs")
        self.sched, self.sched_d = plateau(self.opt_ae), plateau(self.opt_d)  # AE and discriminator, as the original
        self.scaler = make_scaler(self.device, tr["amp"])  # enabled for fp16 only
        self.start_epoch, self.step, self.best = 0, 0, None
        self.finite = FiniteMonitor(self.device, "AE")
        self.train_loader, self.eval_loader = build_loaders(ctx)
        if tr["reload_path"]:
            self.resume(Path(tr["reload_path"]))
        elif ctx.dist.enabled:
            with torch.no_grad():
                self.disc.train()(self._frames(next(iter(self.train_loader))))
            sync_initialised_params(self.disc, ctx.dist)

    @property
    def last_layer(self) -> torch.Tensor:
        return unwrap(self.decoder).last_layer

    def _frames(self, batch: dict) -> torch.Tensor:
        return batch["seq"][:, 0].to(self.device, non_blocking=True)  # (B, 3, H, W)

    def train_step(self, x: torch.Tensor, epoch: int) -> dict:
        """Encoder/decoder update, then the discriminator's forwards on real and fake frames (in every epoch,
        as the original) and its update from epoch ``pretrain`` whenever its loss is above 0 (the original's
        rule; under DDP on any rank)."""
        with autocast(self.device, self.tr["amp"]):
            posterior = self.encoder(x)
            x_hat = self.decoder(posterior.mode())  # (B, 3, H, W): the mode, as the original decodes
            loss, logs = self.loss.generator_loss(x, x_hat, posterior, epoch, last_layer=self.last_layer)
        self.opt_ae.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.tr["grad_clip"]:
            self.scaler.unscale_(self.opt_ae)
            torch.nn.utils.clip_grad_norm_(list(self.encoder.parameters()) + list(self.decoder.parameters()),
                                           self.tr["grad_clip"])
        self.scaler.step(self.opt_ae)
        training = self.loss.gan_active(epoch)
        with autocast(self.device, self.tr["amp"]), torch.set_grad_enabled(training):
            d_loss, d_logs = self.loss.discriminator_loss(x, x_hat.detach(), epoch)
        if training and reduce_mean({"d": d_loss}, self.ctx.dist)["d"] > 0:
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler.scale(d_loss).backward()
            average_gradients(self.disc, self.ctx.dist)
            self.scaler.step(self.opt_d)
        logs.update(d_logs)
        self.scaler.update()
        return logs

    def train_epoch(self, epoch: int) -> dict:
        for m in (self.encoder, self.decoder, self.disc):
            m.train()
        tracker, logs = MeanTracker(), {}
        max_steps = self.tr["max_steps_per_epoch"]
        for batch in tqdm(epoch_iter(self.train_loader, epoch, max_steps), total=n_steps(self.train_loader, max_steps),
                          desc=f"AE epoch {epoch}", disable=not self.ctx.dist.is_main, leave=False):
            logs = self.train_step(self._frames(batch), epoch)
            tracker.add(logs)
            self.step += 1
            self.finite.add(logs, self.step)  # checked now on the CPU; on CUDA at logging steps and saves
            if self.step % self.tr["verbose_idx"] == 0:
                self.finite.check()
                self.ctx.log.log_step(reduce_mean(logs, self.ctx.dist), self.step)
        out = {k.replace("/", "_"): v for k, v in reduce_mean(tracker.mean(), self.ctx.dist).items()}
        if "train/rec_loss" in logs:  # what the original's plateau schedulers step on (mean over ranks)
            out["last_batch_rec_loss"] = reduce_mean({"v": logs["train/rec_loss"]}, self.ctx.dist)["v"]
        return out

    @torch.no_grad()
    def validate(self, epoch: int) -> dict:
        """Validation reconstruction loss (L1 + LPIPS per pixel, as trained) with the posterior mode.

        As in the original, the encoder and decoder are in eval mode and the discriminator (left in training
        mode) still sees the reconstruction, the real and the fake frames of each batch: its spectral-norm
        vectors advance, although its outputs are not part of the validation loss."""
        self.encoder.eval()
        self.decoder.eval()
        self.disc.train()
        tracker, shown = MeanTracker(), None
        max_b = self.tr["max_eval_batches"]
        for batch in tqdm(epoch_iter(self.eval_loader, 0, max_b), total=n_steps(self.eval_loader, max_b),
                          desc="AE validation", disable=not self.ctx.dist.is_main, leave=False):
            x = self._frames(batch)
            posterior = self.encoder(x)
            x_hat = self.decoder(posterior.mode()).to(x.dtype)  # fp32 under autocast
            _, logs = self.loss.generator_loss(x, x_hat, posterior, epoch, split="val")
            self.loss.discriminator_loss(x, x_hat, epoch, split="val")
            tracker.add({"rec_loss": logs["val/rec_loss"], "L1": (x - x_hat).abs().mean()})
            shown = shown if shown is not None else torch.stack([x[:8].cpu(), x_hat[:8].cpu()])
        if shown is not None and self.tr["save_media"] and self.ctx.dist.is_main:
            rows = [torch.cat(list(r), dim=-1).unsqueeze(0) for r in shown]  # (1, 3, H, n*W) each
            save_gif(grid(rows), self.ctx.run_dir / "media" / f"reconstruction_epoch{epoch:03d}.gif")
        return {k: float(v) for k, v in tracker.mean().items()}

    def _modules(self) -> dict:
        return {"encoder": self.encoder, "decoder": self.decoder, "disc": self.disc}

    def save(self, epoch: int, best: bool) -> None:
        """``Encoder_stage2.pth`` on a new best, and ``latest_checkpoint_AE.pth`` (rank 0); never non-finite."""
        self.finite.check()
        if not self.ctx.dist.is_main:
            return
        if best:  # the file the cINN configs point at (the original never updated its best value)
            save_weights(self.ctx, {"state_dict": unwrap(self.encoder).state_dict()}, "Encoder_stage2.pth", epoch)
        save_checkpoint_set(self.ctx, "latest_checkpoint", {"latest_checkpoint_AE.pth": {
            "epoch": epoch, **bookkeeping(step=self.step, best=self.best, rng=current_rng()),
            "state_dict": {name: unwrap(m).state_dict() for name, m in self._modules().items()},
            "optim_state_dict": {"ae": self.opt_ae.state_dict(), "disc": self.opt_d.state_dict()},
            "scheduler_state_dict": {"ae": self.sched.state_dict(), "disc": self.sched_d.state_dict()},
        }}, epoch)

    def resume(self, folder: Path) -> None:
        (path, ckpt), = load_checkpoint_set(folder, "latest_checkpoint", ["latest_checkpoint_AE.pth"],
                                            map_location=self.device).values()
        nested = ckpt.get("state_dict")
        if not isinstance(nested, dict) or set(self._modules()) - set(nested):
            held = sorted(nested)[:5] if isinstance(nested, dict) else type(nested).__name__
            raise CheckpointError(f"{path} is not an AE training checkpoint: its 'state_dict' should hold "
                                  f"{sorted(self._modules())}, it holds {held}")
        for (name, module), kind in zip(self._modules().items(), (AE_ENCODER, AE_DECODER, PATCH_DISC)):
            restore_training_state({"state_dict": nested[name]}, path, module, kind=kind,
                                   expected=expected_values(kind, self.ctx.config))
        optim = ckpt.get("optim_state_dict") or {}
        scheds = ckpt.get("scheduler_state_dict") or {}
        if "ae" not in scheds:  # a checkpoint written before the discriminator had its scheduler
            scheds = {"ae": scheds or None, "disc": None}
        restore_states(path, {"optim_state_dict.ae": (self.opt_ae, optim.get("ae")),
                              "optim_state_dict.disc": (self.opt_d, optim.get("disc")),
                              "scheduler_state_dict.ae": (self.sched, scheds["ae"]),
                              "scheduler_state_dict.disc": (self.sched_d, scheds["disc"])})
        self.start_epoch, self.step, self.best = resume_counters(ckpt, self.ctx)
        logger.info("resumed from %s at epoch %d", folder, self.start_epoch)

    def fit(self) -> dict:
        metrics: dict = {}
        for epoch in range(self.start_epoch, self.tr["n_epochs"]):
            train_logs = self.train_epoch(epoch)
            metrics = self.validate(epoch)  # every rank: the plateau schedulers must agree across ranks
            self.finite.check_metrics(metrics, epoch)
            if self.tr["plateau_metric"] == "last_batch":  # the original: the last training batch's loss
                plateau = train_logs.get("last_batch_rec_loss")
            else:  # LPIPS dropout makes the validation loss differ between ranks: their mean
                plateau = reduce_mean({"v": metrics["rec_loss"]}, self.ctx.dist)["v"]
            if plateau is not None:
                self.sched.step(plateau)
                self.sched_d.step(plateau)
            improved = finish_epoch(self, epoch, train_logs, metrics, metrics["rec_loss"],
                                    lr=self.opt_ae.param_groups[0]["lr"])
            self.save(epoch, improved)  # rank 0 only
            barrier(self.ctx.dist)
        self.ctx.log.finish()
        return metrics
