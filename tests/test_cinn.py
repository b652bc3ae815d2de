"""Conditional INN (stage 2b): invertibility, exact log-dets, state-dict layout, control code, NLL, NaN guard."""
import json
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from stage2_cINN.modules import (
    ConditionalDoubleVectorCoupling,
    ConditionalFlow,
    ConditionalFlowBlock,
    InvertibleActNorm,
    InvLeakyReLU,
    Shuffle,
    build_cinn,
    endpoint_to_onehot,
    nll_loss,
)
from stage2_cINN.modules.control import POS_MAX, POS_MIN
from training.finite import FiniteMonitor
from utils.config import yaml_load

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny tensors: one intra-op thread

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ["bair", "landscape", "iPER", "DTDB_fire", "DTDB_clouds", "DTDB_vegetation", "DTDB_waterfall"]
C, D, HIDDEN, DEPTH, B = 8, 5, 16, 1, 6  # small sizes: latent dim, condition dim, MLP width/depth, batch




def _perturb(module: nn.Module, std: float = 0.05) -> None:
    """Move every parameter away from its initial value (ActNorm scales multiplicatively, staying non-zero)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("scale"):
                p.mul_(torch.exp(std * 4 * torch.randn_like(p)))
            else:
                p.add_(std * torch.randn_like(p))


def _data(dtype: torch.dtype, n: int = B, cond_dim: int = D) -> tuple[Tensor, Tensor]:
    """Non-zero-mean, non-unit-scale latents with mixed signs, and conditions."""
    x = 1.5 * torch.randn(n, C, dtype=dtype) + torch.linspace(-1.0, 2.0, C, dtype=dtype)
    return x, torch.randn(n, cond_dim, dtype=dtype)


def _make(kind: str) -> tuple[nn.Module, int]:
    """Build one invertible piece (or flow) with non-trivial weights; returns (module, condition dim)."""
    if kind == "actnorm":
        return InvertibleActNorm(C), D
    if kind == "leaky_relu":
        return InvLeakyReLU(), D
    if kind == "coupling":
        return ConditionalDoubleVectorCoupling(C, D, HIDDEN, DEPTH), D
    if kind == "coupling_cond_only":
        return ConditionalDoubleVectorCoupling(C, D, HIDDEN, DEPTH, cond_only=True), D
    if kind == "shuffle":
        return Shuffle(C), D
    if kind == "block":
        return ConditionalFlowBlock(C, D, HIDDEN, DEPTH), D
    if kind == "flow":
        return ConditionalFlow(C, D, HIDDEN, DEPTH, n_flows=3), D
    if kind == "flow_control":
        return ConditionalFlow(C, D + 30, HIDDEN, DEPTH, n_flows=5, control=True), D + 30
    raise ValueError(kind)


KINDS = ["actnorm", "leaky_relu", "coupling", "coupling_cond_only", "shuffle", "block", "flow", "flow_control"]


def _prepared(kind: str, dtype: torch.dtype) -> tuple[nn.Module, Tensor, Tensor]:
    """Module initialised from non-zero-mean data (ActNorm), then perturbed, in eval mode, with inputs."""
    module, cond_dim = _make(kind)
    module = module.to(dtype)
    x, cond = _data(dtype, cond_dim=cond_dim)
    module.train()
    with torch.no_grad():
        module(x, cond)  # data-dependent ActNorm initialisation
    _perturb(module)
    module.eval()
    x, cond = _data(dtype, cond_dim=cond_dim)  # fresh inputs, not the initialisation batch
    return module, x, cond


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_invertibility(kind: str, dtype: torch.dtype, tol: float) -> None:
    module, x, cond = _prepared(kind, dtype)
    with torch.no_grad():
        y, ld = module(x, cond)
        x_rec, ld_rev = module(y, cond, reverse=True)
    assert y.shape == x.shape and ld.shape == (B,) and ld_rev.shape == (B,)
    assert y.dtype == dtype and ld.dtype == dtype
    if kind != "shuffle":
        assert (y - x).abs().max() > 0.1, "the map under test must not be (close to) the identity"
    assert (x_rec - x).abs().max().item() < tol * max(1.0, x.abs().max().item())
    # the reverse direction reports the log-det of the inverse map
    assert (ld_rev + ld).abs().max().item() < tol * max(1.0, ld.abs().max().item())
    if isinstance(module, ConditionalFlow):
        assert (module.reverse(y, cond) - x).abs().max().item() < tol * max(1.0, x.abs().max().item())


def _jacobian_logdets(module: nn.Module, x: Tensor, cond: Tensor, reverse: bool) -> Tensor:
    """``log|det J|`` of the map, one sample at a time, from the autograd Jacobian."""
    out = []
    for b in range(x.shape[0]):
        def f(v: Tensor, b: int = b) -> Tensor:
            return module(v[None], cond[b:b + 1], reverse=reverse)[0][0]
        jac = torch.autograd.functional.jacobian(f, x[b])  # (C, C)
        sign, logabs = torch.linalg.slogdet(jac)
        assert sign != 0
        out.append(logabs)
    return torch.stack(out)


def _logdet_mismatch(module: nn.Module, x: Tensor, cond: Tensor, reverse: bool = False) -> float:
    with torch.no_grad():
        _, ld = module(x, cond, reverse=reverse)
    return (ld - _jacobian_logdets(module, x, cond, reverse)).abs().max().item()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reverse", [False, True])
def test_logdet_equals_jacobian(kind: str, reverse: bool) -> None:
    module, x, cond = _prepared(kind, torch.float64)
    if kind in ("leaky_relu", "block", "flow", "flow_control"):
        assert (x < 0).any() and (x > 0).any(), "inputs must exercise both branches of the leaky ReLU"
    assert _logdet_mismatch(module, x, cond, reverse) < 1e-9


def test_jacobian_check_detects_dropped_leaky_relu_term(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop the leaky ReLU log-det, as the reference did: the Jacobian check must then fail."""
    module, x, cond = _prepared("flow", torch.float64)
    assert _logdet_mismatch(module, x, cond) < 1e-9
    original = InvLeakyReLU.forward

    def reference_forward(self, x, cond=None, reverse=False):
        out, _ = original(self, x, cond, reverse)
        return out, torch.zeros_like(out[:, 0])

    monkeypatch.setattr(InvLeakyReLU, "forward", reference_forward)
    # each negative entry contributes log(0.9) ~ -0.105; 3 blocks x 8 dims give far more than that
    assert _logdet_mismatch(module, x, cond) > 0.1


