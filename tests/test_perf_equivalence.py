"""Every performance path gives the numbers of the plain computation (float32 rounding)."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from blocks.spectral_norm import freeze_spectral_norm
from stage1_VAE.modules.decoder import LRELU_SLOPE, Generator
from stage1_VAE.modules.resnet3d import maybe_sn
from stage1_VAE.modules.time_conv import TimeRepeatConv3d, repeated_time_conv3d, single_frame_conv3d
from utils.compile import maybe_compile
from utils.memory_format import set_channels_last


@pytest.mark.parametrize("frames,repeat,bias", [(1, 2, True), (3, 2, True), (4, 2, False), (2, 3, True), (1, 3, False)])
def test_repeated_time_conv_equals_conv_of_repeated_input(frames, repeat, bias):
    g = torch.Generator().manual_seed(frames * 10 + repeat)
    x = torch.randn(2, 5, frames, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 5, 3, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True) if bias else None
    ref = F.conv3d(x.repeat_interleave(repeat, dim=2), w, b, padding=1)
    got = repeated_time_conv3d(x, w, b, (1, 1, 1), repeat)
    torch.testing.assert_close(got, ref)
    grad_out = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    inputs = [t for t in (x, w, b) if t is not None]
    torch.testing.assert_close(torch.autograd.grad(got, inputs, grad_out), torch.autograd.grad(ref, inputs, grad_out))


def test_single_frame_conv_equals_conv3d():
    x, w, b = torch.randn(2, 5, 1, 6, 6), torch.randn(4, 5, 3, 3, 3), torch.randn(4)
    torch.testing.assert_close(single_frame_conv3d(x, w, b, (1, 1, 1)), F.conv3d(x, w, b, padding=1),
                               rtol=1e-5, atol=1e-5)


def test_time_repeat_conv_module_paths_and_tap_cache():
    conv = maybe_sn(TimeRepeatConv3d(5, 4, 3, 1, 1), True).eval()
    x = torch.randn(2, 5, 3, 6, 6)
    with torch.no_grad(), freeze_spectral_norm(conv):
        w = conv.weight
        ref = F.conv3d(x.repeat_interleave(2, dim=2), w, conv.bias, padding=1)
        torch.testing.assert_close(conv(x, 2), ref, rtol=1e-5, atol=1e-5)
        cached = conv._tap_cache
        assert cached is not None and cached[0]() is w
        torch.testing.assert_close(conv(x, 2), ref, rtol=1e-5, atol=1e-5)
        assert conv._tap_cache is cached  # reused
        conv.bias.add_(1.0)  # an in-place change bumps the version: the cache is rebuilt
        torch.testing.assert_close(conv(x, 2), ref + 1.0, rtol=1e-5, atol=1e-5)
        assert conv._tap_cache is not cached
        torch.testing.assert_close(conv(x[:, :, :1]), F.conv3d(x[:, :, :1], w, conv.bias, padding=1),
                                   rtol=1e-5, atol=1e-5)
    strided = TimeRepeatConv3d(5, 4, 3, stride=2, padding=1)  # no fast path: plain convolution
    torch.testing.assert_close(strided(x, 2), strided._conv_forward(x.repeat_interleave(2, 2), strided.weight,
                                                                     strided.bias))


def _plain_forward(gen: Generator, x0: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The generator as the original writes it: upsample, SPADE, conv, AdaIN, conv, shortcut (no fast paths).
    Reads ``conv.weight`` as set by the spectral-norm hooks (call under :func:`freeze_spectral_norm`)."""
    def conv(m, h):
        return F.conv3d(h, m.weight, m.bias, padding=m.padding)

    x = gen.fc(z).view(z.shape[0], 16 * gen.nf, 1, 4, 4)
    for block, (st, ss) in zip(gen.blocks(), gen.block_scales):
        if st != 1 or ss != 1:
            x = F.interpolate(x, scale_factor=(st, ss, ss), mode="nearest")
        x0_s = F.interpolate(x0, size=x.shape[-2:], mode="bilinear", align_corners=True)
        gamma, beta = block.norm_0.modulation(x0_s)
        x_s = conv(block.conv_s, block.norm_s(x)) if block.learned_shortcut else x
        h = block.norm_0.norm(x) * (1 + gamma.unsqueeze(2)) + beta.unsqueeze(2)
        dx = conv(block.conv_0, F.leaky_relu(h, LRELU_SLOPE))
        g, b = block.norm_1.linear(z)[:, :, None, None, None].chunk(2, dim=1)
        dx = conv(block.conv_1, F.leaky_relu(g * F.instance_norm(dx) + b, LRELU_SLOPE))
        x = x_s + dx
    return torch.tanh(conv(gen.conv_img, F.leaky_relu(x, LRELU_SLOPE))).transpose(1, 2)


