"""BigGAN-style decoder of the stage-2 conditioning autoencoder (the original's
stage2_cINN/AE/modules/generator.py).

The layout follows the TF-Hub BigGAN port that the reference builds on, so that released
``Encoder_stage2``/decoder state dicts load with plain ``load_state_dict``:

* its own spectral norm (:class:`SpectralNorm`) stores the raw weight as ``weight_bar`` and two
  non-trainable vectors ``weight_u``, ``weight_v`` (both of length ``out_features``). Every forward
  runs one power iteration starting from the stored ``u`` and divides ``weight_bar`` by the resulting
  sigma; ``u``/``v`` are never written back (as in the reference), so the normalisation is a fixed
  function of ``weight_bar`` and gradients flow through the whole computation;
* ``G_linear`` maps the first latent split to ``4*4*16*ch`` values laid out channels-last (NHWC, the
  TF convention of the port) and permuted to ``(B, 16*ch, 4, 4)``;
* GBlocks: cond-BN -> ReLU -> nearest x2 -> conv0 -> cond-BN -> ReLU -> conv1, plus a nearest x2 ->
  1x1 ``conv_sc`` skip; self-attention before GBlock index 4 (only reached by the 128 px generator);
  final ``ScaledCrossReplicaBN`` (BatchNorm2d, eps 1e-4) -> ReLU -> ``colorize`` -> tanh.
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from stage2_cINN.modules.blocks import BasicFullyConnectedNet
from utils.config import ConfigError

logger = logging.getLogger(__name__)

CLASS_EMBEDDING_DIM = 1000  # size of the (soft) "class" vector fed to the generator
CLASS_PROJECTION_DIM = 128  # ``decoder.linear``: Linear(1000, 128, bias=False)
_SPLIT_SIZE = {64: 10, 128: 20}  # latent chunk per GBlock
_CHANNEL_MULT = {
    64: (16, 16, 8, 4, 1),  # input of GBlock 0, then the output of each of the 4 GBlocks
    128: (16, 16, 8, 4, 2, 1),
}
_ATTENTION_BEFORE_BLOCK = 4  # self-attention input has 2*ch channels


def _l2normalize(v: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """``v / (||v|| + eps)`` with the port's eps of 1e-4."""
    return v / (v.norm() + eps)


class SpectralNorm(nn.Module):
    """Spectral normalisation of a wrapped layer's ``weight`` from a fixed stored ``u`` (BigGAN port)."""

    def __init__(self, module: nn.Module, name: str = "weight", power_iterations: int = 1) -> None:
        super().__init__()
        self.module = module
        self.name = name
        self.power_iterations = power_iterations
        w = getattr(module, name)
        height = w.shape[0]
        u = _l2normalize(w.detach().new_empty(height).normal_(0, 1))
        v = _l2normalize(w.detach().new_empty(height).normal_(0, 1))  # length `height`, as stored
        del module._parameters[name]
        module.register_parameter(name + "_u", nn.Parameter(u, requires_grad=False))
        module.register_parameter(name + "_v", nn.Parameter(v, requires_grad=False))
        module.register_parameter(name + "_bar", nn.Parameter(w.detach().clone()))

    @property
    def weight_bar(self) -> nn.Parameter:
        """The raw (unnormalised) weight."""
        return getattr(self.module, self.name + "_bar")

    def sigma(self) -> torch.Tensor:
        """Spectral-norm estimate ``u^T W v`` after ``power_iterations`` steps from the stored ``u``."""
        u = getattr(self.module, self.name + "_u")
        w = self.weight_bar
        w_mat = w.reshape(w.shape[0], -1)  # (out, in*k*k)
        v = u
        for _ in range(self.power_iterations):
            v = _l2normalize(w_mat.t() @ u)  # (in*k*k,)
            u = _l2normalize(w_mat @ v)  # (out,)
        return torch.dot(u, w_mat @ v)

    def normalized_weight(self) -> torch.Tensor:
        """``weight_bar / sigma``."""
        return self.weight_bar / self.sigma()

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        # the normalised weight lives on the wrapped layer only during its call (no stale graph kept)
        setattr(self.module, self.name, self.normalized_weight())
        try:
            return self.module(*args)
        finally:
            delattr(self.module, self.name)