def test_actnorm_data_dependent_init() -> None:
    act = InvertibleActNorm(C)
    x = 3.0 * torch.randn(64, C) + 5.0
    act.eval()
    act(x)
    assert int(act.initialized) == 0, "no initialisation outside training"
    assert torch.equal(act.loc, torch.zeros_like(act.loc))
    act.train()
    y, ld = act(x)
    assert int(act.initialized) == 1 and act.initialized.dtype == torch.uint8
    assert act.loc.shape == (1, C, 1, 1) and act.scale.shape == (1, C, 1, 1)
    torch.testing.assert_close(y.mean(0), torch.zeros(C), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(0), torch.ones(C), atol=1e-4, rtol=0)
    torch.testing.assert_close(ld, torch.log(1.0 / (x.std(0) + 1e-6)).sum().expand(64))
    scale = act.scale.detach().clone()
    act(x + 10.0)  # already initialised: parameters stay
    assert torch.equal(act.scale, scale)
    fresh = InvertibleActNorm(C).train()
    fresh.load_state_dict(act.state_dict())  # a loaded (initialised) ActNorm is not re-initialised
    fresh(x - 7.0)
    assert torch.equal(fresh.scale, scale)


def test_leaky_relu_values() -> None:
    x = torch.tensor([[-2.0, -0.5, 0.0, 3.0]], dtype=torch.float64)
    y, ld = InvLeakyReLU()(x)
    torch.testing.assert_close(y, torch.tensor([[-1.8, -0.45, 0.0, 3.0]], dtype=torch.float64))
    torch.testing.assert_close(ld, torch.tensor([2 * math.log(0.9)], dtype=torch.float64))


# ---------------------------------------------------------------- state-dict layout (released checkpoints)

def _configs(dataset: str) -> tuple[dict, int]:
    stage2 = yaml_load((ROOT / "stage2_cINN/configs" / f"{dataset}_config.yaml").read_text())
    stage1 = yaml_load((ROOT / "stage1_VAE/configs" / f"{dataset}_config.yaml").read_text())
    return stage2, int(stage1["Decoder"]["z_dim"])


def _shapes(module: nn.Module) -> dict:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def manifest(fixtures_dir: Path) -> dict:
    return json.loads((fixtures_dir / "state_dict_manifest.json").read_text())