@pytest.mark.parametrize("upsample_s,upsample_t", [([1, 1], [1, 1]), ([1, 1], [3, 1])])
def test_generator_equals_plain_forward(upsample_s, upsample_t):
    torch.manual_seed(0)
    gen = Generator(z_dim=8, channel_factor=8, upsample_s=upsample_s, upsample_t=upsample_t).eval()
    size = gen.image_size
    x0, z = torch.rand(2, 3, size, size) * 2 - 1, torch.randn(2, 8)
    with torch.no_grad():
        fast = gen(x0, z)  # spectral-norm hooks active
        with freeze_spectral_norm(gen):
            frozen = gen(x0, z)
            plain = _plain_forward(gen, x0, z)
    torch.testing.assert_close(frozen, fast, rtol=0, atol=0)  # the hook computes exactly the frozen weight
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-4)  # the golden tests' float32 tolerance


def _plain_grads(gen: Generator, x0: torch.Tensor, z: torch.Tensor, fast: bool,
                 dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Parameter gradients of a weighted sum of the output, training mode (one power iteration)."""
    g = copy.deepcopy(gen).to(dtype).train()  # same u vectors: the same power iteration in every variant
    x0, z = x0.to(dtype), z.to(dtype)
    if fast:
        out = g(x0, z)
    else:
        for m in g.modules():  # one power iteration, as the forward's hooks would do
            for hook in list(m._forward_pre_hooks.values()):
                hook(m, None)
        out = _plain_forward(g, x0, z)
    (out * torch.linspace(-1, 1, out.numel(), dtype=dtype).view_as(out)).sum().backward()
    return {n: p.grad.double() for n, p in g.named_parameters()}


def test_generator_gradients_equal_plain_forward():
    """The fast path's gradients are as close to a float64 computation as the plain float32 path's."""
    torch.manual_seed(1)
    gen = Generator(z_dim=8, channel_factor=8, upsample_s=[1, 1], upsample_t=[1, 1])
    x0, z = torch.rand(1, 3, 32, 32) * 2 - 1, torch.randn(1, 8)
    fast, plain = _plain_grads(gen, x0, z, True), _plain_grads(gen, x0, z, False)
    exact = _plain_grads(gen, x0, z, False, torch.float64)
    for name, ref in exact.items():
        if ref.norm() < 1e-8:  # e.g. biases in front of an instance norm: exactly zero, float32 noise
            continue
        err_fast, err_plain = (fast[name] - ref).norm().item(), (plain[name] - ref).norm().item()
        assert err_fast <= 3 * err_plain + 1e-5 * ref.norm().item() + 1e-9, (name, err_fast, err_plain)


def test_cached_broadcast_conditioning_equals_direct():
    torch.manual_seed(2)
    gen = Generator(z_dim=8, channel_factor=8, upsample_s=[1, 1], upsample_t=[1, 1]).eval()
    x0, z = torch.rand(1, 3, 32, 32) * 2 - 1, torch.randn(4, 8)
    with torch.inference_mode():
        direct = gen(x0.expand(4, -1, -1, -1), z)
        cached = gen(None, z, cond_cache=gen.condition(x0))
    torch.testing.assert_close(cached, direct, rtol=1e-4, atol=1e-4)


def test_channels_last_equals_default_on_cpu():
    torch.manual_seed(3)
    gen = Generator(z_dim=8, channel_factor=8, upsample_s=[1, 1], upsample_t=[1, 1]).eval()
    fast = set_channels_last(copy.deepcopy(gen))
    assert fast.memory_format == torch.channels_last_3d
    assert fast.g_1.conv_0.weight_orig.is_contiguous(memory_format=torch.channels_last_3d)
    x0, z = torch.rand(2, 3, 32, 32) * 2 - 1, torch.randn(2, 8)
    with torch.no_grad():
        torch.testing.assert_close(fast(x0, z), gen(x0, z), rtol=1e-4, atol=1e-4)
    back = set_channels_last(fast, enabled=False)
    assert back.memory_format == torch.contiguous_format and back.g_1.conv_0.weight_orig.is_contiguous()


def test_freeze_spectral_norm_restores_hooks_and_refuses_training_mode():
    gen = Generator(z_dim=8, channel_factor=8, upsample_s=[1, 1], upsample_t=[1, 1])
    n_hooks = sum(len(m._forward_pre_hooks) for m in gen.modules())
    with pytest.raises(RuntimeError, match="eval"):
        with freeze_spectral_norm(gen):
            pass
    gen.eval()
    keys = set(gen.state_dict())
    with freeze_spectral_norm(gen):
        assert sum(len(m._forward_pre_hooks) for m in gen.modules()) == 0
        assert set(gen.state_dict()) == keys
    assert sum(len(m._forward_pre_hooks) for m in gen.modules()) == n_hooks


def test_maybe_compile_disabled_is_identity():
    gen = Generator(z_dim=8, channel_factor=8, upsample_s=[1, 1], upsample_t=[1, 1])
    assert maybe_compile(gen, False) is gen


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    from stage2_cINN.pipeline import load_model
    from tests.helpers import write_tiny_model

    return load_model(write_tiny_model(tmp_path_factory.mktemp("released"))["dirs"]["stage2"])


def test_sample_many_equals_repeated_sample(pipe):
    x0 = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4)) * 2 - 1
    residual = torch.randn(2, 2, pipe.z_dim, generator=torch.Generator().manual_seed(5))
    many = pipe.sample_many(x0, 2, residual=residual)
    assert many.shape == (2, 2, 16, 3, 32, 32)
    # the perturbed tiny model amplifies rounding (batch 1 vs batch 2 convolutions of x0) to ~1e-4 here
    for i in range(2):
        single = pipe.sample(x0[i:i + 1].expand(2, -1, -1, -1), 16, residual=residual[i])
        torch.testing.assert_close(many[i], single, rtol=1e-3, atol=1e-3)
        assert (many[i] - single).abs().mean() < 1e-5
    assert pipe.sample_many(x0[0], 2, seq_length=20).shape == (1, 2, 20, 3, 32, 32)  # (3, H, W); second pass


def test_fast_generator_does_fewer_convolution_flops_than_the_plain_forward():
    """The temporal-repeat and one-frame paths remove work, not only time: the BAIR-shaped generator at width
    8 needs 16 % fewer FLOPs than the literal forward (``torch.utils.flop_counter``; deterministic; 20 %
    at the real width 64, where the fixed-size SPADE convolutions weigh less)."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(4)
    gen = Generator(z_dim=8, channel_factor=8, upsample_s=[2, 1], upsample_t=[2, 1]).eval()
    x0, z = torch.rand(1, 3, 64, 64) * 2 - 1, torch.randn(1, 8)
    flops = {}
    with torch.no_grad(), freeze_spectral_norm(gen):
        for name, fn in (("fast", lambda: gen(x0, z)), ("plain", lambda: _plain_forward(gen, x0, z))):
            with FlopCounterMode(display=False) as counter:
                fn()
            flops[name] = counter.get_total_flops()
    assert flops["fast"] < 0.85 * flops["plain"], flops
