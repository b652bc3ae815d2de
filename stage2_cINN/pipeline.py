"""Inference API: load a released (or self-trained) model folder, sample videos, transfer motion.

>>> from stage2_cINN.pipeline import load_model
>>> pipe = load_model("models/landscape/stage2", device=get_device(0))  # utils.device
>>> videos = pipe.sample(x0, seq_length=16)            # x0: (B, 3, H, W) in [-1, 1]
>>> moved = pipe.transfer(query, x0)                    # query: (1, T>=16, 3, H, W); posterior mean
>>> many = pipe.sample_many(x0[:1], 8)                 # 8 videos from one start frame: (1, 8, 16, 3, H, W)

Inference runs under ``torch.inference_mode``. The frozen decoder's spectral-norm weights are computed once
(:func:`~blocks.spectral_norm.freeze_spectral_norm`; call :meth:`Pipeline.refresh` after changing its
weights), and :meth:`Pipeline.sample_many` embeds the start frame and computes its SPADE conditioning once
for all its samples.

``load_model(path, device, precision="bf16")`` runs the stage-1 decoder (where sampling spends its time) in
bfloat16 (:mod:`utils.precision`); the cINN, the conditioning encoder and the stage-1 encoder stay float32, and
every method still takes and returns float32 tensors. ``fp16`` does the same on CUDA.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from blocks.spectral_norm import freeze_spectral_norm
from stage2_cINN.config import CINN_SCHEMA, CONFIG_FILE
from stage2_cINN.loading import (
    CINN_FILE,
    LAYOUT,
    MissingFilesError,
    embed_start_frame,
    load_cinn,
    load_conditioner,
    load_first_stage,
    model_files,
    resolve,
)
from stage2_cINN.modules.control import endpoint_to_onehot
from utils.config import load_config
from utils.precision import cast_frozen_, precision_dtype, run_in_dtype

logger = logging.getLogger(__name__)


class Pipeline:
    """Frozen stage-1 encoder/decoder, AE conditioner and cINN, in eval mode, without gradients."""

    def __init__(self, flow, decoder, encoder, conditioner, config: dict, config_stage1: dict,
                 device: torch.device, ae_size: int | None = None, precision: str = "fp32"):
        self.flow, self.decoder, self.encoder, self.conditioner = flow, decoder, encoder, conditioner
        self.config, self.config_stage1 = config, config_stage1
        self.device = torch.device(device)
        self.control = bool(config["Training"].get("control", False))
        self.z_dim = int(config_stage1["Decoder"]["z_dim"])
        self.img_size = int(config_stage1["Data"]["img_size"])
        self.ae_size = int(ae_size or self.img_size)
        self.frames_per_pass = _frames_per_pass(config_stage1)
        self.precision = precision
        self.decoder_dtype = precision_dtype(precision, self.device)
        self._frozen = contextlib.ExitStack()
        self.refresh()
        if self.decoder_dtype != torch.float32:  # float32 in and out, the low-precision dtype inside
            run_in_dtype(self.decoder, self.decoder_dtype)

    def refresh(self) -> None:
        """Recompute the cached spectral-norm weights of the (eval-mode) decoder after its weights changed
        (in float32 on the first call, then cast to the decoder's precision)."""
        self._frozen.close()
        if not self.decoder.training:
            self._frozen.enter_context(freeze_spectral_norm(self.decoder))
        if self.decoder_dtype != torch.float32:
            cast_frozen_(self.decoder, self.decoder_dtype)

    # ------------------------------------------------------------------ helpers
    def _prep(self, x0: torch.Tensor) -> torch.Tensor:
        x0 = x0.to(self.device, torch.float32)
        if x0.dim() != 4 or x0.shape[1] != 3:
            raise ValueError(f"start frames must be (B, 3, H, W), got {tuple(x0.shape)}")
        if x0.shape[-2:] != (self.img_size, self.img_size):
            x0 = F.interpolate(x0, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False)
        return x0

    @torch.inference_mode()
    def embed(self, x0: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The cINN condition: the AE's mean embedding of x0 (+ the 30-d endpoint code with control)."""
        emb = embed_start_frame(self.conditioner, self._prep(x0), self.ae_size)  # (B, emb_dim)
        if self.control:
            if cond is None:
                raise ValueError("this model is conditioned on the end-effector position: pass cond (B, 3)")
            cond = cond.to(self.device, torch.float32).reshape(emb.shape[0], -1)
            emb = torch.cat([emb, endpoint_to_onehot(cond)], dim=1)  # (B, emb_dim + 30)
        elif cond is not None:
            raise ValueError("cond was given but this model has no control (Training.control is False)")
        return emb

    @torch.inference_mode()
    def decode(self, x0: torch.Tensor, z: torch.Tensor, seq_length: int = 16) -> torch.Tensor:
        """G(x0, z); for more frames than one pass yields, G is re-applied from the last generated frame
        with the same z, and the result is cut along time (the original cut the batch).

        ``x0`` (B, 3, H, W) and ``z`` (B, z_dim); a single start frame (1, 3, H, W) serves every ``z``
        (its SPADE conditioning is computed once and broadcast).
        """
        x0 = self._prep(x0)
        z = z.to(self.device, torch.float32)
        if x0.shape[0] not in (1, z.shape[0]):
            raise ValueError(f"decode got {x0.shape[0]} start frames for {z.shape[0]} latents")
        parts, total, dtype = [], 0, self.decoder_dtype
        cache = self.decoder.condition(x0.to(dtype))  # batch 1 or B: broadcast over z inside the generator
        while total < seq_length:
            video = self.decoder(None, z, cond_cache=cache)  # (B, T, 3, H, W), float32
            parts.append(video)
            total += video.shape[1]
            if total < seq_length:
                cache = self.decoder.condition(video[:, -1].to(dtype))
        return torch.cat(parts, dim=1)[:, :seq_length]

    @torch.inference_mode()
    def generate(self, x0: torch.Tensor, emb: torch.Tensor, residual: torch.Tensor,
                 seq_length: int = 16) -> torch.Tensor:
        """``G(x0, INN^-1(residual | emb))``: the cINN reverse and the decoder, given the embedding.

        ``residual`` (B, z_dim); ``emb`` (B or 1, D) and ``x0`` (B or 1, 3, H, W) are broadcast over it.
        """
        residual = residual.to(self.device, torch.float32)
        emb = emb.to(self.device, torch.float32).expand(residual.shape[0], -1)
        z = self.flow.reverse(residual, emb)  # (B, z_dim)
        return self.decode(x0, z, seq_length)

    def _residual(self, shape: tuple[int, ...], residual: torch.Tensor | None,
                  generator: torch.Generator | None) -> torch.Tensor:
        if residual is None:
            residual = torch.randn(*shape, generator=generator,
                                   device=generator.device if generator is not None else "cpu")
        if tuple(residual.shape[: len(shape) - 1]) != tuple(shape[:-1]):
            raise ValueError(f"residual must have shape {tuple(shape)}, got {tuple(residual.shape)}")
        return residual.to(self.device, torch.float32)

    # ------------------------------------------------------------------ public API
    @torch.inference_mode()
    def sample(self, x0: torch.Tensor, seq_length: int = 16, residual: torch.Tensor | None = None,
               cond: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Videos (B, seq_length, 3, H, W) in [-1, 1] from start frames x0 (B, 3, H, W) in [-1, 1].

        ``residual`` (B, z_dim) fixes the noise; ``cond`` (B, 3) is the BAIR end-effector position.
        """
        x0 = self._prep(x0)
        residual = self._residual((x0.shape[0], self.z_dim), residual, generator)
        return self.generate(x0, self.embed(x0, cond), residual, seq_length)

    @torch.inference_mode()
    def sample_many(self, x0: torch.Tensor, n: int, seq_length: int = 16, residual: torch.Tensor | None = None,
                    cond: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` videos per start frame: x0 (B, 3, H, W) or (3, H, W) -> (B, n, seq_length, 3, H, W).

        Each start frame is embedded and its SPADE conditioning computed once for its ``n`` samples; the
        result equals :meth:`sample` of the start frame repeated ``n`` times with the same residuals.
        ``residual`` (B, n, z_dim); ``cond`` (B, 3) with control.
        """
        if x0.dim() == 3:
            x0 = x0.unsqueeze(0)
        x0 = self._prep(x0)
        b = x0.shape[0]
        residual = self._residual((b, n, self.z_dim), residual, generator)
        emb = self.embed(x0, cond)  # (B, D)
        return torch.stack([self.generate(x0[i:i + 1], emb[i:i + 1], residual[i], seq_length) for i in range(b)])

    @torch.inference_mode()
    def transfer(self, query: torch.Tensor, x0: torch.Tensor, seq_length: int = 16,
                 use_mean: bool = True) -> torch.Tensor:
        """Put the motion of ``query`` (1, T, 3, H, W; frame 0 its start frame) on every start frame of
        ``x0`` (B, 3, H, W): z_q = q(z | query[1:]), eps = INN(z_q | query[0]), z' = INN^-1(eps | x0).

        Encoded are the frames after the start frame, at most the 16 a generator pass makes: frames 1-16 of a
        query of 17 or more frames (the clip length stage 1 is trained on), frames 1-15 of a 16-frame query
        (what the original's ``generate_transfer.py`` loads and encodes). Shorter queries are refused.
        ``use_mean`` (default, as the original) encodes with the posterior mean, else with a sample.
        """
        if self.control:
            raise ValueError("motion transfer is defined for models without control")
        query = query.to(self.device, torch.float32)
        if query.dim() == 4:
            query = query.unsqueeze(0)
        n = self.frames_per_pass
        if query.dim() != 5 or query.shape[0] != 1 or query.shape[2] != 3:
            raise ValueError(f"the query must be one video (1, T, 3, H, W), got {tuple(query.shape)}")
        if query.shape[1] < n:
            raise ValueError(f"the query video needs at least {n} frames (its start frame + {n - 1} or {n} "
                             f"frames to encode), got {query.shape[1]}")
        q = query[:, : n + 1]
        if q.shape[-2:] != (self.img_size, self.img_size):
            q = F.interpolate(q.flatten(0, 1), size=(self.img_size,) * 2, mode="bilinear",
                              align_corners=False).unflatten(0, q.shape[:2])
        z_sample, mu, _ = self.encoder(q[:, 1:])  # (1, z_dim)
        z_q = mu if use_mean else z_sample
        eps, _ = self.flow(z_q, self.embed(q[:, 0]))  # (1, z_dim)
        x0 = self._prep(x0)
        z = self.flow.reverse(eps.expand(x0.shape[0], -1), self.embed(x0))
        return self.decode(x0, z, seq_length)


def _frames_per_pass(cfg1: dict) -> int:
    """Frames the generator makes per pass: 4 doublings of T=1 (x2 x2 x2 and upsample_t) -> 16."""
    t = 8
    for u in cfg1["Decoder"]["upsample_t"]:
        t *= int(u)
    return t


def load_model(ckpt_path: str | Path, device: str | torch.device = "cpu", precision: str = "fp32") -> Pipeline:
    """Load a model folder holding ``config_stage2.yaml`` and ``cINN.pth`` and the frozen models it
    points to. A relative folder is tried as given, then relative to the repository (so
    ``load_model("models/demo/stage2")`` works from anywhere). Every missing file is reported by full
    path in one error, with the expected layout. Files are read with ``weights_only=True``
    (:mod:`utils.checkpoint`); NaN/Inf weights and a file of another model or configuration size are
    refused with an error naming the file.

    ``precision``: ``fp32`` (default, exact), ``bf16`` (the stage-1 decoder in bfloat16, CPU or CUDA) or
    ``fp16`` (CUDA only; :class:`utils.precision.PrecisionError` elsewhere).
    """
    device = torch.device(device)
    precision_dtype(precision, device)  # an unusable precision fails before anything is read
    folder = resolve(ckpt_path, None, [CONFIG_FILE])
    cfg_path = folder / CONFIG_FILE
    if not cfg_path.is_file():
        raise MissingFilesError(
            f"missing model files:\n  {cfg_path.resolve()}\n  {(folder / f'{CINN_FILE}.pth').resolve()}\n{LAYOUT}")
    config = load_config(cfg_path, CINN_SCHEMA)
    files = model_files(config, folder).check()
    first = load_first_stage(files, device)
    conditioner, cfg_ae = load_conditioner(files, device)
    flow = load_cinn(files, config, int(first["config"]["Decoder"]["z_dim"]), device)
    logger.info("loaded model from %s on %s (%s)", folder, device, precision)
    return Pipeline(flow, first["decoder"], first["encoder"], conditioner, config, first["config"], device,
                    ae_size=cfg_ae["AE"]["in_size"], precision=precision)