def snconv2d(in_ch: int, out_ch: int, kernel_size: int, padding: int = 0, bias: bool = True) -> SpectralNorm:
    """Spectrally normalised Conv2d (stride 1)."""
    return SpectralNorm(nn.Conv2d(in_ch, out_ch, kernel_size, 1, padding, bias=bias))


def snlinear(in_f: int, out_f: int, bias: bool = True) -> SpectralNorm:
    """Spectrally normalised Linear."""
    return SpectralNorm(nn.Linear(in_f, out_f, bias=bias))


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm2d(affine=False, eps 1e-4) followed by ``(1 + gamma(c)) * x + beta(c)``."""

    def __init__(self, num_features: int, cond_dim: int) -> None:
        super().__init__()
        self.num_features = num_features
        self.bn = nn.BatchNorm2d(num_features, affine=False, eps=1e-4)
        self.gamma_embed = snlinear(cond_dim, num_features, bias=False)
        self.beta_embed = snlinear(cond_dim, num_features, bias=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        out = self.bn(x)  # (B, C, H, W)
        gamma = 1 + self.gamma_embed(cond)  # (B, C)
        beta = self.beta_embed(cond)  # (B, C)
        return gamma[:, :, None, None] * out + beta[:, :, None, None]  # (B, C, H, W)


class GBlock(nn.Module):
    """Up-sampling residual block with conditional batch norm."""

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int) -> None:
        super().__init__()
        self.conv0 = snconv2d(in_ch, out_ch, 3, padding=1)
        self.conv1 = snconv2d(out_ch, out_ch, 3, padding=1)
        self.conv_sc = snconv2d(in_ch, out_ch, 1)
        self.HyperBN = ConditionalBatchNorm2d(in_ch, cond_dim)
        self.HyperBN_1 = ConditionalBatchNorm2d(out_ch, cond_dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.HyperBN(x, cond))  # (B, Cin, H, W)
        h = F.interpolate(h, scale_factor=2)  # (B, Cin, 2H, 2W), nearest
        h = self.conv0(h)  # (B, Cout, 2H, 2W)
        h = F.relu(self.HyperBN_1(h, cond))
        h = self.conv1(h)  # (B, Cout, 2H, 2W)
        skip = self.conv_sc(F.interpolate(x, scale_factor=2))  # (B, Cout, 2H, 2W)
        return h + skip


class SelfAttention(nn.Module):
    """SAGAN self-attention with 2x2 max-pooled keys/values and a zero-initialised gate ``gamma``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.theta = snconv2d(channels, channels // 8, 1, bias=False)
        self.phi = snconv2d(channels, channels // 8, 1, bias=False)
        self.g = snconv2d(channels, channels // 2, 1, bias=False)
        self.o_conv = snconv2d(channels // 2, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        n = h * w
        theta = self.theta(x).reshape(b, -1, n).transpose(1, 2)  # (B, N, C/8)
        phi = F.max_pool2d(self.phi(x), 2).reshape(b, -1, n // 4)  # (B, C/8, N/4)
        attn = torch.softmax(torch.bmm(theta, phi), dim=-1)  # (B, N, N/4)
        g = F.max_pool2d(self.g(x), 2).reshape(b, -1, n // 4)  # (B, C/2, N/4)
        attn_g = torch.bmm(g, attn.transpose(1, 2)).reshape(b, -1, h, w)  # (B, C/2, H, W)
        return x + self.gamma * self.o_conv(attn_g)  # (B, C, H, W)


class BigGANGenerator(nn.Module):
    """BigGAN generator for 64 or 128 px with a variable-size latent code and a soft class vector."""

    def __init__(self, z_dim: int, in_size: int, ch: int = 96, n_class: int = CLASS_EMBEDDING_DIM) -> None:
        super().__init__()
        if in_size not in _CHANNEL_MULT:
            raise ConfigError(f"AE.in_size: the BigGAN decoder supports in_size 64 or 128, got {in_size}")
        mults = _CHANNEL_MULT[in_size]
        n_blocks = len(mults) - 1
        self.split_size = _SPLIT_SIZE[in_size]
        self.first_split = z_dim - n_blocks * self.split_size
        if self.first_split <= 0:
            raise ConfigError(f"AE.z_dim={z_dim} too small for {n_blocks} latent splits of {self.split_size}")
        self.first_view = mults[0] * ch
        cond_dim = self.split_size + CLASS_PROJECTION_DIM

        self.linear = nn.Linear(n_class, CLASS_PROJECTION_DIM, bias=False)
        self.G_linear = snlinear(self.first_split, 4 * 4 * self.first_view)
        self.GBlock = nn.ModuleList(
            GBlock(mults[i] * ch, mults[i + 1] * ch, cond_dim) for i in range(n_blocks)
        )
        self.sa_id = _ATTENTION_BEFORE_BLOCK
        self.attention = SelfAttention(2 * ch)  # exists at 64 px too (weights in the state dict), unused
        self.ScaledCrossReplicaBN = nn.BatchNorm2d(ch, eps=1e-4)
        self.colorize = snconv2d(ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor, class_vector: torch.Tensor) -> torch.Tensor:
        codes = torch.split(z, [self.first_split] + [self.split_size] * len(self.GBlock), dim=1)
        class_emb = self.linear(class_vector)  # (B, 128)
        out = self.G_linear(codes[0])  # (B, 16*16*ch)
        out = out.reshape(-1, 4, 4, self.first_view).permute(0, 3, 1, 2)  # (B, 16ch, 4, 4), NHWC layout
        for i, (code, block) in enumerate(zip(codes[1:], self.GBlock)):
            if i == self.sa_id:
                out = self.attention(out)  # (B, 2ch, 64, 64) at 128 px
            out = block(out, torch.cat([code, class_emb], dim=1))  # (B, C_i, 2H, 2W)
        out = F.relu(self.ScaledCrossReplicaBN(out))  # (B, ch, S, S)
        return torch.tanh(self.colorize(out))  # (B, 3, S, S)


class ClassUp(BasicFullyConnectedNet):
    """MLP z -> 2000 -> 2000 -> 2000 -> 1000 (LeakyReLU 0.01) followed by a softmax over the 1000 outputs."""

    def __init__(self, z_dim: int, hidden: int = 2 * CLASS_EMBEDDING_DIM, out_dim: int = CLASS_EMBEDDING_DIM,
                 depth: int = 2) -> None:
        super().__init__(z_dim, depth=depth, hidden_dim=hidden, out_dim=out_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.main(z), dim=1)  # (B, 1000)


class BigGANDecoder(nn.Module):
    """AE decoder: ``x_hat = G(z, softmax(MLP(z)))`` with G the BigGAN generator; output in [-1, 1]."""

    def __init__(self, z_dim: int, in_size: int, ch: int = 96, use_actnorm_in_dec: bool = False) -> None:
        super().__init__()
        if use_actnorm_in_dec:
            # no shipped config enables it and its layout cannot be read off any released state dict
            raise NotImplementedError("AE.use_actnorm_in_dec=True is not supported (False in every config)")
        self.z_dim = z_dim
        self.map_to_class_embedding = ClassUp(z_dim)
        self.decoder = BigGANGenerator(z_dim, in_size, ch=ch)

    @property
    def last_layer(self) -> nn.Parameter:
        """Raw weight of the final colour conv (used for the adaptive GAN weight)."""
        return self.decoder.colorize.weight_bar

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z.reshape(z.shape[0], self.z_dim)  # (B, z_dim); accepts (B, z_dim, 1, 1)
        class_vector = self.map_to_class_embedding(z)  # (B, 1000)
        return self.decoder(z, class_vector)  # (B, 3, in_size, in_size)