@pytest.mark.parametrize("dataset", DATASETS)
def test_state_dict_matches_manifest(dataset: str, manifest: dict) -> None:
    stage2, z_dim = _configs(dataset)
    # released config_stage2.yaml files lack Training.control: a missing key means no control
    stage2["Training"].pop("control", None)
    with torch.device("meta"):
        flow = build_cinn(stage2, z_dim)
    assert not flow.control
    assert _shapes(flow) == manifest[dataset]["stage2.cinn"]


def test_state_dict_matches_manifest_control(manifest: dict) -> None:
    stage2, z_dim = _configs("bair")
    stage2["Training"]["control"] = True
    with torch.device("meta"):
        flow = build_cinn(stage2, z_dim)
    assert flow.control and flow.cond_channels == stage2["Conditioning_Model"]["z_dim"] + 30
    assert _shapes(flow) == manifest["bair"]["stage2.cinn_control"]


def test_checkpoint_roundtrip_strict(tmp_path: Path) -> None:
    """``{'state_dict': flow.state_dict()}`` loads strictly into a fresh flow and gives the same outputs."""
    flow, x, cond = _prepared("flow_control", torch.float32)
    torch.save({"state_dict": flow.state_dict()}, tmp_path / "cINN.pth")
    other = ConditionalFlow(C, D + 30, HIDDEN, DEPTH, n_flows=5, control=True)
    other.load_state_dict(torch.load(tmp_path / "cINN.pth")["state_dict"], strict=True)
    other.eval()
    with torch.no_grad():
        torch.testing.assert_close(other(x, cond), flow(x, cond), rtol=0, atol=0)
    assert other.sub_layers[0].norm_layer.initialized.dtype == torch.uint8


# ---------------------------------------------------------------- control (BAIR end-effector)

def _positions(p: list[list[float]]) -> Tensor:
    """Positions whose normalised coordinates are ``p``."""
    return torch.tensor(p, dtype=torch.float64) * torch.tensor(POS_MAX, dtype=torch.float64) \
        + torch.tensor(POS_MIN, dtype=torch.float64)


def test_endpoint_onehot_values_and_clamping() -> None:
    p = [[0.0, 0.55, 0.999],  # bins 0, 5, 9
         [0.3, 0.3001, 0.9],  # exact tenths fall one bin lower (the -1e-4): 2, 3 (just above), 8
         [-0.5, 1.5, 1.0],  # out of range: clamped to 0 and 9; p = 1.0 -> 9
         [-0.05, 0.12, 12.0]]  # -0.05 -> int(-0.5001) = 0 (truncation toward zero); 1; clamped 9
    expected = torch.tensor([[0, 5, 9], [2, 3, 8], [0, 9, 9], [0, 1, 9]])
    code = endpoint_to_onehot(_positions(p))
    assert code.shape == (4, 30) and code.dtype == torch.float64
    assert torch.equal(code.view(4, 3, 10).argmax(-1), expected)
    assert torch.equal(code.view(4, 3, 10).sum(-1), torch.ones(4, 3, dtype=torch.float64))
    assert set(code.unique().tolist()) == {0.0, 1.0}


def test_endpoint_onehot_matches_scalar_formula() -> None:
    pos = torch.rand(50, 3, dtype=torch.float64) * 1.2 - 0.1  # raw positions around the workspace
    code = endpoint_to_onehot(pos.float())
    assert code.dtype == torch.float32
    for b in range(pos.shape[0]):
        for k in range(3):
            p = (pos[b, k].item() - POS_MIN[k]) / POS_MAX[k]
            idx = min(max(int(p * 10 - 1e-4), 0), 9)
            assert code[b, 10 * k + idx] == 1.0 and code[b, 10 * k:10 * k + 10].sum() == 1.0


# ---------------------------------------------------------------- objective and NaN guard

def test_nll_loss_definition() -> None:
    eps = torch.randn(7, 6, dtype=torch.float64)
    logdet = torch.randn(7, dtype=torch.float64)
    log_prob = torch.distributions.Normal(0.0, 1.0).log_prob(eps).sum(1) + logdet
    expected = -log_prob.mean() - 0.5 * 6 * math.log(2 * math.pi)  # NLL without the Gaussian constant
    torch.testing.assert_close(nll_loss(eps, logdet), expected)
    torch.testing.assert_close(nll_loss(eps[:, :, None, None], logdet), expected)


