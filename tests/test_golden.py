"""Golden tensors from the reference implementation: every ``golden_*.pt`` fixture is reproduced
(stage-1 networks, the cINN with its exact log-det, and the full sampling path).

A fixture holds ``config_stage1``, ``config_cinn``, ``state_dict`` (per network), ``inputs`` and ``outputs``
(keys such as ``decoder(x0,z)``). The fixture alone drives each check; nothing is special-cased per file.
"""
import os
from pathlib import Path

import pytest
import torch

from stage1_VAE.modules import build_stage1
from stage2_cINN.modules import InvLeakyReLU, build_cinn

_REPO_ROOT = Path(__file__).resolve().parents[1]
_FIXTURES = Path(os.environ.get("I2V_FIXTURES", _REPO_ROOT.parent / "shared" / "fixtures"))
BUNDLED = Path(__file__).resolve().parent / "fixtures"  # golden_tiny32.pt: a fresh clone runs an exact-match test


def golden_fixtures(*folders: Path) -> dict[str, Path]:
    """``golden_*.pt`` by file name, from the first folder holding each (absent folders are skipped)."""
    found: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.glob("golden_*.pt")) if folder.is_dir() else []:
            found.setdefault(path.name, path)
    return found


_GOLDEN = golden_fixtures(BUNDLED, _FIXTURES)  # the larger shared fixtures (golden_bair64_small.pt) are optional
_PARAMS = [pytest.param(path, id=name) for name, path in sorted(_GOLDEN.items())]

RTOL = 1e-4


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, name: str) -> None:
    """float32 agreement: ~1e-4 relative to the element and to the tensor's scale."""
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    scale = max(expected.abs().max().item(), 1e-6)
    torch.testing.assert_close(actual, expected, rtol=RTOL, atol=RTOL * scale, msg=lambda m: f"{name}: {m}")


def _output(fx: dict, key: str):
    assert key in fx["outputs"], f"fixture lacks outputs['{key}'] (has {sorted(fx['outputs'])})"
    return fx["outputs"][key]


def _stage2_config(config_cinn: dict, z_dim: int) -> dict:
    """The fixture's cINN config in the original stage-2 schema (reduced fixtures store emb/hidden/depth/n_flows)."""
    if "Flow" in config_cinn:
        return config_cinn
    hidden = int(config_cinn["hidden"])
    assert hidden % z_dim == 0, "hidden width must be z_dim * flow_mid_channels_factor"
    return {
        "Flow": {"n_flows": config_cinn["n_flows"], "flow_hidden_depth": config_cinn["depth"],
                 "flow_mid_channels_factor": hidden // z_dim},
        "Conditioning_Model": {"z_dim": config_cinn["emb"]},
        "Training": {"control": bool(config_cinn.get("control", False))},
    }


def _stage1_nets(fx: dict) -> dict:
    with torch.device("meta"):  # skip random init: every tensor comes from the fixture (assign=True)
        nets = build_stage1(fx["config_stage1"])
    for name, net in nets.items():
        net.load_state_dict(fx["state_dict"][name], strict=True, assign=True)
        net.eval()
    return nets


def _cinn(fx: dict):
    z_dim = int(fx["config_stage1"]["Decoder"]["z_dim"])
    assert fx["inputs"]["z"].shape[1] == z_dim
    flow = build_cinn(_stage2_config(fx["config_cinn"], z_dim), z_dim)
    flow.load_state_dict(fx["state_dict"]["cinn"], strict=True)
    return flow.eval()


def _check_stage1(fx: dict, nets: dict) -> None:
    inp = fx["inputs"]
    x0, z, seq = inp["x0"], inp["z"], inp["seq"]
    with torch.no_grad():
        decoded = nets["decoder"](x0, z)
        _assert_close(decoded, _output(fx, "decoder(x0,z)"), "decoder(x0,z)")

        mu, logvar = nets["encoder"].encode(seq)
        _assert_close(mu, _output(fx, "encoder.mu(seq)"), "encoder.mu(seq)")
        _assert_close(logvar, _output(fx, "encoder.logvar(seq)"), "encoder.logvar(seq)")

        logit, fmaps = nets["disc_t"](seq)
        _assert_close(logit, _output(fx, "disc_t.logit(seq)"), "disc_t.logit(seq)")
        expected_fmaps = _output(fx, "disc_t.fmaps(seq)")
        assert len(fmaps) == len(expected_fmaps) == 4
        for i, (got, exp) in enumerate(zip(fmaps, expected_fmaps)):
            _assert_close(got, exp, f"disc_t.fmaps(seq)[{i}]")

        _assert_close(nets["disc_s"](seq[:, 0]), _output(fx, "disc_s.logit(seq[:,0])"), "disc_s.logit(seq[:,0])")


def _check_cinn(fx: dict, flow) -> None:
    """forward out, exact log-det (and the reference's, which lacks the leaky-ReLU term), both reverses."""
    inp = fx["inputs"]
    z, emb = inp["z"], inp["embedding"]
    leaky_terms: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: leaky_terms.append(out[1]))
             for m in flow.modules() if isinstance(m, InvLeakyReLU)]
    with torch.no_grad():
        out, logdet = flow(z, emb)
    for h in hooks:
        h.remove()
    _assert_close(out, _output(fx, "cinn.forward(z,emb).out"), "cinn.forward(z,emb).out")
    _assert_close(logdet, _output(fx, "cinn.forward(z,emb).logdet_exact"), "cinn logdet (exact)")
    leaky = torch.stack(leaky_terms).sum(0)  # (B,)
    assert (leaky < -0.1).all(), "the leaky-ReLU term must matter for this comparison to mean anything"
    _assert_close(logdet - leaky, _output(fx, "cinn.forward(z,emb).logdet"), "cinn logdet without leaky-ReLU term")
    with torch.no_grad():
        _assert_close(flow.reverse(_output(fx, "cinn.forward(z,emb).out"), emb), _output(fx, "cinn.reverse(out,emb)"),
                      "cinn.reverse(out,emb)")
        _assert_close(flow.reverse(inp["residual"], emb), _output(fx, "cinn.reverse(residual,emb)"),
                      "cinn.reverse(residual,emb)")


def _check_sampling(fx: dict, nets: dict, flow) -> None:
    """The whole sampling path: decoder(x0, cinn.reverse(residual, emb))."""
    inp = fx["inputs"]
    with torch.no_grad():
        video = nets["decoder"](inp["x0"], flow.reverse(inp["residual"], inp["embedding"]))
    name = "decoder(x0,cinn.reverse(residual,emb))"
    _assert_close(video, _output(fx, name), name)


@pytest.mark.parametrize("path", _PARAMS)
def test_golden(path):
    fx = torch.load(path, map_location="cpu", weights_only=False)
    assert {"config_stage1", "state_dict", "inputs", "outputs"} <= set(fx), f"{path}: unexpected layout {sorted(fx)}"
    nets = _stage1_nets(fx)
    _check_stage1(fx, nets)
    if "cinn" in fx["state_dict"]:
        flow = _cinn(fx)
        _check_cinn(fx, flow)
        _check_sampling(fx, nets, flow)


def test_the_tiny_golden_fixture_is_in_the_repository():
    """A fresh clone without ../shared still reproduces a golden fixture of the reference code."""
    found = golden_fixtures(BUNDLED, Path("/nonexistent/shared/fixtures"))
    assert "golden_tiny32.pt" in found and found["golden_tiny32.pt"].stat().st_size > 10_000_000