def test_nll_falls_on_conditional_gaussian() -> None:
    """A small cINN fits z | c ~ N(A c + 3, L L^T); train and held-out NLL both drop clearly."""
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(C, D, generator=gen)
    chol = torch.tril(torch.randn(C, C, generator=gen)) * 0.3 + 0.5 * torch.eye(C)

    def sample(n: int) -> tuple[Tensor, Tensor]:
        cond = torch.randn(n, D, generator=gen)
        return cond @ a.T + torch.randn(n, C, generator=gen) @ chol.T + 3.0, cond

    z, cond = sample(256)
    z_val, cond_val = sample(512)
    flow = ConditionalFlow(C, D, 32, 1, n_flows=4).train()
    opt = torch.optim.Adam(flow.parameters(), lr=2e-4)
    losses = []
    for step in range(200):
        loss = nll_loss(*flow(z, cond))
        if step == 0:
            with torch.no_grad():
                val_start = nll_loss(*flow(z_val, cond_val)).item()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    flow.eval()
    with torch.no_grad():
        train_end = nll_loss(*flow(z, cond)).item()
        val_end = nll_loss(*flow(z_val, cond_val)).item()
    optimum = 0.5 * torch.logdet(chol @ chol.T).item() + C / 2  # expected NLL under the true density
    assert all(math.isfinite(v) for v in losses)
    assert train_end < losses[0] - 5.0
    assert val_end < val_start - 4.0
    assert val_end > optimum - 0.5, "held-out NLL cannot beat the true density by much"


def test_non_finite_guard() -> None:
    guard = FiniteMonitor(torch.device("cpu"), "cINN", max_skips=3)
    assert guard.allow(torch.tensor(1.0))
    assert not guard.allow(torch.tensor(float("nan")))
    assert not guard.allow(torch.tensor(float("inf")))
    assert (guard.consecutive, guard.total_skipped) == (2, 2)
    assert guard.allow(torch.tensor(0.5))  # a finite loss resets the streak
    assert (guard.consecutive, guard.total_skipped) == (0, 2)
    assert not guard.allow(float("nan"))
    assert not guard.allow(torch.tensor(float("-inf")))
    with pytest.raises(RuntimeError, match=r"3 consecutive.*learning rate.*clipping.*data"):
        guard.allow(torch.tensor(float("nan")))
    assert guard.total_skipped == 5


def test_non_finite_guard_in_a_training_step() -> None:
    """NaN latents make the loss NaN: the guard skips the step and the weights stay untouched."""
    flow, x, cond = _prepared("flow", torch.float32)
    flow.train()
    opt = torch.optim.SGD(flow.parameters(), lr=0.1)
    before = {k: v.clone() for k, v in flow.state_dict().items()}
    x[0, 0] = float("nan")
    guard = FiniteMonitor(torch.device("cpu"), "cINN", max_skips=2)
    loss = nll_loss(*flow(x, cond))
    if guard.allow(loss):
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert guard.total_skipped == 1
    assert all(torch.equal(before[k], v) for k, v in flow.state_dict().items())


# ---------------------------------------------------------------- devices

@pytest.mark.cuda
def test_runs_on_cuda() -> None:
    cuda = torch.device("cuda")
    flow, x, cond = _prepared("flow_control", torch.float32)
    flow = flow.to(cuda)
    x, cond = x.to(cuda), cond.to(cuda)
    with torch.no_grad():
        y, ld = flow(x, cond)
        x_rec = flow.reverse(y, cond)
    assert y.device.type == "cuda" and ld.device.type == "cuda"
    assert (x_rec - x).abs().max().item() < 1e-4
    code = endpoint_to_onehot(torch.rand(4, 3, device=cuda))
    assert code.device.type == "cuda" and code.shape == (4, 30)
    fresh = InvertibleActNorm(C).to(cuda).train()
    fresh(x)
    assert int(fresh.initialized) == 1


def test_actnorm_initialises_once_without_reading_its_buffer_again():
    """Data-dependent init on the first training batch only; later training forwards do not read the
    ``initialized`` buffer (a device sync on CUDA); loading a state dict makes it look again."""
    g = torch.Generator().manual_seed(0)
    norm = InvertibleActNorm(4).train()
    x = torch.randn(16, 4, generator=g) * 3 + 1
    y, _ = norm(x)
    torch.testing.assert_close(y.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    loc = norm.loc.detach().clone()
    norm.initialized.zero_()  # not a load: the Python-side flag stands, nothing is re-initialised
    norm(torch.randn(16, 4, generator=g) * 5)
    assert torch.equal(norm.loc.detach(), loc)
    norm.load_state_dict(InvertibleActNorm(4).state_dict())  # an uninitialised state: the next batch initialises
    norm(x * 2)
    assert int(norm.initialized) == 1
    torch.testing.assert_close(norm.loc.detach(), -(x * 2).mean(0).view_as(loc))
